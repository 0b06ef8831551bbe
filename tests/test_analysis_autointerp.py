"""The auto-interpretability harness end to end against a real HTTP server on 127.0.0.1.

The server speaks the OpenAI chat-completions protocol and plays a deterministic 'LLM': asked to
explain, it names the keyword found in most marked excerpts; asked to detect, it picks the
excerpts containing a keyword the explanation names. So every score is known in advance.
"""

import glob
import http.server
import json
import re
import socket
import threading

import numpy as np
import pytest

from sae.analysis import autointerp, contexts
from stack import chat
from stack.errors import UserError

KEY = "sk-test-SECRET-4242"
KEYWORDS = (" cat", " dog", " fish")
WORDS = (" the", " a", " of", " and", " to", " in", " is", " it") + KEYWORDS
SEQ_LEN = 8


def _llm_answer(messages):
  text = messages[-1]["content"]
  excerpts = re.findall(r"^\d+\. (.*)$", text, flags=re.MULTILINE)
  explanation = re.search(r"^Explanation: (.*)$", text, flags=re.MULTILINE)
  if explanation is None:  # explanation prompt: name the commonest keyword
    counts = {k.strip(): sum(k in e for e in excerpts) for k in KEYWORDS}
    best = max(sorted(counts), key=counts.get)
    return f'Explanation: "the word {best}"' if counts[best] else "Nothing specific."
  named = [k for k in KEYWORDS if k.strip() in explanation.group(1)]
  picks = [str(i + 1) for i, e in enumerate(excerpts) if any(k in e for k in named)]
  return "Let me look.\n" + (", ".join(picks) if picks else "none")


class _Handler(http.server.BaseHTTPRequestHandler):

  def log_message(self, *args):  # keep the test output quiet
    pass

  def _send(self, code, body, headers=()):
    data = json.dumps(body).encode()
    self.send_response(code)
    self.send_header("Content-Type", "application/json")
    self.send_header("Content-Length", str(len(data)))
    for name, value in headers:
      self.send_header(name, value)
    self.end_headers()
    self.wfile.write(data)

  def do_POST(self):
    server = self.server
    with server.lock:
      server.requests += 1
      script = server.script.pop(0) if server.script else None
    payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
    if script == "sleep":  # outlast the client's timeout; it has hung up by then
      threading.Event().wait(1.0)
      return None
    if isinstance(script, int) and script == 401:
      return self._send(401, {"error": "revoked"})
    if isinstance(script, int):
      return self._send(script, {"error": "busy"}, [("Retry-After", "0")])
    auth = self.headers.get("Authorization", "")
    if self.path != "/v1/chat/completions" or auth != f"Bearer {KEY}":
      return self._send(401, {"error": f"bad credentials: {auth}"})  # echoes the key back
    if payload["model"] != "stub-model" or payload["temperature"] != 0.0:
      return self._send(404, {"error": "unknown model"})
    self._send(200, {"choices": [{"message": {"role": "assistant",
                                              "content": _llm_answer(payload["messages"])}}]})


@pytest.fixture(name="server")
def fixture_server():
  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
  server.daemon_threads = True
  server.lock = threading.Lock()
  server.requests = 0
  server.script = []  # per-request overrides: an HTTP code to answer, or "sleep"
  thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
  thread.start()
  server.url = f"http://127.0.0.1:{server.server_address[1]}"
  yield server
  server.shutdown()
  server.server_close()


def _client(server, tmp_path, **kwargs):
  kwargs.setdefault("api_key", KEY)
  kwargs.setdefault("cache_dir", str(tmp_path / "cache"))
  return chat.ChatClient(server.url, "stub-model", backoff_s=0.01, **kwargs)


def _stream(num_seqs=240, seed=0):
  """Token ids in rows of SEQ_LEN; each row holds at most one keyword; activations (T, 4)."""
  rng = np.random.default_rng(seed)
  ids = rng.integers(0, 8, size=(num_seqs, SEQ_LEN))
  kind = rng.integers(0, 4, size=num_seqs)  # 0 cat, 1 dog, 2 fish, 3 none
  ids[kind < 3, 3] = 8 + kind[kind < 3]
  acts = np.zeros((num_seqs, SEQ_LEN, 4))
  acts[kind == 0, :, 0] = 1.0                         # cat rows: explained perfectly
  acts[kind == 1, :, 1] = 2.0                         # dog rows rank above ...
  acts[kind == 2, :, 1] = 1.0                         # ... fish rows: explanation says dog
  acts[(kind == 3) & (np.arange(num_seqs) % 2 == 0), :, 2] = 1.0  # keyword-free rows
  acts[kind.tolist().index(3), 0, 3] = 1.0            # fires once: too few to score
  return ids.reshape(-1), acts.reshape(-1, 4)


