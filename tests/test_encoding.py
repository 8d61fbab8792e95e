"""Encoding: tokens, word ids, offsets, sentence pairs, limits and unicode."""

from __future__ import annotations

import pytest

from app.errors import InputTooLong, InvalidInput
from app.modeling.encoding import encode


def test_tokens_words_and_offsets(tiny_bert):
    text = "The cats sat."
    encoded = encode(tiny_bert.tokenizer, text, max_tokens=64)
    assert encoded.tokens == ["[CLS]", "the", "cat", "##s", "sat", ".", "[SEP]"]
    assert encoded.word_ids == [None, 0, 1, 1, 2, 3, None]
    assert [text[a:b] for a, b in encoded.offsets[1:-1]] == ["The", "cat", "s", "sat", "."]
    assert encoded.special_mask == [True, False, False, False, False, False, True]
    assert encoded.input_ids.shape == (1, 7)


def test_sentence_pair_sequence_ids_and_segments(tiny_bert):
    encoded = encode(tiny_bert.tokenizer, "a cat", "a dog", max_tokens=64)
    assert encoded.tokens == ["[CLS]", "a", "cat", "[SEP]", "a", "dog", "[SEP]"]
    assert encoded.sequence_ids == [None, 0, 0, None, 1, 1, None]
    assert encoded.token_type_ids.tolist() == [[0, 0, 0, 0, 1, 1, 1]]
    # offsets index into each sentence's own text
    assert encoded.offsets[5] == (2, 5)


def test_token_types_dropped_when_model_has_none(tiny_bert):
    encoded = encode(tiny_bert.tokenizer, "a cat", max_tokens=64, token_types=False)
    assert "token_type_ids" not in encoded.model_inputs()


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_text_is_refused(tiny_bert, text):
    with pytest.raises(InvalidInput, match="empty"):
        encode(tiny_bert.tokenizer, text, max_tokens=64)


def test_too_many_tokens_is_refused_not_truncated(tiny_bert):
    with pytest.raises(InputTooLong, match="11 tokens; the limit is 8"):
        encode(tiny_bert.tokenizer, "the cat sat on the mat and the dog", max_tokens=8)


def test_too_many_characters_is_refused(tiny_bert):
    with pytest.raises(InputTooLong, match="characters"):
        encode(tiny_bert.tokenizer, "cat " * 50, max_tokens=64, max_chars=100)


def test_unicode_is_handled(tiny_bert):
    text = "é 日本 cat 🙂"
    encoded = encode(tiny_bert.tokenizer, text, max_tokens=64)
    assert "[UNK]" in encoded.tokens  # the emoji is not in the tiny vocabulary
    for (start, end), word in zip(encoded.offsets, encoded.word_ids, strict=True):
        if word is not None:
            assert 0 <= start < end <= len(text)


def test_typed_special_tokens_are_marked_special(tiny_bert):
    encoded = encode(tiny_bert.tokenizer, "a [SEP] cat", max_tokens=64)
    assert encoded.tokens == ["[CLS]", "a", "[SEP]", "cat", "[SEP]"]
    assert encoded.special_mask == [True, False, True, False, True]


@pytest.mark.parametrize("text", ["\u200b\u200b", "\u200b"])
def test_invisible_only_text_is_refused(tiny_bert, text):
    with pytest.raises(InvalidInput, match="no characters the tokenizer can read"):
        encode(tiny_bert.tokenizer, text, max_tokens=64)
