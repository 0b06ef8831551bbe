"""The MIPS RNN and its vmapped training: heads, masks, gates, and many-models-at-once equal to
one model alone."""

import dataclasses

import jax
import numpy as np

from synth import rnn, tasks, train


def _data(name, n=600, seed=0):
  return tasks.get_task(name).sample(n, seed)


def test_head_is_chosen_from_the_data():
  x, y = _data("Parity_All")
  spec, scales = rnn.net_spec_for(x, y, hidden_max=4, width=4, max_classes=16)
  assert (spec.head, spec.act, spec.n_classes) == ("class", "tanh", 2)
  x, y = _data("Sum_All")
  spec, scales = rnn.net_spec_for(x, y, hidden_max=4, width=4, max_classes=16)
  assert (spec.head, spec.act) == ("reg", "identity")
  assert float(scales["y_scale"]) == np.abs(y).max()


def _net(hidden, relu, act="identity", seed=0):
  spec = rnn.NetSpec(n_in=1, n_out=1, hidden_max=6, width=5, act=act, head="reg", n_classes=1)
  scales = {"x_shift": np.float32(0), "x_scale": np.float32(10), "y_scale": np.float32(1),
            "y_min": np.int32(0)}
  return spec, rnn.init_params(spec, seed), rnn.make_arch(spec, scales, hidden, relu)


def test_masked_units_stay_zero():
  spec, params, arch = _net(hidden=3, relu=True, act="tanh")
  x = np.random.default_rng(0).integers(0, 10, (4, 7, 1))
  h, logits = rnn.unroll(spec, params, x, arch)
  assert h.shape == (4, 7, 6) and logits.shape == (4, 7, 1)
  assert np.all(np.asarray(h)[..., 3:] == 0) and np.any(np.asarray(h)[..., :3] != 0)


def test_relu_gate_off_makes_the_network_linear():
  spec, params, arch = _net(hidden=6, relu=False)
  rng = np.random.default_rng(1)
  a, b = rng.integers(-5, 5, (2, 3, 8, 1))
  zero = np.zeros_like(a)
  run = lambda x: np.asarray(rnn.unroll(spec, params, x, arch)[0], np.float64)
  np.testing.assert_allclose(run(a + b) - run(zero), (run(a) - run(zero)) + (run(b) - run(zero)),
                             atol=1e-4)
  spec, params, arch = _net(hidden=6, relu=True)
  assert not np.allclose(run(a + b) - run(zero), (run(a) - run(zero)) + (run(b) - run(zero)),
                         atol=1e-4)


def test_decode_and_loss():
  spec = rnn.NetSpec(n_in=1, n_out=1, hidden_max=2, width=2, act="tanh", head="class",
                     n_classes=3)
  arch = {"y_min": np.int32(-1), "y_scale": np.float32(1)}
  logits = np.array([[[0.0, 5.0, 0.0], [9.0, 0.0, 0.0]]], np.float32)
  np.testing.assert_array_equal(rnn.decode(spec, arch, logits), [[[0], [-1]]])
  good = float(rnn.loss(spec, arch, logits, np.array([[[0], [-1]]])))
  bad = float(rnn.loss(spec, arch, logits, np.array([[[1], [1]]])))
  assert good < 0.02 < bad
  reg = rnn.NetSpec(n_in=1, n_out=1, hidden_max=2, width=2, act="identity", head="reg",
                    n_classes=1)
  arch = {"y_min": np.int32(0), "y_scale": np.float32(100)}
  np.testing.assert_array_equal(rnn.decode(reg, arch, np.array([[[0.126], [-0.504]]])),
                                [[[13], [-50]]])


def test_vmapped_models_train_as_if_alone():
  x, y = _data("Parity_Last2", 512)
  spec, scales = rnn.net_spec_for(x, y, hidden_max=4, width=4, max_classes=16)
  cfg = train.TrainConfig(steps=6, batch=32, eval_every=6, polish_steps=0)
  quiet = lambda s: None
  both = train.train_models(spec, scales, [2, 4], [False, True], [3, 9], x, y, x, y, cfg,
                            log=quiet)
  # The batch order follows the first seed, so model 0 of the pair can be retrained alone.
  alone = train.train_models(spec, scales, [2], [False], [3], x, y, x, y, cfg, log=quiet)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
               train.take(both.params_M, 0), train.take(alone.params_M, 0))
  moved = jax.tree.map(lambda a, b: float(np.abs(a - b).max()), train.take(both.params_M, 0),
                       rnn.init_params(spec, 3))
  assert max(jax.tree.leaves(moved)) > 1e-3


def test_training_reaches_exactness_on_parity():
  x, y = _data("Parity_All", 4000)
  xv, yv = _data("Parity_All", 500, seed=1)
  spec, scales = rnn.net_spec_for(x, y, hidden_max=4, width=8, max_classes=16)
  cfg = train.TrainConfig(steps=1500, eval_every=250, seconds=120)
  res = train.train_models(spec, scales, [4, 4], [True, False], [0, 1], x, y, xv, yv, cfg,
                           log=lambda s: None)
  assert res.exact_M.max() == 1.0
  assert res.steps < 1500  # stopped early on exactness


def test_search_passes_on_the_most_exact_networks_when_none_is_exact():
  from synth import search  # pylint: disable=import-outside-toplevel
  x, y = _data("Sum_All", 2000)
  xv, yv = _data("Sum_All", 400, seed=1)
  # 60 steps cannot make a running sum over 10 steps exact, but some sequences come out right.
  tcfg = train.TrainConfig(steps=60, eval_every=60, seconds=60, polish_steps=0)
  scfg = search.SearchConfig(hidden=(2, 4), relu=(False,), seeds=2, rounds=1, near_exact=0.0,
                             near_candidates=3)
  cands, summary = search.search(x, y, xv, yv, scfg, tcfg, seconds=60, log=lambda s: None)
  exact = [c.exact for c in cands]
  assert 1 <= len(cands) <= 3 and exact == sorted(exact, reverse=True) and max(exact) < 1.0
  assert summary["near_exact"] == [round(e, 4) for e in exact]
  strict = search.search(x, y, xv, yv, dataclasses.replace(scfg, near_exact=1.0), tcfg, seconds=60,
                         log=lambda s: None)[0]
  assert strict == []
