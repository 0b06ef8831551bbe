"""The paper's figures as PNGs, each with the JSON of the data it shows written beside it.

Every function takes plain Python data (lists of dicts, nested lists or numpy arrays) and an
output path ending in .png, writes <stem>.png and <stem>.json atomically, and returns the PNG
path. Rows missing a plotted key are left out of that panel rather than failing the figure.
"""

from __future__ import annotations

import math
import os
from typing import Any, Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

from stack.errors import UserError  # pylint: disable=wrong-import-position
from stack.fileio import atomic_path, write_json  # pylint: disable=wrong-import-position

# Metrics that span orders of magnitude get log axes; bounded ones (FVE, loss recovered) do not.
LOG_KEYS = frozenset({"l0", "mse", "fvu", "flops", "seconds", "delta_ce", "num_latents", "width",
                      "tokens"})
LABELS = {"l0": "L0 (active latents per token)", "mse": "MSE (summed over d)",
          "fvu": "fraction of variance unexplained", "loss_recovered": "loss recovered",
          "flops": "training FLOPs", "seconds": "wall-clock seconds", "tokens": "training tokens",
          "alpha": "alpha",
          "frac_dead": "fraction of dead latents", "mse_ratio": "MSE(Switch) / MSE(TopK)", "step": "step", "delta_ce": "delta CE"}


