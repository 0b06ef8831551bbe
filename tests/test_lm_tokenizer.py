"""Byte-level BPE: the byte table, merge order, special tokens, SmolLM2's known ids, and (slow)
agreement with Hugging Face `tokenizers` and llama.cpp on real text."""

import functools

import pytest

from sae.activations import text
from sae.lm import gguf_loader, tokenizer

# Token ids llama.cpp (llama-cpp-python 0.3.36, tokenize(special=False)) gives for these texts.
KNOWN = {
    "In the beginning God created the heaven and the earth.":
        [788, 260, 3616, 1839, 2312, 260, 10419, 284, 260, 3103, 30],
    "It's 2024; ¿qué tal? 3.14": [1589, 506, 216, 34, 32, 34, 36, 43, 3351, 140, 385, 2756, 5252,
                                   47, 216, 35, 30, 33, 36],
}
SAMPLES = [
    "In the beginning God created the heaven and the earth.",
    "It's 2024; ¿qué tal? 3.14",
    "  leading spaces,\ttabs\n\nand  double  spaces   ",
    "Émigré naïve café — 日本語 🙂 \x04control",
    "I'll we've they're HAMLET. To be, or not to be: that is the question:",
]


@functools.lru_cache(maxsize=1)
def smollm2_tokenizer():
  fields, _ = gguf_loader.read(gguf_loader.smollm2_path())
  return tokenizer.from_gguf_fields(fields)


def test_byte_table_is_a_bijection_onto_printable_characters():
  table = tokenizer.byte_to_char()
  assert len(set(table.values())) == 256
  assert all(c.isprintable() and not c.isspace() for c in table.values())
  assert table[ord("a")] == "a" and table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ"


def _toy(merges):
  table = tokenizer.byte_to_char()
  tokens = [table[b] for b in range(256)] + ["".join(m) for m in merges]
  return tokenizer.ByteLevelBPE(tokens, merges)


def test_merges_apply_in_rank_order():
  abc = _toy([("a", "b"), ("ab", "c"), ("b", "c")])
  assert abc.decode(abc.encode("abc")) == "abc"
  assert [abc.tokens[i] for i in abc.encode("abc")] == ["abc"]
  bc_first = _toy([("b", "c"), ("a", "b"), ("ab", "c")])
  assert [bc_first.tokens[i] for i in bc_first.encode("abc")] == ["a", "bc"]


def test_gpt2_split_keeps_the_space_with_the_following_word():
  tok = _toy([("Ġ", "a")])
  assert [tok.tokens[i] for i in tok.encode("a a")] == ["a", "Ġa"]


@pytest.mark.parametrize("sample", SAMPLES)
def test_smollm2_round_trips(sample):
  tok = smollm2_tokenizer()
  # \x04 has no token in SmolLM2's vocabulary and is dropped, as llama.cpp drops it.
  assert tok.decode(tok.encode(sample)) == sample.replace("\x04", "")


@pytest.mark.parametrize("sample", sorted(KNOWN))
def test_smollm2_ids_match_llama_cpp(sample):
  assert smollm2_tokenizer().encode(sample) == KNOWN[sample]


def test_smollm2_digits_are_single_tokens_and_specials_opt_in():
  tok = smollm2_tokenizer()
  assert [tok.decode([i]) for i in tok.encode("x 2024")] == ["x", " ", "2", "0", "2", "4"]
  assert tok.encode("<|im_start|>hi", allow_special=True)[0] == 1
  assert 1 not in tok.encode("<|im_start|>hi")
  assert tok.decode([0, 1]) == "<|endoftext|><|im_start|>"
  assert tok.document_separator == 0


def _real_texts():
  docs = text.documents("bible", "heldout")
  return SAMPLES + [next(docs) for _ in range(5)]


@pytest.mark.slow
def test_smollm2_matches_hf_tokenizers_on_bible_text():
  import tokenizers as hf_tokenizers  # pylint: disable=import-outside-toplevel
  ours = smollm2_tokenizer()
  bpe = hf_tokenizers.models.BPE(vocab=ours.ids, merges=list(ours.ranks))
  hf = hf_tokenizers.Tokenizer(bpe)
  hf.pre_tokenizer = hf_tokenizers.pre_tokenizers.Sequence([
      hf_tokenizers.pre_tokenizers.Digits(individual_digits=True),
      hf_tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
  for sample in _real_texts():
    assert ours.encode(sample) == hf.encode(sample).ids, sample[:60]


@pytest.mark.slow
def test_smollm2_matches_llama_cpp_on_bible_text():
  import llama_cpp  # pylint: disable=import-outside-toplevel
  lm = llama_cpp.Llama(gguf_loader.smollm2_path(), vocab_only=True, verbose=False)
  ours = smollm2_tokenizer()
  for sample in _real_texts():
    want = lm.tokenize(sample.encode("utf-8"), add_bos=False, special=False)
    assert ours.encode(sample) == want, sample[:60]
