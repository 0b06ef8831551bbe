"""The Switch SAE paper's sweeps: a SweepConfig expands into runs, each trained with sae.train.

    sweep = run_sweep(cfg: SweepConfig, workdir)   # also writes workdir/sweep.json

Layout of workdir:
  acts/train, acts/heldout   activation stores (harvested here when the source is 'store' and
                             cfg.data_dir is empty); held-out text never reaches training
  runs/<name>/               one sae.train workdir per run: checkpoints, metrics.jsonl, eval.json,
                             plus result.json (this module's metrics) and decoder.npz (the
                             decoder rows and dead-latent counters the figures need)
  sweep.json                 every finished run's result, rewritten atomically after each run

Resume: a run whose result.json exists is skipped; a run killed mid-training resumes from its
last checkpoint (sae.train / stack.loop), so rerunning the same command continues the sweep.

Metrics per run, on held-out activations: MSE summed over d, FVU, L0, dead fraction, cosine;
loss recovered and delta CE with the reconstruction spliced into the LM on held-out text;
training FLOPs (analytic, see flops_per_token) and wall-clock seconds of training.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from sae import models, train
from sae.activations import harvest as harvest_lib
from sae.config import ModelConfig, TrainConfig
from stack import checkpoint
from stack.errors import UserError

GROUPS = ("flop_matched", "width_matched", "baselines", "alpha", "scaling")


@dataclasses.dataclass(frozen=True)
class SweepConfig:
  train: TrainConfig = dataclasses.field(default_factory=TrainConfig)  # every run's base config
  harvest: harvest_lib.HarvestConfig = dataclasses.field(default_factory=harvest_lib.HarvestConfig)
  data_dir: str = ""                    # stores <data_dir>/train and /heldout; '' = <workdir>/acts
  heldout_tokens: int = 8192            # held-out text harvested for evaluation (0: no store)
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


@dataclasses.dataclass(frozen=True)
class RunSpec:
  name: str
  groups: tuple[str, ...]
  train: TrainConfig
  alpha: float | None = None            # paper-unit alpha (Switch runs)


def _model(base: ModelConfig, **kw) -> ModelConfig:
  return dataclasses.replace(base, **kw)


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
    model = _model(base, **model_kw)
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
      for k in cfg.ks:
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

  Switch: router (N x d) + the chosen expert's encoder (d x M/N) + k decoder rows. TopK: the
  full encoder + k decoder rows. ReLU / Gated: the full encoder and a dense decoder (their
  codes are dense arrays); Gated adds its auxiliary decode through the frozen decoder.
  """
  if model.kind == "switch":
    forward = model.num_experts * d + d * model.width // model.num_experts + model.k * d
    forward += model.shared_width * d + model.shared_k * d
  elif model.kind in ("topk", "batchtopk"):
    forward = d * model.width + model.k * d
  else:
    forward = 2 * d * model.width + (d * model.width if model.kind == "gated" else 0)
  return 3.0 * 2.0 * forward


def _raw_stores(cfg: SweepConfig, workdir: str) -> tuple[str, str]:
  root = cfg.data_dir or os.path.join(workdir, "acts")
  return os.path.join(root, "train"), os.path.join(root, "heldout")


def _stores(cfg: SweepConfig, workdir: str) -> tuple[str, str]:
  """The stores the runs read: the harvests, or their outlier-filtered copies."""
  if not cfg.outlier_factor:
    return _raw_stores(cfg, workdir)
  root = os.path.join(workdir, "acts")
  tag = f"_f{cfg.outlier_factor:g}"
  return os.path.join(root, "train" + tag), os.path.join(root, "heldout" + tag)


def filter_store(src: str, dst: str, factor: float, reference: str | None = None) -> dict:
  """Copies store src to dst without rows of norm > factor x median, rescaled to unit mean
  squared norm, in the units of `reference` (the filtered training store) when given.

  The threshold and scale come from src's first shard (or reference's manifest), so a store
  larger than memory is filtered shard by shard. Returns dst's manifest meta.
  """
  from sae.activations import store as store_lib  # pylint: disable=import-outside-toplevel
  done = store_lib.read_manifest(dst)
  if done is not None and done.get("complete"):
    return done["meta"]
  if done is not None:
    shutil.rmtree(dst)
  source = store_lib.ActivationStore(src)
  if reference is None:
    first_ND = source.load(source.shards[0][0])["acts"].astype(np.float32)
    norms_N = np.linalg.norm(first_ND, axis=-1)
    threshold = factor * float(np.median(norms_N))
    kept_N = norms_N[norms_N <= threshold]
    rescale = 1.0 / float(np.sqrt(np.mean(kept_N ** 2)))
    meta = {"scale": source.scale * rescale, "threshold": threshold * rescale}
  else:
    meta = dict(store_lib.read_manifest(reference)["meta"])
  # Rows of src times `to_units` are in dst's units (activation x meta['scale']).
  to_units = meta["scale"] / source.scale
  identity = dict(source.manifest["identity"], outlier_factor=factor, filtered_from=os.path.abspath(src))
  writer = store_lib.StoreWriter(dst, identity, max(n for _, n in source.shards))
  writer.set_meta(**meta)
  for name, _ in source.shards:
    shard = source.load(name)
    rows_ND = shard["acts"].astype(np.float32) * np.float32(to_units)
    keep_N = np.linalg.norm(rows_ND, axis=-1) <= meta["threshold"]
    writer.add(rows_ND[keep_N], shard["tokens"][keep_N], shard["positions"][keep_N], 0,
               {"seen": len(keep_N), "dropped_outliers": int(np.sum(~keep_N))})
    writer.flush()
  manifest = writer.finish()
  print(f"{dst}: kept {manifest['n_tokens']:,} rows, dropped "
        f"{manifest['counts']['dropped_outliers']:,} with norm > {meta['threshold']:.3g}", flush=True)
  return meta


