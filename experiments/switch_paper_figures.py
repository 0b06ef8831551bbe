"""The Switch SAE paper's figures and table from a sweep directory (sweep.json + each run's
decoder.npz), after `python -m launch.main --config=experiments/switch_paper.py --workdir=...`:

    python -m experiments.switch_paper_figures --config=experiments/switch_paper.py \
        --workdir=runs/switch_paper --out=results/switch_paper
    write_figures(workdir, out_dir) -> {figure name: png path}   (a JSON beside every PNG)

Figures: Pareto frontiers (MSE, FVU, loss recovered vs L0) for the FLOP-matched and the
width-matched sweeps with the dense baselines; MSE vs training FLOPs and wall-clock seconds;
duplicated-latent fraction per N; inter-expert similarity heatmap beside a dense TopK cut into
blocks; t-SNE of decoder rows coloured by expert; expert load and dead latents over training;
the load-balance alpha sweep. Plus table.md (MSE and loss recovered per k) and analyses.json.
A figure whose runs have not finished yet is left out, so this works on a partial sweep. With
--config (and the sweep's --set overrides) sweep.json is first rebuilt from every finished run,
so workers that ran different parts of the sweep are all drawn; nothing is trained here.
"""

from __future__ import annotations

import argparse
import os
from typing import Optional

import numpy as np

from sae import sweep as sweep_lib
from sae.analysis import embed, geometry, plots
from stack import config
from stack.errors import UserError
from stack.fileio import read_json, read_jsonl, write_json, write_text

KIND_LABELS = {"topk": "TopK", "relu": "ReLU", "gated": "Gated", "batchtopk": "BatchTopK"}


def label(row: dict) -> str:
  if row["kind"] == "switch":
    return f"Switch N={row['num_experts']}"
  return KIND_LABELS.get(row["kind"], row["kind"])


def _rows(sweep: dict, group: str, dense_width: int, baselines: bool = True) -> list[dict]:
  """A group's runs plus the dense baselines at dense_width, each with its label."""
  out = []
  for r in sweep["runs"]:
    in_group = group in r["groups"]
    is_baseline = baselines and r["kind"] != "switch" and r["width"] == dense_width
    if in_group or is_baseline:
      out.append(dict(r, label=label(r)))
  return out


def _load(workdir: str, name: str) -> Optional[np.lib.npyio.NpzFile]:
  path = os.path.join(workdir, "runs", name, "decoder.npz")
  return np.load(path) if os.path.isfile(path) else None


def _metrics_rows(workdir: str, name: str) -> list[dict]:
  path = os.path.join(workdir, "runs", name, "metrics.jsonl")
  return read_jsonl(path) if os.path.isfile(path) else []


def _pick(runs: list[dict], **want) -> Optional[dict]:
  for r in runs:
    if all(r.get(k) == v for k, v in want.items()):
      return r
  return None


def duplicate_rows(workdir: str, sweep: dict, k: int) -> list[dict]:
  """Duplicated-latent fractions (cosine > 0.9) of every Switch run at k, and of dense TopK."""
  rows = []
  for r in sweep["runs"]:
    if r.get("k") != k or r["kind"] not in ("switch", "topk"):
      continue
    if r["kind"] == "switch" and not {"flop_matched", "width_matched"} & set(r["groups"]):
      continue
    npz = _load(workdir, r["name"])
    if npz is None:
      continue
    dup = geometry.duplicate_fractions(npz["w_dec"])
    sweep_name = ("dense" if r["kind"] == "topk" else
                  "FLOP-matched" if "flop_matched" in r["groups"] else "width-matched")
    rows.append({"name": r["name"], "label": sweep_name, "num_experts": r["num_experts"],
                 "width": r["width"], **{k_: v for k_, v in dup.items() if k_ != "frac_across_per_expert"}})
  return rows


