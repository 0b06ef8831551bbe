"""One client for chat-model endpoints: OpenAI chat-completions (any compatible server) or the
Anthropic Messages protocol. Standard library only, so verify/ may use it without JAX.

    client = ChatClient("http://localhost:8000/v1", "Qwen2.5-7B-Instruct", cache_dir="runs/x/chat")
    reply = client.complete([{"role": "user", "content": "..."}])

Replies are cached on disk keyed by (protocol, model, messages, sampling settings), so a rerun
costs no requests. Busy answers (429, 5xx, 529), time-outs and dropped connections are retried
with exponential backoff (honouring Retry-After); anything else stops with one UserError line.
The API key is sent in its header and nowhere else: it is kept out of the cache, of reprs, of
logs and of error messages (scrubbed even from an error body a server echoes back).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Optional, Sequence

from stack.errors import UserError
from stack.fileio import read_json, write_json

PROTOCOLS = ("openai", "anthropic")
KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
_RETRY_CODES = (429, 500, 502, 503, 504, 529)  # 529: Anthropic's "overloaded"
_MAX_WAIT_S = 60.0


def chat_url(url: str, protocol: str = "openai") -> str:
  """The request address from a server root, a .../v1 base or the full address."""
  url = url.rstrip("/")
  if not url.startswith(("http://", "https://")):
    raise UserError(f"chat endpoint must be an http(s) URL; got {url!r}")
  if protocol == "anthropic":
    return url if url.endswith("/messages") else url + "/v1/messages"
  if url.endswith("/chat/completions"):
    return url
  return url + ("/chat/completions" if url.endswith("/v1") else "/v1/chat/completions")


class ChatClient:
  """complete(messages) -> reply text, with timeouts, retries with backoff and a disk cache.

  api_key None reads $OPENAI_API_KEY or $ANTHROPIC_API_KEY (by protocol); '' sends no key.
  Safe to call from several threads (the cache files are written atomically).
  """

  def __init__(self, url: str, model: str, *, protocol: str = "openai",
               api_key: Optional[str] = None, cache_dir: Optional[str | os.PathLike] = None,
               temperature: float = 0.0, max_tokens: int = 256, timeout_s: float = 60.0,
               max_retries: int = 5, backoff_s: float = 1.0, verbose: bool = True):
    if protocol not in PROTOCOLS:
      raise UserError(f"unknown chat protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")
    self.protocol = protocol
    self.url = chat_url(url, protocol)
    self.model = model
    self._api_key = api_key if api_key is not None else os.environ.get(KEY_ENV[protocol], "")
    self.cache_dir = os.fspath(cache_dir) if cache_dir else None
    self.sampling = {"temperature": float(temperature), "max_tokens": int(max_tokens)}
    self.timeout_s, self.max_retries, self.backoff_s = timeout_s, max_retries, backoff_s
    self.verbose = verbose
    self.num_requests = 0
    self.num_cache_hits = 0
    self._count_lock = threading.Lock()  # complete() may run in several threads at once

  def __repr__(self) -> str:
    return f"ChatClient(url={self.url!r}, model={self.model!r})"

  def _scrub(self, text: str) -> str:
    return text.replace(self._api_key, "***") if self._api_key else text

  def _cache_path(self, messages: Sequence[dict]) -> Optional[str]:
    if not self.cache_dir:
      return None
    key = json.dumps({"protocol": self.protocol, "model": self.model, "messages": list(messages),
                      "sampling": self.sampling}, sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(key.encode()).hexdigest()
    return os.path.join(self.cache_dir, digest[:2], digest + ".json")

  def complete(self, messages: Sequence[dict]) -> str:
    path = self._cache_path(messages)
    cached = read_json(path) if path else None
    if cached is not None:
      with self._count_lock:
        self.num_cache_hits += 1
      return cached["reply"]
    reply = self._post(self._payload(list(messages)))
    if path:
      write_json(path, {"protocol": self.protocol, "model": self.model, "messages": list(messages),
                        "sampling": self.sampling, "reply": reply}, indent=None)
    return reply

  def _payload(self, messages: list[dict]) -> dict:
    if self.protocol == "openai":
      return {"model": self.model, "messages": messages, **self.sampling}
    system = "\n".join(m["content"] for m in messages if m["role"] == "system")
    return {"model": self.model, "system": system,
            "messages": [m for m in messages if m["role"] != "system"], **self.sampling}

  def _headers(self) -> dict:
    if self.protocol == "anthropic":
      return {"x-api-key": self._api_key, "anthropic-version": "2023-06-01"}
    return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

  def _post(self, payload: dict) -> str:
    data = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", **self._headers()}
    last = ""
    for attempt in range(self.max_retries + 1):
      wait = self.backoff_s * 2 ** attempt
      request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
      with self._count_lock:
        self.num_requests += 1
      try:
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
          body = response.read()
        return self._reply_text(body)
      except urllib.error.HTTPError as err:
        detail = self._scrub(err.read().decode(errors="replace")[:300].replace("\n", " "))
        if err.code not in _RETRY_CODES:
          raise UserError(f"chat endpoint {self.url} refused the request with HTTP {err.code}: "
                          f"{detail} (check the model name and API key)") from None
        last = f"HTTP {err.code}: {detail}"
        retry_after = err.headers.get("Retry-After", "") if err.headers else ""
        if retry_after.strip().isdigit():
          wait = float(retry_after)
      except urllib.error.URLError as err:
        if not isinstance(err.reason, (TimeoutError, socket.timeout)):
          raise UserError(f"cannot reach chat endpoint {self.url}: {self._scrub(str(err.reason))}; "
                          "check the URL and that the server is running") from None
        last = f"no reply within {self.timeout_s}s"
      except (TimeoutError, socket.timeout):
        last = f"no reply within {self.timeout_s}s"
      except (http.client.RemoteDisconnected, ConnectionResetError):
        last = "connection dropped"
      if attempt < self.max_retries:
        wait = min(wait, _MAX_WAIT_S)
        if self.verbose:
          print(f"chat: {last[:80]}; retry {attempt + 1}/{self.max_retries} in {wait:.2f}s", flush=True)
        time.sleep(wait)
    raise UserError(f"chat endpoint {self.url} failed {self.max_retries + 1} times, last: {last}")

  def _reply_text(self, body: bytes) -> str:
    try:
      payload = json.loads(body)
      if self.protocol == "openai":
        return payload["choices"][0]["message"]["content"] or ""
      return "".join(block.get("text", "") for block in payload["content"] if block.get("type") == "text")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
      where = "choices[0].message.content" if self.protocol == "openai" else "content text blocks"
      raise UserError(f"chat endpoint {self.url} answered without {where} (is the protocol "
                      f"right?): {self._scrub(body[:200].decode(errors='replace'))}") from None
