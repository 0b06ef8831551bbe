"""The Switch SAE paper's sweeps: a SweepConfig expands into runs, each trained with sae.train.

    sweep = run_sweep(cfg: SweepConfig, workdir)   # also writes workdir/sweep.json

Layout of workdir:
  acts/train, acts/heldout   activation stores (harvested by sae.store_filter.prepare_data when
                             the source is 'store' and cfg.data_dir is empty); held-out text
                             never reaches training
  runs/<name>/               one sae.train workdir per run: checkpoints, metrics.jsonl, eval.json,
                             plus result.json (this module's metrics) and decoder.npz (the
                             decoder rows and dead-latent counters the figures need)
  sweep.json                 every finished run's result, rewritten atomically after each run

Resume: a run whose result.json exists is skipped; a run killed mid-training resumes from its
last checkpoint (sae.train / stack.loop), so rerunning the same command continues the sweep.
Several workers may share one workdir: each claims a run with a pid lock (worker.lock).

Metrics per run (sae.evaluate), on held-out activations: MSE summed over d, FVU, L0, dead
fraction, cosine; loss recovered and delta CE with the reconstruction spliced into the LM on
held-out text; training FLOPs (analytic, see flops_per_token) and wall-clock seconds of training.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

from sae import curve, evaluate, train
from sae.activations import harvest as harvest_lib
from sae.config import ModelConfig, TrainConfig
from sae.store_filter import prepare_data
from stack.errors import UserError
from stack.fileio import read_json, write_json

GROUPS = ("flop_matched", "width_matched", "baselines", "alpha", "scaling", "auxk")
LOCK = "worker.lock"


@dataclasses.dataclass(frozen=True)
class SweepConfig:
  train: TrainConfig = dataclasses.field(default_factory=TrainConfig)  # every run's base config
  harvest: harvest_lib.HarvestConfig = dataclasses.field(default_factory=harvest_lib.HarvestConfig)
  data_dir: str = ""                    # stores <data_dir>/train and /heldout; '' = <workdir>/acts
  heldout_tokens: int = 8192            # held-out text harvested for evaluation (0: no store)
  heldout_mix: str = ""                 # order of the held-out text (documents | tokens, see
  #                                       sae.activations.text): the held-out store's and the
  #                                       spliced contexts'; '' = harvest.mix
  eval_rows: int = 4096                 # held-out activation rows for MSE / FVU / L0
  outlier_factor: float = 10.0          # rows with norm > factor x median are dropped before
  #                                       training and passed through unchanged when spliced
  #                                       (SmolLM2's document-separator residual has ~100x the
  #                                       median norm and would dominate MSE); 0 keeps every row
  splice_contexts: int = 4              # held-out contexts for loss recovered (0: skip it)
  groups: tuple[str, ...] = GROUPS      # which sweeps, in the order they run
  dense_width: int = 1024               # M of the dense baselines; FLOP-matched expert width
  ks: tuple[int, ...] = (8, 16, 32, 64)               # k of TopK and Switch runs
  flop_matched_experts: tuple[int, ...] = (2, 4, 8)   # N with M = dense_width * N
  width_matched_experts: tuple[int, ...] = (4, 8, 16, 32)  # N with M = dense_width
  baselines: tuple[str, ...] = ("topk", "relu", "gated")  # dense SAEs on the Pareto plots
  l1_coeffs: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4)    # ReLU / Gated sparsity sweep
  alphas: tuple[float, ...] = (0.0, 0.3, 3.0, 30.0)       # load-balance weights (paper units)
  alpha_experts: int = 8                # N of the alpha sweep (width-matched)
  alpha_k: int = 32                     # k of the alpha sweep and the scaling runs
  alpha: float = 3.0                    # load-balance weight of every other Switch run
  alpha_per_unit_norm: bool = True      # balance weight alpha / d: activations have unit mean
  #                                       squared norm, so the paper's alpha * d would outweigh
  #                                       the MSE ~1000x (it is ~1 per dimension in GPT-2 units)
  scaling_widths: tuple[int, ...] = (512, 1024, 2048, 4096)  # total M of the scaling runs
  scaling_experts: tuple[int, ...] = (1, 8)  # 1 = dense TopK
  lr_scale: float = 1.0                 # times the recipe's 2e-4 / sqrt(M / 2^14)
  width_matched_ks: tuple[int, ...] = ()  # k of the width-matched Switch runs; () = ks
  auxk_experts: tuple[int, ...] = ()    # 'auxk' group: FLOP-matched Switch (k = alpha_k) with
  #                                       AuxK per expert over d/2 dead latents of each expert
  eval_tokens: tuple[int, ...] = ()     # token curve: held-out evaluation after these many
  #                                       training tokens (and at the end); () = at the end only
  curve_rows: int = 8192                # held-out rows evaluated at each curve point


@dataclasses.dataclass(frozen=True)
class RunSpec:
  name: str
  groups: tuple[str, ...]
  train: TrainConfig
  alpha: float | None = None            # paper-unit alpha (Switch runs)


def expand(cfg: SweepConfig) -> list[RunSpec]:
  """Runs in group order; a run shared by two groups (e.g. TopK at k=32) appears once."""
  unknown = set(cfg.groups) - set(GROUPS)
  if unknown:
    raise UserError(f"unknown sweep groups {sorted(unknown)}; choose from {', '.join(GROUPS)}")
  base, d = cfg.train.model, cfg.train.data
  specs: dict[str, list] = {}

  def add(group, name, alpha=None, **model_kw):
    if name in specs:
      specs[name][1].append(group)
      return
    model = dataclasses.replace(base, **model_kw)
    if model.kind == "switch":
      weight = alpha / max(d_model_hint(cfg), 1) if cfg.alpha_per_unit_norm else alpha
      model = dataclasses.replace(model, balance_alpha=weight)
    width_lr = train.width_scaled_lr(model.width) * cfg.lr_scale
    run = dataclasses.replace(cfg.train, model=model, data=d, lr=cfg.train.lr or width_lr)
    specs[name] = [name, [group], run, alpha]

  m = cfg.dense_width
  for group in cfg.groups:
    if group in ("flop_matched", "width_matched"):
      experts = cfg.flop_matched_experts if group == "flop_matched" else cfg.width_matched_experts
      ks = cfg.width_matched_ks if group == "width_matched" and cfg.width_matched_ks else cfg.ks
      for k in ks:
        add(group, f"topk_M{m}_k{k}", kind="topk", width=m, k=k)
        for n in experts:
          width = m * n if group == "flop_matched" else m
          if k > width // n:  # a token's k latents must fit in its one expert
            continue
          add(group, f"switch_M{width}_N{n}_k{k}_a{cfg.alpha:g}", alpha=cfg.alpha, kind="switch",
              width=width, num_experts=n, k=k)
    elif group == "baselines":
      for kind in cfg.baselines:
        if kind == "topk":
          for k in cfg.ks:
            add(group, f"topk_M{m}_k{k}", kind="topk", width=m, k=k)
        else:
          for l1 in cfg.l1_coeffs:
            add(group, f"{kind}_M{m}_l1{l1:g}", kind=kind, width=m, l1_coeff=l1)
    elif group == "alpha":
      for a in cfg.alphas:
        add(group, f"switch_M{m}_N{cfg.alpha_experts}_k{cfg.alpha_k}_a{a:g}", alpha=a,
            kind="switch", width=m, num_experts=cfg.alpha_experts, k=cfg.alpha_k)
    elif group == "auxk":
      aux = d_model_hint(cfg) // 2
      for n in cfg.auxk_experts:
        add(group, f"switch_M{m * n}_N{n}_k{cfg.alpha_k}_a{cfg.alpha:g}_auxk{aux}", alpha=cfg.alpha,
            kind="switch", width=m * n, num_experts=n, k=cfg.alpha_k, expert_aux_k=aux)
    else:
      for width in cfg.scaling_widths:
        for n in cfg.scaling_experts:
          if n == 1:
            add(group, f"topk_M{width}_k{cfg.alpha_k}", kind="topk", width=width, k=cfg.alpha_k)
          else:
            add(group, f"switch_M{width}_N{n}_k{cfg.alpha_k}_a{cfg.alpha:g}", alpha=cfg.alpha,
                kind="switch", width=width, num_experts=n, k=cfg.alpha_k)
  return [RunSpec(name, tuple(groups), run, alpha) for name, groups, run, alpha in specs.values()]


def d_model_hint(cfg: SweepConfig) -> int:
  """d of the activations: the model config's, else the synthetic source's, else the LM's."""
  if cfg.train.model.d_model:
    return cfg.train.model.d_model
  if cfg.train.data.source == "synthetic":
    return cfg.train.data.d_model
  return {"smollm2": 576}.get(cfg.harvest.model, 768)