def table_markdown(sweep: dict, dense_width: int, relative: bool = False) -> str:
  """MSE (loss recovered) per k: dense TopK, FLOP-matched and width-matched Switch columns;
  with relative, each MSE as a change against dense TopK at the same k."""
  runs = sweep["runs"]
  dense = {r["k"]: r["mse"] for r in runs if r["kind"] == "topk" and r["width"] == dense_width}
  columns = [("TopK", dict(kind="topk", width=dense_width))]
  for group, title in (("flop_matched", "FLOP-matched"), ("width_matched", "width-matched")):
    ns = sorted({r["num_experts"] for r in runs if r["kind"] == "switch" and group in r["groups"]})
    columns += [(f"{title} {n} exp", dict(kind="switch", num_experts=n, group=group)) for n in ns]
  ks = sorted({r["k"] for r in runs if r.get("k") and r["kind"] == "topk" and r["width"] == dense_width})
  lines = ["| k | " + " | ".join(t for t, _ in columns) + " |", "|---" * (len(columns) + 1) + "|"]
  for k in ks:
    cells = []
    for _, want in columns:
      group = want.get("group")
      match = [r for r in runs if r.get("k") == k and all(r.get(a) == b for a, b in want.items() if a != "group")
               and (group is None or group in r["groups"])]
      if not match:
        cells.append("-")
        continue
      r = match[0]
      if relative:
        cells.append(f"{100 * (r['mse'] / dense[k] - 1):+.1f}%" if k in dense else "-")
        continue
      lr = r.get("loss_recovered")
      cells.append(f"{r['mse']:.4f}" + (f" ({lr:.4f})" if lr is not None else ""))
    lines.append(f"| {k} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def write_figures(workdir: str, out_dir: str, *, tsne_points: int = 1024, tsne_steps: int = 500) -> dict:
  sweep = read_json(os.path.join(workdir, "sweep.json"))
  if sweep is None:
    raise UserError(f"{workdir} holds no sweep.json; run the sweep first (python -m launch.main)")
  cfg = sweep["config"]
  os.makedirs(out_dir, exist_ok=True)
  m, k_main, runs = cfg["dense_width"], cfg["alpha_k"], sweep["runs"]
  out, analyses = {}, {}

  def path(name):
    return os.path.join(out_dir, name + ".png")

  for group, title in (("flop_matched", "FLOP-matched: each expert as wide as the dense SAE"),
                       ("width_matched", "width-matched: all experts share the dense width")):
    rows = _rows(sweep, group, m)
    if any(group in r["groups"] for r in rows):
      out[f"pareto_{group}"] = plots.pareto_plot(rows, path(f"pareto_{group}"), title=title)
      out[f"compute_{group}"] = plots.compute_plot(
          [r for r in rows if r.get("k") is not None], path(f"compute_{group}"),
          title=f"{title} (TopK family, all k)")

  scaling = [dict(r, label=label(r)) for r in runs if "scaling" in r["groups"]]
  if scaling:
    out["scaling"] = plots.compute_plot(scaling, path("scaling"), title=f"MSE vs training cost, k={k_main}, M varied")

  dup = duplicate_rows(workdir, sweep, k_main)
  if dup:
    analyses["duplicates"] = dup
    out["duplicates"] = plots.pareto_plot(dup, path("duplicates"), x="num_experts",
                                          metrics=("frac_duplicated", "frac_across"),
                                          title=f"latents with a twin (decoder cosine > 0.9), k={k_main}")

  switch = _pick(runs, kind="switch", width=m, num_experts=cfg["alpha_experts"], k=k_main, alpha=cfg["alpha"])
  dense = _pick(runs, kind="topk", width=m, k=k_main)
  if switch and dense and _load(workdir, switch["name"]) is not None and _load(workdir, dense["name"]) is not None:
    w_NFD = _load(workdir, switch["name"])["w_dec"]
    heat = geometry.expert_similarity(w_NFD)
    control = geometry.expert_similarity(geometry.block_control(_load(workdir, dense["name"])["w_dec"], w_NFD.shape[0]))
    analyses["heatmap"] = {"switch": switch["name"], "control": dense["name"],
                           "offdiag_mean_switch": float(np.mean(heat[~np.eye(len(heat), dtype=bool)])),
                           "offdiag_mean_control": float(np.mean(control[~np.eye(len(control), dtype=bool)]))}
    out["heatmap"] = plots.heatmap_plot(heat, control, path("heatmap"))
    emb = embed.embed_rows(w_NFD, method="tsne", max_points=tsne_points, num_steps=tsne_steps)
    out["embedding"] = plots.embedding_plot(emb["xy"], emb["expert"], path("embedding"),
                                            title=f"t-SNE of decoder rows, {switch['name']}")

  alpha_rows = []
  for r in runs:
    if "alpha" in r["groups"]:
      load = np.asarray(r.get("expert_load") or [np.nan])
      since = _load(workdir, r["name"])
      dead = geometry.dead_latents(since["tokens_since_fired"], cfg["train"]["model"]["dead_tokens"]) if since else {}
      alpha_rows.append(dict(r, label=f"Switch N={r['num_experts']}, k={r['k']}",
                             max_expert_load=float(np.max(load) * len(load)),
                             frac_dead=dead.get("frac_dead", r["dead_fraction"])))
      curves = _metrics_rows(workdir, r["name"])
      if curves:
        out[f"training_alpha{r['alpha']:g}"] = plots.training_plot(
            curves, path(f"training_alpha{r['alpha']:g}"), dead_keys=("dead_fraction",),
            title=f"{r['name']}: expert load and dead latents over training")
  if alpha_rows:
    out["alpha_sweep"] = plots.alpha_plot(alpha_rows, path("alpha_sweep"),
                                          metrics=("mse", "frac_dead", "max_expert_load"))

  write_text(os.path.join(out_dir, "table.md"),
             "MSE summed over d (loss recovered), held-out activations\n\n" + table_markdown(sweep, m)
             + "\nMSE change against dense TopK at the same k\n\n" + table_markdown(sweep, m, relative=True))
  write_json(os.path.join(out_dir, "analyses.json"), analyses)
  write_json(os.path.join(out_dir, "figures.json"), out)
  return out


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True, help="the sweep's workdir (runs/, sweep.json)")
  parser.add_argument("--out", default=None, help="figures, table and a copy of sweep.json "
                      "(default: <workdir>/figures)")
  parser.add_argument("--config", default=None, help="the sweep's config; rebuilds sweep.json "
                      "from every finished run first")
  parser.add_argument("--set", action="append", default=[], help="the sweep's config overrides")
  args = parser.parse_args(argv)
  workdir = os.path.abspath(args.workdir)
  out_dir = os.path.abspath(args.out or os.path.join(workdir, "figures"))
  if args.config:
    cfg = config.to_dataclass(config.apply_overrides(config.load_config(args.config), args.set),
                              sweep_lib.SweepConfig)
    sweep_lib.write_sweep(cfg, workdir)
  figures = write_figures(workdir, out_dir)
  write_json(os.path.join(out_dir, "sweep.json"), read_json(os.path.join(workdir, "sweep.json")))
  print(f"{len(figures)} figures in {out_dir}", flush=True)
  return figures


if __name__ == "__main__":
  try:
    main()
  except UserError as e:
    raise SystemExit(f"error: {e}") from None
