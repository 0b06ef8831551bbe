"""DafnyBench figures: each PNG is written atomically with the JSON of what it shows beside it.

(The same convention as sae/analysis/plots.py; verify/ keeps its own copy of the few lines it
needs because it must not import JAX-side packages.)
"""
import pathlib
from typing import Sequence

from stack import fileio
from verify import scores


def _pyplot():
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  return plt


def _save(fig, png: pathlib.Path, shown) -> pathlib.Path:
  plt = _pyplot()
  with fileio.atomic_path(png, suffix=".png") as tmp:
    fig.savefig(tmp, format="png", dpi=110)
  plt.close(fig)
  fileio.write_json(png.with_suffix(".json"), shown)
  return png


def _pct(values: Sequence[float | None]) -> list[float]:
  return [100 * (v or 0.0) for v in values]


def run_plots(summary: dict, out_dir: pathlib.Path) -> list[pathlib.Path]:
  """success_by_attempt, success_by_length, success_by_hint_chars for one run."""
  plt, model, paths = _pyplot(), summary.get("model", ""), []
  curves = summary["success_by_attempt"]
  fig, ax = plt.subplots(figsize=(5, 3.5))
  for sub, curve in curves.items():
    ax.plot(range(len(curve)), _pct(curve), marker="o", label=sub)
  ax.set(xlabel="attempt (0 = hint-free input)", ylabel="solved so far (%)", ylim=(0, 100),
         title=f"{model}: success by attempt ({summary['cheat_check']} check)")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  fig.tight_layout()
  paths.append(_save(fig, out_dir / "success_by_attempt.png", {"model": model, "success_by_attempt": curves}))
  for key, label in (("success_by_length", "program length (characters)"),
                     ("success_by_hint_chars", "hint text in ground truth (characters)")):
    rows = summary[key]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(range(len(rows)), _pct([b["rate"] for b in rows]))
    ax.set_xticks(range(len(rows)), [f"{b['lo']}-{b['hi']}" for b in rows], rotation=45, ha="right", fontsize=7)
    ax.set(xlabel=label + f", {scores.NUM_BINS} equal-size bins", ylabel="success (%)", ylim=(0, 100), title=model)
    fig.tight_layout()
    paths.append(_save(fig, out_dir / f"{key}.png", {"model": model, key: rows}))
  return paths


def comparison_plot(table: Sequence[dict], png: pathlib.Path) -> pathlib.Path | None:
  """Per subset, each run's success under both checks and the published figure."""
  plt = _pyplot()
  full = list(table)
  if not full:
    return None
  series = (("ours, paper check", "paper"), ("ours, strict check", "strict"), ("published (same tasks)", "published"))
  shown = {sub: {r["run"]: {k: r[sub].get(k) for _, k in series} for r in full} for sub in scores.SUBSETS}
  fig, axes = plt.subplots(1, len(scores.SUBSETS), figsize=(4 + 1.6 * len(full), 4), sharey=True)
  width = 0.27
  for ax, sub in zip(axes, scores.SUBSETS):
    for k, (label, key) in enumerate(series):
      vals = _pct([shown[sub][r["run"]][key] for r in full])
      ax.bar([i + (k - 1) * width for i in range(len(full))], vals, width, label=label)
    ax.set_xticks(range(len(full)), [r["run"] for r in full], rotation=30, ha="right", fontsize=7)
    ax.set(title=f"{sub} (n={full[0][sub]['n']})", ylim=(0, 100))
  axes[0].set_ylabel("success (%)")
  axes[0].legend(fontsize=6)
  fig.suptitle("DafnyBench: re-verified here vs published", fontsize=9)
  fig.tight_layout()
  return _save(fig, png, shown)