def flops_per_token(model: ModelConfig, d: int) -> float:
  """Training FLOPs per token: 2 per multiply-add, forward + backward = 3 x forward.

  Switch: router (N x d) + the chosen expert's encoder (d x M/N) + k decoder rows (+ the AuxK
  rows per expert when on). TopK: the full encoder + k decoder rows + AuxK's aux_k rows. ReLU / Gated: the full encoder and a dense decoder (their
  codes are dense arrays); Gated adds its auxiliary decode through the frozen decoder.
  """
  if model.kind == "switch":
    forward = model.num_experts * d + d * model.width // model.num_experts + model.k * d
    forward += model.shared_width * d + model.shared_k * d + model.expert_aux_k * d
  elif model.kind in ("topk", "batchtopk"):
    aux_k = min(d // 2 if model.aux_k < 0 else model.aux_k, model.width)
    forward = d * model.width + model.k * d + (aux_k * d if model.kind == "topk" else 0)
  else:
    forward = 2 * d * model.width + (d * model.width if model.kind == "gated" else 0)
  return 3.0 * 2.0 * forward


def _claim(run_dir: str) -> bool:
  """Marks run_dir as this process's, so several sweep workers can share one workdir.

  A lock left by a killed worker (its pid no longer runs on this host) is taken over.
  """
  os.makedirs(run_dir, exist_ok=True)
  path = os.path.join(run_dir, LOCK)
  for _ in range(2):
    try:
      fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
      try:
        with open(path, encoding="utf-8") as f:
          os.kill(int(f.read().strip()), 0)
        return False
      except FileNotFoundError:
        continue
      except ProcessLookupError:
        os.remove(path)
        continue
      except (ValueError, PermissionError):  # being written, or another user's live process
        return False
    with os.fdopen(fd, "w") as f:
      f.write(str(os.getpid()))
    return True
  return False


def _train(spec: RunSpec, run_dir: str, cfg: SweepConfig, x_curve_ND) -> float:
  """Trains (or resumes) one run; returns its training seconds, kept in train_seconds.json so a
  run killed after training is not retrained. A run killed mid-training counts only the time
  of the invocation that finished it (plus, with a token curve, that of its recorded points).
  Curve evaluations are not counted as training time."""
  path = os.path.join(run_dir, "train_seconds.json")
  if os.path.isfile(path):
    return float(read_json(path)["seconds"])
  steps = curve.eval_steps(cfg.eval_tokens, spec.train)
  curve_eval = None
  if steps:
    before = curve.read_curve(run_dir, spec.train.data.batch_size, 0.0)
    curve_eval = curve.CurveEval(x_curve_ND, spec.train.model.dead_tokens,
                            before[-1]["seconds"] if before else 0.0)
  t0 = time.perf_counter()
  train.run(spec.train, run_dir, eval_fn=curve_eval, eval_at=steps)
  seconds = time.perf_counter() - t0
  if curve_eval is not None:
    seconds = curve_eval.before + seconds - curve_eval.eval_seconds
  write_json(path, {"seconds": seconds})
  return seconds


def _finish_run(spec: RunSpec, run_dir: str, seconds: float, x_ND, splicer) -> dict:
  """Evaluates a trained run; writes its result.json and decoder.npz."""
  model, params, aux = evaluate.restore(spec.train, run_dir)
  m = spec.train.model
  d = model.d_model
  train_eval = read_json(os.path.join(run_dir, "eval.json"))
  tokens = spec.train.num_steps * spec.train.data.batch_size
  result = {"name": spec.name, "groups": list(spec.groups), "kind": m.kind, "width": m.width,
            "num_experts": m.num_experts if m.kind == "switch" else 1,
            "expert_width": m.width // m.num_experts if m.kind == "switch" else m.width,
            "k": m.k if m.kind in ("switch", "topk", "batchtopk") else None,
            "l1_coeff": m.l1_coeff if m.kind in ("relu", "gated") else None,
            "alpha": spec.alpha, "d_model": d, "steps": spec.train.num_steps, "tokens": tokens,
            "flops_per_token": flops_per_token(m, d), "flops": flops_per_token(m, d) * tokens,
            "seconds": seconds, "dead_fraction": train_eval["dead_fraction"],
            "expert_load": train_eval.get("expert_load"), "train_eval": train_eval,
            "curve": curve.read_curve(run_dir, spec.train.data.batch_size, flops_per_token(m, d))}
  result.update(evaluate.heldout_metrics(model, params, x_ND))
  if splicer is not None:
    result.update(splicer(model, params))
  evaluate.write_decoder_npz(model, params, aux, os.path.join(run_dir, "decoder.npz"))
  write_json(os.path.join(run_dir, "result.json"), result)
  return result


def run_sweep(cfg: SweepConfig, workdir: str) -> dict:
  """Trains every run not yet finished, then writes workdir/sweep.json; returns its content."""
  os.makedirs(workdir, exist_ok=True)
  specs = expand(cfg)
  cfg = prepare_data(cfg, workdir)
  specs = [dataclasses.replace(s, train=dataclasses.replace(s.train, data=cfg.train.data))
           for s in specs]
  todo = [s for s in specs if not os.path.isfile(os.path.join(workdir, "runs", s.name, "result.json"))]
  print(f"sweep: {len(specs)} runs, {len(specs) - len(todo)} already finished", flush=True)
  x_ND = evaluate.heldout_rows(cfg, workdir) if todo else None
  splicer = None
  if todo and cfg.splice_contexts and cfg.train.data.source == "store":
    from sae.activations.store import ActivationStore  # pylint: disable=import-outside-toplevel
    store = ActivationStore(cfg.train.data.path)
    meta = store.manifest.get("meta", {})
    # Outliers were dropped by sae.store_filter ('threshold', in stored units) or at harvest
    # ('outlier_threshold', in the model's units); the splice passes such rows through.
    threshold = meta.get("threshold") or (meta["outlier_threshold"] * meta["scale"]
                                          if meta.get("outlier_threshold") else None)
    splicer = evaluate.Splicer(cfg, store.scale, threshold)
  start = time.perf_counter()
  for i, spec in enumerate(todo):
    run_dir = os.path.join(workdir, "runs", spec.name)
    if os.path.isfile(os.path.join(run_dir, "result.json")) or not _claim(run_dir):
      print(f"=== run {i + 1}/{len(todo)}: {spec.name} finished or taken by another worker", flush=True)
      continue
    print(f"=== run {i + 1}/{len(todo)}: {spec.name} ({', '.join(spec.groups)})", flush=True)
    try:
      seconds = _train(spec, run_dir, cfg, x_ND[:cfg.curve_rows])
      result = _finish_run(spec, run_dir, seconds, x_ND, splicer)
    finally:
      os.remove(os.path.join(run_dir, LOCK))
    elapsed = time.perf_counter() - start
    print(f"=== {spec.name}: mse {result['mse']:.4g} fvu {result['fvu']:.4g} l0 {result['l0']:.1f} "
          f"loss_recovered {result.get('loss_recovered', float('nan')):.4f} "
          f"({result['seconds']:.0f}s; sweep ETA {elapsed / (i + 1) * (len(todo) - i - 1):.0f}s)",
          flush=True)
    write_sweep(cfg, workdir)
  return write_sweep(cfg, workdir)


def write_sweep(cfg: SweepConfig, workdir: str) -> dict:
  """sweep.json from every finished run of the full grid, so workers running different parts
  of one sweep (e.g. `alpha_sweep` beside the rest) agree on it; each run's groups are its
  groups in the full grid."""
  rows = []
  for spec in expand(dataclasses.replace(cfg, groups=GROUPS)):
    result = read_json(os.path.join(workdir, "runs", spec.name, "result.json"))
    if result is not None:
      rows.append(dict(result, groups=list(spec.groups)))
  sweep = {"config": _plain(dataclasses.asdict(cfg)), "num_planned": len(expand(cfg)), "runs": rows}
  write_json(os.path.join(workdir, "sweep.json"), sweep)
  return sweep


def _plain(value: Any) -> Any:
  """Tuples as lists, so the returned sweep equals sweep.json read back."""
  if isinstance(value, dict):
    return {k: _plain(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_plain(v) for v in value]
  return value
