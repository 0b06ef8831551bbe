"""SAEs in and out of SAELens's on-disk format (SAELens >= 6), so that SAEs trained here can be
analysed with SAELens and SAEs trained with SAELens can be evaluated here.

    python -m sae.interop.saelens export --config=experiments/sae_synthetic.py:smoke,topk --workdir=RUN --out=DIR
    python -m sae.interop.saelens import --sae=DIR --out=DIR2 [--config=FILE --eval_rows=8192]

    folder = save(out_dir, model, params)        # Python API; (model, params) = load(folder)

One SAE is a folder with two files, as SAELens's `SAE.save_model` writes them and
`SAE.load_from_disk` reads them:

  cfg.json                 architecture, d_in, d_sae, dtype, device, apply_b_dec_to_input (true),
                           normalize_activations ('none'), reshape_activations, k (topk),
                           rescale_acts_by_decoder_norm (topk: false), metadata (hook_name,
                           model_name, ... and `switchbench`: our kind, k and where it came from)
  sae_weights.safetensors  W_enc [d_in, d_sae], W_dec [d_sae, d_in], b_enc [d_sae], b_dec [d_in];
                           jumprelu: threshold [d_sae]; gated: b_gate, r_mag, b_mag instead of b_enc

Our kinds map onto SAELens's architectures as relu -> standard, topk -> topk, jumprelu ->
jumprelu (threshold = exp(log_threshold)), gated -> gated, batchtopk -> jumprelu. Our b_pre is
SAELens's b_dec with apply_b_dec_to_input. BatchTopK picks the k * B largest activations of a
whole batch, which no per-token SAE can do; like SAELens's own BatchTopK trainer we export it as a
JumpReLU whose threshold (one value for every latent) is the mean over calibration batches of the
largest activation the batch top-k drops, so that on a calibration batch the JumpReLU keeps exactly
the batch's top k * B. Import turns it back into our BatchTopK (metadata.switchbench.kind).

When the run trained on an activation store normalised by a scale s (stored = raw * s), the scale
is folded in on export (W_enc * s, W_dec / s, b_dec / s, as SAELens's
fold_activation_norm_scaling_factor does), so the exported SAE reads raw model activations.

Switch SAEs have no SAELens architecture. A Switch SAE is exported as this folder layout:

  switch.json              {"format": "switchbench-switch-v1", "num_experts": N, "expert_width": F,
                            "d_in", "k", "p_scaling", "experts": ["expert_0", ...], "shared": ...}
  router.safetensors       W_router [d_in, N], b_router [d_in]
  expert_{i}/              one SAELens TopK SAE per expert: W_enc = the expert's encoder (F
                           latents), b_enc = 0, b_dec = the shared b_pre, k = the model's k
  shared/                  the always-on shared expert, a TopK SAE with k = shared_k (if any)

To reconstruct x: logits = (x - b_router) @ W_router; e = argmax(logits); p = softmax(logits)[e]
(p = 1 when p_scaling is 'heaviside'); with b = b_dec (the same in every expert),

  x_hat = b + p * (expert_e.decode(expert_e.encode(x)) - b) [+ shared.decode(shared.encode(x)) - b]

Every token goes to its expert (no capacity, nothing dropped): our dropless dispatch. Latent f of
expert e is latent e * F + f of our Switch SAE.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

from sae import models
from sae.config import ModelConfig
from sae.models.layers import pre_activations
from stack.errors import UserError
from stack.fileio import atomic_path, read_json, write_json

CFG = "cfg.json"
WEIGHTS = "sae_weights.safetensors"
SWITCH = "switch.json"
ROUTER = "router.safetensors"
SWITCH_FORMAT = "switchbench-switch-v1"
# The cfg.json layout we write is SAELens 6's; older loaders read a different one.
FORMAT_VERSION = "6.0.0"
ARCHITECTURES = {"relu": "standard", "topk": "topk", "jumprelu": "jumprelu", "gated": "gated",
                 "batchtopk": "jumprelu"}
_KIND_OF = {"standard": "relu", "topk": "topk", "jumprelu": "jumprelu", "gated": "gated"}
_ST_DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16}
_TL_SITES = {"resid_pre": "hook_resid_pre", "resid_post": "hook_resid_post",
             "attn_out": "hook_attn_out", "mlp_out": "hook_mlp_out"}


# --- safetensors, written and read with NumPy -------------------------------------------------

def write_safetensors(path: str, tensors: dict[str, np.ndarray]) -> None:
  """An 8-byte little-endian header length, a JSON header (dtype, shape, byte range of each
  tensor), then the tensors' raw little-endian bytes back to back. float32 only."""
  header, offset, blobs = {"__metadata__": {"format": "pt"}}, 0, []
  for name in sorted(tensors):
    a = np.ascontiguousarray(tensors[name], dtype="<f4")
    header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
    blobs.append(a.tobytes())
    offset += a.nbytes
  text = json.dumps(header, separators=(",", ":")).encode("utf-8")
  text += b" " * (-len(text) % 8)   # pad so the data starts 8-byte aligned
  with atomic_path(path) as tmp, open(tmp, "wb") as f:
    f.write(np.uint64(len(text)).astype("<u8").tobytes())
    f.write(text)
    for blob in blobs:
      f.write(blob)