def prepare_data(cfg: SweepConfig, workdir: str) -> SweepConfig:
  """Harvests the train and held-out stores if missing (resumable), filters their outliers;
  points the runs at the result."""
  if cfg.train.data.source != "store":
    return cfg
  raw_train, raw_heldout = _raw_stores(cfg, workdir)
  harvest_lib.harvest(cfg.harvest, raw_train)
  if cfg.heldout_tokens:
    harvest_lib.harvest(dataclasses.replace(cfg.harvest, split="heldout",
                                            max_tokens=cfg.heldout_tokens), raw_heldout)
  train_dir, heldout_dir = _stores(cfg, workdir)
  if cfg.outlier_factor:
    filter_store(raw_train, train_dir, cfg.outlier_factor)
    if cfg.heldout_tokens:
      filter_store(raw_heldout, heldout_dir, cfg.outlier_factor, reference=train_dir)
  data = dataclasses.replace(cfg.train.data, path=train_dir)
  return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, data=data))


def heldout_rows(cfg: SweepConfig, workdir: str) -> np.ndarray:
  """(eval_rows, d) float32 activations no run trained on, in the training store's units."""
  if cfg.train.data.source == "store" and cfg.heldout_tokens:
    from sae.activations.store import ActivationSource, ActivationStore  # pylint: disable=import-outside-toplevel
    train_dir, heldout_dir = _stores(cfg, workdir)
    # Each store is normalised by its own first batch; put held-out rows in training units.
    ratio = ActivationStore(train_dir).scale / ActivationStore(heldout_dir).scale
    src = ActivationSource(heldout_dir, min(cfg.eval_rows, ActivationStore(heldout_dir).n_tokens), 0)
    return next(src.batches(0)) * np.float32(ratio)
  src = train.make_source(cfg.train.data, train.EVAL_SEED_OFFSET)
  rows, stream = [], src.batches(0)
  while sum(len(r) for r in rows) < cfg.eval_rows:
    rows.append(next(stream))
  return np.concatenate(rows)[:cfg.eval_rows]


def restore(run: TrainConfig, run_dir: str):
  """(model, params, aux) of a finished run, from its last checkpoint."""
  source = train.make_source(run.data)
  s = train.setup(run, source, next(source.batches(0)))
  ckpt = checkpoint.Checkpointer(run_dir, async_save=False)
  try:
    state, _, _ = ckpt.restore(s.abstract_state)
  finally:
    ckpt.close()
  return s.model, state.params, state.aux


def eval_model(model: models.SAE) -> models.SAE:
  """The same parameters with Switch dispatch that never drops a token (the masked oracle)."""
  if isinstance(model, models.Switch):
    return models.build(dataclasses.replace(model.cfg, dispatch="dense"))
  return model


def heldout_metrics(model: models.SAE, params, x_ND: np.ndarray, chunk: int = 1024) -> dict:
  """MSE (summed over d), FVU against the held-out set's variance, L0, cosine, l2 ratio."""
  model = eval_model(model)
  reconstruct = jax.jit(model.reconstruct)
  loss = jax.jit(model.loss)
  err, l0, cos, l2, n = 0.0, 0.0, 0.0, 0.0, 0
  for i in range(0, len(x_ND), chunk):
    x_BD = jnp.asarray(x_ND[i:i + chunk])
    x_hat_BD = reconstruct(params, x_BD)
    _, (m, _) = loss(params, model.init_aux(), x_BD, None)
    b = x_BD.shape[0]
    err += float(jnp.sum(jnp.square(x_BD - x_hat_BD)))
    l0, cos, l2, n = l0 + float(m["l0"]) * b, cos + float(m["cosine"]) * b, l2 + float(m["l2_ratio"]) * b, n + b
  var = float(np.sum(np.square(x_ND - x_ND.mean(axis=0))))
  return {"mse": err / n, "fvu": err / var, "fve": 1.0 - err / var, "l0": l0 / n,
          "cosine": cos / n, "l2_ratio": l2 / n, "eval_rows": n}


