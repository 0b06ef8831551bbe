"""The runner end to end: LLM back-ends against a local HTTP server, resume, bad input."""
import http.server
import json
import subprocess
import sys
import threading

import pytest

from verify import backends, loop
from stack.errors import UserError
from verify.runner import RunConfig, run
from test_verify_fixtures import GROUND_TRUTH, TASK, make_data_dir

KEY = "sk-test-SECRET-4242"


class FakeLLM(http.server.ThreadingHTTPServer):
  """Serves canned OpenAI- and Anthropic-style replies: 1st a wrong program, then the right one."""

  def __init__(self, first_reply: str):
    super().__init__(("127.0.0.1", 0), _Handler)
    self.first_reply, self.requests = first_reply, []
    self.thread = threading.Thread(target=self.serve_forever, daemon=True)
    self.thread.start()

  @property
  def url(self) -> str:
    return f"http://127.0.0.1:{self.server_address[1]}"

  def close(self):
    self.shutdown()
    self.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
  def log_message(self, *args):  # keep test output clean
    pass

  def do_POST(self):  # pylint: disable=invalid-name
    body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
    headers = {k.lower(): v for k, v in self.headers.items()}
    self.server.requests.append({"path": self.path, "headers": headers, "body": body})
    turns = [m for m in body["messages"] if m["role"] == "user"]
    text = self.server.first_reply if len(turns) == 1 else f"Fixed:\n```dafny\n{GROUND_TRUTH}```\n"
    if self.path == "/chat/completions":
      payload = {"choices": [{"message": {"role": "assistant", "content": text}}]}
    elif self.path == "/v1/messages":
      payload = {"content": [{"type": "text", "text": text}]}
    else:
      self.send_response(404)
      self.end_headers()
      return
    data = json.dumps(payload).encode()
    self.send_response(200)
    self.send_header("Content-Type", "application/json")
    self.send_header("Content-Length", str(len(data)))
    self.end_headers()
    self.wfile.write(data)


@pytest.fixture()
def data_dir(tmp_path):
  return make_data_dir(tmp_path / "data")


def _all_text(*dirs) -> str:
  return "".join(p.read_text(errors="replace") for d in dirs for p in d.rglob("*") if p.is_file())


@pytest.mark.parametrize("api,first", [("openai", f"Here:\n```dafny\n{TASK}```"),
                                       ("anthropic", "I think the program is fine as it is.")])
def test_chat_backend_retries_with_feedback_and_caches(api, first, data_dir, tmp_path, capfd):
  server = FakeLLM(first)
  try:
    cfg = RunConfig(model=f"{api}:toy-model", out=str(tmp_path / "run"), data_dir=str(data_dir), tasks="000",
                    api_url=server.url, api_key=KEY, verifier_cache=str(tmp_path / "vc"),
                    llm_cache=str(tmp_path / "llm"), attempts=3)
    summary = run(cfg)
    recs = loop.read_jsonl(tmp_path / "run" / "results.jsonl")
    assert [(r["attempt"], r["success"]) for r in recs] == [(0, False), (1, False), (2, True)]
    assert summary["success"]["all"]["attempt"]["solved"] == 1 and summary["success_by_attempt"]["all"] == [0.0, 0.0, 1.0]
    second = server.requests[1]["body"]["messages"][-1]["content"]
    if api == "openai":  # the verifier's complaint goes back to the model
      assert recs[1]["status"] == "failed" and "Dafny rejected" in second and "Error" in second
      assert server.requests[0]["headers"]["authorization"] == f"Bearer {KEY}"
    else:  # no code block: a recorded failed attempt, and the model is told so
      assert recs[1]["status"] == "no_program" and "no ```dafny code block" in second
      assert server.requests[0]["headers"]["x-api-key"] == KEY
      assert all(m["role"] != "system" for m in server.requests[0]["body"]["messages"])
    assert server.requests[0]["body"]["temperature"] == 0.3 and server.requests[0]["body"]["max_tokens"] == 4096
    # The reply cache: a fresh run folder costs no HTTP call.
    run(RunConfig(**{**cfg.__dict__, "out": str(tmp_path / "run2")}))
    assert len(server.requests) == 2
    assert (tmp_path / "run" / "success_by_attempt.png").stat().st_size > 1000
  finally:
    server.close()
  out, err = capfd.readouterr()
  assert KEY not in _all_text(tmp_path) + out + err


