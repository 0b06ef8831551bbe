"""The Switch-at-scale runs re-evaluated on a held-out store that holds every source in proportion.

    python -m experiments.switch_scale_reeval --workdir=runs/switch_scale \
        --heldout=runs/switch_scale_heldout_tokens --out=results/switch_scale

The sweep's held-out store was harvested with the document round-robin, so its 131k tokens are
92% Shakespeare (three whole plays). This harvests (or reuses) --heldout: the sweep's own
held-out harvest (model, layer, site, context length, size, outlier rule) with the token mix
(sae.activations.text), its rows put in the training store's units exactly as the sweep puts
its held-out rows (sae.evaluate.store_rows). Then, for every finished run (result.json), it
restores the checkpoints at the 3M-token curve point and at the end and computes what the sweep
computes at a run's end: MSE, FVU, L0 and cosine on eval_rows held-out rows, the dead fraction
from the checkpoint's counters (sae.curve.CurveEval), loss recovered and delta CE with the SAE
spliced into the LM on the first splice_contexts token-mixed held-out contexts
(sae.evaluate.Splicer), and MSE per source. The old held-out's figures come from each run's
result.json and curve; the end MSE on the old store is recomputed as a check.

Writes heldout_balanced.json and heldout_balanced.md into --out, and each run's figures into
--cache_dir (default <heldout>_runs; a rerun evaluates only runs finished since). Nothing under
--workdir is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import types

import numpy as np

from sae import curve, evaluate, sweep as sweep_lib
from sae.activations import harvest as harvest_lib, store as store_lib, text
from sae.store_filter import heldout_harvest, run_stores
from stack.config import to_dataclass
from stack.errors import UserError
from stack.fileio import read_json, write_json, write_text

CURVE_TOKENS = 3_000_000      # the curve point re-evaluated besides the end
PER_SOURCE_ROWS = 4_096       # held-out rows per source for the MSE per source


def sweep_config(workdir: str) -> sweep_lib.SweepConfig:
  """The config the sweep ran with (sweep.json), its training text in the order its store
  records, the held-out text in the token mix."""
  sweep = read_json(os.path.join(workdir, "sweep.json"))
  if sweep is None:
    raise UserError(f"{workdir}/sweep.json is missing; run the sweep first")
  cfg = to_dataclass(sweep["config"], sweep_lib.SweepConfig)
  if cfg.train.data.source == "store":
    manifest = store_lib.read_manifest(run_stores(cfg, workdir)[0])
    mix = store_lib.identity_of(manifest)["mix"] if manifest else cfg.harvest.mix
    cfg = dataclasses.replace(cfg, harvest=dataclasses.replace(cfg.harvest, mix=mix))
  return dataclasses.replace(cfg, heldout_mix="tokens")


def finished_runs(cfg: sweep_lib.SweepConfig, workdir: str) -> list[sweep_lib.RunSpec]:
  """Every run of the full grid with a result.json, reading the sweep's training store."""
  specs = sweep_lib.expand(dataclasses.replace(cfg, groups=sweep_lib.GROUPS))
  if cfg.train.data.source == "store":
    data = dataclasses.replace(cfg.train.data, path=run_stores(cfg, workdir)[0])
    specs = [dataclasses.replace(s, train=dataclasses.replace(s.train, data=data)) for s in specs]
  return [s for s in specs if os.path.isfile(os.path.join(workdir, "runs", s.name, "result.json"))]


def checkpoint_steps(run_dir: str) -> list[int]:
  folder = os.path.join(run_dir, "checkpoints")
  return sorted(int(n) for n in os.listdir(folder) if n.isdigit()) if os.path.isdir(folder) else []


