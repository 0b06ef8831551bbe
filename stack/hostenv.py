"""Host allocator settings that CPU training steps are sensitive to, applied by re-exec.

XLA:CPU allocates each step's large temporaries (the pre-activations, the decoder gradient) with
malloc; glibc serves blocks above 32 MB with fresh mmaps and unmaps them on free, so every step
page-faults its working set in again (about 120k faults, 0.1 s, per Switch N=8 step at
M=32768), and the 4 KB pages make the decoder's row gathers and scatters TLB-bound. glibc reads
its tunables only at start-up, so `reexec_with_tuned_malloc` restarts the process once with

  glibc.malloc.hugetlb=1        transparent huge pages for malloc'd memory (madvise mode)
  glibc.malloc.mmap_max=0       large blocks come from the heap and are reused ...
  glibc.malloc.trim_threshold   ... not handed back after every step
  glibc.malloc.arena_max=1      one arena, so XLA's worker threads share those blocks

Measured by experiments/bench_sae_step.py (--malloc=default|tuned). Peak memory is unchanged;
freed memory stays with the process. Set SWITCHBENCH_MALLOC=default to keep the environment as
it is (the tests do); an existing GLIBC_TUNABLES is never overridden.
"""

from __future__ import annotations

import os
import platform
import sys

TUNABLES = ("glibc.malloc.hugetlb=1:glibc.malloc.mmap_max=0:glibc.malloc.arena_max=1:"
            "glibc.malloc.trim_threshold=4294967296")
_OPT_OUT = "SWITCHBENCH_MALLOC"


def tuned_environ(environ: dict[str, str]) -> dict[str, str] | None:
  """The environment to restart with, or None when nothing should change."""
  if environ.get(_OPT_OUT, "tuned") != "tuned" or "GLIBC_TUNABLES" in environ:
    return None
  if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
    return None
  return {**environ, "GLIBC_TUNABLES": TUNABLES}


def reexec_with_tuned_malloc() -> None:
  """Restarts this command line once under TUNABLES (a no-op where tuned_environ is None).

  Call it first thing in a __main__ block, before JAX allocates anything."""
  env = tuned_environ(dict(os.environ))
  if env is None:
    return
  sys.stdout.flush()
  sys.stderr.flush()
  os.execve(sys.executable, list(sys.orig_argv), env)


def describe() -> str:
  return os.environ.get("GLIBC_TUNABLES", "default")