def test_unreachable_endpoint_is_one_clear_line():
  be = backends.ChatBackend("openai", "m", url="http://127.0.0.1:9", key=KEY, cache_dir=None, http_retries=0)
  with pytest.raises(UserError, match="cannot reach chat endpoint") as e:
    be.complete([{"role": "user", "content": "hi"}])
  assert KEY not in str(e.value) and "\n" not in str(e.value) and KEY not in repr(be)


def test_static_backends_resume_and_report(data_dir, tmp_path):
  cfg = RunConfig(model="oracle", out=str(tmp_path / "o"), data_dir=str(data_dir),
                  verifier_cache=str(tmp_path / "vc"), cheat_check="paper")
  summary = run(cfg)
  assert summary["success"]["all"]["attempt"] == {"n": 2, "solved": 2, "rate": 1.0}
  assert summary["success"]["ground_truth_verifies"]["attempt"]["n"] == 2
  assert summary["success"]["needs_hints"]["attempt"]["n"] == 1
  before = (tmp_path / "o" / "results.jsonl").read_text()
  run(cfg)  # a rerun skips finished tasks and keeps every line
  assert (tmp_path / "o" / "results.jsonl").read_text() == before
  # Cheat-check mode is part of a run folder's identity.
  with pytest.raises(UserError, match="choose another --out"):
    run(RunConfig(**{**cfg.__dict__, "cheat_check": "strict"}))
  none = run(RunConfig(**{**cfg.__dict__, "model": "none", "out": str(tmp_path / "n")}))
  assert none["solved_ids"] == ["001"]


def test_program_that_does_not_parse_is_recorded(data_dir, tmp_path):
  broken = data_dir / "DafnyBench" / "test.json"
  rows = json.loads(broken.read_text())
  rows[0]["hints_removed"] = rows[0]["hints_removed"].replace("while i < n", "while i < n invariant")
  broken.write_text(json.dumps(rows))
  run(RunConfig(model="none", out=str(tmp_path / "b"), data_dir=str(data_dir), tasks="000",
                verifier_cache=str(tmp_path / "vc")))
  (rec,) = loop.read_jsonl(tmp_path / "b" / "results.jsonl")
  assert rec["status"] == "parse_error" and not rec["success"] and rec["final"]


def test_cli_bad_input_exits_2_with_one_line(tmp_path):
  proc = subprocess.run([sys.executable, "-m", "verify.run", "--model=none", f"--out={tmp_path / 'x'}",
                         f"--data_dir={tmp_path / 'missing'}"], capture_output=True, text=True, timeout=120)
  assert proc.returncode == 2 and proc.stderr.strip().startswith("error: no DafnyBench data")
  assert len(proc.stderr.strip().splitlines()) == 1
  assert "jax" not in subprocess.run([sys.executable, "-c", "import sys, verify.run; print(sorted(sys.modules))"],
                                     capture_output=True, text=True, timeout=120).stdout


def test_cli_flags_are_the_config_fields(data_dir, tmp_path):
  """Every RunConfig field is a flag of the same name (here two the old hand-copied list lacked)."""
  proc = subprocess.run([sys.executable, "-m", "verify.run", "--model=none", f"--out={tmp_path / 'n'}",
                         f"--data_dir={data_dir}", "--tasks=001", f"--verifier_cache={tmp_path / 'vc'}",
                         "--llm_cache=unused", "--timeout_s=45"], capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert list((tmp_path / "vc").rglob("*.json"))
  info = json.loads((tmp_path / "n" / "run.json").read_text())
  assert info["verifier"]["timeout_s"] == 45.0 and info["tasks_selected"] == 1


def test_interrupted_task_resumes_without_duplicates(data_dir, tmp_path):
  cfg = RunConfig(model="heuristic", out=str(tmp_path / "h"), data_dir=str(data_dir), tasks="000",
                  verifier_cache=str(tmp_path / "vc"))
  run(cfg)
  path = tmp_path / "h" / "results.jsonl"
  lines = path.read_text().splitlines()
  assert len(lines) >= 2 and '"final": true' in lines[-1]
  # A crash after attempt 0 was written: the final line never made it (plus a torn half line).
  path.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:20])
  run(cfg)
  recs = loop.read_jsonl(path)
  keys = [(r["test_id"], r["attempt"]) for r in recs]
  assert len(keys) == len(set(keys)) and recs[-1].get("final") and recs[-1]["success"]