def rows_by_source(cfg: sweep_lib.SweepConfig, heldout_dir: str, train_dir: str,
                   per_source: int) -> dict[str, np.ndarray]:
  """Up to `per_source` rows of each source, evenly spaced through the store, in training units.

  Rows are stored in harvest order; a context starts where the position stops increasing, and
  the harvest's order of contexts (regenerated from the text) names each context's source. The
  rows' tokens are checked against the regenerated contexts."""
  store = store_lib.ActivationStore(heldout_dir)
  h = heldout_harvest(cfg)
  if store_lib.identity_of(store.manifest)["mix"] != "tokens":
    raise UserError(f"{heldout_dir} is not a token-mixed store; rows' sources are not known")
  shards = [store.load(name) for name, _ in store.shards]
  pos_N = np.concatenate([s["positions"] for s in shards])
  tok_N = np.concatenate([s["tokens"] for s in shards])
  ctx_N = np.cumsum(np.r_[True, pos_N[1:] <= pos_N[:-1]]) - 1
  n_ctx = store.manifest["contexts_done"]
  if ctx_N[-1] + 1 != n_ctx:
    raise UserError(f"{heldout_dir}: found {ctx_N[-1] + 1} contexts, the manifest says {n_ctx}")
  tokenizer = harvest_lib.load_model(h.model)[2]
  mixed = list(zip(range(n_ctx), text.token_mixed_contexts(tokenizer, h.sources, "heldout",
                                                           h.ctx_len)))
  windows_CT = np.stack([w for _, (_, w) in mixed])
  if not np.array_equal(windows_CT[ctx_N, pos_N], tok_N):
    raise UserError(f"{heldout_dir}: stored tokens differ from the regenerated token mix")
  source_N = np.array([i for _, (i, _) in mixed])[ctx_N]
  ratio = np.float32(store_lib.ActivationStore(train_dir).scale / store.scale)
  acts_ND = np.concatenate([s["acts"] for s in shards])
  out = {}
  for i, source in enumerate(h.sources):
    idx = np.flatnonzero(source_N == i)
    if len(idx):
      pick = idx[np.linspace(0, len(idx) - 1, min(per_source, len(idx))).astype(int)]
      out[source] = acts_ND[pick].astype(np.float32) * ratio
  return out


def reevaluate(cfg: sweep_lib.SweepConfig, workdir: str, x_ND: np.ndarray, *, splicer=None,
               by_source: dict[str, np.ndarray] | None = None, old_x_ND: np.ndarray | None = None,
               curve_tokens: int = CURVE_TOKENS, cache_dir: str | None = None,
               only_cached: bool = False, names: list[str] | None = None) -> list[dict]:
  """Every finished run at its curve_tokens point and its end, on rows x_ND (the sweep's metric
  functions); with old_x_ND the end's MSE on those rows too, as 'old_recomputed'. With
  cache_dir, a run evaluated before (same result.json) is read back instead of evaluated; with
  only_cached too, the other runs are left out; with names, only those runs are evaluated."""
  out = []
  for spec in finished_runs(cfg, workdir):
    if names and spec.name not in names:
      continue
    run_dir = os.path.join(workdir, "runs", spec.name)
    result = read_json(os.path.join(run_dir, "result.json"))
    cache = os.path.join(cache_dir, f"{spec.name}.json") if cache_dir else None
    cached = read_json(cache) if cache else None
    if cached is not None and cached["old"]["end"]["mse"] == result["mse"]:
      out.append(cached)
      continue
    if only_cached:
      continue
    end = spec.train.num_steps
    wanted = sorted({curve.eval_steps((curve_tokens,), spec.train)[0], end})
    have = checkpoint_steps(run_dir)
    old_curve = {p["step"]: p for p in result.get("curve", [])}
    row = {"name": spec.name, "groups": list(spec.groups), "kind": result["kind"],
           "k": result.get("k"), "num_experts": result.get("num_experts", 1),
           "flops_per_token": result["flops_per_token"], "points": [],
           "missing_steps": [s for s in wanted if s not in have],
           "old": {"end": {k: result.get(k) for k in ("mse", "fvu", "l0", "loss_recovered",
                                                      "delta_ce", "dead_fraction")}}}
    for step in wanted:
      if step in old_curve and step != end:
        row["old"][f"step_{step}"] = {k: old_curve[step].get(k) for k in ("mse", "fvu", "l0")}
    for step in (s for s in wanted if s in have):
      model, params, aux = evaluate.restore(spec.train, run_dir, step)
      state = types.SimpleNamespace(params=params, aux=aux)
      point = {"step": step, "tokens": step * spec.train.data.batch_size}
      metrics = curve.CurveEval(x_ND, spec.train.model.dead_tokens, 0.0)(model, state)
      metrics.pop("seconds")
      point.update(metrics)
      if splicer is not None:
        point.update(splicer(model, params))
      if by_source:
        point["mse_by_source"] = {s: evaluate.heldout_metrics(model, params, rows)["mse"]
                                  for s, rows in by_source.items()}
      if old_x_ND is not None and step == end:
        row["old_recomputed"] = evaluate.heldout_metrics(model, params, old_x_ND)["mse"]
      row["points"].append(point)
      print(f"{spec.name} step {step}: mse {point['mse']:.4g} fvu {point['fvu']:.4g} "
            f"loss_recovered {point.get('loss_recovered', float('nan')):.4f}", flush=True)
    if cache:
      write_json(cache, row)
    out.append(row)
  return out


