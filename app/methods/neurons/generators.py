"""Descriptor generators: which concepts, topics and linguistic properties each sentence contains.

Mondal et al., "Towards Generating Informative Textual Description for Neurons in Language Models"
(arXiv 2401.16731, 2024, https://arxiv.org/abs/2401.16731) prompt a generative language model for the
descriptors present in every sentence of a corpus; clustering those gives the candidate descriptions of
neurons. Three interchangeable generators implement the ``DescriptorGenerator`` protocol:

* ``OpenAIChatGenerator``: any OpenAI-compatible ``/v1/chat/completions`` server (vLLM, llama.cpp, Ollama).
* ``HuggingFaceGenerator``: a local seq2seq or causal checkpoint, greedy decoding, no remote code.
* ``OfflineGenerator``: no generative model at all; keyphrases ranked with the encoder plus surface rules.

Output of ``describe``: one list per sentence of distinct lowercase descriptors of 1-4 words.

Settings the wiring should expose (``make_generator`` takes them as plain arguments):
``BERTSCOPE_DESCRIBER_URL`` (base URL, e.g. ``http://127.0.0.1:8080/v1``), ``BERTSCOPE_DESCRIBER_MODEL``,
``BERTSCOPE_DESCRIBER_KEY`` (optional bearer token), ``BERTSCOPE_DESCRIBER_PATH`` (local checkpoint
directory), ``BERTSCOPE_DESCRIBER_TIMEOUT`` (seconds) and ``BERTSCOPE_DESCRIBER_MAX_DESCRIPTORS``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import urlsplit

import httpx
import numpy as np
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer
from transformers.utils import logging as hf_logging

from app.errors import BertscopeError, InvalidInput, ModelNotFound
from app.methods.neurons.generators_surface import (
    DEFAULT_MAX_CANDIDATES,
    DEFAULT_MAX_DESCRIPTORS,
    SYSTEM_PROMPT,
    batch_prompt,
    candidate_phrases,
    clean_descriptors,
    parse_batch_answer,
    parse_descriptor_list,
    single_prompt,
    surface_descriptors,
)
from app.modeling.heads import pooled_embeddings
from app.modeling.loading import LoadedModel

GeneratorKind = Literal["openai", "huggingface", "offline"]
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_LLM_BATCH = 8
DEFAULT_MAX_NEW_TOKENS = 48
ANSWER_TOKENS_PER_SENTENCE = 64
MAX_PROMPT_TOKENS = 512
ERROR_BODY_CHARS = 200
DEFAULT_KEYPHRASES = 3
DEFAULT_EMBED_BATCH = 256
SENTENCE_MAX_TOKENS = 256
DEFAULT_PHRASE_CACHE = 20_000  # 384-dimensional float32 vectors: about 30 MB


class DescriberUnavailable(BertscopeError):
    """The descriptor service failed or answered nonsense (HTTP 503: retry or fix its configuration)."""

    code = "describer_unavailable"
    status = 503


class DescriptorGenerator(Protocol):
    """Proposes, for each sentence, the descriptors (concepts, topics, properties) present in it."""

    name: str
    kind: GeneratorKind

    def describe(self, sentences: list[str]) -> list[list[str]]: ...

    def describe_generator(self) -> dict: ...


def chat_completions_url(base_url: str) -> str:
    """``.../v1`` -> ``.../v1/chat/completions``; a bare ``http://host:port`` gets ``/v1`` added."""
    url = base_url.rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    if urlsplit(url).path in ("", "/"):
        url += "/v1"
    return url + "/chat/completions"


class OpenAIChatGenerator:
    """Descriptors from an OpenAI-compatible chat-completions endpoint, several numbered sentences a call."""

    kind: GeneratorKind = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        max_descriptors: int = DEFAULT_MAX_DESCRIPTORS,
        batch_size: int = DEFAULT_LLM_BATCH,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise InvalidInput(f"Describer URL {base_url!r} must start with http:// or https://.")
        if not model:
            raise InvalidInput(
                "An OpenAI-compatible describer needs a model name (BERTSCOPE_DESCRIBER_MODEL)."
            )
        if batch_size < 1 or max_descriptors < 1:
            raise InvalidInput("batch_size and max_descriptors must be at least 1.")
        self.url = chat_completions_url(base_url)
        self.model, self.api_key, self.timeout = model, api_key, timeout
        self.max_descriptors, self.batch_size = max_descriptors, batch_size
        self.name = f"openai:{model}"

    def describe(self, sentences: list[str]) -> list[list[str]]:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        results: list[list[str]] = []
        with httpx.Client(timeout=self.timeout, headers=headers) as client:
            for start in range(0, len(sentences), self.batch_size):
                batch = sentences[start : start + self.batch_size]
                answer = self._complete(client, batch_prompt(batch, self.max_descriptors), len(batch))
                results.extend(parse_batch_answer(answer, len(batch), self.max_descriptors))
        return results

    def _complete(self, client: httpx.Client, prompt: str, count: int) -> str:
        body = {
            "model": self.model,
            "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}],
            "temperature": 0,
            "max_tokens": ANSWER_TOKENS_PER_SENTENCE * count,
        }
        where = f"the describer at {self.url}"
        try:
            response = client.post(self.url, json=body)
        except httpx.TimeoutException:
            raise DescriberUnavailable(f"{where} did not answer within {self.timeout:g} s.") from None
        except httpx.HTTPError as exc:
            raise DescriberUnavailable(
                f"Cannot reach {where} ({exc.__class__.__name__}): is it running?"
            ) from None
        if response.status_code >= 400:
            raise DescriberUnavailable(
                f"{where} answered HTTP {response.status_code}: {response.text[:ERROR_BODY_CHARS]}"
            )
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise DescriberUnavailable(f"{where} did not answer with an OpenAI chat completion.") from None
        return content if isinstance(content, str) else ""

    def describe_generator(self) -> dict:
        return {
            "kind": self.kind,
            "name": self.name,
            "model": self.model,
            "endpoint": self.url,
            "max_descriptors": self.max_descriptors,
            "summary": f"Descriptors proposed by the generative model {self.model!r} served at {self.url}.",
        }


