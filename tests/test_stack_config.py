import dataclasses
import textwrap

import optax
import pytest

from stack import config, optim
from stack.errors import UserError


@dataclasses.dataclass(frozen=True)
class Inner:
  width: int = 4
  name: str = "x"


@dataclasses.dataclass(frozen=True)
class Outer:
  inner: Inner = dataclasses.field(default_factory=Inner)
  sizes: tuple[int, ...] = (1, 2)
  lr: float = 1e-3


def _write(tmp_path, body):
  path = tmp_path / "cfg.py"
  path.write_text(textwrap.dedent(body))
  return str(path)


BODY = """
import ml_collections
from stack.config import parse_variants

def get_config(variant=None):
  words = parse_variants(variant, ["smoke", "wide"])
  c = ml_collections.ConfigDict()
  c.lr = 0.1
  c.sizes = (3, 4)
  c.inner = ml_collections.ConfigDict({"width": 8, "name": "y"})
  if "smoke" in words:
    c.inner.width = 1
  return c
"""


def test_variant_loads_and_converts(tmp_path):
  path = _write(tmp_path, BODY)
  cfg = config.load_config(path + ":smoke")
  out = config.to_dataclass(cfg, Outer)
  assert out == Outer(inner=Inner(width=1, name="y"), sizes=(3, 4), lr=0.1)
  assert config.to_dataclass(config.load_config(path), Outer).inner.width == 8


@pytest.mark.parametrize("spec, message", [
    ("missing.py", "does not exist"),
    (":smoke", "does not exist"),
])
def test_missing_file(spec, message):
  with pytest.raises(UserError, match=message):
    config.load_config(spec)


def test_unknown_variant_and_field(tmp_path):
  path = _write(tmp_path, BODY)
  with pytest.raises(UserError, match=r"unknown variant\(s\) \['smok'\]"):
    config.load_config(path + ":smok")
  cfg = config.load_config(path)
  cfg.inner.widht = 3
  with pytest.raises(UserError, match=r"unknown config field 'config.inner.widht'; did you mean 'width'"):
    config.to_dataclass(cfg, Outer)


def test_overrides_set_fields_keeping_their_types(tmp_path):
  cfg = config.load_config(_write(tmp_path, BODY) + ":smoke")
  config.apply_overrides(cfg, ["inner.width=5", "lr=1", "sizes=(7, 8, 9)", "inner.name=z=1"])
  assert config.to_dataclass(cfg, Outer) == Outer(inner=Inner(width=5, name="z=1"), sizes=(7, 8, 9), lr=1.0)


@pytest.mark.parametrize("item, message", [
    ("inner.widht=3", r"no field 'inner.widht'; did you mean 'width'"),
    ("lr", "is not field=value"),
    ("inner.width=wide", r"holds a int \(1\), got a str"),
    ("lr.x=1", r"no field 'lr.x'"),
])
def test_bad_overrides_are_one_line(tmp_path, item, message):
  cfg = config.load_config(_write(tmp_path, BODY) + ":smoke")
  with pytest.raises(UserError, match=message):
    config.apply_overrides(cfg, [item])


def test_schedules():
  cfg = optim.OptimConfig(lr=1.0, schedule="linear_decay", decay_fraction=0.2)
  sched = optim.make_schedule(cfg, 100)
  assert [float(sched(s)) for s in (0, 79, 80, 90, 100)] == pytest.approx([1, 1, 1, 0.5, 0])
  warm = optim.make_schedule(optim.OptimConfig(lr=2.0, schedule="warmup_cosine", warmup_steps=10), 100)
  assert float(warm(5)) == pytest.approx(1.0)
  assert float(warm(10)) == pytest.approx(2.0)
  assert float(warm(100)) == pytest.approx(0.0, abs=1e-6)
  with pytest.raises(UserError, match="unknown optim.schedule"):
    optim.make_schedule(optim.OptimConfig(schedule="cosine"), 10)


def test_clip_norm_limits_update():
  import jax.numpy as jnp
  tx = optim.make_optimizer(optim.OptimConfig(name="adamw", lr=1.0, clip_norm=0.5, weight_decay=0.0), 10)
  clip = optax.clip_by_global_norm(0.5)
  grads = {"w": jnp.full((4,), 10.0)}
  clipped, _ = clip.update(grads, clip.init(grads))
  assert float(optax.global_norm(clipped)) == pytest.approx(0.5)
  updates, _ = tx.update(grads, tx.init(grads), grads)
  assert updates["w"].shape == (4,)


@pytest.mark.parametrize("name,clip,decay", [("adam", 1.0, 0.0), ("adam", None, 0.0),
                                             ("adamw", 0.5, 0.1), ("adamw", None, 0.1)])
def test_fused_apply_matches_the_optax_chain(name, clip, decay):
  """tx.apply (one fused update + post_update) against tx.update + apply_updates, step by step,
  through warmup and decay and with the clip both triggered and not."""
  import jax
  import jax.numpy as jnp
  cfg = optim.OptimConfig(name=name, lr=0.05, schedule="linear_decay", warmup_steps=2,
                          clip_norm=clip, weight_decay=decay)
  tx = optim.make_optimizer(cfg, 8)
  unit = lambda p: {**p, "w": p["w"] / jnp.linalg.norm(p["w"], axis=-1, keepdims=True)}
  params = unit({"w": jnp.arange(12.0).reshape(3, 4) - 5.0, "b": jnp.linspace(-1.0, 1.0, 5)})
  ref_p, ref_s, p, s = params, tx.init(params), params, tx.init(params)
  fused = jax.jit(lambda g, s, p: tx.apply(g, s, p, unit))
  for i in range(8):
    grads = jax.tree.map(lambda x: jnp.sin(3.0 * x + i) * (0.1 if i % 2 else 4.0), ref_p)
    updates, ref_s = tx.update(grads, ref_s, ref_p)
    ref_p = unit(optax.apply_updates(ref_p, updates))
    p, s = fused(grads, s, p)
    assert jax.tree.structure(s) == jax.tree.structure(ref_s)
    for a, b in zip(jax.tree.leaves((p, s)), jax.tree.leaves((ref_p, ref_s))):
      assert jnp.allclose(a, b, rtol=1e-5, atol=1e-6), (i, a, b)
  assert not jnp.allclose(p["w"], params["w"])   # it did train


def test_from_dataclass_holds_every_default_and_round_trips():
  c = config.from_dataclass(Outer)
  assert c.inner.width == 4 and c.sizes == (1, 2) and c.lr == 1e-3
  assert config.to_dataclass(c, Outer) == Outer()
  c.inner.update(width=16)  # a config states only what differs
  assert config.to_dataclass(c, Outer) == Outer(inner=Inner(width=16))
