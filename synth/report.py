"""The results table: our MIPS run beside the published MIPS and GPT-4 columns."""

from __future__ import annotations

from synth import tasks


def table(results: dict) -> str:
  """Markdown table over every task in `results` (registry order) plus the solved counts."""
  rows = ["| # | task | ours | MIPS (paper) | GPT-4 | method | hidden | seconds |",
          "| --- | --- | --- | --- | --- | --- | --- | --- |"]
  ours = paper = gpt4 = total = 0
  for name, task in tasks.TASKS.items():
    r = results.get(name)
    if r is None:
      continue
    total += 1
    ours += bool(r["solved"])
    paper += task.mips_published
    gpt4 += task.gpt4
    secs = r.get("seconds", {}).get("total", 0)
    method = r.get("method") or ("error" if r.get("error") else "-")
    rows.append(f"| {task.index} | {name} | {int(r['solved'])} | {int(task.mips_published)} | "
                f"{int(task.gpt4)} | {method} | {r.get('hidden') or '-'} | {secs:.0f} |")
  seconds = sum(r.get("seconds", {}).get("total", 0) for r in results.values())
  rows.append(f"| | **total** | **{ours}** | {paper} | {gpt4} | | | {seconds:.0f} |")
  return "\n".join(rows) + f"\n\n{ours}/{len(tasks.TASKS)} solved ({total} tasks run)"
