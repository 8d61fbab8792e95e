"""Text side of descriptor generation: cleaning, parsing answers, surface rules, keyphrase candidates.

Mondal et al., "Towards Generating Informative Textual Description for Neurons in Language Models"
(arXiv 2401.16731, 2024, https://arxiv.org/abs/2401.16731) ask a generative model which descriptors are
present in each sentence. This module holds everything about that exchange that needs no model: the prompt,
the robust parsing of whatever comes back (a JSON list, a JSON object of numbered lists, bullets or commas),
the normalisation of a descriptor (lowercase, 1-4 words) and, for the offline generator, rule-based surface
descriptors and the candidate n-grams its keyphrase ranking starts from.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

MAX_DESCRIPTOR_WORDS = 4
MAX_DESCRIPTOR_CHARS = 48
DEFAULT_MAX_DESCRIPTORS = 8
MAX_KEYPHRASE_WORDS = 3
MIN_KEYWORD_CHARS = 3
DEFAULT_MAX_CANDIDATES = 24

SYSTEM_PROMPT = (
    "You describe sentences for an interpretability tool. For each sentence, list the concepts, topics and "
    "linguistic properties present in it (for example: sports, past tense, negation, a person's name, a "
    "question, numbers). Each descriptor is a short lowercase phrase of one to four words."
)

# ---------------------------------------------------------------- descriptors: normalise and deduplicate

_EDGE_JUNK = re.compile(r"^[\s\"'`*_\-•·.,;:!?()\[\]{}<>]+|[\s\"'`*_\-•·.,;:!?()\[\]{}<>]+$")
_SPACES = re.compile(r"\s+")


def normalise_descriptor(text: str) -> str | None:
    """Lowercase, trimmed, single-spaced descriptor of 1-4 words; None when nothing usable is left."""
    cleaned = _SPACES.sub(" ", _EDGE_JUNK.sub("", str(text).lower())).strip()
    if not cleaned or len(cleaned) > MAX_DESCRIPTOR_CHARS or not re.search(r"[a-z]", cleaned):
        return None
    if len(cleaned.split(" ")) > MAX_DESCRIPTOR_WORDS:
        return None
    return cleaned


def clean_descriptors(items: Iterable[str], limit: int = DEFAULT_MAX_DESCRIPTORS) -> list[str]:
    """Normalised descriptors in first-seen order, duplicates removed, at most ``limit``."""
    seen: dict[str, None] = {}
    for item in items:
        descriptor = normalise_descriptor(item)
        if descriptor is not None and descriptor not in seen:
            seen[descriptor] = None
            if len(seen) == limit:
                break
    return list(seen)


# ---------------------------------------------------------------- prompts and parsing of answers


def batch_prompt(sentences: list[str], max_descriptors: int) -> str:
    """User message for a batch of numbered sentences, asking for one JSON object of lists."""
    numbered = "\n".join(f"{i}. {sentence}" for i, sentence in enumerate(sentences, start=1))
    return (
        f"Give at most {max_descriptors} descriptors for each numbered sentence. Answer with one JSON object "
        'mapping each sentence number to a JSON list of strings, e.g. {"1": ["sports", "past tense"]}, '
        f"and nothing else.\n\n{numbered}"
    )


def single_prompt(sentence: str, max_descriptors: int) -> str:
    """Plain-text prompt for one sentence, for small local models without a chat template."""
    return (
        f"List at most {max_descriptors} concepts, topics and linguistic properties present in the sentence, "
        f"as a comma-separated list of short phrases.\nSentence: {sentence}\nDescriptors:"
    )


_FENCE = re.compile(r"```(?:json)?", re.IGNORECASE)
_BULLET = re.compile(r"^\s*(?:[-*•·]|\(?\d+[.):]|\d+\s*-)\s*")
_LABEL = re.compile(r"^\s*(?:descriptors?|concepts?|topics?|answer|output)\s*:\s*", re.IGNORECASE)
_NUMBERED = re.compile(r"^\s*(?:sentence\s*)?\(?(\d+)\s*[.):\-]+\s*(.*)$", re.IGNORECASE)


def _json_candidate(text: str) -> object | None:
    """The first JSON array or object in ``text`` (the whole text, else the outermost bracketed span)."""
    text = _FENCE.sub("", text).strip()
    spans = [text]
    for opening, closing in ("{}", "[]"):
        start, end = text.find(opening), text.rfind(closing)
        if 0 <= start < end:
            spans.append(text[start : end + 1])
    for span in spans:
        try:
            return json.loads(span)
        except ValueError:
            continue
    return None


def _flatten_strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [item for inner in value.values() for item in _flatten_strings(inner)]
    if isinstance(value, list):
        return [item for inner in value for item in _flatten_strings(inner)]
    return []


def _split_plain(text: str) -> list[str]:
    items = []
    for line in _FENCE.sub("", text).splitlines():
        line = _LABEL.sub("", _BULLET.sub("", line))
        items.extend(part for part in re.split(r"[,;]", line) if part.strip())
    return items


def parse_descriptor_list(text: str, limit: int = DEFAULT_MAX_DESCRIPTORS) -> list[str]:
    """Descriptors from one answer: a JSON list (or object of lists), else bullet or comma lists."""
    parsed = _json_candidate(text)
    items = _flatten_strings(parsed) if isinstance(parsed, list | dict) else _split_plain(text)
    return clean_descriptors(items, limit)


def _numbered_blocks(text: str) -> dict[int, str]:
    blocks: dict[int, list[str]] = {}
    current: int | None = None
    for line in _FENCE.sub("", text).splitlines():
        match = _NUMBERED.match(line)
        if match:
            current = int(match.group(1))
            blocks.setdefault(current, []).append(match.group(2))
        elif current is not None and line.strip():
            blocks[current].append(line)
    return {number: "\n".join(lines) for number, lines in blocks.items()}


def parse_batch_answer(text: str, count: int, limit: int = DEFAULT_MAX_DESCRIPTORS) -> list[list[str]]:
    """Per-sentence descriptors from an answer about ``count`` numbered sentences (missing ones: [])."""
    parsed = _json_candidate(text)
    if isinstance(parsed, dict) and any(str(key).strip().isdigit() for key in parsed):
        by_number = {
            int(str(key).strip()): value for key, value in parsed.items() if str(key).strip().isdigit()
        }
        return [clean_descriptors(_flatten_strings(by_number.get(i + 1, [])), limit) for i in range(count)]
    if isinstance(parsed, list) and len(parsed) == count and all(isinstance(item, list) for item in parsed):
        return [clean_descriptors(_flatten_strings(item), limit) for item in parsed]
    if count == 1:
        return [parse_descriptor_list(text, limit)]
    blocks = _numbered_blocks(text)
    return [parse_descriptor_list(blocks.get(i + 1, ""), limit) for i in range(count)]


# ---------------------------------------------------------------- surface descriptors (offline generator)

_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_WEEKDAYS = "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"
_NUMBER_WORDS = (
    "two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|sixty|seventy|"
    "eighty|ninety|hundred|thousand|million|billion|trillion|dozen"
)
SURFACE_RULES: dict[str, re.Pattern[str]] = {
    "number": re.compile(rf"\d|\b(?i:{_NUMBER_WORDS})s?\b"),
    "money or percent": re.compile(
        r"[$£€¥]\s?\d|\d\s?%|\b(?i:percent|per cent|dollars?|euros?|cents?|yen|pounds sterling)\b"
    ),
    "date or time": re.compile(
        rf"\b(?:{_MONTHS}|{_WEEKDAYS})\b|\b(?:1[5-9]|20)\d\d\b|\b\d{{1,2}}:\d\d\b|\b[ap]\.m\.|"
        r"\b(?i:today|yesterday|tomorrow|tonight|o'clock|century|centuries|decades?)\b"
    ),
    "negation": re.compile(r"\b(?i:not|no|never|none|nobody|nothing|neither|nor|nowhere|cannot)\b|n't\b"),
    "question": re.compile(r"\?"),
    "exclamation": re.compile(r"!"),
    "quotation": re.compile(r"[\"“”«»„]|``|''|(?:^|\s)‘|(?:^|\s)'\w[^']*'(?=[\s.,;:!?]|$)"),
    "first person": re.compile(r"\bI\b|\b(?i:me|my|mine|myself|we|our|ours|ourselves)\b|\bus\b"),
    "second person": re.compile(r"\b(?i:you|your|yours|yourself|yourselves)\b"),
    "parenthetical": re.compile(r"\([^()]+\)"),
    "modal verb": re.compile(r"\b(?:can|could|may|might|must|shall|should|will|would)\b"),
}

SURFACE_DESCRIPTORS = (*SURFACE_RULES, "proper name")

_WORD = re.compile(r"[A-Za-z][A-Za-z'’\-]*")
_SENTENCE_BREAK = re.compile(r"[.!?:;\"“”(\[]\s*$")


def _has_proper_name(sentence: str) -> bool:
    """A capitalised word that is neither sentence-initial, nor after a break, nor the pronoun I."""
    for match in _WORD.finditer(sentence):
        word, before = match.group(), sentence[: match.start()]
        if not before.strip() or _SENTENCE_BREAK.search(before) or word == "I":
            continue
        if word[0].isupper() and not word.isupper():
            return True
    return False


def surface_descriptors(sentence: str) -> list[str]:
    """Rule-based descriptors of the sentence's surface form (``SURFACE_RULES`` order, then proper name)."""
    found = [name for name, pattern in SURFACE_RULES.items() if pattern.search(sentence)]
    return [*found, "proper name"] if _has_proper_name(sentence) else found


