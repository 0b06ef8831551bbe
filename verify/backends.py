"""Where answers come from: the program itself, the ground truth, published outputs, or an LLM.

A backend proposes one program per attempt, seeing the earlier attempts of the same task (each
with its verifier result and cheat verdict). Chat back-ends speak the OpenAI chat-completions or
Anthropic Messages protocol over urllib, and cache every reply on disk by (protocol, model,
messages, sampling settings) so an interrupted run never pays for a call twice.
"""
import dataclasses
import hashlib
import json
import os
import pathlib
import time
import urllib.error
import urllib.request
from typing import Protocol, Sequence

from verify import prompt
from verify.data import Task
from stack.errors import UserError

_REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_CACHE = _REPO_ROOT / ".cache" / "llm"
DEFAULT_URLS = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com"}
KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}


@dataclasses.dataclass(frozen=True)
class Proposal:
  program: str | None       # None: the reply held no program (a failed attempt, with `error`)
  reply: str = ""           # the raw model reply, for the conversation
  error: str = ""


@dataclasses.dataclass(frozen=True)
class Attempt:
  proposal: Proposal
  verifier_output: str | None   # None when verified; "" on a time-out
  cheat_reason: str              # "" when the answer passed the cheat check in force


class Backend(Protocol):
  name: str

  def propose(self, task: Task, history: Sequence[Attempt]) -> Proposal | None:
    """The next attempt's program, or None when this backend has nothing more to offer."""


class StaticBackend:
  """One fixed answer per task: the ground truth or a published output; `none` proposes nothing,
  so only attempt 0 (the hint-free input, verified by the loop itself) counts."""

  def __init__(self, name: str, answers: dict[str, str] | None = None, field: str = ""):
    self.name, self._answers, self._field = name, answers, field

  def propose(self, task: Task, history: Sequence[Attempt]) -> Proposal | None:
    if history or not (self._field or self._answers is not None):
      return None
    if self._answers is not None:
      text = self._answers.get(task.test_id)
      return Proposal(text, error="" if text is not None else "no published output for this task")
    return Proposal(getattr(task, self._field))


class ChatBackend:
  """An LLM behind an OpenAI-compatible or Anthropic Messages endpoint, with the paper's loop."""

  def __init__(self, api: str, model: str, url: str | None = None, key: str | None = None,
               temperature: float = 0.3, max_tokens: int = 4096,
               cache_dir: str | os.PathLike | None = DEFAULT_CACHE, timeout_s: float = 300.0,
               http_retries: int = 3):
    if api not in DEFAULT_URLS:
      raise UserError(f"unknown chat protocol {api!r}; use openai:MODEL or anthropic:MODEL")
    self.name = f"{api}:{model}"
    self.api, self.model = api, model
    self.url = (url or DEFAULT_URLS[api]).rstrip("/")
    self._key = key or os.environ.get(KEY_ENV[api]) or os.environ.get("DAFNYBENCH_API_KEY") or ""
    self.temperature, self.max_tokens = temperature, max_tokens
    self.cache_dir = pathlib.Path(cache_dir) if cache_dir else None
    self.timeout_s, self.http_retries = timeout_s, http_retries
    self.calls = 0  # HTTP calls actually made (cache hits excluded)

  def __repr__(self) -> str:  # never show the key
    return f"ChatBackend({self.name!r}, url={self.url!r})"

  def messages_for(self, task: Task, history: Sequence[Attempt]) -> list[dict]:
    msgs = [{"role": "system", "content": prompt.SYSTEM},
            {"role": "user", "content": prompt.first_message(task.hints_removed)}]
    for att in history:
      msgs.append({"role": "assistant", "content": att.proposal.reply or "(empty reply)"})
      if att.proposal.program is None:
        msgs.append({"role": "user", "content": "Your reply contained no ```dafny code block. "
                     "Reply with the complete program in one ```dafny block.\n"})
      else:
        msgs.append({"role": "user", "content": prompt.feedback_message(att.verifier_output, att.cheat_reason)})
    return msgs

  def propose(self, task: Task, history: Sequence[Attempt]) -> Proposal | None:
    reply = self.complete(self.messages_for(task, history))
    code = prompt.extract_code(reply)
    if code is None:
      return Proposal(None, reply, "the reply has no ```dafny code block")
    return Proposal(code, reply)

  def _cache_path(self, messages: list[dict]) -> pathlib.Path | None:
    if not self.cache_dir:
      return None
    key = json.dumps([self.api, self.model, messages, self.temperature, self.max_tokens], sort_keys=True)
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return self.cache_dir / digest[:2] / f"{digest}.json"

  def complete(self, messages: list[dict]) -> str:
    path = self._cache_path(messages)
    if path and path.is_file():
      return json.loads(path.read_text("utf-8"))["reply"]
    reply = self._call(messages)
    if path:
      path.parent.mkdir(parents=True, exist_ok=True)
      tmp = path.with_suffix(f".tmp{os.getpid()}")
      tmp.write_text(json.dumps({"model": self.name, "reply": reply}), "utf-8")
      os.replace(tmp, path)
    return reply

  def _request(self, messages: list[dict]) -> urllib.request.Request:
    if self.api == "openai":
      body = {"model": self.model, "messages": messages, "temperature": self.temperature,
              "max_tokens": self.max_tokens}
      headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
      return self._post(f"{self.url}/chat/completions", body, headers)
    system = "\n".join(m["content"] for m in messages if m["role"] == "system")
    body = {"model": self.model, "system": system, "max_tokens": self.max_tokens,
            "temperature": self.temperature, "messages": [m for m in messages if m["role"] != "system"]}
    headers = {"x-api-key": self._key, "anthropic-version": "2023-06-01"}
    return self._post(f"{self.url}/v1/messages", body, headers)

  @staticmethod
  def _post(url: str, body: dict, headers: dict) -> urllib.request.Request:
    return urllib.request.Request(url, data=json.dumps(body).encode("utf-8"), method="POST",
                                  headers={"Content-Type": "application/json", **headers})

  def _redact(self, text: str) -> str:
    return text.replace(self._key, "***") if self._key else text

  def _call(self, messages: list[dict]) -> str:
    for i in range(self.http_retries + 1):
      try:
        with urllib.request.urlopen(self._request(messages), timeout=self.timeout_s) as resp:
          payload = json.loads(resp.read().decode("utf-8"))
        self.calls += 1
        return self._reply_text(payload)
      except urllib.error.HTTPError as e:
        detail = self._redact(e.read().decode("utf-8", "replace"))[:200]
        if e.code in (429, 500, 502, 503, 504, 529) and i < self.http_retries:
          time.sleep(min(60.0, 2.0 ** i))
          continue
        hint = "; check --api_key or $" + KEY_ENV[self.api] if e.code in (401, 403) else ""
        raise UserError(f"model endpoint {self.url} answered HTTP {e.code}: {detail}{hint}") from None
      except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
        if i < self.http_retries:
          time.sleep(min(60.0, 2.0 ** i))
          continue
        reason = self._redact(str(getattr(e, "reason", e)))
        raise UserError(f"cannot reach model endpoint {self.url} ({reason}); check --api_url") from None
      except (ValueError, KeyError, IndexError, TypeError) as e:
        raise UserError(f"model endpoint {self.url} sent a reply this runner cannot read "
                        f"({type(e).__name__}); is --model's protocol right?") from None
    raise AssertionError("unreachable")

  def _reply_text(self, payload: dict) -> str:
    if self.api == "openai":
      return payload["choices"][0]["message"]["content"] or ""
    return "".join(block.get("text", "") for block in payload["content"] if block.get("type") == "text")
