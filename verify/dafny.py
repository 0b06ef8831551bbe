"""The Dafny verifier driver: version detection, time-limited calls, an on-disk result cache.

Two command lines are supported: Dafny 2.x/3.x legacy (`dafny /compile:0 /deprecation:0 FILE`,
what Debian packages) and Dafny 4 (`dafny verify FILE`). A crash or time-out is a result, never an
exception, so one bad program cannot stop a run.
"""
import concurrent.futures
import dataclasses
import hashlib
import json
import math
import os
import pathlib
import re
import resource
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from typing import Callable, Sequence

from stack import fileio
from stack.errors import UserError

_REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_CACHE = _REPO_ROOT / ".cache" / "dafny"
_OUTPUT_KEEP = 4000  # characters of verifier output kept per result (enough for feedback)
# Bumped whenever _classify or the meaning of the time limit changes, so cached verdicts made
# under other rules are not reused (3: the limit is CPU time, no longer wall-clock time).
_CLASSIFIER = 3
_WALL_CAP_FACTOR = 20  # the wall-clock safety cap, in multiples of the CPU limit


@dataclasses.dataclass(frozen=True)
class VerifyResult:
  status: str            # verified | vacuous | failed | parse_error | timeout | crash | no_code
  seconds: float         # wall time of the verifier call (the original call's, when cached)
  first_error: str       # first error line, file path masked; "" when verified
  output: str            # verifier output, file path masked, truncated
  dafny_version: str
  z3_version: str
  cached: bool = False
  cpu_seconds: float = 0.0   # CPU time of the verifier and its solvers (the time limit counts this)
  wall_capped: bool = False  # stopped by the wall-clock safety cap (load-dependent: never cached)

  @property
  def verified(self) -> bool:
    return self.status == "verified"


def _version_of(cmd: Sequence[str], pattern: str) -> str:
  try:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
  except (OSError, subprocess.TimeoutExpired):
    return ""
  m = re.search(pattern, out.stdout + out.stderr)
  return m.group(1) if m else ""


def _venv_z3() -> str | None:
  """The z3 binary of the z3-solver wheel, wherever pip put its scripts (venv, --user, /usr/local)."""
  for folder in (pathlib.Path(sys.prefix) / "bin", pathlib.Path(sysconfig.get_path("scripts"))):
    if (folder / "z3").is_file():
      return str(folder / "z3")
  return None


class Dafny:
  """One installed Dafny (plus the z3 it is told to use) and a cache of its verdicts."""

  def __init__(self, exe: str = "dafny", z3: str = "auto", timeout_s: float = 30.0,
               cache_dir: str | os.PathLike | None = DEFAULT_CACHE, tmp_root: str | None = None):
    self.exe = shutil.which(exe)
    if not self.exe:
      raise UserError(f"Dafny executable {exe!r} not found; install it (apt-get install -y dafny) "
                      "or pass --dafny=PATH")
    self.version = (_version_of([self.exe, "--version"], r"^(\d+\.\d+\.\d+)")
                    or _version_of([self.exe, "/version"], r"Dafny (\d+\.\d+\.\d+)"))
    if not self.version:
      raise UserError(f"could not tell the version of {self.exe}; is it a Dafny executable?")
    self.major = int(self.version.split(".")[0])
    # Dafny 2.3 was built against z3 4.8.5 (pip z3-solver==4.8.5.0); use it when the venv has it.
    if z3 == "auto":
      self.z3 = _venv_z3() if self.major < 4 else None
    elif z3 == "system":
      self.z3 = None
    else:
      self.z3 = shutil.which(z3)
      if not self.z3:
        raise UserError(f"z3 executable {z3!r} not found; pass --z3=auto, --z3=system or a path")
    self.z3_version = _version_of([self.z3 or shutil.which("z3") or "z3", "--version"],
                                  r"version (\d+\.\d+\.\d+)")
    if not self.z3:
      self.z3_version = f"{self.z3_version or 'unknown'} (Dafny's default)"
    self.timeout_s = timeout_s  # CPU seconds per verifier call
    self.wall_cap_s = _WALL_CAP_FACTOR * timeout_s
    self.cache_dir = pathlib.Path(cache_dir) if cache_dir else None
    self.tmp_root = tmp_root  # where each call's scratch folder goes (default: the system's)

  def describe(self) -> dict:
    return {"dafny": self.exe, "dafny_version": self.version, "z3": self.z3 or "default",
            "z3_version": self.z3_version, "timeout_s": self.timeout_s, "time_limit": "CPU seconds",
            "wall_cap_s": self.wall_cap_s, "flags": self._flags()}

  def _flags(self) -> list[str]:
    if self.major >= 4:
      return ["verify"] + ([f"--solver-path={self.z3}"] if self.z3 else [])
    return ["/compile:0", "/deprecation:0"] + ([f"/z3exe:{self.z3}"] if self.z3 else [])

  def _cache_path(self, text: str) -> pathlib.Path | None:
    if not self.cache_dir:
      return None
    # The solver is keyed by its version, not its path, so caches move between machines.
    flags = [re.sub(r"(z3exe:|solver-path=).*", r"\1z3", f) for f in self._flags()]
    key = json.dumps([text, self.version, self.z3_version, flags, self.timeout_s, _CLASSIFIER])
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return self.cache_dir / digest[:2] / f"{digest}.json"

  def verify(self, text: str) -> VerifyResult:
    """Verify one program text; cached on (text, Dafny version, z3 version, flags, time limit)."""
    path = self._cache_path(text)
    if path and path.is_file():
      try:
        return dataclasses.replace(VerifyResult(**json.loads(path.read_text("utf-8"))), cached=True)
      except (ValueError, TypeError):
        pass  # a torn or foreign cache file: verify again and overwrite it
    result = self._run(text)
    if path and not result.wall_capped:
      fileio.write_json(path, dataclasses.asdict(result), indent=None)
    return result

  def _run(self, text: str) -> VerifyResult:
    with tempfile.TemporaryDirectory(prefix="dafnybench-", dir=self.tmp_root) as tmp:
      file = pathlib.Path(tmp) / "program.dfy"
      file.write_text(text, "utf-8")
      start = time.monotonic()
      # A new session makes the verifier and its z3 children one process group we can kill.
      proc = subprocess.Popen([self.exe, *self._flags(), str(file)], cwd=tmp, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, start_new_session=True)
      returncode, cpu, walled, raw = _wait_limited(proc, self.timeout_s, self.wall_cap_s)
      seconds = time.monotonic() - start
      output = raw.decode("utf-8", "replace").replace(str(file), "program.dfy").replace(tmp + "/", "")
    status = _classify(returncode, output)
    if walled or (status != "verified" and cpu >= self.timeout_s):
      status = "timeout"
    return VerifyResult(status=status, seconds=round(seconds, 3), first_error=_first_error(output, status),
                        output=_shorten(output), dafny_version=self.version, z3_version=self.z3_version,
                        cpu_seconds=round(cpu, 3), wall_capped=walled)

  def verify_many(self, texts: Sequence[str], workers: int = 2,
                  progress: Callable[[int, VerifyResult], None] | None = None) -> list[VerifyResult]:
    """Verify in parallel (threads, each waiting on its own verifier process); order preserved."""
    results: list[VerifyResult | None] = [None] * len(texts)
    with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
      futures = {pool.submit(self.verify, t): i for i, t in enumerate(texts)}
      for fut in concurrent.futures.as_completed(futures):
        results[futures[fut]] = fut.result()
        if progress:
          progress(futures[fut], fut.result())
    return results  # type: ignore[return-value]