def _plain(value: Any) -> Any:
  """JSON-safe copy: arrays to lists, numpy scalars to Python, NaN / inf to None."""
  if isinstance(value, np.ndarray):
    return _plain(value.tolist())
  if isinstance(value, dict):
    return {str(k): _plain(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_plain(v) for v in value]
  if isinstance(value, np.generic):
    value = value.item()
  if isinstance(value, float) and not math.isfinite(value):
    return None
  return value


def _number(value: Any) -> Optional[float]:
  if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
    return None
  value = float(value)
  return value if math.isfinite(value) else None


def _save(fig, out_path: str, data: dict) -> str:
  if not out_path.endswith(".png"):
    raise UserError(f"plot paths must end in .png; got {out_path!r}")
  os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
  with atomic_path(out_path) as tmp:
    fig.savefig(tmp, format="png", dpi=120)
  plt.close(fig)
  write_json(out_path[:-4] + ".json", _plain(data))
  return out_path


def _lines(ax, rows: Sequence[dict], x: str, y: str, group: str, *, log_x: bool, log_y: bool,
           marker: str = "o") -> None:
  """One line per value of rows[i][group], points sorted by x; log axes only on positive data."""
  series: dict[str, list[tuple[float, float]]] = {}
  for row in rows:
    xv, yv = _number(row.get(x)), _number(row.get(y))
    if xv is not None and yv is not None:
      series.setdefault(str(row.get(group, "")), []).append((xv, yv))
  for name, points in series.items():
    points.sort()
    ax.plot([p[0] for p in points], [p[1] for p in points], marker=marker, markersize=3, label=name)
  values = [p for pts in series.values() for p in pts]
  if log_x and values and min(p[0] for p in values) > 0:
    ax.set_xscale("log")
  if log_y and values and min(p[1] for p in values) > 0:
    ax.set_yscale("log")
  ax.set_xlabel(LABELS.get(x, x))
  ax.set_ylabel(LABELS.get(y, y))
  ax.grid(True, which="both", alpha=0.3)
  if series and len(series) <= 20:
    ax.legend(fontsize=7)


def _panels(num: int, width: float = 4.5):
  fig, axes = plt.subplots(1, num, figsize=(width * num, 3.8), squeeze=False, layout="constrained")
  return fig, list(axes[0])


def _line_panels(rows: Sequence[dict], out_path: str, xys: Sequence[tuple[str, str]], group: str,
                 title: Optional[str], data: dict) -> str:
  """One panel per (x, y), one line per group, log axes for LOG_KEYS; the JSON holds `data`,
  the group key and the rows."""
  fig, axes = _panels(len(xys))
  for ax, (x, y) in zip(axes, xys):
    _lines(ax, rows, x, y, group, log_x=x in LOG_KEYS, log_y=y in LOG_KEYS)
  if title:
    fig.suptitle(title)
  return _save(fig, out_path, {**data, "group": group, "rows": list(rows)})


def pareto_plot(rows: Sequence[dict], out_path: str, *, x: str = "l0",
                metrics: Sequence[str] = ("mse", "fvu", "loss_recovered"), group: str = "label",
                title: Optional[str] = None) -> str:
  """Sparsity-fidelity frontiers: one panel per metric against L0, one line per architecture/N.

  rows: [{'label': 'Switch N=16', 'l0': 32, 'mse': 1296.7, 'fvu': .., 'loss_recovered': ..}, ..]
  """
  return _line_panels(rows, out_path, [(x, metric) for metric in metrics], group, title,
                      {"kind": "pareto", "x": x, "metrics": list(metrics)})


def compute_plot(rows: Sequence[dict], out_path: str, *, y: str = "mse",
                 xs: Sequence[str] = ("flops", "seconds"), group: str = "label",
                 title: Optional[str] = None) -> str:
  """A metric against training cost: one panel per cost (FLOPs, wall-clock seconds), log-log.

  rows: evaluation points, e.g. [{'label': 'TopK', 'flops': 1e15, 'seconds': 310, 'mse': 1142}, ..]
  """
  return _line_panels(rows, out_path, [(x, y) for x in xs], group, title,
                      {"kind": "compute", "y": y, "xs": list(xs)})


def heatmap_plot(switch_NN: Any, control_NN: Any, out_path: str, *,
                 titles: Sequence[str] = ("Switch SAE experts", "dense TopK, arbitrary blocks")) -> str:
  """The inter-expert similarity heatmap beside its control, on one colour scale."""
  mats = [np.asarray(switch_NN, np.float64), np.asarray(control_NN, np.float64)]
  if any(m.ndim != 2 or m.shape[0] != m.shape[1] for m in mats):
    raise UserError(f"heatmaps must be square matrices; got {[m.shape for m in mats]}")
  finite = np.concatenate([m[np.isfinite(m)] for m in mats])
  lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
  fig, axes = _panels(2, width=4.8)
  for ax, mat, title in zip(axes, mats, titles):
    image = ax.imshow(mat, vmin=lo, vmax=hi, cmap="viridis")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("expert j")
    ax.set_ylabel("expert i")
  fig.colorbar(image, ax=axes, shrink=0.8, label="mean max cosine (i to j)")
  return _save(fig, out_path, {"kind": "heatmap", "titles": list(titles), "switch": mats[0],
                               "control": mats[1]})


def embedding_plot(xy_P2: Any, expert_P: Any, out_path: str, *,
                   title: str = "decoder rows by expert") -> str:
  """2-D embedding (PCA / t-SNE) scatter, one colour per expert."""
  xy_P2, expert_P = np.asarray(xy_P2, np.float64), np.asarray(expert_P)
  if xy_P2.ndim != 2 or xy_P2.shape[1] != 2 or expert_P.shape != xy_P2.shape[:1]:
    raise UserError(f"need xy (P, 2) and one expert per point; got {xy_P2.shape}, {expert_P.shape}")
  experts = np.unique(expert_P)
  cmap = plt.get_cmap("tab20" if len(experts) <= 20 else "turbo")
  colour_of = {e: cmap(i / max(len(experts) - 1, 1)) if len(experts) > 20 else cmap(i)
               for i, e in enumerate(experts)}
  fig, axes = _panels(1, width=5.5)
  for e in experts:
    at = expert_P == e
    axes[0].scatter(xy_P2[at, 0], xy_P2[at, 1], s=4, color=colour_of[e], label=str(e))
  if len(experts) <= 16:
    axes[0].legend(fontsize=6, markerscale=2, title="expert", title_fontsize=7)
  axes[0].set_title(title, fontsize=9)
  axes[0].set_xticks([])
  axes[0].set_yticks([])
  return _save(fig, out_path, {"kind": "embedding", "title": title, "xy": xy_P2, "expert": expert_P})


def training_plot(rows: Sequence[dict], out_path: str, *,
                  load_keys: Sequence[str] = ("expert_load_N", "max_expert_load", "min_expert_load"),
                  dead_keys: Sequence[str] = ("frac_dead",), title: Optional[str] = None) -> str:
  """Expert load and dead latents over training, from metrics.jsonl rows {step, ...}.

  A load key holding a list per row (the fraction of tokens per expert) draws one line per
  expert, scaled by N so that 1 is an even share like max/min_expert_load; a scalar key draws
  one line. Keys absent from every row are skipped.
  """
  fig, axes = _panels(2)
  scalar_rows, dead_rows = [], []
  for row in (r for r in rows if "step" in r):
    scalar_rows += [{"step": row["step"], "value": row[key], "key": key} for key in load_keys
                    if key in row and not isinstance(row[key], (list, tuple))]
    dead_rows += [{"step": row["step"], "value": row[key], "key": key}
                  for key in dead_keys if key in row]
  for key in load_keys:
    points = [(r["step"], r[key]) for r in rows
              if "step" in r and isinstance(r.get(key), (list, tuple))]
    if points:
      # Fractions times N share the scale of max/min_expert_load: 1 is an even share.
      per_expert = np.array([p[1] for p in points], np.float64)
      per_expert *= per_expert.shape[1]
      for e in range(per_expert.shape[1]):
        axes[0].plot([p[0] for p in points], per_expert[:, e], linewidth=0.8, alpha=0.7)
  _lines(axes[0], scalar_rows, "step", "value", "key", log_x=False, log_y=False, marker="")
  _lines(axes[1], dead_rows, "step", "value", "key", log_x=False, log_y=False, marker="")
  axes[0].set_ylabel("tokens per expert / even share")
  axes[1].set_ylabel("dead latents")
  axes[0].set_title("expert load (1 = balanced)", fontsize=9)
  axes[1].set_title("dead latents", fontsize=9)
  if title:
    fig.suptitle(title)
  return _save(fig, out_path, {"kind": "training", "load_keys": list(load_keys),
                               "dead_keys": list(dead_keys), "rows": list(rows)})


def alpha_plot(rows: Sequence[dict], out_path: str, *,
               metrics: Sequence[str] = ("mse", "frac_dead"), group: str = "label",
               title: Optional[str] = None) -> str:
  """The load-balancing weight sweep: each metric against alpha (symlog, so alpha = 0 shows)."""
  fig, axes = _panels(len(metrics))
  for ax, metric in zip(axes, metrics):
    _lines(ax, rows, "alpha", metric, group, log_x=False, log_y=metric in LOG_KEYS)
    ax.set_xscale("symlog", linthresh=1.0)
    alphas = [a for a in (_number(r.get("alpha")) for r in rows) if a is not None]
    if alphas and min(alphas) >= 0:
      ax.set_xlim(left=0)  # symlog's margin would otherwise show negative alphas
  if title:
    fig.suptitle(title)
  return _save(fig, out_path, {"kind": "alpha_sweep", "metrics": list(metrics), "group": group,
                               "rows": list(rows)})
