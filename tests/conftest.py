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

# The SAELens peer tests belong to the peer venv (`make test-peer`); where torch and sae-lens are
# not installed (the default suite) the module is not collected at all, rather than skipped.
import importlib.util  # pylint: disable=wrong-import-position

collect_ignore = []
if importlib.util.find_spec("torch") is None or importlib.util.find_spec("sae_lens") is None:
  collect_ignore.append("test_peer_saelens.py")
