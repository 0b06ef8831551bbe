"""Figures, tables and the plain answer of the Switch-at-scale study (experiments/switch_scale.py).

    python -m experiments.switch_scale_figures --workdir=runs/switch_scale --out=results/switch_scale

Reads <workdir>/sweep.json (each run's final metrics and its token curve) and the stores'
manifests; writes into --out: sweep.json, corpus.json, summary.json, table.md and PNGs, each
with the JSON of its data beside it:
  curves_k{K}.png         MSE against training tokens, FLOPs and seconds: TopK vs FLOP-matched Switch
  curves_width_matched.png  the same for width-matched Switch (N = 8, 16, 32 at TopK's width)
  auxk.png                Switch with and without AuxK per expert: MSE and dead latents over tokens
  pareto_final.png        MSE / FVU / loss recovered against L0 at the final budget, every model
  gap.png                 MSE(Switch) / MSE(TopK) against tokens, with the fitted power law
"""

from __future__ import annotations

import argparse
import os
import shutil

import numpy as np

from sae import curve
from sae.activations import store as store_lib
from sae.analysis import plots
from stack.errors import UserError
from stack.fileio import read_json, write_json, write_text


def label(run: dict) -> str:
  k = f"k={run['k']}" if run.get("k") else f"l1={run['l1_coeff']:g}"
  if run["kind"] == "switch":
    how = "FLOP" if "flop_matched" in run["groups"] or "auxk" in run["groups"] else "width"
    aux = " AuxK" if "auxk" in run["groups"] else ""
    return f"Switch N={run['num_experts']} ({how}){aux} {k}"
  return f"{ {'topk': 'TopK', 'relu': 'ReLU', 'gated': 'Gated'}.get(run['kind'], run['kind'])} {k}"


def gap_fit(topk: list[dict], switch: list[dict], min_tokens: float = 250_000) -> dict:
  """MSE ratio Switch / TopK at equal tokens, and the power law ratio = c * tokens^b fitted to
  the points from min_tokens on. 'crosses_at' is where the fit reaches 1: measured when the
  last point is already below 1, an extrapolation when the fit only heads there."""
  by_tokens = {p["tokens"]: p["mse"] for p in topk}
  pts = [(p["tokens"], p["mse"] / by_tokens[p["tokens"]]) for p in switch if p["tokens"] in by_tokens]
  pts.sort()
  fit_pts = [(t, r) for t, r in pts if t >= min_tokens]
  out = {"points": [{"tokens": t, "ratio": r} for t, r in pts]}
  if len(fit_pts) < 2:
    return out
  b, log_c = np.polyfit(np.log([t for t, _ in fit_pts]), np.log([r for _, r in fit_pts]), 1)
  out.update(exponent=float(b), coefficient=float(np.exp(log_c)))
  below = [t for t, r in pts if r < 1.0]
  if below:
    out.update(crosses_at=float(below[0]), crossing="measured")
  elif b < 0:
    out.update(crosses_at=float(np.exp(-log_c / b)), crossing="extrapolated")
  else:
    out.update(crosses_at=None, crossing="none: the gap does not shrink")
  return out


def equal_budgets(runs: list[dict], x: str, budgets: list[float]) -> list[dict]:
  """Each run's MSE at each budget of x (tokens, flops or seconds); None past its curve."""
  return [{"label": label(r), x: b, "mse": curve.at_budget(r["curve"], x, b)} for r in runs for b in budgets]


def _corpus(workdir: str) -> dict:
  out = {}
  for split in ("train", "heldout"):
    manifest = store_lib.read_manifest(os.path.join(workdir, "acts", split))
    if manifest is not None:
      out[split] = {"rows": manifest["n_tokens"], "counts": manifest["counts"],
                    "corpus": manifest["identity"].get("corpus"),
                    "sources": manifest["identity"]["sources"], "model": manifest["identity"]["model"],
                    "layer": manifest["identity"]["layer"], "site": manifest["identity"]["site"]}
  return out


