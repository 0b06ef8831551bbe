"""The results table: our MIPS run beside the published MIPS and GPT-4 columns, with the
certificate of every selected program (exact at L / 2L / 4L / 10L on the test split), the size
of its state (FSM states, or integer state variables), its program lines, and whether the
held-out split at L could be disjoint from training."""

from __future__ import annotations

from synth import certify, tasks

HEADER = ("| # | task | solved | exact L / 2L / 4L / 10L | held-out at L disjoint | states | "
          "program lines | method | MIPS (paper) | GPT-4 | seconds |")


def _exact_cells(row: dict) -> str:
  lengths = row.get("certificate", {}).get("lengths", {})
  if not lengths:
    return "- / - / - / -"
  return " / ".join(str(int(lengths[f"{k}L"]["exact"])) if f"{k}L" in lengths else "-"
                    for k in certify.LENGTH_FACTORS)


def _disjoint_cell(row: dict, task: tasks.Task) -> str:
  cert = row.get("certificate")
  if cert is None:
    return "-"
  if cert["disjoint_at_L"]:
    return "yes"
  space = (task.high - task.low + 1) ** (task.n_in * task.length)
  return f"no ({space:,} sequences, {100 * (1 - cert['unseen_at_L']):.0f}% in training)"


def _states_cell(row: dict) -> str:
  if row.get("states") is None:
    return "-"
  return f"{row['states']}" if row.get("machine") == "fsm" else f"{row['states']} int"


def table(results: dict) -> str:
  """Markdown table over every task in `results` (registry order) plus the solved counts."""
  rows = [HEADER, "| " + " | ".join(["---"] * (HEADER.count("|") - 1)) + " |"]
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
    rows.append(f"| {task.index} | {name} | {int(r['solved'])} | {_exact_cells(r)} | "
                f"{_disjoint_cell(r, task)} | {_states_cell(r)} | {r.get('lines') or '-'} | "
                f"{method} | {int(task.mips_published)} | {int(task.gpt4)} | {secs:.0f} |")
  seconds = sum(r.get("seconds", {}).get("total", 0) for r in results.values())
  cpu = sum(r.get("cpu_seconds", 0) for r in results.values())
  rows.append(f"| | **total** | **{ours}** | | | | | | {paper} | {gpt4} | {seconds:.0f} |")
  missing = [n for n in tasks.TASKS if n not in results]
  tail = (f"\n\n{ours}/{len(tasks.TASKS)} solved ({total} tasks run; {seconds:.0f} s wall clock, "
          f"{cpu:.0f} CPU seconds)")
  if missing:
    tail += f"; PARTIAL: not run: {', '.join(missing)}"
  return "\n".join(rows) + tail
