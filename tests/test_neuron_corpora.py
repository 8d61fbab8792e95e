"""Corpus readers (plain text, CSV, TSV, JSONL, CoNLL-U), corpus specs and the content hash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.data import SAMPLE_CORPUS, WIKIPEDIA_SAMPLE
from app.errors import InvalidInput
from app.methods.neurons.corpora import (
    corpus_hash,
    parse_corpus_spec,
    read_corpus,
)
from tests.conftest import SHARED_DATA

CONLLU = """# sent_id = a-1
# text = The otters can't swim today.
1\tThe\tthe\tDET\t_\t_\t2\tdet\t_\t_
2\totters\totter\tNOUN\t_\t_\t4\tnsubj\t_\t_
3-4\tcan't\t_\t_\t_\t_\t_\t_\t_\t_
3\tca\tcan\tAUX\t_\t_\t5\taux\t_\t_
4\tn't\tnot\tPART\t_\t_\t5\tadvmod\t_\t_
5\tswim\tswim\tVERB\t_\t_\t0\troot\t_\t_
6\ttoday\ttoday\tNOUN\t_\t_\t5\tobl\t_\tSpaceAfter=No
7\t.\t.\tPUNCT\t_\t_\t5\tpunct\t_\t_

# sent_id = a-2
1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_
1\tdo\tdo\tAUX\t_\t_\t3\taux\t_\t_
2\tn't\tnot\tPART\t_\t_\t3\tadvmod\t_\t_
3\tblink\tblink\tVERB\t_\t_\t0\troot\t_\t_
3.1\tnow\tnow\tADV\t_\t_\t_\t_\t3:advmod\t_
4\ttwice\ttwice\tADV\t_\t_\t3\tadvmod\t_\t_

# sent_id = a-3
# text = Lanterns hum.
1\tLanterns\tlantern\tNOUN\t_\t_\t2\tnsubj\t_\t_
2\thum\thum\tVERB\t_\t_\t0\troot\t_\t_
3\t.\t.\tPUNCT\t_\t_\t2\tpunct\t_\t_
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_plain_text_is_one_sentence_per_line(tmp_path):
    file = _write(tmp_path / "c.txt", "Kettles sing at dawn.\n\n  Blue moths rest.  \nA third line.\n")
    assert read_corpus(file) == ["Kettles sing at dawn.", "Blue moths rest.", "A third line."]
    assert read_corpus(file, limit=2) == ["Kettles sing at dawn.", "Blue moths rest."]


def test_csv_tsv_and_jsonl_read_a_named_column(tmp_path):
    csv_file = _write(tmp_path / "c.csv", 'id,body\n1,"Hills, then rivers."\n2,Quiet ferns.\n')
    tsv_file = _write(tmp_path / "c.tsv", "body\tlabel\nA tin drum.\tx\nA paper kite.\ty\n")
    rows = [{"body": "Copper bells.", "n": 1}, {"body": "Salt wind.", "n": 2}]
    jsonl_file = _write(tmp_path / "c.jsonl", "\n".join(json.dumps(row) for row in rows) + "\n")
    assert read_corpus(csv_file, column="body") == ["Hills, then rivers.", "Quiet ferns."]
    assert read_corpus(tsv_file, column="body") == ["A tin drum.", "A paper kite."]
    assert read_corpus(jsonl_file, column="body", limit=1) == ["Copper bells."]
    with pytest.raises(InvalidInput, match="Column 'text' is not in c.csv"):
        read_corpus(csv_file, column="text")


def test_conllu_uses_text_comments_else_joins_word_forms(tmp_path):
    file = _write(tmp_path / "c.conllu", CONLLU)
    # the second sentence has no "# text =": its integer-id forms, without the range 1-2 or node 3.1
    assert read_corpus(file) == ["The otters can't swim today.", "do n't blink twice", "Lanterns hum."]
    assert read_corpus(file, limit=1) == ["The otters can't swim today."]
    with pytest.raises(InvalidInput, match="no named columns"):
        read_corpus(file, column="form")


def test_conllu_with_crlf_line_ends(tmp_path):
    file = tmp_path / "crlf.conllu"
    file.write_bytes(CONLLU.replace("\n", "\r\n").encode())
    assert read_corpus(file)[1] == "do n't blink twice"