def read_safetensors(path: str) -> dict[str, np.ndarray]:
  """name -> float32 array; bfloat16 files too (SAELens can save them)."""
  if not os.path.isfile(path):
    raise UserError(f"{path} is missing; an SAE folder holds {CFG} and {WEIGHTS}")
  with open(path, "rb") as f:
    raw = f.read()
  try:
    n = int(np.frombuffer(raw[:8], "<u8")[0])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    out = {}
    for name, info in header.items():
      if name == "__metadata__":
        continue
      begin, end = info["data_offsets"]
      data = raw[8 + n + begin:8 + n + end]
      if info["dtype"] == "BF16":  # the top half of a float32
        bits = np.frombuffer(data, "<u2").astype(np.uint32) << 16
        a = bits.view(np.float32)
      else:
        a = np.frombuffer(data, np.dtype(_ST_DTYPES[info["dtype"]]).newbyteorder("<"))
      out[name] = a.astype(np.float32).reshape(info["shape"])
  except (ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError) as e:
    raise UserError(f"{path} is not a float safetensors file we can read "
                    f"({type(e).__name__}: {str(e)[:120]})") from None
  return out


# --- one dense SAE ----------------------------------------------------------------------------

def _fold_scale(tensors: dict[str, np.ndarray], scale: float) -> dict[str, np.ndarray]:
  """Weights for raw activations, from weights trained on raw * scale."""
  if scale == 1.0:
    return tensors
  out = dict(tensors)
  out["W_enc"], out["W_dec"], out["b_dec"] = (tensors["W_enc"] * scale, tensors["W_dec"] / scale,
                                              tensors["b_dec"] / scale)
  return out


def batchtopk_threshold(model: models.SAE, params: dict, batches_BD) -> float:
  """Mean over batches of the largest ReLU pre-activation the batch top-k (k * B) leaves out."""
  pre = jax.jit(lambda x: jax.nn.relu(pre_activations(params, x)).reshape(-1))
  found = []
  for x_BD in batches_BD:
    flat = np.asarray(pre(jnp.asarray(x_BD, jnp.float32)))
    keep = model.cfg.k * x_BD.shape[0]
    found.append(float(np.partition(flat, flat.size - keep - 1)[flat.size - keep - 1])
                 if keep < flat.size else 0.0)
  if not found:
    raise UserError("exporting a BatchTopK SAE needs calibration activations for its threshold")
  return float(np.mean(found))


