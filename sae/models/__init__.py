"""SAE models behind one interface (see base.py); `build(cfg)` picks the class by cfg.kind."""

from __future__ import annotations

from sae.config import ModelConfig
from sae.models.base import RULES, SAE
from sae.models.gated import Gated
from sae.models.jumprelu import JumpReLU
from sae.models.relu import ReLU
from sae.models.switch import Switch
from sae.models.topk import BatchTopK, TopK

_KINDS = {"switch": Switch, "topk": TopK, "batchtopk": BatchTopK, "relu": ReLU, "gated": Gated,
          "jumprelu": JumpReLU}


def build(cfg: ModelConfig) -> SAE:
  cfg.validate()
  return _KINDS[cfg.kind](cfg)


__all__ = ["RULES", "SAE", "build", "Switch", "TopK", "BatchTopK", "ReLU", "Gated", "JumpReLU"]
