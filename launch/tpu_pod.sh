#!/usr/bin/env bash
# Start the same command on every host of a Cloud TPU VM slice. Each host runs one process;
# --multihost makes the main call jax.distributed.initialize(), after which the mesh spans every
# chip of the slice and each host feeds its own slice of the batch.
#
#   launch/tpu_pod.sh TPU_NAME ZONE -- python -m launch.train_sae \
#       --config=experiments/sae_switch.py --workdir=/mnt/shared/runs/switch
#
# The workdir must be on a file system every host sees (Filestore/NFS): checkpoints are written
# collectively by all hosts, metrics by host 0 only. Set REPO to where the repository lives on
# the hosts (default: ~/switchbench); SETUP=1 installs it there first. launch/local_cluster.sh
# runs the same multi-process path on one machine (how tests/test_multihost.py exercises it).
set -euo pipefail
if [ $# -lt 4 ] || [ "$3" != "--" ]; then
  echo "usage: $0 TPU_NAME ZONE -- COMMAND..." >&2
  exit 2
fi
name=$1 zone=$2
shift 3
repo=${REPO:-~/switchbench}
cmd="$*"
case "$cmd" in *--multihost*) ;; *) cmd="$cmd --multihost" ;; esac
setup=""
if [ "${SETUP:-0}" = 1 ]; then
  setup="cd $repo && python3 -m venv .venv && .venv/bin/pip install -q -e '.[lm]' 'jax[tpu]' && "
fi
gcloud compute tpus tpu-vm ssh "$name" --zone "$zone" --worker=all \
  --command "${setup}cd $repo && .venv/bin/$cmd"