def flop_matched_ratios(runs: list[dict]) -> list[dict]:
  """MSE(Switch) / MSE(TopK, same k) of every FLOP-matched Switch (AuxK too), on both stores."""
  topk = {r["k"]: r for r in runs if r["kind"] == "topk"}
  ratios = []
  for r in runs:
    t = topk.get(r["k"])
    if r["kind"] != "switch" or t is None or not {"flop_matched", "auxk"} & set(r["groups"]):
      continue
    entry = {"name": r["name"], "topk": t["name"]}
    for p in r["points"]:
      q = next((q for q in t["points"] if q["step"] == p["step"]), None)
      if q is not None:
        entry[f"balanced_step_{p['step']}"] = p["mse"] / q["mse"]
    for key, old in r["old"].items():
      if key in t["old"] and old.get("mse") and t["old"][key].get("mse"):
        entry[f"old_{key}"] = old["mse"] / t["old"][key]["mse"]
    ratios.append(entry)
  return ratios


def weighted(by_source: dict[str, float], tokens: dict[str, int]) -> float | None:
  """Per-source MSEs averaged with the given tokens per source as weights."""
  if not by_source or not tokens or set(by_source) != set(tokens):
    return None
  return sum(by_source[s] * tokens[s] for s in tokens) / sum(tokens.values())


def _fmt(v, spec=".4g"):
  return "-" if v is None else format(v, spec)


