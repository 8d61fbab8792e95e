"""Finding the gold tree of a typed sentence in the treebanks a probe set was trained and checked on."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from app.errors import BertscopeError
from app.methods.probes.probe_set import ProbeSet
from app.methods.probes.treebank import TreeSentence, read_conllu

TREEBANK_PARAMS = ("dev", "treebank")  # held-out first


class TreebankLookup:
    """Sentences by text of the treebanks named in probe sets' params, read once and kept.

    ``resolve`` turns a params value (a server path, or an uploaded dataset's reference) into a file to read;
    a value it cannot resolve (e.g. a deleted dataset) is a treebank without sentences."""

    def __init__(self, resolve: Callable[[str], str] = str) -> None:
        self._resolve = resolve
        self._by_path: dict[str, dict[str, TreeSentence]] = {}
        self._cache_guard = threading.Lock()  # one reader fills the path cache at a time

    def find(self, probes: ProbeSet, text: str) -> TreeSentence | None:
        """The treebank sentence whose text is exactly ``text`` (ignoring outer spaces), if any."""
        key = text.strip()
        for param in TREEBANK_PARAMS:
            path = probes.params.get(param)
            if path:
                sentence = self._sentences(str(path)).get(key)
                if sentence is not None:
                    return sentence
        return None

    def examples(self, probes: ProbeSet, count: int, min_words: int = 6, max_words: int = 18) -> list[str]:
        """A few mid-length sentences of the probe set's dev treebank (read from the server's file)."""
        sentences = self._sentences(str(probes.params.get("dev") or ""))
        chosen = [text for text, s in sentences.items() if min_words <= s.length <= max_words]
        return chosen[:count]

    def _sentences(self, path: str) -> dict[str, TreeSentence]:
        with self._cache_guard:
            if path not in self._by_path:
                try:
                    self._by_path[path] = _read(self._resolve(path)) if path else {}
                except BertscopeError:
                    self._by_path[path] = {}
            return self._by_path[path]


def _read(path: str) -> dict[str, TreeSentence]:
    if not Path(path).is_file():
        return {}
    try:
        sentences = read_conllu(path)
    except BertscopeError:
        return {}
    return {(sentence.text or " ".join(sentence.words)): sentence for sentence in sentences}


def best_layer(probes: ProbeSet) -> int:
    """The layer whose distance probe scored the highest dev UUAS (the last layer when unknown)."""
    layers = probes.metrics.get("layers", {})
    scored = [(values.get("uuas") or 0.0, int(layer)) for layer, values in layers.items()]
    return max(scored)[1] if scored else probes.layers[-1]
