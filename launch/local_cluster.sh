#!/usr/bin/env bash
# Start the same command as N processes on this machine, the way tpu_pod.sh starts one per host
# of a pod: each gets --multihost plus the coordinator address (127.0.0.1), the process count and
# its own index; jax.distributed.initialize() then joins them into one runtime whose mesh spans
# every process's devices, CPU collectives going through gloo. Each process simulates
# DEVICES CPU devices (default 4), so
#
#   launch/local_cluster.sh 2 -- .venv/bin/python -m launch.train_sae \
#       --config=experiments/sae_synthetic.py:smoke --set=mesh='(("data",2),("expert",4))' \
#       --workdir=/tmp/sae_2proc
#
# trains on one 8-device mesh from two processes. Output lines are prefixed with [process].
# The exit status is the first non-zero status of any process (0 when all succeed). PORT picks
# the coordinator port (default: a free one).
set -euo pipefail
if [ $# -lt 3 ] || [ "$2" != "--" ] || ! [ "$1" -ge 1 ] 2>/dev/null; then
  echo "usage: $0 NUM_PROCESSES -- COMMAND..." >&2
  exit 2
fi
n=$1
shift 2
port=${PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
export JAX_PLATFORMS=cpu
flags=$(echo "${XLA_FLAGS:-}" | sed 's/--xla_force_host_platform_device_count=[0-9]*//g')
export XLA_FLAGS="$flags --xla_force_host_platform_device_count=${DEVICES:-4}"
pids=()
for ((i = 0; i < n; i++)); do
  "$@" --multihost --coordinator_address="127.0.0.1:$port" --num_processes="$n" --process_id="$i" \
    > >(sed -u "s/^/[$i] /") 2> >(sed -u "s/^/[$i] /" >&2) &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do
  wait "$pid" || { rc=$?; [ "$status" -ne 0 ] || status=$rc; }
done
exit "$status"