def _wait_limited(proc: subprocess.Popen, cpu_s: float, wall_s: float) -> tuple[int, float, bool, bytes]:
  """(exit code, CPU seconds of the verifier and the solvers it waited for, wall cap hit, output).

  The limit is CPU time (RLIMIT_CPU on the verifier, inherited by each z3 it starts), so a verdict
  does not depend on how busy the machine is; the wall-clock cap is only a safety stop.
  """
  limit = max(1, math.ceil(cpu_s))
  try:
    resource.prlimit(proc.pid, resource.RLIMIT_CPU, (limit, limit + 1))
  except (ProcessLookupError, PermissionError):
    pass  # already gone: nothing left to limit
  chunks: list[bytes] = []
  reader = threading.Thread(target=lambda: chunks.append(proc.stdout.read()), daemon=True)
  reader.start()
  start, walled = time.monotonic(), False
  while True:
    pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
    if pid:
      break
    if time.monotonic() - start > wall_s:
      os.killpg(proc.pid, signal.SIGKILL)
      _, status, usage = os.wait4(proc.pid, 0)
      walled = True
      break
    time.sleep(0.02)
  proc.returncode = os.waitstatus_to_exitcode(status)
  # A solver the verifier left behind: kill the group and wait (briefly) until it is gone.
  for _ in range(100):
    try:
      os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
      break
    time.sleep(0.02)
  reader.join()
  proc.stdout.close()
  return proc.returncode, usage.ru_utime + usage.ru_stime, walled, b"".join(chunks)


def _shorten(output: str) -> str:
  """At most _OUTPUT_KEEP characters; when cutting, execution traces go first so that every
  error line (what feedback and the heuristic's blame need) is kept."""
  if len(output) > _OUTPUT_KEEP:
    output = "\n".join(ln for ln in output.splitlines()
                       if not (ln.startswith("Execution trace:") or re.match(r"\s+\S*\(\d+,\d+\): ", ln)))
  return output[:_OUTPUT_KEEP]


def _classify(returncode: int, output: str) -> str:
  if "File contains no code" in output:
    return "no_code"
  # "0 verified, 0 errors" proves nothing (no method body, everything skipped): not a success by
  # itself; the loop accepts it only where the task input has nothing to verify either.
  if returncode == 0 and re.search(r"(?<!\d)0 verified, 0 errors", output):
    return "vacuous"
  if returncode == 0 and re.search(r"verified, 0 errors", output):
    return "verified"
  if re.search(r"parse errors? detected|resolution/type errors? detected|Error: unknown switch", output):
    return "parse_error"
  if re.search(r"verified, \d+ errors?|time out|timed out|out of resource", output):
    return "failed"
  return "crash"


def _first_error(output: str, status: str) -> str:
  if status == "verified":
    return ""
  if status == "timeout":
    return "time-out"
  for line in output.splitlines():
    if re.search(r"[Ee]rror|time out|timed out", line):
      return line.strip()[:300]
  lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
  return (lines[0] if lines else "verifier exited with no output")[:300]