def to_saelens(model: models.SAE, params: dict, *, metadata: dict | None = None, scale: float = 1.0,
               calibration=None) -> tuple[dict, dict[str, np.ndarray]]:
  """(cfg.json dict, tensors) of a dense-kind SAE. calibration: batches of activations (BatchTopK)."""
  kind = model.cfg.kind
  if kind not in ARCHITECTURES:
    raise UserError(f"model kind {kind!r} has no SAELens architecture; export one of "
                    f"{', '.join(ARCHITECTURES)} (Switch SAEs: use save())")
  p = {name: np.asarray(v, np.float32) for name, v in params.items()}
  t = {"W_enc": p["w_enc_MD"].T, "W_dec": p["w_dec_MD"], "b_dec": p["b_pre_D"]}
  if kind == "gated":
    t.update(b_gate=p["b_gate_M"], b_mag=p["b_mag_M"], r_mag=p["r_mag_M"])
  else:
    t["b_enc"] = p["b_enc_M"]
  if kind == "jumprelu":
    t["threshold"] = np.exp(p["log_threshold_M"])
  if kind == "batchtopk":
    if calibration is None:
      raise UserError("exporting a BatchTopK SAE needs calibration activations for its JumpReLU "
                      "threshold; pass calibration batches (the CLI reads the run's data)")
    t["threshold"] = np.full((model.width,), batchtopk_threshold(model, params, calibration), np.float32)
  metadata = dict(metadata or {})
  ours = {"kind": kind, "k": model.cfg.k, "activation_scale_folded": scale,
          **metadata.pop("switchbench", {})}
  cfg = {"architecture": ARCHITECTURES[kind], "d_in": model.d_model, "d_sae": model.width,
         "dtype": "float32", "device": "cpu", "apply_b_dec_to_input": True,
         "normalize_activations": "none", "reshape_activations": "none",
         "metadata": {"sae_lens_version": FORMAT_VERSION, "hook_name": None, "hook_head_index": None,
                      "model_name": None, **metadata, "switchbench": ours}}
  if kind == "topk":
    cfg.update(k=model.cfg.k, rescale_acts_by_decoder_norm=False)
  return cfg, _fold_scale(t, scale)


def _write_folder(folder: str, cfg: dict, tensors: dict[str, np.ndarray]) -> None:
  os.makedirs(folder, exist_ok=True)
  write_safetensors(os.path.join(folder, WEIGHTS), tensors)
  write_json(os.path.join(folder, CFG), cfg)


def _read_cfg(folder: str) -> dict:
  if not os.path.isdir(folder):
    raise UserError(f"{folder} is not a directory; pass an SAE folder ({CFG} + {WEIGHTS})")
  path = os.path.join(folder, CFG)
  try:
    cfg = read_json(path)
  except json.JSONDecodeError as e:
    raise UserError(f"{path} is not valid JSON ({e.msg} at line {e.lineno})") from None
  if cfg is None:
    raise UserError(f"{folder} holds no {CFG} (nor {SWITCH}); is it a SAELens SAE folder?")
  for key in ("architecture", "d_in", "d_sae"):
    if key not in cfg:
      raise UserError(f"{path} lacks {key!r}; is it a SAELens >= 6 cfg.json?")
  return cfg


def _expect(tensors: dict, name: str, shape: tuple, folder: str) -> np.ndarray:
  if name not in tensors:
    raise UserError(f"{folder}/{WEIGHTS} lacks tensor {name!r} (has {', '.join(sorted(tensors))})")
  if tuple(tensors[name].shape) != shape:
    raise UserError(f"{folder}/{WEIGHTS}: {name} has shape {tuple(tensors[name].shape)}, cfg.json "
                    f"implies {shape}")
  return tensors[name]


def _check_cfg(cfg: dict, folder: str) -> None:
  if cfg["architecture"] not in _KIND_OF:
    raise UserError(f"{folder}: SAELens architecture {cfg['architecture']!r} is not supported here; "
                    f"one of {', '.join(_KIND_OF)}")
  if cfg.get("normalize_activations", "none") not in ("none", "expected_average_only_in"):
    raise UserError(f"{folder}: normalize_activations={cfg['normalize_activations']!r} happens inside "
                    "SAELens's forward pass; fold it into the weights in SAELens first")