# ---------------------------------------------------------------- keyphrase candidates (offline generator)

EXTRA_STOPWORDS = frozenset(
    "said says say did does doing just like got make makes use used using including according also "
    "shall let lets yes oh ok okay really thing things way lot lots".split()
)
STOPWORDS = frozenset(ENGLISH_STOP_WORDS) | EXTRA_STOPWORDS
_CHUNK_BREAK = re.compile(r"[^A-Za-z'’\-\s]+")


def _keyword(token: str) -> str | None:
    word = token.lower().strip("'’-")
    word = re.sub(r"['’]s$", "", word)
    if len(word) < MIN_KEYWORD_CHARS or word in STOPWORDS or word.endswith("ly"):
        return None
    return word


def candidate_phrases(sentence: str, limit: int = DEFAULT_MAX_CANDIDATES) -> list[str]:
    """Lowercase 1-3-word n-grams of consecutive content words (no stopword, digit or punctuation inside).

    Without a part-of-speech tagger "noun-like" means: at least three letters, not a stopword, not an
    ``-ly`` adverb. Shorter n-grams come first, so truncation to ``limit`` drops the long ones.
    """
    runs: list[list[str]] = []
    for chunk in _CHUNK_BREAK.split(sentence):
        run: list[str] = []
        for token in chunk.split():
            word = _keyword(token)
            if word is None:
                if run:
                    runs.append(run)
                run = []
            else:
                run.append(word)
        if run:
            runs.append(run)
    phrases: dict[str, None] = {}
    for size in range(1, MAX_KEYPHRASE_WORDS + 1):
        for run in runs:
            for start in range(len(run) - size + 1):
                phrases.setdefault(" ".join(run[start : start + size]), None)
    return list(phrases)[:limit]
