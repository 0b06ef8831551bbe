"""A small client for any OpenAI-compatible chat endpoint (POST /v1/chat/completions).

Standard library only (urllib). Replies are cached on disk keyed by (model, messages, sampling
settings), so rerunning an analysis costs no requests. The API key is sent in the Authorization
header and nowhere else: it is kept out of the cache, of reprs, of logs and of error messages
(scrubbed even from an error body a server echoes back).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
from typing import Optional, Sequence

from stack.errors import UserError

_RETRY_CODES = (429, 500, 502, 503, 504)
_MAX_WAIT_S = 60.0


def chat_url(url: str) -> str:
  """Accepts a server root, a .../v1 base or the full .../v1/chat/completions address."""
  url = url.rstrip("/")
  if not url.startswith(("http://", "https://")):
    raise UserError(f"chat endpoint must be an http(s) URL; got {url!r}")
  if url.endswith("/chat/completions"):
    return url
  return url + ("/chat/completions" if url.endswith("/v1") else "/v1/chat/completions")


class ChatClient:
  """complete(messages) -> reply text, with timeouts, retries with backoff and a disk cache.

  Safe to call from several threads (the cache files are written atomically).
  """

  def __init__(self, url: str, model: str, *, api_key: Optional[str] = None,
               cache_dir: Optional[str] = None, temperature: float = 0.0, max_tokens: int = 256,
               timeout_s: float = 60.0, max_retries: int = 5, backoff_s: float = 1.0):
    self.url = chat_url(url)
    self.model = model
    self._api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")
    self.cache_dir = cache_dir
    self.sampling = {"temperature": float(temperature), "max_tokens": int(max_tokens)}
    self.timeout_s, self.max_retries, self.backoff_s = timeout_s, max_retries, backoff_s
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
    key = json.dumps({"model": self.model, "messages": list(messages), "sampling": self.sampling},
                     sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(key.encode()).hexdigest()
    return os.path.join(self.cache_dir, digest[:2], digest + ".json")

  def complete(self, messages: Sequence[dict]) -> str:
    path = self._cache_path(messages)
    if path and os.path.exists(path):
      with open(path) as f:
        reply = json.load(f)["reply"]
      with self._count_lock:
        self.num_cache_hits += 1
      return reply
    reply = self._post({"model": self.model, "messages": list(messages), **self.sampling})
    if path:
      os.makedirs(os.path.dirname(path), exist_ok=True)
      fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
      with os.fdopen(fd, "w") as f:
        json.dump({"model": self.model, "messages": list(messages), "sampling": self.sampling,
                   "reply": reply}, f)
      os.replace(tmp, path)
    return reply

  def _post(self, payload: dict) -> str:
    data = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    if self._api_key:
      headers["Authorization"] = f"Bearer {self._api_key}"
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
        print(f"chat: {last[:80]}; retry {attempt + 1}/{self.max_retries} in {wait:.2f}s", flush=True)
        time.sleep(wait)
    raise UserError(f"chat endpoint {self.url} failed {self.max_retries + 1} times, last: {last}")

  def _reply_text(self, body: bytes) -> str:
    try:
      return json.loads(body)["choices"][0]["message"]["content"] or ""
    except (ValueError, KeyError, IndexError, TypeError):
      raise UserError(f"chat endpoint {self.url} answered without choices[0].message.content: "
                      f"{self._scrub(body[:200].decode(errors='replace'))}") from None