class Splicer:
  """Loss recovered on a fixed set of held-out contexts; the LM is loaded once per sweep."""

  def __init__(self, cfg: SweepConfig, scale: float, threshold: float | None):
    from sae.activations import text  # pylint: disable=import-outside-toplevel
    self.model, params, tok = harvest_lib.load_model(cfg.harvest.model)
    self.params = jax.tree.map(jnp.asarray, params)
    h = cfg.harvest
    batches = text.context_batches(tok, h.sources, "heldout", h.ctx_len, cfg.splice_contexts)
    self.tokens = next(batches, None)
    if self.tokens is None:
      raise UserError(f"the held-out text holds fewer than {cfg.splice_contexts} contexts of "
                      f"{h.ctx_len} tokens; lower splice_contexts")
    self.layer, self.site, self.scale, self.skip_first = h.layer, h.site, scale, h.skip_first
    self.threshold = np.inf if threshold is None else threshold

  def __call__(self, model: models.SAE, params) -> dict:
    from sae.activations import splice  # pylint: disable=import-outside-toplevel
    reconstruct = jax.jit(eval_model(model).reconstruct)

    def fn(x_ND):
      # Rows the SAE never trained on (outliers) keep their clean activation.
      outlier_N = np.linalg.norm(x_ND, axis=-1) > self.threshold
      return np.where(outlier_N[:, None], x_ND, np.asarray(reconstruct(params, jnp.asarray(x_ND))))

    return splice.loss_recovered(self.model, self.params, self.layer, self.site, fn, self.tokens,
                                 scale=self.scale, keep_first=self.skip_first)


def _decoder_npz(model: models.SAE, params, aux, path: str) -> None:
  """Decoder rows as (N, m, D) for Switch, (M, D) otherwise, and the dead-latent counters."""
  w_MD = np.asarray(model.decoder_rows(params))[:model.width]
  if isinstance(model, models.Switch):
    w_MD = w_MD.reshape(model.num_experts, model.expert_width, -1)
  since = np.asarray(aux["tokens_since_fired_M"])[:model.width]
  tmp = path + ".tmp.npz"
  np.savez(tmp, w_dec=w_MD.astype(np.float32), tokens_since_fired=since)
  os.replace(tmp, path)


def _finish_run(spec: RunSpec, run_dir: str, seconds: float, x_ND, splicer) -> dict:
  model, params, aux = restore(spec.train, run_dir)
  m = spec.train.model
  d = model.d_model
  with open(os.path.join(run_dir, "eval.json"), encoding="utf-8") as f:
    train_eval = json.load(f)
  tokens = spec.train.num_steps * spec.train.data.batch_size
  result = {"name": spec.name, "groups": list(spec.groups), "kind": m.kind, "width": m.width,
            "num_experts": m.num_experts if m.kind == "switch" else 1,
            "expert_width": m.width // m.num_experts if m.kind == "switch" else m.width,
            "k": m.k if m.kind in ("switch", "topk", "batchtopk") else None,
            "l1_coeff": m.l1_coeff if m.kind in ("relu", "gated") else None,
            "alpha": spec.alpha, "d_model": d, "steps": spec.train.num_steps, "tokens": tokens,
            "flops_per_token": flops_per_token(m, d), "flops": flops_per_token(m, d) * tokens,
            "seconds": seconds, "dead_fraction": train_eval["dead_fraction"],
            "expert_load": train_eval.get("expert_load"), "train_eval": train_eval}
  result.update(heldout_metrics(model, params, x_ND))
  if splicer is not None:
    result.update(splicer(model, params))
  _decoder_npz(model, params, aux, os.path.join(run_dir, "decoder.npz"))
  train.write_json(os.path.join(run_dir, "result.json"), result)
  return result


LOCK = "worker.lock"


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


def _train(spec: RunSpec, run_dir: str) -> float:
  """Trains (or resumes) one run; returns its training seconds, kept in train_seconds.json so a
  run killed after training is not retrained. A run killed mid-training counts only the time
  of the invocation that finished it."""
  path = os.path.join(run_dir, "train_seconds.json")
  if os.path.isfile(path):
    with open(path, encoding="utf-8") as f:
      return float(json.load(f)["seconds"])
  t0 = time.perf_counter()
  train.run(spec.train, run_dir)
  seconds = time.perf_counter() - t0
  train.write_json(path, {"seconds": seconds})
  return seconds


