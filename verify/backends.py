"""Where answers come from: the program itself, the ground truth, published outputs, or an LLM.

A backend proposes one program per attempt, seeing the earlier attempts of the same task (each
with its verifier result and cheat verdict). Chat back-ends speak the OpenAI chat-completions or
Anthropic Messages protocol through stack.chat, which caches every reply on disk by (protocol,
model, messages, sampling settings) so an interrupted run never pays for a call twice.
"""
import dataclasses
import os
import pathlib
from typing import Protocol, Sequence

from verify import prompt
from verify.data import Task
from stack.chat import KEY_ENV, ChatClient
from stack.errors import UserError

_REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_CACHE = _REPO_ROOT / ".cache" / "llm"
DEFAULT_URLS = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com"}


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
    # An OpenAI-style url is the .../v1 base (requests go to <url>/chat/completions).
    address = f"{self.url}/chat/completions" if api == "openai" else f"{self.url}/v1/messages"
    key = key or os.environ.get(KEY_ENV[api]) or os.environ.get("DAFNYBENCH_API_KEY") or ""
    self._client = ChatClient(address, model, protocol=api, api_key=key, cache_dir=cache_dir,
                              temperature=temperature, max_tokens=max_tokens, timeout_s=timeout_s,
                              max_retries=http_retries)

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

  def complete(self, messages: list[dict]) -> str:
    return self._client.complete(messages)