def table(report: dict) -> str:
  runs, ratios = report["runs"], report["flop_matched_ratios"]
  lines = [f"# Held-out re-evaluation: {report['heldout']['rows']:,} token-mixed rows", "",
           "Held-out tokens per source: old store " + ", ".join(
               f"{s} {n:,}" for s, n in report["old_heldout"]["tokens"].items()) +
           "; balanced store " + ", ".join(
               f"{s} {n:,}" for s, n in report["heldout"]["tokens"].items()) + ".", "",
           "| run | old MSE (end) | old FVU (end) | old loss rec. (end) | bal. MSE (3M) | "
           "bal. FVU (3M) | bal. loss rec. (3M) | bal. dCE (3M) | bal. MSE (end) | bal. FVU (end) "
           "| bal. loss rec. (end) | bal. dCE (end) | bal. dead (end) |",
           "|---|" + "---|" * 12]
  for r in runs:
    old = r["old"]["end"]
    pts = {p["step"]: p for p in r["points"]}
    steps = sorted(pts)
    mid = pts[steps[0]] if len(steps) > 1 else {}
    end = pts[steps[-1]] if steps else {}
    lines.append(f"| {r['name']} | {_fmt(old['mse'])} | {_fmt(old['fvu'])} | "
                 f"{_fmt(old['loss_recovered'], '.4f')} | {_fmt(mid.get('mse'))} | "
                 f"{_fmt(mid.get('fvu'))} | {_fmt(mid.get('loss_recovered'), '.4f')} | "
                 f"{_fmt(mid.get('delta_ce'), '.4f')} | {_fmt(end.get('mse'))} | "
                 f"{_fmt(end.get('fvu'))} | {_fmt(end.get('loss_recovered'), '.4f')} | "
                 f"{_fmt(end.get('delta_ce'), '.4f')} | {_fmt(end.get('dead_fraction'), '.3f')} |")
  if any("mse_by_source" in p for r in runs for p in r["points"]):
    sources = list(report["heldout"]["tokens"])
    weights = report.get("train_tokens", {})
    lines += ["", "MSE per source on the balanced store (end), and weighted by the training "
              "store's tokens per source:", "",
              "| run | " + " | ".join(sources) + " | train-weighted |",
              "|---|" + "---|" * (len(sources) + 1)]
    for r in runs:
      by = r["points"][-1].get("mse_by_source", {}) if r["points"] else {}
      lines.append(f"| {r['name']} | " + " | ".join(_fmt(by.get(s)) for s in sources) +
                   f" | {_fmt(weighted(by, weights))} |")
  keys = sorted({k for e in ratios for k in e if k not in ("name", "topk")})
  lines += ["", "FLOP-matched MSE(Switch) / MSE(TopK, same k):", "",
            "| run | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
  for e in ratios:
    lines.append(f"| {e['name']} | " + " | ".join(_fmt(e.get(k), ".3f") for k in keys) + " |")
  if report.get("not_evaluated"):
    lines += ["", "Finished but not re-evaluated: " + ", ".join(report["not_evaluated"]) + "."]
  return "\n".join(lines) + "\n"


def _source_tokens(manifest: dict) -> dict:
  return {k.removeprefix("tokens_"): v for k, v in manifest["counts"].items()
          if k.startswith("tokens_")}


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", required=True, help="the sweep's workdir (read only)")
  parser.add_argument("--heldout", required=True, help="the token-mixed held-out store "
                      "(harvested here when missing)")
  parser.add_argument("--out", required=True, help="folder for heldout_balanced.json / .md")
  parser.add_argument("--per_source_rows", type=int, default=PER_SOURCE_ROWS)
  parser.add_argument("--cache_dir", default="", help="each run's figures, reused by a rerun; "
                      "default <heldout>_runs")
  parser.add_argument("--runs", default="", help="comma-separated run names (default: every "
                      "finished run)")
  parser.add_argument("--only_cached", action="store_true", help="report the runs already in "
                      "--cache_dir and evaluate nothing")
  args = parser.parse_args(argv)
  cfg = sweep_config(args.workdir)
  if cfg.train.data.source != "store":
    raise UserError("the sweep did not read an activation store; nothing to re-evaluate")
  train_dir, old_dir = run_stores(cfg, args.workdir)
  harvest_lib.harvest(heldout_harvest(cfg), args.heldout)
  cache_dir = args.cache_dir or args.heldout.rstrip("/") + "_runs"
  os.makedirs(cache_dir, exist_ok=True)
  train_store = store_lib.ActivationStore(train_dir)
  meta = train_store.manifest.get("meta", {})
  threshold = meta.get("threshold") or (meta["outlier_threshold"] * meta["scale"]
                                        if meta.get("outlier_threshold") else None)
  evaluating = not args.only_cached
  splicer = (evaluate.Splicer(cfg, train_store.scale, threshold)
             if cfg.splice_contexts and evaluating else None)
  by_source = (rows_by_source(cfg, args.heldout, train_dir, args.per_source_rows)
               if args.per_source_rows and evaluating else None)
  runs = reevaluate(cfg, args.workdir, evaluate.store_rows(train_dir, args.heldout, cfg.eval_rows),
                    splicer=splicer, by_source=by_source,
                    old_x_ND=evaluate.store_rows(train_dir, old_dir, cfg.eval_rows),
                    cache_dir=cache_dir, only_cached=args.only_cached,
                    names=[n for n in args.runs.split(",") if n])
  new_manifest = store_lib.read_manifest(args.heldout)
  report = {"heldout": {"path": os.path.abspath(args.heldout), "rows": new_manifest["n_tokens"],
                        "mix": "tokens", "tokens": _source_tokens(new_manifest),
                        "scale": new_manifest["meta"]["scale"]},
            "old_heldout": {"path": os.path.abspath(old_dir),
                            "rows": store_lib.read_manifest(old_dir)["n_tokens"],
                            "tokens": _source_tokens(store_lib.read_manifest(old_dir))},
            "train_tokens": _source_tokens(train_store.manifest),
            "train_scale": train_store.scale, "eval_rows": cfg.eval_rows,
            "splice_contexts": cfg.splice_contexts, "curve_tokens": CURVE_TOKENS,
            "per_source_rows": args.per_source_rows, "runs": runs,
            "not_evaluated": [s.name for s in finished_runs(cfg, args.workdir)
                              if s.name not in {r["name"] for r in runs}],
            "flop_matched_ratios": flop_matched_ratios(runs)}
  os.makedirs(args.out, exist_ok=True)
  write_json(os.path.join(args.out, "heldout_balanced.json"), report)
  write_text(os.path.join(args.out, "heldout_balanced.md"), table(report))
  print(table(report), flush=True)
  return report


if __name__ == "__main__":
  main()
