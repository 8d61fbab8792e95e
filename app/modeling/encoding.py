"""Tokenise text (or a sentence pair) into model inputs plus what views need: tokens, words, offsets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from transformers import PreTrainedTokenizerBase

from app.errors import InputTooLong, InvalidInput

if TYPE_CHECKING:
    from app.modeling.loading import LoadedModel


@dataclass
class Encoded:
    """One input, batch of one, already on the model's device."""

    text: str
    text_pair: str | None
    input_ids: torch.Tensor  # [1, token]
    attention_mask: torch.Tensor  # [1, token]
    token_type_ids: torch.Tensor | None  # [1, token]
    tokens: list[str]
    word_ids: list[int | None]  # word index within its sequence; None for special tokens
    sequence_ids: list[int | None]  # 0 = text, 1 = text_pair, None = special token
    offsets: list[tuple[int, int]]  # character span in its own sequence's text
    special: list[bool] | None = None  # added special tokens, and special tokens typed in the text

    @property
    def length(self) -> int:
        return len(self.tokens)

    @property
    def special_mask(self) -> list[bool]:
        if self.special is not None:
            return self.special
        return [sequence is None for sequence in self.sequence_ids]

    def model_inputs(self) -> dict[str, torch.Tensor]:
        """Keyword arguments for the model's forward pass."""
        inputs = {"input_ids": self.input_ids, "attention_mask": self.attention_mask}
        if self.token_type_ids is not None:
            inputs["token_type_ids"] = self.token_type_ids
        return inputs

    def describe(self) -> dict:
        """The JSON view of the tokenisation returned beside every result."""
        return {
            "word_ids": self.word_ids,
            "sequence_ids": self.sequence_ids,
            "offsets": [list(span) for span in self.offsets],
            "special": self.special_mask,
        }


def _check_text(value: str | None, field: str, max_chars: int) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise InvalidInput(f"'{field}' must be a string.")
    if not value.strip():
        raise InvalidInput(f"'{field}' is empty; type a sentence to analyse.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(
            f"'{field}' is not valid Unicode: an unpaired surrogate ({value[exc.start]!r}) at character "
            f"{exc.start}; send the text as UTF-8."
        ) from None
    if len(value) > max_chars:
        raise InputTooLong(f"'{field}' has {len(value)} characters; the limit is {max_chars}.")


def encode(
    tokenizer: PreTrainedTokenizerBase,
    text: str,
    text_pair: str | None = None,
    *,
    max_tokens: int,
    max_chars: int = 20_000,
    device: torch.device | str = "cpu",
    token_types: bool = True,
) -> Encoded:
    """Tokenise without truncation; inputs longer than ``max_tokens`` are refused, never cut silently.

    ``token_types=False`` drops segment ids for encoders that have none (DistilBERT).
    """
    _check_text(text, "text", max_chars)
    _check_text(text_pair, "text_pair", max_chars)
    batch = tokenizer(
        text,
        text_pair,
        return_offsets_mapping=True,
        return_token_type_ids=None,
        truncation=False,
        return_tensors="pt",
    )
    length = int(batch["input_ids"].shape[1])
    if length > max_tokens:
        raise InputTooLong(
            f"The input has {length} tokens; the limit is {max_tokens}. Shorten the text "
            "(or raise BERTSCOPE_MAX_TOKENS, up to the model's maximum)."
        )
    ids = batch["input_ids"][0].tolist()
    sequence_ids = list(batch.sequence_ids(0))
    special_ids = set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}  # [UNK] stands for a real word
    special = [
        sequence is None or token in special_ids for sequence, token in zip(sequence_ids, ids, strict=True)
    ]
    for field, value in (("text", text), ("text_pair", text_pair)):
        index = 0 if field == "text" else 1
        if value is not None and not any(
            s == index and not sp for s, sp in zip(sequence_ids, special, strict=True)
        ):
            if not (field == "text" and tokenizer.mask_token and tokenizer.mask_token in value):
                raise InvalidInput(
                    f"'{field}' has no characters the tokenizer can read (only invisible ones?)."
                )
    token_type_ids = batch.get("token_type_ids") if token_types else None
    return Encoded(
        text=text,
        text_pair=text_pair,
        input_ids=batch["input_ids"].to(device),
        attention_mask=batch["attention_mask"].to(device),
        token_type_ids=None if token_type_ids is None else token_type_ids.to(device),
        tokens=tokenizer.convert_ids_to_tokens(ids),
        word_ids=list(batch.word_ids(0)),
        sequence_ids=sequence_ids,
        offsets=[(int(start), int(end)) for start, end in batch["offset_mapping"][0].tolist()],
        special=special,
    )


def encode_for(
    loaded: LoadedModel, text: str, text_pair: str | None = None, *, max_tokens: int, max_chars: int = 20_000
) -> Encoded:
    """Encode for the loaded model: its tokenizer, its device, segment ids only if it takes them."""
    return encode(
        loaded.tokenizer,
        text,
        text_pair,
        max_tokens=max_tokens,
        max_chars=max_chars,
        device=loaded.device,
        token_types=loaded.uses_token_types,
    )