def from_saelens(cfg: dict, tensors: dict[str, np.ndarray], folder: str = "?") -> tuple[models.SAE, dict]:
  """Our (model, params) from one SAELens SAE's cfg.json dict and tensors."""
  _check_cfg(cfg, folder)
  arch = cfg["architecture"]
  ours = (cfg.get("metadata") or {}).get("switchbench") or {}
  d, m = int(cfg["d_in"]), int(cfg["d_sae"])
  kind = "batchtopk" if arch == "jumprelu" and ours.get("kind") == "batchtopk" else _KIND_OF[arch]
  k = int(cfg.get("k") or ours.get("k") or 1)
  w_enc = _expect(tensors, "W_enc", (d, m), folder).T
  w_dec = _expect(tensors, "W_dec", (m, d), folder)
  b_dec = _expect(tensors, "b_dec", (d,), folder)
  b_in = (1.0 if cfg.get("apply_b_dec_to_input", True) else 0.0) * b_dec
  # Ours subtracts b_pre (= b_dec) from the input; without that in SAELens, shift the biases.
  shift = (b_dec - b_in) @ w_enc.T
  p = {"w_enc_MD": w_enc, "w_dec_MD": w_dec, "b_pre_D": b_dec}
  if arch == "gated":
    r_mag = _expect(tensors, "r_mag", (m,), folder)
    p.update(b_gate_M=_expect(tensors, "b_gate", (m,), folder) + shift, r_mag_M=r_mag,
             b_mag_M=_expect(tensors, "b_mag", (m,), folder) + np.exp(r_mag) * shift)
  else:
    p["b_enc_M"] = _expect(tensors, "b_enc", (m,), folder) + shift
  if kind == "jumprelu":
    theta = _expect(tensors, "threshold", (m,), folder)
    # A threshold <= 0 is plain ReLU in SAELens; ours keeps theta > 0, so clamp to the tiniest.
    p["log_threshold_M"] = np.log(np.maximum(theta, np.finfo(np.float32).tiny))
  if kind == "topk" and cfg.get("rescale_acts_by_decoder_norm"):
    # TopK on pre * ||W_dec row||, decoded as z / ||row|| @ W_dec: fold the norms in instead.
    norm = np.maximum(np.linalg.norm(w_dec, axis=-1), 1e-8)
    p.update(w_enc_MD=w_enc * norm[:, None], b_enc_M=p["b_enc_M"] * norm, w_dec_MD=w_dec / norm[:, None])
  model = models.build(ModelConfig(kind=kind, d_model=d, width=m, k=k))
  _check_layout(model, p, folder)
  return model, {name: jnp.asarray(v, jnp.float32) for name, v in p.items()}


def _check_layout(model: models.SAE, params: dict, folder: str) -> None:
  want = jax.eval_shape(model.init, jax.random.PRNGKey(0))
  got = {name: tuple(np.shape(v)) for name, v in params.items()}
  if got != {name: tuple(s.shape) for name, s in want.items()}:
    raise UserError(f"{folder}: the tensors do not make a {model.cfg.kind} SAE ({got})")


# --- Switch SAEs: one TopK SAE per expert, plus the router --------------------------------------