def _decode(ids):
  return "".join(WORDS[i] for i in ids)


def _run(server, tmp_path, out_name="latents.jsonl", num_workers=1, **client_kwargs):
  ids, acts = _stream()
  ctx = contexts.collect_contexts(acts, len(ids), [100, 101, 102, 103], chunk=500,
                                  num_top=5, num_random=12, verbose=False)
  cfg = autointerp.AutointerpConfig(num_explain=5, num_active=6, num_inactive=6, left=8,
                                    right=8, seq_len=SEQ_LEN)
  client = _client(server, tmp_path, **client_kwargs)
  out = str(tmp_path / out_name)
  summary = autointerp.run_autointerp(ids, ctx, _decode, client, out, experts=[0, 0, 1, 1],
                                      cfg=cfg, num_workers=num_workers, verbose=False)
  with open(out) as f:
    lines = [line for line in f if line.endswith("}\n")]  # not a half-written one
  rows = {r["latent"]: r for r in map(json.loads, lines)}
  return summary, rows, client, acts


def test_harness_end_to_end_scores_known_values(server, tmp_path, capsys):
  summary, rows, client, acts = _run(server, tmp_path)
  assert server.requests == 6 and client.num_requests == 6  # 2 per scored latent
  cat, dog, blank, rare = rows[100], rows[101], rows[102], rows[103]
  assert cat["explanation"] == "the word cat" and cat["expert"] == 0
  assert (cat["detection_accuracy"], cat["precision"], cat["recall"]) == (1.0, 1.0, 1.0)
  assert all("<< " in t for t in cat["explain_contexts"])
  # dog/fish latent: the explanation says dog, so fish excerpts are misses; score by hand.
  assert dog["explanation"] == "the word dog"
  trials = dog["detection"]
  assert [t["active"] for t in trials] == [bool(acts[t["position"], 1] > 0) for t in trials]
  assert [t["selected"] for t in trials] == [" dog" in t["text"] for t in trials]
  hits = sum(t["selected"] for t in trials if t["active"])
  assert 0 < hits < 6  # the seeded sample mixes dog and fish rows
  assert dog["recall"] == pytest.approx(hits / 6)
  assert dog["detection_accuracy"] == pytest.approx((hits / 6 + 1.0) / 2)
  assert dog["precision"] == 1.0
  assert {t["position"] for t in trials if t["active"]}.isdisjoint(dog["explain_positions"])
  assert all(acts[p, 1] == 2.0 for p in dog["explain_positions"])  # the top ones: dog rows
  assert blank["explanation"] == "Nothing specific."
  assert (blank["detection_accuracy"], blank["precision"], blank["recall"]) == (0.5, None, 0.0)
  assert "skipped" in rare and rare["expert"] == 1
  assert summary["num_latents"] == 4 and summary["num_scored"] == 3
  assert summary["mean_detection_accuracy"] == pytest.approx(
      (1.0 + dog["detection_accuracy"] + 0.5) / 3)
  assert summary["per_expert_mean_detection_accuracy"]["1"] == 0.5
  with open(tmp_path / "latents.summary.json") as f:
    assert json.load(f) == summary
  # The key never lands in results, cache or logs.
  for path in glob.glob(str(tmp_path / "**" / "*"), recursive=True):
    if path.endswith(".json") or path.endswith(".jsonl"):
      assert "SECRET" not in open(path).read()
  assert "SECRET" not in capsys.readouterr().out + repr(client)


def test_cache_and_resume_avoid_requests(server, tmp_path):
  first, rows, _, _ = _run(server, tmp_path)
  assert server.requests == 6
  again, rows_again, client, _ = _run(server, tmp_path, out_name="second.jsonl")
  assert server.requests == 6 and client.num_cache_hits == 6  # a new output, all from cache
  assert rows_again == rows and again == first
  resumed, _, client, _ = _run(server, tmp_path)  # same output: every latent already done
  assert client.num_cache_hits == 0 and client.num_requests == 0 and resumed == first
  with open(tmp_path / "latents.jsonl") as f:
    assert len(f.readlines()) == 4


