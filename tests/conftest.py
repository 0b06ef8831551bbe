"""Every test sees 8 simulated CPU devices; this must run before anything imports jax."""

import os
import sys

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Launch mains run as subprocesses in some tests: no allocator re-exec there (stack/hostenv.py).
os.environ.setdefault("SWITCHBENCH_MALLOC", "default")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)
