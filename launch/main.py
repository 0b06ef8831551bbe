"""The main job: harvest SmolLM2 activations, train TopK and Switch SAEs, print them side by side.

    python -m launch.main --config=experiments/quickstart.py --workdir=runs/main

Any sweep config runs the same way (experiments/switch_paper.py; its figures are then drawn by
experiments/switch_paper_figures.py). Rerunning the same command after a kill resumes (harvest shards, checkpoints, finished runs).
"""

from absl import logging

from launch import common

COLUMNS = (("name", "run", "{}"), ("flops_per_token", "train FLOPs/token", "{:.3g}"),
           ("mse", "MSE (sum over d)", "{:.4f}"), ("fvu", "FVU", "{:.4f}"), ("l0", "L0", "{:.1f}"),
           ("dead_fraction", "dead", "{:.3f}"), ("loss_recovered", "loss recovered", "{:.4f}"),
           ("delta_ce", "delta CE", "{:.4f}"), ("seconds", "train s", "{:.0f}"),
           ("ms_per_step", "ms/step", "{:.0f}"))
SCALE_ANSWER = ("At 5M tokens, which wins? README section 'Switch SAEs at millions of tokens' "
                "(results/switch_scale/).")


def table(runs: list[dict]) -> str:
  head = [title for _, title, _ in COLUMNS]
  rows = [[fmt.format(run[key]) if run.get(key) is not None else "-" for key, _, fmt in COLUMNS]
          for run in runs]
  widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
  lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in [head, *rows]]
  lines.insert(1, "  ".join("-" * w for w in widths))
  return "\n".join(lines)


def main(argv):
  common.check_argv(argv)
  logging.set_verbosity(logging.WARNING)
  from sae import sweep as sweep_lib  # pylint: disable=import-outside-toplevel
  from stack.config import to_dataclass  # pylint: disable=import-outside-toplevel
  cfg = to_dataclass(common.load_config_flag(), sweep_lib.SweepConfig)
  workdir = common.workdir_flag()
  sweep = sweep_lib.run_sweep(cfg, workdir)
  runs = [dict(r, ms_per_step=1000 * r["seconds"] / r["steps"]) for r in sweep["runs"]]
  print(table(runs), flush=True)
  for line in equal_compute(runs):
    print(line, flush=True)
  print(f"results: {workdir}/sweep.json", flush=True)
  print(SCALE_ANSWER, flush=True)


def equal_compute(runs: list[dict]) -> list[str]:
  """Each run's held-out MSE at the training seconds and FLOPs that every run reached (from the
  token curves; runs without one are left out)."""
  from sae import curve  # pylint: disable=import-outside-toplevel
  runs = [r for r in runs if r.get("curve")]
  lines = []
  for key, unit in (("seconds", "s of training"), ("flops", "training FLOPs")):
    if not runs:
      break
    budget = min(max(p[key] for p in r["curve"]) for r in runs)
    cells = [f"{r['name']} {curve.at_budget(r['curve'], key, budget):.4f}" for r in runs]
    lines.append(f"MSE at equal compute ({budget:.3g} {unit}): " + ", ".join(cells))
  return lines


if __name__ == "__main__":
  common.run(main)