def test_parallel_workers_give_the_same_rows(server, tmp_path):
  first, rows, _, _ = _run(server, tmp_path, cache_dir=None)
  again, rows_again, client, _ = _run(server, tmp_path, out_name="parallel.jsonl",
                                      num_workers=3, cache_dir=None)
  assert rows_again == rows and again == first and client.num_requests == 6


def test_error_mid_run_keeps_rows_and_resumes(server, tmp_path):
  server.script = [None, None, 401]  # the second latent's explanation request is refused
  with pytest.raises(UserError, match="HTTP 401"):
    _run(server, tmp_path)
  with open(tmp_path / "latents.jsonl") as f:
    assert [json.loads(line)["latent"] for line in f] == [100]
  _, rows, client, _ = _run(server, tmp_path)
  assert rows[100]["detection_accuracy"] == 1.0
  assert sorted(rows) == [100, 101, 102, 103]
  # Only the two latents still to score are asked about (a worker may already have cached one).
  assert client.num_requests + client.num_cache_hits == 4


def test_half_written_row_is_redone(server, tmp_path):
  _, rows, _, _ = _run(server, tmp_path)
  with open(tmp_path / "latents.jsonl") as f:
    lines = f.readlines()
  with open(tmp_path / "latents.jsonl", "w") as f:
    f.writelines(lines[:2] + [lines[2][:40]])  # killed while writing the third row
  _, rows_again, _, _ = _run(server, tmp_path)
  assert rows_again == rows


def test_retries_on_429_5xx_and_timeout(server, tmp_path):
  server.script = [429, 503, "sleep"]
  client = _client(server, tmp_path, timeout_s=0.3, cache_dir=None)
  reply = client.complete([{"role": "user", "content": "Explanation: cat\n1. a cat"}])
  assert reply.endswith("1") and client.num_requests == 4 and server.requests == 4


def test_gives_up_after_retries(server, tmp_path):
  server.script = [500] * 3
  client = _client(server, tmp_path, max_retries=2)
  with pytest.raises(UserError, match="failed 3 times, last: HTTP 500"):
    client.complete([{"role": "user", "content": "hi"}])
  assert server.requests == 3


def test_refused_request_never_shows_the_key(server, tmp_path):
  wrong = "sk-wrong-SECRET-777"
  client = _client(server, tmp_path, api_key=wrong)
  with pytest.raises(UserError) as err:
    client.complete([{"role": "user", "content": "hi"}])
  message = str(err.value)
  assert "HTTP 401" in message and "SECRET" not in message and "\n" not in message
  assert server.requests == 1  # a 401 is not retried


def test_key_from_environment(server, tmp_path, monkeypatch):
  monkeypatch.setenv("OPENAI_API_KEY", KEY)
  client = chat.ChatClient(server.url + "/v1/", "stub-model")
  assert client.url.endswith("127.0.0.1:%d/v1/chat/completions" % server.server_address[1])
  assert client.complete([{"role": "user", "content": "1. a cat"}]).startswith("Explanation")


def test_unreachable_endpoint_is_one_clear_line():
  with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
  client = chat.ChatClient(f"http://127.0.0.1:{port}", "m", api_key=KEY, timeout_s=2)
  with pytest.raises(UserError, match="cannot reach chat endpoint") as err:
    client.complete([{"role": "user", "content": "hi"}])
  assert "\n" not in str(err.value) and "SECRET" not in str(err.value)
  with pytest.raises(UserError):
    chat.ChatClient("localhost:8000", "m")


def test_parsers_and_scores():
  assert autointerp.parse_explanation('\n  Explanation: "fires on cats".\nmore') == 'fires on cats".'
  assert autointerp.parse_detection("I think 12 is wrong.\nAnswer: 3, 1, 3, 9", 5) == [0, 2]
  assert autointerp.parse_detection("none", 4) == []
  s = autointerp.detection_scores([0, 1, 2], [True, True, False, False, True])
  assert (s["tp"], s["fp"], s["tn"], s["fn"]) == (2, 1, 1, 1)
  assert s["detection_accuracy"] == pytest.approx((2 / 3 + 1 / 2) / 2)
  assert s["precision"] == pytest.approx(2 / 3) and s["recall"] == pytest.approx(2 / 3)