def _switch_folders(model: models.Switch, params: dict, metadata: dict | None, scale: float):
  """(switch.json dict, router tensors, {subfolder: (cfg, tensors)})."""
  n, f = model.num_experts, model.expert_width
  p = {name: np.asarray(v, np.float32) for name, v in params.items()}
  subs = {}
  for e in range(n):
    expert = models.build(ModelConfig(kind="topk", d_model=model.d_model, width=f, k=model.cfg.k))
    dense = {"w_enc_MD": p["w_enc_NFD"][e], "w_dec_MD": p["w_dec_NFD"][e], "b_pre_D": p["b_pre_D"],
             "b_enc_M": np.zeros((f,), np.float32)}
    meta = dict(metadata or {}, switchbench={"kind": "switch_expert", "expert": e, "of": n})
    subs[f"expert_{e}"] = to_saelens(expert, dense, metadata=meta, scale=scale)
  if model.shared:
    j = model.cfg.shared_width
    shared = models.build(ModelConfig(kind="topk", d_model=model.d_model, width=j, k=model.cfg.shared_k))
    dense = {"w_enc_MD": p["w_enc_shared_JD"], "w_dec_MD": p["w_dec_shared_JD"],
             "b_pre_D": p["b_pre_D"], "b_enc_M": p["b_enc_shared_J"]}
    subs["shared"] = to_saelens(shared, dense, metadata=dict(metadata or {}, switchbench={
        "kind": "switch_shared"}), scale=scale)
  router = {"W_router": p["w_router_ND"].T * scale, "b_router": p["b_router_D"] / scale}
  layout = {"format": SWITCH_FORMAT, "num_experts": n, "expert_width": f, "d_in": model.d_model,
            "k": model.cfg.k, "p_scaling": model.cfg.p_scaling, "experts": [f"expert_{e}" for e in range(n)],
            "shared": "shared" if model.shared else None, "shared_k": model.cfg.shared_k,
            "router": ROUTER, "activation_scale_folded": scale, "metadata": metadata or {},
            "routing": "logits = (x - b_router) @ W_router; e = argmax(logits); "
                       "p = softmax(logits)[e] (1 if p_scaling == 'heaviside')",
            "reconstruction": "x_hat = b_dec + p * (expert_e.decode(expert_e.encode(x)) - b_dec)"
                              " + (shared.decode(shared.encode(x)) - b_dec if shared)"}
  return layout, router, subs


def _load_switch(folder: str) -> tuple[models.SAE, dict]:
  path = os.path.join(folder, SWITCH)
  layout = read_json(path)
  if layout.get("format") != SWITCH_FORMAT:
    raise UserError(f"{path} has format {layout.get('format')!r}, expected {SWITCH_FORMAT!r}")
  n, f, d = layout["num_experts"], layout["expert_width"], layout["d_in"]
  experts = [load(os.path.join(folder, name)) for name in layout["experts"]]
  if len(experts) != n:
    raise UserError(f"{path} names {len(experts)} experts but num_experts is {n}")
  b_pre = np.asarray(experts[0][1]["b_pre_D"])
  for e, (m, p) in enumerate(experts):
    if m.cfg.kind != "topk" or m.width != f or m.d_model != d:
      raise UserError(f"{folder}/expert_{e} is not a TopK SAE of width {f} over d_in {d}")
    if np.any(np.asarray(p["b_enc_M"]) != 0) or not np.array_equal(np.asarray(p["b_pre_D"]), b_pre):
      raise UserError(f"{folder}/expert_{e}: a Switch expert needs b_enc = 0 and the b_dec of expert_0")
  router = read_safetensors(os.path.join(folder, layout["router"]))
  params = {"w_router_ND": _expect(router, "W_router", (d, n), folder).T,
            "b_router_D": _expect(router, "b_router", (d,), folder), "b_pre_D": b_pre,
            "w_enc_NFD": np.stack([np.asarray(p["w_enc_MD"]) for _, p in experts]),
            "w_dec_NFD": np.stack([np.asarray(p["w_dec_MD"]) for _, p in experts])}
  shared_width = shared_k = 0
  if layout.get("shared"):
    m, p = load(os.path.join(folder, layout["shared"]))
    shared_width, shared_k = m.width, m.cfg.k
    params.update(w_enc_shared_JD=p["w_enc_MD"], w_dec_shared_JD=p["w_dec_MD"], b_enc_shared_J=p["b_enc_M"])
  cfg = ModelConfig(kind="switch", d_model=d, width=n * f, k=layout["k"], num_experts=n,
                    dispatch="dropless", p_scaling=layout.get("p_scaling", "softmax"),
                    shared_width=shared_width, shared_k=shared_k)
  model = models.build(cfg)
  _check_layout(model, params, folder)
  return model, {name: jnp.asarray(v, jnp.float32) for name, v in params.items()}


