"""Byte-level BPE (GPT-2's scheme), built from a vocabulary and a ranked list of merges.

Text -> UTF-8 bytes, each byte shown as one printable character (GPT-2's byte table), split
into pieces by the pre-tokenizer regexes, then each piece merged pair by pair in merge-rank
order. SmolLM2's GGUF names its pre-tokenizer 'smollm': every digit is its own piece before
GPT-2's split; llama.cpp and Hugging Face do the same.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Iterable, Sequence

import regex

from stack.errors import UserError

GPT2_SPLIT = (r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+")
_PRE_TOKENIZERS = {
    "gpt2": (GPT2_SPLIT,),
    "smollm": (r"\p{N}", GPT2_SPLIT),
}
_CONTROL = 3  # llama.cpp token type for special tokens such as <|endoftext|>


@functools.lru_cache(maxsize=1)
def byte_to_char() -> dict[int, str]:
  """GPT-2's table: printable Latin-1 bytes stand for themselves, the rest shift past 255."""
  printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) +
               list(range(ord("®"), ord("ÿ") + 1)))
  table, shifted = {}, 0
  for b in range(256):
    if b in printable:
      table[b] = chr(b)
    else:
      table[b] = chr(256 + shifted)
      shifted += 1
  return table


def _split(text: str, patterns: Sequence[regex.Pattern]) -> list[str]:
  """Each pattern splits every current piece further; matches and the gaps both become pieces."""
  pieces = [text]
  for pattern in patterns:
    out = []
    for piece in pieces:
      end = 0
      for m in pattern.finditer(piece):
        if m.start() > end:
          out.append(piece[end:m.start()])
        out.append(m.group())
        end = m.end()
      if end < len(piece):
        out.append(piece[end:])
    pieces = out
  return pieces


class ByteLevelBPE:
  """encode(text) -> ids and decode(ids) -> text; special tokens are matched only on request."""

  def __init__(self, tokens: Sequence[str], merges: Iterable[tuple[str, str]],
               pre_tokenizer: str = "gpt2", special: Sequence[str] = ()):
    if pre_tokenizer not in _PRE_TOKENIZERS:
      raise UserError(f"unknown pre-tokenizer {pre_tokenizer!r}; known: {sorted(_PRE_TOKENIZERS)}")
    self.tokens = list(tokens)
    self.ids = {tok: i for i, tok in enumerate(self.tokens)}
    self.ranks = {pair: rank for rank, pair in enumerate(merges)}
    self.special = {tok: self.ids[tok] for tok in special}
    self._patterns = [regex.compile(p) for p in _PRE_TOKENIZERS[pre_tokenizer]]
    self._special_pattern = (regex.compile("|".join(regex.escape(s) for s in
                                                    sorted(self.special, key=len, reverse=True)))
                             if self.special else None)
    self._byte_char = byte_to_char()
    self._char_byte = {c: b for b, c in self._byte_char.items()}
    self._cache: dict[str, tuple[int, ...]] = {}

  @property
  def vocab_size(self) -> int:
    return len(self.tokens)

  @property
  def document_separator(self) -> int:
    """<|endoftext|>, the token both GPT-2 and SmolLM2 put between training documents."""
    return self.ids["<|endoftext|>"]

  def _bpe(self, piece: str) -> tuple[int, ...]:
    cached = self._cache.get(piece)
    if cached is not None:
      return cached
    symbols = list(piece)
    while len(symbols) > 1:
      ranked = [(self.ranks.get(pair, 1 << 60), i)
                for i, pair in enumerate(zip(symbols[:-1], symbols[1:]))]
      best_rank, _ = min(ranked)
      if best_rank == 1 << 60:
        break
      merged = []
      i = 0
      while i < len(symbols):
        if (i + 1 < len(symbols) and self.ranks.get((symbols[i], symbols[i + 1])) == best_rank):
          merged.append(symbols[i] + symbols[i + 1])
          i += 2
        else:
          merged.append(symbols[i])
          i += 1
      symbols = merged
    # A byte the vocabulary lacks (SmolLM2 has no token for bytes that never occur in UTF-8
    # text, nor for a few control characters) is dropped, as llama.cpp and Hugging Face do.
    ids = tuple(self.ids[s] for s in symbols if s in self.ids)
    if len(self._cache) < 1 << 20:
      self._cache[piece] = ids
    return ids

  def _encode_ordinary(self, text: str) -> list[int]:
    out: list[int] = []
    for piece in _split(text, self._patterns):
      out.extend(self._bpe("".join(self._byte_char[b] for b in piece.encode("utf-8"))))
    return out

  def encode(self, text: str, *, allow_special: bool = False) -> list[int]:
    if not allow_special or self._special_pattern is None:
      return self._encode_ordinary(text)
    out, end = [], 0
    for m in self._special_pattern.finditer(text):
      out.extend(self._encode_ordinary(text[end:m.start()]))
      out.append(self.special[m.group()])
      end = m.end()
    out.extend(self._encode_ordinary(text[end:]))
    return out

  def decode(self, ids: Iterable[int]) -> str:
    chunks, pending = [], bytearray()
    special_ids = set(self.special.values())
    for i in ids:
      token = self.tokens[int(i)]
      if int(i) in special_ids:
        chunks.append(pending.decode("utf-8", errors="replace"))
        pending = bytearray()
        chunks.append(token)
      else:
        pending.extend(self._char_byte[c] for c in token)
    chunks.append(pending.decode("utf-8", errors="replace"))
    return "".join(chunks)


def from_gguf_fields(fields: dict) -> ByteLevelBPE:
  model = fields.get("tokenizer.ggml.model")
  if model != "gpt2":
    raise UserError(f"GGUF tokenizer model is {model!r}; only byte-level BPE ('gpt2') is supported")
  tokens = fields["tokenizer.ggml.tokens"]
  merges = [tuple(m.split(" ", 1)) for m in fields["tokenizer.ggml.merges"]]
  types = fields.get("tokenizer.ggml.token_type") or [1] * len(tokens)
  special = [tok for tok, kind in zip(tokens, types) if kind == _CONTROL]
  return ByteLevelBPE(tokens, merges, fields.get("tokenizer.ggml.pre", "gpt2"), special)


def from_gpt2_files(vocab_json: str, merges_txt: str) -> ByteLevelBPE:
  """GPT-2's Hugging Face files: vocab.json (token -> id) and merges.txt ('#version' header)."""
  for path in (vocab_json, merges_txt):
    if not os.path.isfile(path):
      raise UserError(f"tokenizer file {path!r} does not exist")
  with open(vocab_json, encoding="utf-8") as f:
    vocab = json.load(f)
  tokens = [""] * len(vocab)
  for tok, i in vocab.items():
    tokens[i] = tok
  with open(merges_txt, encoding="utf-8") as f:
    merges = [tuple(line.split()) for line in f
              if line.strip() and not line.startswith("#version")]
  special = [tok for tok in ("<|endoftext|>",) if tok in vocab]
  return ByteLevelBPE(tokens, merges, "gpt2", special)
