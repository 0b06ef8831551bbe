"""Cells of dafnybench.ipynb: the data, the real verifier, a published model's replay, cheats."""

EXTRAS = "verify,plots"
SMOLLM2 = False
DAFNY = True

TITLE = """
# DafnyBench: the real verifier, published answers and cheat checks

DafnyBench (Loughridge, Sun et al. 2024, arXiv 2406.08467) takes 782 verified Dafny programs,
deletes their hints (loop invariants, assertions, `decreases` clauses) and asks a model to put
hints back so that the verifier accepts the program again, without touching the program or its
specification. This notebook, with the project's `verify` package:

1. loads the benchmark and the published per-program outcomes of five models;
2. runs the Dafny verifier on a few programs with and without their hints;
3. replays one model's published answers through the verifier and the cheat checks;
4. shows answers that make the verifier say yes by cheating, and why each is rejected.
"""

CELLS = [
    ("code", '''
import difflib
import pathlib

import matplotlib.pyplot as plt

from verify import cheat, dafny, data, loop, runner
from stack.errors import UserError

try:
    DATA_DIR = data.find_data_dir()   # $DAFNYBENCH_DIR, else ../shared/dafnybench
except UserError:                     # Colab: fetch the benchmark's data
    !git clone -q --depth 1 https://github.com/sun-wendy/DafnyBench /content/dafnybench
    DATA_DIR = data.find_data_dir("/content/dafnybench")

MODEL = "claude-3-opus"               # whose published answers we replay
PROGRAMS = ["044", "168", "031", "059", "067", "022"][:2 if SMOKE else 6]  # short, need hints
TIMEOUT_S = 60.0                      # verifier time limit per call
verifier = dafny.Dafny(timeout_s=TIMEOUT_S, cache_dir=os.path.join(WORKDIR, "dafny_cache"))
show_table([verifier.describe()], ["dafny_version", "z3_version", "timeout_s", "flags"],
           title="Verifier")
'''),
    ("markdown", """
## 1. The benchmark and the published results

Each published outcome is the attempt at which the model's program first verified (0: the
hint-free input already verifies, 1..10: after that many tries with the verifier's errors fed
back) or `failed`.
"""),
    ("code", '''
tasks = data.load_tasks(DATA_DIR)
by_id = {t.test_id: t for t in tasks}
needs_hints = {t.test_id for t in tasks if not t.verifies_without_hints}
rows, curves = [], {}
for model in data.PUBLISHED_MODELS:
    outcome = data.load_published_outcomes(DATA_DIR, model)
    solved_at = [int(v) for v in outcome.values() if v != "failed"]
    curves[model] = [100 * sum(a <= n for a in solved_at) / len(tasks) for n in range(11)]
    rows.append({"model": model, "success": f"{curves[model][-1]:.1f}%",
                 "needs hints": "{:.1f}%".format(100 * sum(
                     outcome.get(i, "failed") != "failed" for i in needs_hints) / len(needs_hints)),
                 "first attempt": f"{curves[model][1]:.1f}%"})
show_table(rows, title=f"Published results on {len(tasks)} programs "
                       f"({len(needs_hints)} need hints)")

fig, ax = plt.subplots(figsize=(5.5, 3.5))
for model, curve in curves.items():
    ax.plot(range(11), curve, marker="o", markersize=3, label=model)
ax.set(xlabel="attempt (0 = hint-free input)", ylabel="programs verified so far (%)",
       title="Published DafnyBench success by attempt")
ax.grid(alpha=0.3)
ax.legend(fontsize=7)
fig.tight_layout()
fig.savefig(os.path.join(WORKDIR, "published.png"), dpi=110)
plt.close(fig)
show_png(os.path.join(WORKDIR, "published.png"), width=550)
'''),
    ("markdown", """
## 2. Verify programs with and without their hints

The task input (hints removed) fails to verify; the ground truth verifies. The lines a model
has to put back are exactly the diff between the two.
"""),
    ("code", '''
chosen = [by_id[i] for i in PROGRAMS]
texts = [t.hints_removed for t in chosen] + [t.ground_truth for t in chosen]
verdicts = verifier.verify_many(texts, workers=2)
without, with_hints = verdicts[:len(chosen)], verdicts[len(chosen):]
show_table([{"id": t.test_id, "program": t.name, "chars": t.chars, "hint chars": t.hint_chars,
             "no hints": a.status, "first error": a.first_error[:70], "with hints": b.status,
             "seconds": round(a.seconds + b.seconds, 1)}
            for t, a, b in zip(chosen, without, with_hints)], title="Dafny verdicts")

first = chosen[0]
diff = difflib.unified_diff(first.hints_removed.splitlines(), first.ground_truth.splitlines(),
                            "task input", "ground truth", lineterm="", n=1)
display(Markdown(f"Hints of `{first.name}`:\\n```diff\\n" + "\\n".join(diff) + "\\n```"))
'''),
    ("markdown", """
## 3. Replay a published model's answers

`verify.runner.run` is what the command line calls: for each program it verifies the hint-free
input (attempt 0), then the model's answer, judges the answer with both cheat checks, and
writes `results.jsonl`, `summary.json` and plots into its folder (rerunning resumes).
`replay:NAME` answers with the published final output of that model.
"""),
    ("code", '''
replay_dir = pathlib.Path(WORKDIR) / "replay"
summary = runner.run(runner.RunConfig(
    model=f"replay:{MODEL}", out=str(replay_dir), data_dir=str(DATA_DIR), tasks=",".join(PROGRAMS),
    attempts=1, workers=2, timeout_s=TIMEOUT_S,
    verifier_cache=os.path.join(WORKDIR, "dafny_cache")))
published = data.load_published_outcomes(DATA_DIR, MODEL)
records = [r for r in loop.read_jsonl(replay_dir / loop.RESULTS) if r["attempt"] == 1]
show_table([{"id": r["test_id"], "program": r["name"], "verifier": r["status"],
             "paper check": "ok" if r["paper_ok"] else r["paper_reason"][:80],
             "strict check": "ok" if r["strict_ok"] else r["strict_reason"][:80],
             "success here": r["success"], "published": published[r["test_id"]]}
            for r in sorted(records, key=lambda r: r["test_id"])],
           title=f"{MODEL}: published answers, judged here")
'''),
    ("markdown", """
## 4. Cheats the verifier accepts and the checks reject

Each answer below edits the hint-free `SquareRoot` program. The verifier accepts every one
(it is told to skip or to assume the proof), so only the cheat check stands between them and a
solved task. The paper's check compares the requires/ensures lines and bans two strings; the
strict check asks that nothing but hints changed.
"""),
    ("code", '''
task = by_id["044"]
src = task.hints_removed
head, body = src.split("\\n{\\n", 1)
post = "r*r <= N < (r+1)*(r+1)"
assert f"ensures {post}" in src, "the SquareRoot task changed; update the cheats below"
answers = {
    "ground truth (honest hints)": task.ground_truth,
    "assume false": f"{head}\\n{{\\n  assume false;\\n{body}",
    "assume the postcondition": src.rstrip().removesuffix("}") + f"  assume {post};\\n}}\\n",
    "{:verify false}": src.replace("method SquareRoot", "method {:verify false} SquareRoot", 1),
    "{:axiom} lemma": (f"lemma {{:axiom}} Trusted(N: nat, r: nat)\\n  ensures {post}\\n\\n"
                       + src.rstrip().removesuffix("}") + "  Trusted(N, r);\\n}\\n"),
    "deleted ensures": src.replace(f"  ensures {post}\\n", ""),
}
verdicts = verifier.verify_many(list(answers.values()), workers=2)
rows = []
for (name, text), v in zip(answers.items(), verdicts):
    paper = cheat.check(text, task.hints_removed, mode="paper")
    strict = cheat.check(text, task.hints_removed, mode="strict", ground_truth=task.ground_truth)
    rows.append({"answer": name, "Dafny": v.status, "paper check": paper.reason or "ok",
                 "strict check": strict.reason or "ok"})
show_table(rows, title="Who catches what")
assert all(v.verified or v.status == "vacuous" for v in verdicts)  # vacuous: "0 verified, 0 errors"
assert [r["strict check"] == "ok" for r in rows] == [True] + [False] * (len(rows) - 1)
'''),
]
