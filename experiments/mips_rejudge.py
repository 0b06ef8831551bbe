"""Re-judge a directory of MIPS programs under the length checks (synth/certify.py): each
program on the test split at L, 2L, 4L and 10L, as the pipeline certifies a selected one.

    python -m experiments.mips_rejudge --programs=results/mips/old_protocol/programs \
        --out=results/mips/old_protocol/rejudged

Writes OUT.json (one row per program: exact per length, disjointness at L, program lines) and
OUT.md (a table). Used on the programs of the run made before the length checks existed, which
were selected and checked on one split at the trained length only.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from stack import fileio
from synth import certify, codegen, pipeline, tasks

TEST_COUNTS = pipeline.PipelineConfig().test_counts


def rejudge(programs: str, n_train: int = 20_000, n_val: int = 2_000) -> dict:
  rows = {}
  for name, task in tasks.TASKS.items():
    path = os.path.join(programs, f"{name}.py")
    if not os.path.exists(path):
      continue
    # The training sample the pipeline draws (seed 0): held-out sequences at L avoid it.
    x_train, _, x_rest, _ = task.dataset(int((n_train + n_val) / task.split) + 1, seed=0)
    seen = certify.sequence_hashes(np.concatenate([x_train, x_rest]))
    cert = certify.check_lengths(path, task, TEST_COUNTS, certify.TEST_SEED, train_hashes=seen)
    rows[name] = {"certificate": cert.as_dict(), "lines": codegen.program_lines(path)}
    print(f"{name}: {'exact' if cert.exact else 'NOT exact'} at "
          + ", ".join(f"{r.length}={int(r.exact)}" for r in cert.lengths), flush=True)
  return rows


def table(rows: dict) -> str:
  lines = ["| # | task | exact L / 2L / 4L / 10L | held-out at L disjoint | program lines |",
           "| --- | --- | --- | --- | --- |"]
  for name, row in rows.items():
    cert = row["certificate"]
    exact = " / ".join(str(int(cert["lengths"][f"{k}L"]["exact"])) if f"{k}L" in cert["lengths"]
                       else "-" for k in certify.LENGTH_FACTORS)
    lines.append(f"| {tasks.TASKS[name].index} | {name} | {exact} | "
                 f"{'yes' if cert['disjoint_at_L'] else 'no'} | {row['lines']} |")
  ok = sum(r["certificate"]["exact"] for r in rows.values())
  return "\n".join(lines) + f"\n\n{ok} of {len(rows)} programs exact at every length\n"


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--programs", required=True, help="folder of <Task>.py programs")
  parser.add_argument("--out", required=True, help="output path without extension")
  args = parser.parse_args(argv)
  if not os.path.isdir(args.programs):
    print(f"error: --programs {args.programs!r} is not a folder", file=sys.stderr)
    return 2
  rows = rejudge(args.programs)
  fileio.write_json(args.out + ".json", rows)
  fileio.write_text(args.out + ".md", table(rows))
  print(table(rows))
  return 0


if __name__ == "__main__":
  sys.exit(main())