def corpus_stats(out: str, model: str, sources) -> dict:
  """Documents and SmolLM2 tokens of every source and split (one tokenization pass, ~1 min;
  kept in corpus_stats.json and reused)."""
  path = os.path.join(out, "corpus_stats.json")
  stats = read_json(path)
  if stats is None or sorted(stats["sources"]) != sorted(sources):
    from sae.activations import harvest, text  # pylint: disable=import-outside-toplevel
    tok = harvest.load_model(model)[2]
    per_source = text.corpus_stats(tok, sources)
    stats = {"model": model, "sources": per_source, "tokens_total": sum(
        s["tokens_train"] + s["tokens_heldout"] for s in per_source.values())}
    write_json(path, stats)
  return stats


def _fmt(v, spec=".4g"):
  return "-" if v is None else format(v, spec)


def build(workdir: str, out: str) -> dict:
  sweep = read_json(os.path.join(workdir, "sweep.json"))
  if sweep is None:
    raise UserError(f"{workdir}/sweep.json is missing; run the sweep first (see experiments/switch_scale.py)")
  os.makedirs(out, exist_ok=True)
  shutil.copyfile(os.path.join(workdir, "sweep.json"), os.path.join(out, "sweep.json"))
  corpus = _corpus(workdir)
  write_json(os.path.join(out, "corpus.json"), corpus)
  if "train" in corpus and corpus["train"]["corpus"]:
    corpus_stats(out, corpus["train"]["model"], list(corpus["train"]["corpus"]))
  runs = [dict(r, label=label(r)) for r in sweep["runs"] if r.get("curve")]
  topk = {r["k"]: r for r in runs if r["kind"] == "topk"}
  flop = [r for r in runs if "flop_matched" in r["groups"] and r["kind"] == "switch"]
  width = [r for r in runs if "width_matched" in r["groups"] and r["kind"] == "switch"]
  auxk = [r for r in runs if "auxk" in r["groups"]]

  def points(rs):
    return [dict(p, label=r["label"]) for r in rs for p in r["curve"]]

  for k in sorted(topk):
    group = [topk[k]] + sorted((r for r in flop if r["k"] == k), key=lambda r: r["num_experts"])
    plots.compute_plot(points(group), os.path.join(out, f"curves_k{k}.png"),
                       xs=("tokens", "flops", "seconds"),
                       title=f"held-out MSE, TopK vs FLOP-matched Switch, k = {k}")
  k32 = [topk[32]] if 32 in topk else []
  if width:
    plots.compute_plot(points(k32 + sorted(width, key=lambda r: r["num_experts"])),
                       os.path.join(out, "curves_width_matched.png"), xs=("tokens", "flops", "seconds"),
                       title="held-out MSE, TopK vs width-matched Switch (same total M), k = 32")
  # Runs the sweep did not finish keep the curve points they reached (reported as partial).
  finished = {r["name"] for r in runs}
  partial = []
  for name in sorted(os.listdir(os.path.join(workdir, "runs"))):
    reached = curve.read_curve(os.path.join(workdir, "runs", name), 1, 0.0)
    if name not in finished and reached:
      batch = sweep["config"]["train"]["data"]["batch_size"]
      partial.append({"name": name, "curve": [dict(p, tokens=p["step"] * batch) for p in reached]})
  aux_partial = [dict(p, label=f"{r['name']} (partial)") for r in partial if "auxk" in r["name"]
                 for p in r["curve"]]
  aux_pairs = []
  for r in auxk:
    plain = [f for f in flop if f["num_experts"] == r["num_experts"] and f["k"] == r["k"]]
    aux_pairs += plain + [r]
  if aux_pairs or aux_partial:
    aux_pairs += [r for r in flop if r["num_experts"] == 8 and r["k"] == 32 and not aux_pairs]
    plots.compute_plot(points(k32 + aux_pairs) + aux_partial, os.path.join(out, "auxk.png"),
                       xs=("tokens",), y="dead_fraction", title="dead latents: Switch with / without AuxK per expert")
  final = [dict(r, label=r["label"].rsplit(" ", 1)[0]) for r in runs]
  plots.pareto_plot(final, os.path.join(out, "pareto_final.png"),
                    title="final budget: every model (held-out)")

  gaps = {}
  for r in flop + auxk:
    if r["k"] in topk:
      gaps[r["label"]] = gap_fit(topk[r["k"]]["curve"], r["curve"])
  gap_rows = [dict(tokens=p["tokens"], mse_ratio=p["ratio"], label=name) for name, g in gaps.items()
              for p in g["points"]]
  if gap_rows:
    plots.compute_plot(gap_rows, os.path.join(out, "gap.png"), y="mse_ratio", xs=("tokens",),
                       title="MSE(Switch) / MSE(TopK) at equal training tokens")

  # Equal-compute comparisons: the budgets every compared run reaches.
  compared = [r for r in runs if r.get("k") == 32 and r["kind"] in ("topk", "switch")]
  budgets = {}
  for x in ("flops", "seconds"):
    reach = min(max(p[x] for p in r["curve"]) for r in compared) if compared else 0
    budgets[x] = [reach / 10, reach / 3, reach] if reach else []
  equal = {x: equal_budgets(compared, x, b) for x, b in budgets.items()}

  lines = ["# Switch SAEs at scale: final held-out metrics", "",
           "| run | M | N | k | train tokens | FLOPs/token | train s | MSE | FVU | L0 | dead | loss rec. | dCE |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
  for r in sorted(runs, key=lambda r: (r["kind"] != "topk", r.get("k") or 0, r["num_experts"], r["label"])):
    lines.append(f"| {r['label']} | {r['width']} | {r['num_experts']} | {r.get('k') or '-'} | "
                 f"{r['tokens']:,} | {r['flops_per_token']:.3g} | {r['seconds']:.0f} | {r['mse']:.4f} | "
                 f"{r['fvu']:.4f} | {r['l0']:.1f} | {r['dead_fraction']:.3f} | "
                 f"{_fmt(r.get('loss_recovered'))} | {_fmt(r.get('delta_ce'))} |")
  lines += ["", "## MSE(Switch) / MSE(TopK) at equal training tokens (FLOP-matched)", "",
            "| Switch run | " + " | ".join(f"{p['tokens']:,}" for p in next(iter(gaps.values()))["points"]) +
            " | power-law exponent | reaches 1 at |" if gaps else "(no runs)",
            "|---|" + "---|" * (len(next(iter(gaps.values()))["points"]) + 2) if gaps else ""]
  for name, g in gaps.items():
    cross = g.get("crosses_at")
    where = "-" if cross is None and "exponent" not in g else (
        g.get("crossing") if cross is None else f"{cross:,.0f} tokens ({g['crossing']})")
    lines.append(f"| {name} | " + " | ".join(f"{p['ratio']:.3f}" for p in g["points"]) +
                 f" | {_fmt(g.get('exponent'), '.3f')} | {where} |")
  for x, rows in equal.items():
    lines += ["", f"## k = 32 at equal training {x} (MSE, log-log interpolated on each curve)", "",
              f"| run | " + " | ".join(f"{b:.3g}" for b in budgets[x]) + " |",
              "|---|" + "---|" * len(budgets[x])]
    for name in dict.fromkeys(row["label"] for row in rows):
      cells = [_fmt(row["mse"]) for row in rows if row["label"] == name]
      lines.append(f"| {name} | " + " | ".join(cells) + " |")
  write_text(os.path.join(out, "table.md"), "\n".join(lines) + "\n")
  if partial:
    lines += ["", "## Runs stopped before their end (curve points reached)", "",
              "| run | tokens | MSE | dead | train s |", "|---|---|---|---|---|"]
    lines += [f"| {r['name']} | {p['tokens']:,} | {p['mse']:.4f} | {p['dead_fraction']:.3f} | "
              f"{p['seconds']:.0f} |" for r in partial for p in r["curve"]]
  summary = {"gaps": gaps, "equal_budgets": equal, "budgets": budgets, "partial_runs": partial,
             "num_runs": len(runs), "num_planned": sweep.get("num_planned")}
  write_json(os.path.join(out, "summary.json"), summary)
  print("\n".join(lines), flush=True)
  return summary


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True, help="the sweep's workdir (holds sweep.json)")
  parser.add_argument("--out", default="results/switch_scale", help="where figures and tables go")
  args = parser.parse_args()
  try:
    build(args.workdir, args.out)
  except UserError as e:
    raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
  main()
