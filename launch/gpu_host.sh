#!/usr/bin/env bash
# One or more GPU hosts. On one host, JAX sees every local GPU and the mesh spans them; nothing
# else is needed:
#   launch/gpu_host.sh python -m launch.train_sae --config=experiments/sae_switch.py --workdir=runs/x
# On several hosts (e.g. under SLURM, which jax.distributed.initialize() detects), run this on
# each host with the same arguments; --multihost is added for you when SLURM_NTASKS > 1 (or
# MULTIHOST=1 for other cluster managers that jax.distributed.initialize() detects).
set -euo pipefail
cmd=("$@")
if [ "${SLURM_NTASKS:-1}" -gt 1 ] || [ "${MULTIHOST:-0}" = 1 ]; then
  cmd+=("--multihost")
fi
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.9}
exec "${cmd[@]}"