# --- the API ------------------------------------------------------------------------------------

def save(out_dir: str, model: models.SAE, params: dict, *, metadata: dict | None = None,
         scale: float = 1.0, calibration=None) -> str:
  """Writes `model` with `params` to out_dir in SAELens's format (Switch: the layout above)."""
  if isinstance(model, models.Switch):
    layout, router, subs = _switch_folders(model, params, metadata, scale)
    for name, (cfg, tensors) in subs.items():
      _write_folder(os.path.join(out_dir, name), cfg, tensors)
    write_safetensors(os.path.join(out_dir, ROUTER), router)
    write_json(os.path.join(out_dir, SWITCH), layout)
  else:
    _write_folder(out_dir, *to_saelens(model, params, metadata=metadata, scale=scale,
                                       calibration=calibration))
  return out_dir


def load(folder: str) -> tuple[models.SAE, dict]:
  """(model, params) of a SAELens SAE folder, or of a Switch folder written by save()."""
  if os.path.isfile(os.path.join(folder, SWITCH)):
    return _load_switch(folder)
  cfg = _read_cfg(folder)
  _check_cfg(cfg, folder)
  return from_saelens(cfg, read_safetensors(os.path.join(folder, WEIGHTS)), folder)


# --- runs ---------------------------------------------------------------------------------------

def restore_params(workdir: str, step: int | None = None) -> tuple[dict[str, np.ndarray], int]:
  """A run's parameters from its newest (or the given) orbax checkpoint, on this host, in NumPy."""
  import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel
  root = os.path.join(workdir, "checkpoints")
  steps = sorted(int(s) for s in (os.listdir(root) if os.path.isdir(root) else []) if s.isdigit())
  if not steps:
    raise UserError(f"{root} holds no checkpoint; pass the --workdir of a trained run")
  step = steps[-1] if step is None else step
  if step not in steps:
    raise UserError(f"{root} has no step {step}; it has {', '.join(map(str, steps))}")
  path = os.path.join(root, str(step), "state")
  ckpt = ocp.StandardCheckpointer()
  tree = ckpt.metadata(path).item_metadata
  # Every leaf onto this host's first device, whatever mesh the run trained on.
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), dict(tree))
  state = ckpt.restore(path, target)
  return {name: np.asarray(v) for name, v in state["params"].items()}, step


def _run_metadata(data) -> tuple[dict, float]:
  """SAELens metadata and the normalising scale of the run's activations."""
  meta = {"switchbench": {"data_source": data.source}}
  if data.source != "store":
    return meta, 1.0
  manifest = read_json(os.path.join(data.path, "manifest.json")) or {}
  ident = manifest.get("identity", {})
  if "layer" in ident and ident.get("site") in _TL_SITES:
    meta["hook_name"] = f"blocks.{ident['layer']}.{_TL_SITES[ident['site']]}"
  meta.update(model_name=ident.get("model"), context_size=ident.get("ctx_len"),
              dataset_path=data.path)
  return meta, float(manifest.get("meta", {}).get("scale", 1.0))


