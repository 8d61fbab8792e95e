"""Descriptor generators: answer parsing, a fake OpenAI-compatible server, tiny local models, offline."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, T5Config, T5ForConditionalGeneration

from app.errors import InvalidInput, ModelNotFound
from app.methods.neurons.generators import (
    DescriberUnavailable,
    HuggingFaceGenerator,
    OfflineGenerator,
    OpenAIChatGenerator,
    chat_completions_url,
    make_generator,
)
from app.methods.neurons.generators_surface import (
    candidate_phrases,
    clean_descriptors,
    normalise_descriptor,
    parse_batch_answer,
    parse_descriptor_list,
    surface_descriptors,
)
from tests.tiny import SPECIALS, make_tokenizer, vocab

# ---------------------------------------------------------------- cleaning and parsing


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Sports ", "sports"),
        ('"Past   Tense".', "past tense"),
        ("- negation", "negation"),
        ("a b c d", "a b c d"),
        ("one two three four five", None),
        ("", None),
        ("123", None),
        ("x" * 60, None),
    ],
)
def test_normalise_descriptor(raw, expected):
    assert normalise_descriptor(raw) == expected


def test_clean_descriptors_dedupes_in_order_and_limits():
    assert clean_descriptors(["Sports", "sports ", "rain", "a very long descriptor here", "snow"], 2) == [
        "sports",
        "rain",
    ]


@pytest.mark.parametrize(
    "answer",
    [
        '["Sports", "past tense", "sports"]',
        'Sure! ```json\n["sports", "past tense"]\n```',
        '{"descriptors": ["sports", "past tense"]}',
        "- Sports\n- Past tense\n",
        "Descriptors: sports, past tense",
        "1. sports\n2. past tense",
        "sports; past tense.",
    ],
)
def test_parse_descriptor_list_accepts_common_shapes(answer):
    assert parse_descriptor_list(answer) == ["sports", "past tense"]


def test_parse_descriptor_list_drops_sentences_and_respects_the_limit():
    assert parse_descriptor_list('["this is far too long to be a descriptor", "rain"]') == ["rain"]
    assert parse_descriptor_list("a, b, c, d", limit=2) == ["a", "b"]
    assert parse_descriptor_list("") == []


def test_parse_batch_answer_json_object_with_missing_numbers():
    answer = 'Here: {"1": ["Sports"], "3": ["rain", "weather"]}'
    assert parse_batch_answer(answer, 3) == [["sports"], [], ["rain", "weather"]]


def test_parse_batch_answer_list_of_lists_and_numbered_lines():
    assert parse_batch_answer('[["a"], ["b", "c"]]', 2) == [["a"], ["b", "c"]]
    lines = "1. sports, past tense\n2: negation\n- question\nSentence 3 - money"
    assert parse_batch_answer(lines, 3) == [["sports", "past tense"], ["negation", "question"], ["money"]]


def test_parse_batch_answer_single_sentence_falls_back_to_a_plain_list():
    assert parse_batch_answer("sports, rain", 1) == [["sports", "rain"]]


def test_chat_completions_url():
    assert chat_completions_url("http://h:1/v1/") == "http://h:1/v1/chat/completions"
    assert chat_completions_url("http://h:1") == "http://h:1/v1/chat/completions"
    assert chat_completions_url("http://h:1/v1/chat/completions") == "http://h:1/v1/chat/completions"


# ---------------------------------------------------------------- (a) a fake OpenAI-compatible server


class FakeChat(BaseHTTPRequestHandler):
    """Checks the request shape and answers with canned descriptors (``mode`` selects a failure)."""

    mode = "ok"
    requests: list[dict] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
        if self.mode == "slow":
            time.sleep(1.0)
        if self.mode == "error":
            self._send(500, b"model crashed")
            return
        if self.mode == "nonsense":
            self._send(200, b'{"hello": 1}')
            return
        assert self.path == "/v1/chat/completions"
        assert body["model"] == "tiny-llm"
        assert [m["role"] for m in body["messages"]] == ["system", "user"]
        count = body["messages"][1]["content"].count("\n") - 1  # numbered lines after a blank line
        answer = {str(i): [f"Topic {i}", "Sports", "sports"] for i in range(1, count + 1)}
        reply = {"choices": [{"message": {"role": "assistant", "content": json.dumps(answer)}}]}
        self._send(200, json.dumps(reply).encode())

    def _send(self, status, payload):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_server() -> Iterator[str]:
    FakeChat.mode, FakeChat.requests = "ok", []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeChat)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_openai_generator_batches_numbered_sentences(fake_server):
    generator = OpenAIChatGenerator(fake_server, "tiny-llm", api_key="secret", batch_size=2, timeout=5)
    result = generator.describe(["The match ended.", "Stocks fell.", "It rained."])
    assert result == [["topic 1", "sports"], ["topic 2", "sports"], ["topic 1", "sports"]]
    assert len(FakeChat.requests) == 2
    first = FakeChat.requests[0]
    assert first["auth"] == "Bearer secret"
    assert "1. The match ended.\n2. Stocks fell." in first["messages"][1]["content"]
    info = generator.describe_generator()
    assert info["kind"] == "openai" and info["model"] == "tiny-llm" and "secret" not in json.dumps(info)


@pytest.mark.parametrize(("mode", "message"), [("error", "HTTP 500"), ("nonsense", "chat completion")])
def test_openai_generator_server_errors_are_clear(fake_server, mode, message):
    FakeChat.mode = mode
    with pytest.raises(DescriberUnavailable, match=message) as info:
        OpenAIChatGenerator(fake_server, "tiny-llm", timeout=5).describe(["A sentence."])
    assert info.value.status == 503


def test_openai_generator_timeout(fake_server):
    FakeChat.mode = "slow"
    with pytest.raises(DescriberUnavailable, match="did not answer within"):
        OpenAIChatGenerator(fake_server, "tiny-llm", timeout=0.2).describe(["A sentence."])


def test_openai_generator_unreachable_port():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeChat)
    port = server.server_address[1]
    server.server_close()  # nothing listens there any more
    with pytest.raises(DescriberUnavailable, match="Cannot reach"):
        OpenAIChatGenerator(f"http://127.0.0.1:{port}/v1", "m", timeout=2).describe(["A sentence."])


def test_openai_generator_validates_its_configuration():
    with pytest.raises(InvalidInput):
        OpenAIChatGenerator("ftp://host", "m")
    with pytest.raises(InvalidInput, match="model name"):
        OpenAIChatGenerator("http://host/v1", "")


# ---------------------------------------------------------------- (b) tiny local generative models


def _save(model, directory: Path) -> Path:
    model.generation_config.suppress_tokens = list(range(len(SPECIALS)))  # words only: garbage, but text
    model.save_pretrained(directory)
    make_tokenizer(directory).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def tiny_generators(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("generators")
    size = len(vocab())
    gpt2 = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=size,
            n_positions=256,
            n_embd=32,
            n_layer=2,
            n_head=4,
            pad_token_id=0,
            bos_token_id=2,
            eos_token_id=3,
        )
    )
    t5 = T5ForConditionalGeneration(
        T5Config(
            vocab_size=size, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4, pad_token_id=0,
            eos_token_id=3, decoder_start_token_id=0,
        )
    )  # fmt: skip
    return {"causal": _save(gpt2, root / "gpt2"), "seq2seq": _save(t5, root / "t5")}


@pytest.mark.parametrize("architecture", ["causal", "seq2seq"])
def test_huggingface_generator_parses_garbage_into_descriptors(tiny_generators, architecture):
    generator = HuggingFaceGenerator(tiny_generators[architecture], max_new_tokens=3, batch_size=2)
    result = generator.describe(["the cat sat on the mat.", "a dog is not bad!", "why?"])
    assert len(result) == 3
    for descriptors in result:
        assert all(d == normalise_descriptor(d) for d in descriptors)
    assert any(result), "three new word tokens always parse to one descriptor"
    info = generator.describe_generator()
    assert info["kind"] == "huggingface" and info["architecture"] == architecture


def test_huggingface_generator_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(ModelNotFound, match="config.json"):
        HuggingFaceGenerator(tmp_path / "nowhere")


def test_make_generator_picks_by_configuration(tiny_generators, tiny_bert):
    assert make_generator(url="http://127.0.0.1:9/v1", model="m").kind == "openai"
    assert make_generator(path=str(tiny_generators["causal"])).kind == "huggingface"
    assert make_generator(loaded=tiny_bert).kind == "offline"
    with pytest.raises(InvalidInput, match="offline"):
        make_generator()


# ---------------------------------------------------------------- (c) offline: surface rules and keyphrases


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("The cost rose 5% on Monday.", ["number", "money or percent", "date or time", "proper name"]),
        ("We did not see it, did you?", ["negation", "question", "first person", "second person"]),
        ('She said "stop" and left for Paris!', ["exclamation", "quotation", "proper name"]),
        ("It costs $40 (roughly) and I won't pay.",
         ["number", "money or percent", "negation", "first person", "parenthetical"]),
        ("The river may flood in 1998.", ["number", "date or time", "modal verb"]),
        ("Rain fell all night.", []),
    ],
)  # fmt: skip
def test_surface_descriptors_by_hand(sentence, expected):
    assert surface_descriptors(sentence) == expected


def test_candidate_phrases_are_content_ngrams_in_order_of_length():
    phrases = candidate_phrases("The old stone bridge collapsed, and heavy rain flooded it.")
    assert phrases == [
        "old", "stone", "bridge", "collapsed", "heavy", "rain", "flooded",
        "old stone", "stone bridge", "bridge collapsed", "heavy rain", "rain flooded",
        "old stone bridge", "stone bridge collapsed", "heavy rain flooded",
    ]  # fmt: skip
    assert candidate_phrases("It is what it is.") == []
    assert len(candidate_phrases("red green blue cyan pink gray", limit=4)) == 4


def test_offline_generator_on_a_tiny_encoder(tiny_bert):
    generator = OfflineGenerator(tiny_bert, max_keyphrases=2, max_descriptors=6)
    sentences = ["The cost rose 5% on Monday.", "Quietly, it is.", "Heavy rain flooded the old bridge?"]
    result = generator.describe(sentences)
    assert len(result) == 3 and all(len(d) <= 6 for d in result)
    for sentence, descriptors in zip(sentences, result, strict=True):
        surface = surface_descriptors(sentence)
        keyphrases = [d for d in descriptors if d not in surface]
        assert len(keyphrases) <= 2
        assert all(set(k.split()) <= set(candidate_phrases(sentence)) for k in keyphrases)
        for a in keyphrases:  # no two keyphrases share a word
            assert all(not set(a.split()) & set(b.split()) for b in keyphrases if b != a)
    assert set(surface_descriptors(sentences[0])) <= set(result[0])
    assert result[1] == []  # no content word, no surface property
    assert generator.describe([]) == []
    assert generator.describe_generator()["kind"] == "offline"


def test_offline_generator_embeds_each_phrase_once(tiny_bert, monkeypatch):
    from app.methods.neurons import generators

    embedded_texts: list[str] = []
    original = generators.embed_texts

    def counting(loaded, texts, batch_size=generators.DEFAULT_EMBED_BATCH):
        embedded_texts.extend(texts)
        return original(loaded, texts, batch_size)

    monkeypatch.setattr(generators, "embed_texts", counting)
    generator = OfflineGenerator(tiny_bert)
    first = generator.describe(["Heavy rain flooded the bridge."])
    phrases = set(candidate_phrases("Heavy rain flooded the bridge."))
    assert phrases <= set(embedded_texts)
    embedded_texts.clear()
    assert generator.describe(["Heavy rain flooded the bridge."]) == first
    assert embedded_texts == ["Heavy rain flooded the bridge."]  # only the sentence, phrases are cached


@pytest.mark.slow
def test_offline_generator_on_the_embedded_model(embedded):
    sentences = [
        "The striker scored twice as the football match ended 3-1 on Saturday.",
        "Shares on the stock market fell 4% after the central bank raised rates.",
    ]
    first, second = OfflineGenerator(embedded).describe(sentences)
    assert {"number", "date or time"} <= set(first)
    assert {"number", "money or percent"} <= set(second)
    assert any("football" in d or "striker" in d for d in first)
    assert any("stock" in d or "shares" in d or "bank" in d for d in second)
