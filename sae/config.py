"""Typed configuration of SAE runs; the ml_collections ConfigDict becomes these at the boundary.

Letters used in shapes across sae/: B tokens, D model width, M total dictionary width,
N experts, F latents per expert (M = N * F), K active latents per token, C expert capacity.
"""

from __future__ import annotations

import dataclasses

from stack.errors import UserError

MODEL_KINDS = ("switch", "topk", "batchtopk", "relu", "gated", "jumprelu")
DISPATCHES = ("capacity", "dropless", "dense")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  kind: str = "switch"                  # one of MODEL_KINDS
  d_model: int = 0                      # 0: taken from the activation source
  width: int = 32768                    # M, total number of latents (all experts together)
  k: int = 32                           # active latents per token (TopK family, Switch)
  # Switch
  num_experts: int = 8                  # N; each expert has width M / N
  dispatch: str = "capacity"            # 'capacity' | 'dropless' (sort + ragged_dot) | 'dense' (oracle)
  capacity_factor: float = 1.25         # slots per expert = ceil(factor * B / N)
  decoder: str = "sparse"               # switch: 'sparse' | 'expert' (per-expert dW matmul) | 'auto'
  p_scaling: str = "softmax"            # 'softmax' (x_hat scaled by router prob) | 'heaviside' (ablation)
  balance_alpha: float = 3.0            # weight of the load-balancing loss
  shared_width: int = 0                 # width of an always-on shared expert (0: none)
  shared_k: int = 0                     # active latents of the shared expert
  expert_aux_k: int = 0                 # AuxK per expert: the residual from the routed expert's
                                        # top dead latents (0: none, as in the paper; capacity
                                        # dispatch only); weighted by aux_coeff
  # TopK and Switch (capacity dispatch)
  encoder_grad: str = "dense"           # 'dense' (autodiff through all B x M pre-activations) |
                                        # 'sparse' (only the k selected rows get gradient)
  aux_k: int = -1                       # latents in the AuxK reconstruction; -1: d/2; 0: no AuxK
  aux_coeff: float = 1.0 / 32           # AuxK loss weight
  dead_tokens: int = 10_000_000         # a latent unfired for this many tokens counts as dead
  # ReLU / Gated / JumpReLU
  l1_coeff: float = 5.0                 # sparsity penalty (L1 for relu/gated, L0 for jumprelu)
  jumprelu_bandwidth: float = 0.001     # epsilon of the rectangle pseudo-derivative
  jumprelu_threshold: float = 0.001     # initial threshold theta

  def validate(self) -> "ModelConfig":
    if self.kind not in MODEL_KINDS:
      raise UserError(f"model.kind {self.kind!r} is unknown; use one of {', '.join(MODEL_KINDS)}")
    if self.dispatch not in DISPATCHES:
      raise UserError(f"model.dispatch {self.dispatch!r} is unknown; use one of {', '.join(DISPATCHES)}")
    if self.decoder not in ("sparse", "expert", "auto"):
      raise UserError(f"model.decoder {self.decoder!r} is unknown; use 'sparse', 'expert' or 'auto'")
    if self.encoder_grad not in ("dense", "sparse"):
      raise UserError(f"model.encoder_grad {self.encoder_grad!r} is unknown; use 'dense' or 'sparse'")
    if self.p_scaling not in ("softmax", "heaviside"):
      raise UserError(f"model.p_scaling {self.p_scaling!r} is unknown; use 'softmax' or 'heaviside'")
    if self.d_model <= 0 or self.width <= 0:
      raise UserError(f"model.d_model and model.width must be positive, got {self.d_model}, {self.width}")
    if self.kind == "switch" and self.width % self.num_experts:
      raise UserError(f"model.width {self.width} is not divisible by model.num_experts {self.num_experts}")
    if self.kind == "switch" and self.expert_aux_k and self.dispatch != "capacity":
      raise UserError("model.expert_aux_k needs model.dispatch='capacity'; set it to 0 for "
                      f"dispatch={self.dispatch!r}")
    per_expert = self.width // self.num_experts if self.kind == "switch" else self.width
    if self.kind in ("switch", "topk", "batchtopk") and not 0 < self.k <= per_expert:
      raise UserError(f"model.k must be in [1, {per_expert}] (the latents one token can use), got {self.k}")
    return self


@dataclasses.dataclass(frozen=True)
class DataConfig:
  source: str = "synthetic"             # 'synthetic' | 'store' (sae.activations.store)
  path: str = ""                        # activation store directory (source='store')
  batch_size: int = 4096                # tokens per step
  seed: int = 0                         # data order / synthetic dictionary seed
  # synthetic source
  d_model: int = 64                     # D of the synthetic activations
  num_features: int = 256               # true dictionary size (> d_model: superposition)
  num_clusters: int = 1                 # features split in groups; a token draws from one group
  active: float = 4.0                   # mean number of active true features per token
  noise: float = 0.0                    # std of isotropic Gaussian noise added to x


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
  data: DataConfig = dataclasses.field(default_factory=DataConfig)
  num_steps: int = 1000                 # optimizer steps
  lr: float = 0.0                       # 0: width-scaled 2e-4 / sqrt(M / 2^14)
  decay_fraction: float = 0.2           # linear decay to 0 over this last fraction of steps
  clip_norm: float = 1.0                # global gradient-norm clip
  b1: float = 0.9
  b2: float = 0.999
  seed: int = 0                         # parameter init and step rngs
  mesh: tuple[tuple[str, int], ...] = (("data", -1), ("expert", 1))
  devices: int = 0                      # mesh over the first this many devices (0: all)
  log_every: int = 50
  checkpoint_every: int = 500
  eval_batches: int = 4                 # held-out batches (from a different seed) for eval.json
  tensorboard: bool = True