class HuggingFaceGenerator:
    """Descriptors from a local generative checkpoint (seq2seq or causal, from its config), greedy."""

    kind: GeneratorKind = "huggingface"

    def __init__(
        self,
        path: str | Path,
        max_descriptors: int = DEFAULT_MAX_DESCRIPTORS,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        batch_size: int = DEFAULT_LLM_BATCH,
        device: str = "cpu",
    ) -> None:
        directory = Path(path)
        if not (directory / "config.json").is_file():
            raise ModelNotFound(f"Describer model {str(path)!r} is not a directory with a config.json.")
        hf_logging.disable_progress_bar()
        try:
            config = AutoConfig.from_pretrained(directory, local_files_only=True, trust_remote_code=False)
            self.seq2seq = bool(getattr(config, "is_encoder_decoder", False))
            cls = AutoModelForSeq2SeqLM if self.seq2seq else AutoModelForCausalLM
            model = cls.from_pretrained(
                directory, config=config, local_files_only=True, trust_remote_code=False
            )
            tokenizer = AutoTokenizer.from_pretrained(
                directory, local_files_only=True, trust_remote_code=False
            )
        except (OSError, ValueError) as exc:
            raise ModelNotFound(
                f"Cannot load describer model {str(path)!r} as a generative (seq2seq or causal) model: {exc}"
            ) from None
        self.model = model.eval().requires_grad_(False).to(device)
        self.tokenizer = tokenizer
        if tokenizer.pad_token is None and (tokenizer.eos_token or tokenizer.unk_token):
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        if tokenizer.pad_token is None:
            raise InvalidInput(f"The tokenizer of {str(path)!r} has no pad, eos or unk token to pad batches.")
        if not self.seq2seq:
            tokenizer.padding_side = tokenizer.truncation_side = "left"
        self.max_prompt_tokens = self._prompt_budget(config, max_new_tokens)
        self.path, self.max_descriptors = str(directory), max_descriptors
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.name = f"huggingface:{directory.name}"

    def _prompt_budget(self, config: object, max_new_tokens: int) -> int:
        positions = getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)
        if self.seq2seq or not positions:
            return MAX_PROMPT_TOKENS
        if positions <= max_new_tokens:
            raise InvalidInput(
                f"max_new_tokens {max_new_tokens} leaves no room for the prompt ({positions})."
            )
        return min(MAX_PROMPT_TOKENS, int(positions) - max_new_tokens)

    def _prompt(self, sentence: str) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            messages = [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": single_prompt(sentence, self.max_descriptors)},
            ]
            return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return single_prompt(sentence, self.max_descriptors)

    @torch.no_grad()
    def describe(self, sentences: list[str]) -> list[list[str]]:
        results: list[list[str]] = []
        for start in range(0, len(sentences), self.batch_size):
            prompts = [self._prompt(s) for s in sentences[start : start + self.batch_size]]
            batch = self.tokenizer(
                prompts, padding=True, truncation=True, max_length=self.max_prompt_tokens, return_tensors="pt"
            ).to(self.model.device)
            batch.pop("token_type_ids", None)
            output = self.model.generate(
                **batch,
                do_sample=False,
                num_beams=1,
                max_new_tokens=self.max_new_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
            )
            new_tokens = output if self.seq2seq else output[:, batch["input_ids"].shape[1] :]
            texts = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            results.extend(parse_descriptor_list(text, self.max_descriptors) for text in texts)
        return results

    def describe_generator(self) -> dict:
        architecture = "seq2seq" if self.seq2seq else "causal"
        return {
            "kind": self.kind,
            "name": self.name,
            "path": self.path,
            "architecture": architecture,
            "model_type": self.model.config.model_type,
            "decoding": f"greedy, at most {self.max_new_tokens} new tokens",
            "max_descriptors": self.max_descriptors,
            "summary": f"Descriptors generated by the local {architecture} model at {self.path} (greedy).",
        }


