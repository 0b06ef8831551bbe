"""Auto-interpretability: an LLM explains each latent from its top contexts, then detection scoring.

Detection: the model sees the explanation and a shuffled mix of contexts where the latent fired
(drawn uniformly from all its firings, never the ones the explainer saw) and contexts where it
did not, and names the ones the explanation fits. Score = balanced accuracy (mean of recall on
firing and non-firing contexts), so 0.5 is chance whatever the mix; precision and recall too.

Results go to a JSONL, one row per latent, appended as each latent finishes; a rerun skips the
latents already there, and every LLM reply is cached, so nothing is lost or paid for twice.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import re
import time
from typing import Callable, Optional, Sequence

import numpy as np

from sae.analysis.contexts import Contexts, render
from stack.chat import ChatClient
from stack.fileio import append_jsonl, read_jsonl, write_json, write_text

EXPLAIN_SYSTEM = (
    "You are studying a feature of a language model that fires on particular tokens. You will "
    "see text excerpts; in each, the token where the feature fires most is marked <<like this>>. "
    "Write one short sentence saying what the feature detects. Reply with that sentence only.")
DETECT_SYSTEM = (
    "You are checking an explanation of a language-model feature. You will see the explanation "
    "and numbered text excerpts. Name the excerpts the explanation fits, that is, those that "
    "contain a token on which the described feature would fire. Reply with the numbers only, "
    "comma-separated, or 'none'.")


@dataclasses.dataclass
class AutointerpConfig:
  num_explain: int = 10    # top activating contexts shown to the explainer
  num_active: int = 5      # firing contexts in the detection test
  num_inactive: int = 5    # non-firing contexts in the detection test
  left: int = 24           # tokens of context before the token
  right: int = 4           # and after it
  seq_len: Optional[int] = None  # clip contexts to rows of this length in the stream
  seed: int = 0


def explanation_messages(contexts: Sequence[str]) -> list[dict]:
  lines = "\n".join(f"{i + 1}. {text}" for i, text in enumerate(contexts))
  return [{"role": "system", "content": EXPLAIN_SYSTEM},
          {"role": "user", "content": f"Excerpts:\n{lines}\n\nWhat does the feature detect?"}]


def parse_explanation(reply: str) -> str:
  """The first non-empty line, without an 'Explanation:' label or wrapping quotes."""
  line = next((s.strip() for s in reply.splitlines() if s.strip()), "")
  line = re.sub(r"^\W*explanation\W*:\s*", "", line, flags=re.IGNORECASE)
  return line.strip().strip("\"'").strip()


def detection_messages(explanation: str, contexts: Sequence[str]) -> list[dict]:
  lines = "\n".join(f"{i + 1}. {text}" for i, text in enumerate(contexts))
  return [{"role": "system", "content": DETECT_SYSTEM},
          {"role": "user", "content": f"Explanation: {explanation}\n\nExcerpts:\n{lines}\n\n"
                                      "Which excerpts does the explanation fit?"}]


def parse_detection(reply: str, num_contexts: int) -> list[int]:
  """0-based indices of the excerpts the reply names (numbers 1..num_contexts; others ignored).

  Models sometimes reason before answering, so only the last line that names a number counts.
  """
  for line in reversed(reply.strip().splitlines()):
    numbers = [int(n) for n in re.findall(r"\d+", line)]
    if numbers:
      return sorted({n - 1 for n in numbers if 1 <= n <= num_contexts})
  return []


def detection_scores(selected: Sequence[int], is_active: Sequence[bool]) -> dict:
  """Balanced accuracy, accuracy, precision (None if nothing selected), recall, and counts."""
  truth = np.asarray(is_active, bool)
  chosen = np.zeros_like(truth)
  chosen[list(selected)] = True
  tp, fp = int(np.sum(chosen & truth)), int(np.sum(chosen & ~truth))
  fn, tn = int(np.sum(~chosen & truth)), int(np.sum(~chosen & ~truth))
  recall = tp / (tp + fn) if tp + fn else None
  specificity = tn / (tn + fp) if tn + fp else None
  balanced = (recall + specificity) / 2 if recall is not None and specificity is not None else None
  return {"detection_accuracy": balanced, "accuracy": (tp + tn) / truth.size if truth.size else None,
          "precision": tp / (tp + fp) if tp + fp else None, "recall": recall,
          "tp": tp, "fp": fp, "tn": tn, "fn": fn}


def score_latent(column: int, contexts: Contexts, token_ids_T: np.ndarray,
                 decode: Callable[[Sequence[int]], str], client: ChatClient,
                 cfg: AutointerpConfig) -> dict:
  """Explains and scores the latent in one column of the collected contexts."""
  latent = int(contexts.latent_ids[column])
  view = dict(left=cfg.left, right=cfg.right, seq_len=cfg.seq_len)
  row = {"latent": latent, "fire_count": int(contexts.fire_count_L[column])}
  top = [int(p) for p in contexts.top_positions_LK[column, :cfg.num_explain] if p >= 0]
  shown = set(top)
  active = [int(p) for p in contexts.active_positions_LR[column]
            if p >= 0 and int(p) not in shown][:cfg.num_active]
  inactive = [int(p) for p in contexts.inactive_positions_LR[column] if p >= 0][:cfg.num_inactive]
  if not (top and active and inactive):
    return {**row, "skipped": "too few firing or non-firing contexts for detection"}
  explain_texts = [render(token_ids_T, p, decode, **view) for p in top]
  reply = client.complete(explanation_messages(explain_texts))
  explanation = parse_explanation(reply)
  # One fixed order per (seed, latent): a rerun asks the same question and hits the cache.
  rng = np.random.default_rng([cfg.seed, latent])
  trials = [(p, True) for p in active] + [(p, False) for p in inactive]
  trials = [trials[i] for i in rng.permutation(len(trials))]
  texts = [render(token_ids_T, p, decode, mark=False, **view) for p, _ in trials]
  selected = parse_detection(client.complete(detection_messages(explanation, texts)), len(texts))
  chosen = set(selected)
  return {**row, "explanation": explanation,
          **detection_scores(selected, [is_active for _, is_active in trials]),
          "top_activations": [float(v) for v in contexts.top_values_LK[column, :len(top)]],
          "explain_positions": top, "explain_contexts": explain_texts,
          "detection": [{"position": p, "active": a, "selected": i in chosen, "text": t}
                        for i, ((p, a), t) in enumerate(zip(trials, texts))]}


def _read_rows(path: str) -> list[dict]:
  """The complete rows of a results JSONL. A row cut short by a killed run is dropped from the
  file too (it is redone), so the rows appended next start on a line of their own."""
  if not os.path.exists(path):
    return []
  rows = read_jsonl(path)
  if os.path.getsize(path):
    with open(path, "rb") as f:
      f.seek(-1, os.SEEK_END)
      torn = f.read(1) != b"\n"
    if torn:
      write_text(path, "".join(json.dumps(row) + "\n" for row in rows))
  return rows


def summarize(rows: Sequence[dict]) -> dict:
  # Sorted so the float sums do not depend on the order parallel workers finished in.
  scored = sorted((r for r in rows if r.get("detection_accuracy") is not None),
                  key=lambda r: r["latent"])
  acc = np.array([r["detection_accuracy"] for r in scored], np.float64)
  mean = lambda key: (float(np.mean([r[key] for r in scored if r[key] is not None]))
                      if any(r[key] is not None for r in scored) else None)
  per_expert: dict[str, list[float]] = {}
  for r in scored:
    if r.get("expert") is not None:
      per_expert.setdefault(str(r["expert"]), []).append(r["detection_accuracy"])
  return {"num_latents": len(rows), "num_scored": len(scored),
          "num_skipped": len(rows) - len(scored),
          "mean_detection_accuracy": float(acc.mean()) if acc.size else None,
          "median_detection_accuracy": float(np.median(acc)) if acc.size else None,
          "std_detection_accuracy": float(acc.std()) if acc.size else None,
          "mean_precision": mean("precision"), "mean_recall": mean("recall"),
          "per_expert_mean_detection_accuracy": {e: float(np.mean(v)) for e, v in per_expert.items()}}


def summary_path(out_path: str) -> str:
  return os.path.splitext(out_path)[0] + ".summary.json"


def run_autointerp(token_ids_T: np.ndarray, contexts: Contexts, decode: Callable[[Sequence[int]], str],
                   client: ChatClient, out_path: str, *, experts: Optional[Sequence[int]] = None,
                   cfg: Optional[AutointerpConfig] = None, num_workers: int = 1,
                   verbose: bool = True) -> dict:
  """Explains and scores every latent of `contexts`, appending rows to out_path (JSONL).

  experts gives each column's expert (None for a dense SAE). Latents already in out_path are
  skipped. num_workers latents are in flight at once (the LLM calls dominate); rows are written
  by this thread as they finish. Writes the summary of all rows to <out_path stem>.summary.json
  and returns it.
  """
  cfg = cfg or AutointerpConfig()
  done = {r["latent"] for r in _read_rows(out_path)}
  todo = [c for c in range(len(contexts.latent_ids)) if int(contexts.latent_ids[c]) not in done]
  os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
  began = time.time()
  pool = concurrent.futures.ThreadPoolExecutor(max(1, num_workers))
  try:
    futures = {pool.submit(score_latent, c, contexts, token_ids_T, decode, client, cfg): c
               for c in todo}
    for i, future in enumerate(concurrent.futures.as_completed(futures)):
      row = future.result()
      row["expert"] = None if experts is None else int(experts[futures[future]])
      append_jsonl(out_path, row)
      if verbose:
        rate = (i + 1) / max(time.time() - began, 1e-9)
        print(f"autointerp {i + 1}/{len(todo)} latents, {rate:.2f}/s, "
              f"ETA {(len(todo) - i - 1) / rate:.0f}s, requests {client.num_requests}, "
              f"cache hits {client.num_cache_hits}", flush=True)
  finally:
    pool.shutdown(wait=True, cancel_futures=True)  # on an error: stop, keep what is written
  summary = {**summarize(_read_rows(out_path)), "model": client.model}
  write_json(summary_path(out_path), summary)
  return summary