def export_run(run, workdir: str, out_dir: str, *, step: int | None = None,
               calibration_batches: int = 4) -> str:
  """A trained run (TrainConfig `run`, its workdir) to out_dir in SAELens's format."""
  params, step = restore_params(workdir, step)
  model = models.build(dataclasses.replace(run.model, d_model=params["b_pre_D"].shape[0]))
  metadata, scale = _run_metadata(run.data)
  metadata["switchbench"].update(step=step, workdir=os.path.abspath(workdir))
  calibration = None
  if run.model.kind == "batchtopk":
    from sae import train  # pylint: disable=import-outside-toplevel
    stream = train.make_source(run.data, train.EVAL_SEED_OFFSET).batches(0)
    calibration = [next(stream) for _ in range(calibration_batches)]
  return save(out_dir, model, params, metadata=metadata, scale=scale, calibration=calibration)


def import_folder(folder: str, out_dir: str, *, run=None, eval_rows: int = 8192) -> dict:
  """Writes our model.json + params.npz for a SAELens folder; with `run` (a TrainConfig whose data
  the SAE reads), also eval.json: held-out metrics on eval_rows rows of that data."""
  model, params = load(folder)
  os.makedirs(out_dir, exist_ok=True)
  write_json(os.path.join(out_dir, "model.json"), dataclasses.asdict(model.cfg))
  with atomic_path(os.path.join(out_dir, "params.npz"), ".npz") as tmp:
    np.savez(tmp, **{name: np.asarray(v) for name, v in params.items()})
  summary = {"kind": model.cfg.kind, "d_model": model.d_model, "width": model.width, "k": model.cfg.k}
  if run is not None:
    from sae import evaluate, train  # pylint: disable=import-outside-toplevel
    stream, rows = train.make_source(run.data, train.EVAL_SEED_OFFSET).batches(0), []
    while sum(len(r) for r in rows) < eval_rows:
      rows.append(next(stream))
    summary["heldout"] = evaluate.heldout_metrics(model, params, np.concatenate(rows)[:eval_rows])
    write_json(os.path.join(out_dir, "eval.json"), summary)
  return summary


def _train_config(spec: str, overrides: list[str]):
  from sae.config import TrainConfig  # pylint: disable=import-outside-toplevel
  from stack import config  # pylint: disable=import-outside-toplevel
  return config.to_dataclass(config.apply_overrides(config.load_config(spec), overrides), TrainConfig)


def main(argv: list[str] | None = None) -> None:
  ap = argparse.ArgumentParser(prog="python -m sae.interop.saelens", description=__doc__.splitlines()[0])
  sub = ap.add_subparsers(dest="command", required=True)
  ex = sub.add_parser("export", help="a trained run -> a SAELens folder (Switch: the layout above)")
  ex.add_argument("--config", required=True, help="the run's experiment config, FILE.py[:variants]")
  ex.add_argument("--set", action="append", default=[], help="config override, as for training")
  ex.add_argument("--workdir", required=True, help="the run's workdir (its checkpoints/)")
  ex.add_argument("--out", required=True)
  ex.add_argument("--step", type=int, default=None, help="checkpoint step (default: the newest)")
  ex.add_argument("--calibration_batches", type=int, default=4, help="BatchTopK threshold batches")
  im = sub.add_parser("import", help="a SAELens folder -> our model.json + params.npz (+ eval.json)")
  im.add_argument("--sae", required=True, help="SAELens SAE folder (cfg.json + sae_weights.safetensors)")
  im.add_argument("--out", required=True)
  im.add_argument("--config", default=None, help="optional: evaluate on this config's held-out data")
  im.add_argument("--set", action="append", default=[])
  im.add_argument("--eval_rows", type=int, default=8192)
  args = ap.parse_args(argv)
  try:
    if args.command == "export":
      out = export_run(_train_config(args.config, args.set), args.workdir, args.out, step=args.step,
                       calibration_batches=args.calibration_batches)
      print(f"wrote {out}")
    else:
      run = _train_config(args.config, args.set) if args.config else None
      print(json.dumps(import_folder(args.sae, args.out, run=run, eval_rows=args.eval_rows)))
  except UserError as e:
    print(f"error: {e}", file=sys.stderr, flush=True)
    sys.exit(2)


if __name__ == "__main__":
  main()