def embed_texts(loaded: LoadedModel, texts: list[str], batch_size: int = DEFAULT_EMBED_BATCH) -> np.ndarray:
    """Unit-norm mean-pooled embeddings [text, hidden], batched by length to waste little on padding."""
    if not texts:
        return np.zeros((0, loaded.hidden_size), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    max_tokens = min(loaded.max_positions, SENTENCE_MAX_TOKENS)
    sorted_vectors = pooled_embeddings(loaded, [texts[i] for i in order], batch_size, max_tokens=max_tokens)
    vectors = np.empty_like(sorted_vectors)
    vectors[order] = sorted_vectors
    return vectors


class OfflineGenerator:
    """No generative model: encoder-ranked keyphrases (as in KeyBERT) plus rule-based surface descriptors.

    Keyphrases are candidate 1-3-word content n-grams of the sentence ranked by the cosine similarity of
    their embedding to the sentence embedding; a candidate sharing a word with a better one is skipped.
    Phrase embeddings are kept between calls (up to ``cache_size``), so describing a corpus in chunks
    does not re-embed its common phrases.
    """

    kind: GeneratorKind = "offline"

    def __init__(
        self,
        loaded: LoadedModel,
        max_descriptors: int = DEFAULT_MAX_DESCRIPTORS,
        max_keyphrases: int = DEFAULT_KEYPHRASES,
        max_candidates: int = DEFAULT_MAX_CANDIDATES,
        batch_size: int = DEFAULT_EMBED_BATCH,
        cache_size: int = DEFAULT_PHRASE_CACHE,
    ) -> None:
        self.loaded, self.max_descriptors = loaded, max_descriptors
        self.max_keyphrases, self.max_candidates, self.batch_size = max_keyphrases, max_candidates, batch_size
        self.name = f"offline:{loaded.name}"
        self.cache_size, self._cache = cache_size, {}

    def _phrase_vectors(self, phrases: set[str]) -> dict[str, np.ndarray]:
        missing = sorted(phrases - self._cache.keys())
        fresh = dict(zip(missing, embed_texts(self.loaded, missing, self.batch_size), strict=True))
        for phrase, vector in fresh.items():
            if len(self._cache) >= self.cache_size:
                break
            self._cache[phrase] = vector
        return {**{p: self._cache[p] for p in phrases if p in self._cache}, **fresh}

    def describe(self, sentences: list[str]) -> list[list[str]]:
        candidates = [candidate_phrases(s, self.max_candidates) for s in sentences]
        vectors = self._phrase_vectors({phrase for phrases in candidates for phrase in phrases})
        sentence_vectors = embed_texts(self.loaded, sentences, self.batch_size)  # [sentence, hidden]
        results = []
        for sentence, phrases, vector in zip(sentences, candidates, sentence_vectors, strict=True):
            similarity = np.array([vectors[p] @ vector for p in phrases], dtype=np.float32)
            keyphrases = _diverse_top(phrases, similarity, self.max_keyphrases)
            results.append(
                clean_descriptors(keyphrases + surface_descriptors(sentence), self.max_descriptors)
            )
        return results

    def describe_generator(self) -> dict:
        return {
            "kind": self.kind,
            "name": self.name,
            "encoder": self.loaded.name,
            "max_descriptors": self.max_descriptors,
            "max_keyphrases": self.max_keyphrases,
            "summary": (
                f"No generative model: up to {self.max_keyphrases} keyphrases per sentence (its own words, "
                f"ranked by similarity to the sentence with {self.loaded.name}) plus rule-based surface "
                "descriptors."
            ),
        }


def _diverse_top(phrases: list[str], similarity: np.ndarray, count: int) -> list[str]:
    chosen: list[str] = []
    used: set[str] = set()
    for i in np.argsort(-similarity, kind="stable"):
        words = set(phrases[i].split())
        if words & used:
            continue
        chosen.append(phrases[i])
        used |= words
        if len(chosen) == count:
            break
    return chosen


def make_generator(
    *,
    url: str | None = None,
    model: str | None = None,
    key: str | None = None,
    path: str | None = None,
    loaded: LoadedModel | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    max_descriptors: int = DEFAULT_MAX_DESCRIPTORS,
) -> DescriptorGenerator:
    """The configured generator: an endpoint ``url`` first, else a local ``path``, else offline on ``loaded``.

    Arguments map to the settings ``BERTSCOPE_DESCRIBER_URL``, ``_MODEL``, ``_KEY``, ``_PATH``, ``_TIMEOUT``
    and ``_MAX_DESCRIPTORS``; ``loaded`` is the resident encoder (the embedded model is a good choice).
    """
    if url:
        return OpenAIChatGenerator(url, model or "", key, timeout=timeout, max_descriptors=max_descriptors)
    if path:
        return HuggingFaceGenerator(path, max_descriptors=max_descriptors)
    if loaded is None:
        raise InvalidInput("The offline describer needs an encoder; pass the loaded (e.g. embedded) model.")
    return OfflineGenerator(loaded, max_descriptors=max_descriptors)
