import os
import platform
import subprocess
import sys

import pytest

from stack import hostenv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_tuned_environ_respects_opt_out_and_existing_tunables():
  assert hostenv.tuned_environ({"SWITCHBENCH_MALLOC": "default"}) is None
  assert hostenv.tuned_environ({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}) is None
  env = hostenv.tuned_environ({"PATH": "/bin"})
  if sys.platform == "linux" and platform.libc_ver()[0] == "glibc":
    assert env == {"PATH": "/bin", "GLIBC_TUNABLES": hostenv.TUNABLES}
  else:
    assert env is None


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc tunables only")
def test_reexec_restarts_once_with_the_tunables_and_keeps_argv():
  code = ("import sys; from stack import hostenv; print('start', flush=True); "
          "hostenv.reexec_with_tuned_malloc(); print(hostenv.describe(), sys.argv[1:])")
  env = {k: v for k, v in os.environ.items() if k not in ("SWITCHBENCH_MALLOC", "GLIBC_TUNABLES")}
  out = subprocess.run([sys.executable, "-c", code, "--flag=1"], cwd=ROOT, env=env, check=True,
                       capture_output=True, text=True).stdout.splitlines()
  # Printed once before the restart and once after it; the restarted process does not restart.
  assert out == ["start", "start", f"{hostenv.TUNABLES} ['--flag=1']"]
