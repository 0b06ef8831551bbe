"""Cells of mips.ipynb: one task -> RNN -> finite-state machine -> Python program -> 10^5 checks
-> the length checks (L, 2L, 4L, 10L) that decide whether it is solved."""

EXTRAS = "plots"
SMOLLM2 = False
DAFNY = False

TITLE = """
# MIPS: from a trained RNN to a verified Python program

MIPS (Michaud et al. 2024) trains a small recurrent network on an algorithmic task, reads a
discrete state machine off its hidden states, finds formulas for that machine's transitions
and outputs, and writes them out as a plain Python program. The program counts only if it
reproduces every output of fresh held-out sequences at the trained length and at 2, 4 and 10
times it. The task's rule is used to make data
and to judge the program, never to build it.

This notebook walks one task through every stage with the project's `synth` package.
"""

CELLS = [
    ("code", '''
import dataclasses

import numpy as np

from synth import autoencoder, certify, check, codegen, search, simplify, tasks, train
from synth.regress.choose import regress_machine

TASK = "Parity_All"        # its state is one bit; extraction below reads an FSM off a tanh RNN
N_TRAIN = 2_000 if SMOKE else 20_000
N_VAL = 500 if SMOKE else 2_000
N_CHECK = 100_000          # held-out sequences the program must get exactly right (also in SMOKE)

task = tasks.get_task(TASK)
x_all, y_all, x_rest, y_rest = task.dataset(int((N_TRAIN + N_VAL) / task.split) + 1, seed=0)
x_all, y_all = np.concatenate([x_all, x_rest]), np.concatenate([y_all, y_rest])
x, y = x_all[:N_TRAIN], y_all[:N_TRAIN]
x_val, y_val = x_all[N_TRAIN:N_TRAIN + N_VAL], y_all[N_TRAIN:N_TRAIN + N_VAL]
show_table([{"task": task.name, "inputs per step": task.n_in, "values": f"{task.low}..{task.high}",
             "length": task.length, "train": len(x), "validation": len(x_val),
             "published MIPS solved it": task.mips_published, "GPT-4 solved it": task.gpt4}])
show_table([{"x": " ".join(map(str, x[i, :, 0])), "y": " ".join(map(str, y[i, :, 0]))}
            for i in range(4)], title="Training examples: y is the parity of the inputs so far")
'''),
    ("markdown", """
## 1. Train RNNs and keep the smallest exact one

`search.search` trains a small grid of networks (hidden sizes, with and without ReLU paths) in
one vectorised run on the shared training loop, and stops once some network gets every
validation sequence exactly right. Candidates come back smallest first.
"""),
    ("code", '''
search_cfg = search.SearchConfig(hidden=(4, 8), relu=(False, True), rounds=1 if SMOKE else 2)
train_cfg = train.TrainConfig(steps=1_000 if SMOKE else 4_000, eval_every=100 if SMOKE else 250,
                              polish_steps=200 if SMOKE else 500)
candidates, summary = search.search(x, y, x_val, y_val, search_cfg, train_cfg,
                                    seconds=120.0 if SMOKE else 60.0)
assert candidates, "no network became exact; raise the step cap or the time budget"
show_table(summary["rounds"], title="Search rounds")
show_table([{"hidden": c.hidden, "relu": c.relu, "validation exact": c.exact} for c in candidates],
           title="Exact networks, smallest first")
'''),
    ("markdown", """
## 2. Simplify, then look at the hidden states

Simplification prunes hidden units and rounds weights, keeping each change only if the network
stays exact. The hidden states of the result split cleanly into two groups by the parity of the
inputs so far: one group per state of the two-state machine the network implements.
"""),
    ("code", '''
import matplotlib.pyplot as plt

cand, kept = simplify.simplify(candidates[0], x_val, y_val)
net = autoencoder.NetFns(cand.spec, cand.params, cand.arch)
h_NLH, pred_NLO = net.run(x_val)
print(f"kept {kept}; hidden units after simplification: {cand.hidden}; "
      f"validation outputs right: {np.mean(pred_NLO == y_val):.4f}")

active = np.flatnonzero(np.asarray(cand.arch["mask_H"]) > 0)[:2]
points_PH = h_NLH[:200].reshape(-1, h_NLH.shape[-1])
parity_P = y_val[:200].reshape(-1)
fig, ax = plt.subplots(figsize=(4.5, 3.8))
for value in np.unique(parity_P):
    at = parity_P == value
    second = points_PH[at, active[1]] if len(active) > 1 else np.zeros(at.sum())
    ax.scatter(points_PH[at, active[0]], second, s=8, alpha=0.5, label=f"parity so far = {value}")
ax.set(xlabel=f"hidden unit {active[0]}", ylabel=f"hidden unit {active[-1]}",
       title="RNN hidden states (200 sequences)")
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(os.path.join(WORKDIR, "hidden_states.png"), dpi=110)
plt.close(fig)
show_png(os.path.join(WORKDIR, "hidden_states.png"), width=450)
'''),
    ("markdown", """
## 3. Read off a finite-state machine

The integer autoencoder explores the states the network reaches from the start state under
every input, merges states closer than a radius, minimises the resulting machine, and keeps it
only if it reproduces the training outputs exactly.
"""),
    ("code", '''
extraction = autoencoder.extract_fsm(net, task.low, task.high, task.length, x, y, name=task.name)
assert extraction is not None, "no consistent finite-state machine"
m = extraction.machine
print(f"{extraction.kind} with {extraction.n_states} states ({extraction.info})")
show_table([{"state": int(m.prev_state_TP[t, 0]), "input": int(m.input_TI[t, 0]),
             "next state": int(m.next_state_TP[t, 0]), "output": int(m.output_TO[t, 0])}
            for t in np.lexsort((m.input_TI[:, 0], m.prev_state_TP[:, 0]))],
           title=f"Transitions (start state {int(m.s0_P[0])})")
'''),
    ("markdown", """
## 4. Regress formulas and write the program

Boolean, linear and small symbolic regressions look for the shortest formula of each state
variable and output; code generation turns them into a Python function `run(xs)`.
"""),
    ("code", '''
program = regress_machine(extraction.machine, sr_candidates=75_000)
names = ([f"s{i + 1}" for i in range(len(program.next_state))]
         + [f"y{i + 1}" for i in range(len(program.outputs))])
show_table([{"variable": n, "method": f.method,
             "formula": f.expr or f"lookup table ({len(f.table)} entries)"}
            for n, f in zip(names, program.next_state + program.outputs)], title="Formulas")
program_path = codegen.write_program(program, os.path.join(WORKDIR, "programs", f"{task.name}.py"))
display(Markdown("```python\\n" + open(program_path).read() + "```"))
'''),
    ("markdown", """
## 5. Verify on 100,000 held-out sequences

`check.check_program` runs the written file (vectorised over all sequences, and in plain Python
on the first ones) against the task's rule, on a seed never used for training. To see that the
check has teeth, the same program with its output changed is checked too: it fails, with a
counterexample.
"""),
    ("code", '''
result = check.check_program(program_path, task, n_sequences=N_CHECK)
assert result.solved, result.counterexample

broken_path = os.path.join(WORKDIR, "programs", f"{task.name}_broken.py")
with open(broken_path, "w") as f:
    f.write(open(program_path).read().replace("ys.append(", "ys.append(1 + ", 1))
broken = check.check_program(broken_path, task, n_sequences=N_CHECK)
assert not broken.exact

show_table([{"program": os.path.basename(r_path), "sequences": r.n_sequences, "exact": r.exact,
             "solved": r.solved, "vectorised": r.vectorised, "seconds": r.seconds}
            for r_path, r in ((program_path, result), (broken_path, broken))],
           title="Checks against the task's rule")
cex = broken.counterexample
show_table([{"sequence": cex["index"], "inputs": cex["xs"], "expected": cex["expected"],
             "got": cex.get("got", cex.get("error"))}], title="First counterexample")
'''),
    ("markdown", """
## 6. Certify at lengths never trained

Exact at the trained length is not enough: a program that memorised length-10 behaviour (a
table indexed by the whole history, a 10-tap filter for a double sum) passes it. A task counts
as solved only if its program is exact at L, 2L, 4L and 10L on a test split whose seeds
selection never read; at L, sequences seen in training are dropped, and where the input space
is too small for that (Parity_All has 1,024 binary sequences of length 10, all of them in
training) the table says so and the longer lengths carry the proof.
"""),
    ("code", '''
cert = certify.check_lengths(program_path, task, (N_CHECK, 10_000, 5_000, 2_000),
                             certify.TEST_SEED, train_hashes=certify.sequence_hashes(x_all))
assert cert.exact, cert.as_dict()
show_table([{"length": r.length, "sequences": r.n_sequences, "exact": r.exact}
            for r in cert.lengths],
           title=f"Length checks (held-out at L disjoint from training: {cert.disjoint_at_L})")
'''),
    ("markdown", """
`synth.pipeline.run(names, cfg, workdir)` runs these stages for any list of the 62 tasks
(including integer tasks such as `Sum_Last2`, whose linear networks are read off as integer
lattices rather than FSMs, and counting tasks such as `Majority_0_1`, read off as integer
counters), selects each program on a validation split and certifies it once on the test split,
writes `results.json` after each task and resumes after a kill;
`synth.report.table(results)` puts the outcome beside the published MIPS and GPT-4 columns.
"""),
]