def test_missing_empty_and_bad_limit_are_clear_errors(tmp_path):
    with pytest.raises(InvalidInput, match="does not exist"):
        read_corpus(tmp_path / "absent.txt")
    with pytest.raises(InvalidInput, match="does not exist"):
        read_corpus(tmp_path / "absent.conllu")
    with pytest.raises(InvalidInput, match="holds no"):
        read_corpus(_write(tmp_path / "empty.conllu", "# only = comments\n\n"))
    with pytest.raises(InvalidInput, match="at least 1"):
        read_corpus(_write(tmp_path / "ok.txt", "One line.\n"), limit=0)


@pytest.mark.parametrize(
    ("spec", "name", "path"),
    [("wiki=corpora/wiki.txt", "wiki", "corpora/wiki.txt"), (" news-1987 = a=b.txt", "news-1987", "a=b.txt")],
)
def test_corpus_spec_parses(spec, name, path):
    assert parse_corpus_spec(spec) == (name, Path(path))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("wiki.txt", "not of the form NAME=FILE"),
        ("wiki=", "not of the form NAME=FILE"),
        ("=wiki.txt", "is not allowed"),
        ("my corpus=wiki.txt", "is not allowed"),
        ("wiki/2=wiki.txt", "is not allowed"),
        ("x" * 65 + "=wiki.txt", "is not allowed"),
    ],
)
def test_bad_corpus_specs_are_refused(spec, message):
    with pytest.raises(InvalidInput, match=message):
        parse_corpus_spec(spec)


def test_sample_corpus_ships_with_the_package():
    assert SAMPLE_CORPUS.is_file()
    assert len(read_corpus(SAMPLE_CORPUS)) == 405


SHARED_WIKIPEDIA = SHARED_DATA / "corpora" / "wikipedia_wikitext2.txt"


def test_wikipedia_sample_ships_with_its_source_record():
    sentences = read_corpus(WIKIPEDIA_SAMPLE)
    assert len(sentences) == 500 and len(set(sentences)) == 500
    record = json.loads(WIKIPEDIA_SAMPLE.with_name(WIKIPEDIA_SAMPLE.name + ".source.json").read_text())
    assert "Merity" in record["source"] and "CC BY-SA" in record["licence"]


@pytest.mark.skipif(not SHARED_WIKIPEDIA.is_file(), reason="shared WikiText-2 corpus not present")
def test_wikipedia_sample_is_every_tenth_line_of_the_shared_file():
    lines = SHARED_WIKIPEDIA.read_text(encoding="utf-8").splitlines()
    assert WIKIPEDIA_SAMPLE.read_text(encoding="utf-8").splitlines() == lines[::10]  # as its record says


def test_corpus_hash_depends_on_content_and_order():
    assert corpus_hash(["a b", "c"]) == corpus_hash(["a b", "c"])
    assert corpus_hash(["a b", "c"]) != corpus_hash(["c", "a b"])
    assert corpus_hash(["ab", "c"]) != corpus_hash(["a", "bc"])
    assert len(corpus_hash(["x"])) == 32


def test_columns_go_to_table_corpora_only():
    from app.methods.neurons.corpora import assign_columns

    def specs():
        return [
            {"name": "ewt", "path": "dev.conllu", "column": None},
            {"name": "sst", "path": "dev.tsv", "column": None},
            {"name": "news", "path": "news.jsonl", "column": None},
            {"name": "wiki", "path": "wiki.txt", "column": None},
        ]

    every = specs()
    assign_columns(every, ["sentence"])  # a bare column: every CSV/TSV/JSONL corpus, no other
    assert [s["column"] for s in every] == [None, "sentence", "sentence", None]
    one = specs()
    assign_columns(one, ["news=body", "sentence"])  # NAME=COLUMN wins over a bare column, in any order
    assert [s["column"] for s in one] == [None, "sentence", "body", None]
    with pytest.raises(InvalidInput, match="names no corpus"):
        assign_columns(specs(), ["nope=body"])
    with pytest.raises(InvalidInput, match="has no columns"):
        assign_columns(specs(), ["ewt=form"])
    with pytest.raises(InvalidInput, match="empty"):
        assign_columns(specs(), ["sst="])