def run_sweep(cfg: SweepConfig, workdir: str) -> dict:
  """Trains every run not yet finished, then writes workdir/sweep.json; returns its content."""
  os.makedirs(workdir, exist_ok=True)
  specs = expand(cfg)
  cfg = prepare_data(cfg, workdir)
  specs = [dataclasses.replace(s, train=dataclasses.replace(s.train, data=cfg.train.data))
           for s in specs]
  todo = [s for s in specs if not os.path.isfile(os.path.join(workdir, "runs", s.name, "result.json"))]
  print(f"sweep: {len(specs)} runs, {len(specs) - len(todo)} already finished", flush=True)
  x_ND = heldout_rows(cfg, workdir) if todo else None
  splicer = None
  if todo and cfg.splice_contexts and cfg.train.data.source == "store":
    from sae.activations.store import ActivationStore  # pylint: disable=import-outside-toplevel
    store = ActivationStore(cfg.train.data.path)
    splicer = Splicer(cfg, store.scale, store.manifest.get("meta", {}).get("threshold"))
  start = time.perf_counter()
  for i, spec in enumerate(todo):
    run_dir = os.path.join(workdir, "runs", spec.name)
    if os.path.isfile(os.path.join(run_dir, "result.json")) or not _claim(run_dir):
      print(f"=== run {i + 1}/{len(todo)}: {spec.name} finished or taken by another worker", flush=True)
      continue
    print(f"=== run {i + 1}/{len(todo)}: {spec.name} ({', '.join(spec.groups)})", flush=True)
    try:
      result = _finish_run(spec, run_dir, _train(spec, run_dir), x_ND, splicer)
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
    path = os.path.join(workdir, "runs", spec.name, "result.json")
    if os.path.isfile(path):
      with open(path, encoding="utf-8") as f:
        rows.append(dict(json.load(f), groups=list(spec.groups)))
  sweep = {"config": _plain(dataclasses.asdict(cfg)), "num_planned": len(expand(cfg)), "runs": rows}
  train.write_json(os.path.join(workdir, "sweep.json"), sweep)
  return sweep


def _plain(value: Any) -> Any:
  if isinstance(value, dict):
    return {k: _plain(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_plain(v) for v in value]
  return value


def interpret(cfg: SweepConfig, workdir: str, run_name: str, client, out_path: str, *,
              num_latents: int = 1000, num_tokens: int = 65_536, num_workers: int = 4,
              seed: int = 0) -> dict:
  """Auto-interpretability of one finished run: contexts from the training store's token
  stream, explanations and detection scores by `client` (sae.analysis.chat.ChatClient)."""
  from sae.activations.store import ActivationStore  # pylint: disable=import-outside-toplevel
  from sae.analysis import autointerp, contexts  # pylint: disable=import-outside-toplevel
  specs = {s.name: s for s in expand(cfg)}
  if run_name not in specs:
    raise UserError(f"run {run_name!r} is not in this sweep; one of: {', '.join(sorted(specs))}")
  run_dir = os.path.join(workdir, "runs", run_name)
  if not os.path.isfile(os.path.join(run_dir, "result.json")):
    raise UserError(f"{run_dir} has not finished; run the sweep first")
  if cfg.train.data.source != "store":
    raise UserError("auto-interpretability needs text: use a config whose data.source is 'store'")
  train_dir, _ = _stores(cfg, workdir)
  spec = specs[run_name]
  run = dataclasses.replace(spec.train, data=dataclasses.replace(spec.train.data, path=train_dir))
  model, params, _ = restore(run, run_dir)
  model = eval_model(model)
  store = ActivationStore(train_dir)
  acts, tokens = [], []
  for name, _ in store.shards:  # harvest order: the rows are consecutive text
    shard = store.load(name)
    acts.append(shard["acts"])
    tokens.append(shard["tokens"])
    if sum(len(t) for t in tokens) >= num_tokens:
      break
  acts_ND = np.concatenate(acts)[:num_tokens]
  token_ids_T = np.concatenate(tokens)[:num_tokens]
  latent_ids = np.sort(np.random.default_rng(seed).choice(
      model.width, min(num_latents, model.width), replace=False))
  encode = jax.jit(lambda x_BD: model.dense_codes(model.encode(params, x_BD))[:, latent_ids])
  found = contexts.collect_contexts(lambda a, b: np.asarray(encode(jnp.asarray(acts_ND[a:b], jnp.float32))),
                                    len(token_ids_T), latent_ids, chunk=1024, seed=seed)
  tok = harvest_lib.load_model(cfg.harvest.model)[2]
  experts = (latent_ids // model.expert_width) if isinstance(model, models.Switch) else None
  seq_len = cfg.harvest.ctx_len - int(cfg.harvest.skip_first)  # rows per context in the store
  return autointerp.run_autointerp(token_ids_T, found, tok.decode, client, out_path, experts=experts,
                                   cfg=autointerp.AutointerpConfig(seq_len=seq_len),
                                   num_workers=num_workers)
