"""Validation of uploaded data files (app.datasets): every case hand-built here, and every file that validates
reads with the project's readers, with the same number of rows."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.data import SAMPLE_CORPUS
from app.datasets import DatasetInvalid, DatasetSummary, DatasetTooLarge, file_suffix, validate_dataset
from app.datasets.lines import MAX_LINE_BYTES
from app.datasets.treebank import find_cycle
from app.errors import InvalidInput
from app.methods.evaluation.texts import read_labelled, read_texts
from app.methods.neurons.corpora import read_corpus
from app.methods.probes.treebank import read_conllu, tree_distances
from tests.treebanks import SENTENCES, write_treebank

LIMIT = 1000
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def validate(path: Path, filename: str | None = None, kind=None, **options) -> DatasetSummary:
    options.setdefault("max_rows", LIMIT)
    return validate_dataset(path, filename or path.name, kind, **options)


def invalid(path: Path, filename: str | None = None, kind=None, **options) -> DatasetInvalid:
    with pytest.raises(DatasetInvalid) as caught:
        validate(path, filename, kind, **options)
    assert caught.value.status == 422 and caught.value.code == "dataset_invalid"
    return caught.value


def assert_readers_agree(path: Path, summary: DatasetSummary, text_column=None, label_column=None) -> None:
    """The project's readers read the file (stored under the format's suffix) with as many rows."""
    stored = path.parent / f"stored{summary.format}"
    shutil.copyfile(path, stored)
    if summary.format == ".conllu":
        sentences = read_conllu(stored)
        assert len(sentences) == summary.rows
        assert sum(sentence.length for sentence in sentences) == (
            summary.words or sum(s.length for s in sentences)
        )
        for sentence in sentences:
            tree_distances(sentence.heads)  # raises on a cycle
        assert len(read_corpus(stored)) == summary.rows
        return
    if summary.kind == "labelled":
        texts, labels = read_labelled(stored, text_column, label_column)
        assert len(texts) == len(labels) == summary.rows
        assert sorted(set(labels), key=int) == summary.labels
    assert len(read_texts(stored, text_column)) == summary.rows
    assert len(read_corpus(stored, text_column)) == summary.rows


# valid files: exact summaries, and the readers agree


def test_labelled_tsv(tmp_path):
    path = write(
        tmp_path,
        "reviews.tsv",
        'sentence\tlabel\na "fine" film \t1\n\nawful , truly\t0\nmeh\t2\n\t \nok\t10\n',
    )
    summary = validate(path)
    assert summary == DatasetSummary(
        kind="labelled",
        format=".tsv",
        rows=4,
        columns=["sentence", "label"],
        text_column="sentence",
        label_column="label",
        labels=["0", "1", "2", "10"],
        words=None,
    )
    assert summary.to_json() == {
        "kind": "labelled",
        "format": ".tsv",
        "rows": 4,
        "columns": ["sentence", "label"],
        "text_column": "sentence",
        "label_column": "label",
        "labels": ["0", "1", "2", "10"],
        "words": None,
    }
    assert_readers_agree(path, summary)


def test_labelled_csv_with_quotes_and_a_multiline_text(tmp_path):
    content = 'id,review,stars\r\n1,"good, really",1\r\n2,"two\r\nlines",0\r\n3,plain,1\r\n'
    path = write(tmp_path, "Reviews.CSV", content)
    summary = validate(path, text_column="review", label_column="stars")
    assert summary == DatasetSummary(
        "labelled", ".csv", 3, ["id", "review", "stars"], "review", "stars", ["0", "1"]
    )
    assert_readers_agree(path, summary, "review", "stars")


def test_jsonl_labels_as_numbers_and_strings(tmp_path):
    rows = [
        {"text": "first", "label": 0, "source": "a"},
        {"text": "second", "label": "1"},
        {"text": "third\u2028line", "label": 0},  # U+2028 inside a JSON string is still one line
    ]
    path = write(
        tmp_path, "pairs.jsonl", "\n".join(json.dumps(row, ensure_ascii=False) for row in rows) + "\n\n"
    )
    summary = validate(path)
    assert summary == DatasetSummary(
        "labelled", ".jsonl", 3, ["text", "label", "source"], "text", "label", ["0", "1"]
    )
    assert_readers_agree(path, summary)


def test_texts_table_without_a_label_column(tmp_path):
    path = write(tmp_path, "corpus.tsv", "title\ttext\nA\tone text\nB\t \nC\ttwo\n")
    summary = validate(path)
    assert summary == DatasetSummary("texts", ".tsv", 2, ["title", "text"], "text", None, [])
    assert_readers_agree(path, summary)
    labelled_as_texts = write(tmp_path, "l.csv", "text,label\na,0\nb,1\n")
    assert validate(labelled_as_texts, kind="texts") == DatasetSummary(
        "texts", ".csv", 2, ["text", "label"], "text"
    )


def test_plain_text(tmp_path):
    path = write(tmp_path, "notes.txt", "first line\r\n\r\n  second  \rthird\x0cfourth\n   \n")
    summary = validate(path)
    assert summary == DatasetSummary("texts", ".txt", 4)
    assert_readers_agree(path, summary)
    shipped = validate(SAMPLE_CORPUS)
    assert shipped.kind == "texts" and shipped.rows == len(read_corpus(SAMPLE_CORPUS))


def test_conllu_treebank(tmp_path):
    path = write_treebank(tmp_path / "train.conllu")  # with a multiword range and an empty node
    summary = validate(path)
    assert summary == DatasetSummary(
        "treebank", ".conllu", 8, words=sum(len(s[0].split()) for s in SENTENCES)
    )
    assert_readers_agree(path, summary)
    as_texts = validate(path, kind="texts")
    assert (as_texts.kind, as_texts.rows, as_texts.words) == ("texts", 8, None)


def test_a_utf8_byte_order_mark_is_accepted_and_read(tmp_path):
    path = write(tmp_path, "bom.tsv", b"\xef\xbb\xbflabel\ttext\n1\tfine\n0\tbad\n")
    summary = validate(path)
    assert summary.columns == ["label", "text"] and summary.kind == "labelled"
    assert_readers_agree(path, summary)
    assert read_labelled(path) == (["fine", "bad"], ["1", "0"])
    treebank = write_treebank(tmp_path / "bom.conllu")
    treebank.write_bytes(b"\xef\xbb\xbf" + treebank.read_bytes())
    assert_readers_agree(treebank, validate(treebank))


def test_old_mac_line_endings(tmp_path):
    path = write(tmp_path, "mac.csv", "text,label\rgood,1\rbad,0\r")
    summary = validate(path)
    assert summary.rows == 2
    assert_readers_agree(path, summary)


def test_the_jsonl_reader_keeps_label_zero(tmp_path):
    """read_labelled used to drop rows whose JSON label was 0 (``0 or ""``)."""
    path = write(tmp_path, "zero.jsonl", '{"text": "a", "label": 0}\n{"text": "b", "label": 1}\n')
    assert read_labelled(path) == (["a", "b"], ["0", "1"])
    nulls = write(tmp_path, "nulls.jsonl", '{"text": null}\n{"text": "b"}\n')
    assert read_texts(nulls) == ["b"]


# broken files


def test_binary_file(tmp_path):
    error = invalid(write(tmp_path, "data.csv", b"text,label\nok,1\nab\x00cd,0\n"))
    assert (error.line, error.byte) == (3, 3)
    assert str(error).startswith("data.csv, line 3, byte 3: a NUL byte")
    png = invalid(write(tmp_path, "picture.txt", b"\x89PNG\r\n\x1a\n"))
    assert (png.line, png.byte) == (1, 1) and "0x89 is not valid UTF-8" in str(png)
    latin = invalid(write(tmp_path, "latin.tsv", "text\tlabel\ncaf\xe9\t1\n".encode("latin-1")))
    assert (latin.line, latin.byte) == (2, 4) and "save it as UTF-8" in str(latin)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_file(tmp_path, encoding):
    error = invalid(write(tmp_path, "reviews.tsv", "text\tlabel\ngood\t1\n".encode(encoding)))
    assert "UTF-16" in str(error) and "save it as UTF-8" in str(error)


@pytest.mark.parametrize(
    "name", ["empty.tsv", "empty.csv", "empty.jsonl", "empty.txt", "empty.conllu", "empty"]
)
@pytest.mark.parametrize("content", ["", "\n \n\r\n\t\n"])
def test_empty_file(tmp_path, name, content):
    error = invalid(write(tmp_path, name, content))
    assert "empty" in str(error)


def test_csv_without_a_label_column(tmp_path):
    path = write(tmp_path, "reviews.csv", "text,score\ngood,1\n")
    error = invalid(path, kind="labelled")
    assert str(error) == (
        "reviews.csv, line 1: labelled data needs a label column: there is no column 'label'; "
        "the columns are: 'text', 'score'. Name the label column."
    )
    assert validate(path, label_column="score").labels == ["1"]
    assert "no column 'stars'" in str(invalid(path, label_column="stars"))
    assert "no column 'body'" in str(invalid(path, text_column="body"))


def test_labels_that_are_not_integers(tmp_path):
    path = write(tmp_path, "reviews.tsv", "text\tlabel\ngood\t1\nfine\t0\n\nbad\tpositive\n")
    error = invalid(path)
    assert (error.line, error.column) == (5, "label")
    assert str(error) == (
        "reviews.tsv, line 5, column 'label': "
        "label 'positive' is not an integer; labels must be integers 0, 1, ..."
    )
    for label, problem in [
        ("-1", "negative"),
        ("01", "leading zero"),
        ("1.0", "not an integer"),
        ("", "empty"),
    ]:
        assert problem in str(invalid(write(tmp_path, "r.tsv", f"text\tlabel\ngood\t{label}\n")))
    jsonl = write(tmp_path, "r.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": 1.5}\n')
    assert (invalid(jsonl).line, invalid(jsonl).column) == (2, "label")
    no_text = invalid(write(tmp_path, "t.csv", "text,label\n ,1\n"))
    assert (no_text.line, no_text.column) == (2, "text")


def test_a_header_row_is_required(tmp_path):
    error = invalid(write(tmp_path, "noheader.tsv", "a good film\t1\nbad\t0\n"))
    assert error.line == 1 and "looks like data, not a header" in str(error) and "'1'" in str(error)
    twice = invalid(write(tmp_path, "twice.csv", "text,text\na,b\n"))
    assert "column 'text' twice" in str(twice)


def test_ragged_rows(tmp_path):
    error = invalid(write(tmp_path, "ragged.tsv", "text\tlabel\ngood\t1\nbad\tvery\t0\n"))
    assert error.line == 3 and "3 fields but the header (line 1) has 2" in str(error)
    short = invalid(write(tmp_path, "short.csv", "text,label\ngood,1\nnothing\n"))
    assert short.line == 3 and "1 fields" in str(short)
    unclosed = invalid(write(tmp_path, "quote.csv", 'text,label\ngood,1\n"oops,1\nbad,0\nworse,0\n'))
    assert unclosed.line == 3 and 'double quote (") opened on line 3' in str(unclosed)


def test_jsonl_bad_lines(tmp_path):
    error = invalid(write(tmp_path, "bad.jsonl", '{"text": "a", "label": 1}\n\n{"text": "b", label: 0}\n'))
    assert error.line == 3 and "not valid JSON" in str(error)
    array = invalid(write(tmp_path, "array.jsonl", '{"text": "a"}\n["b"]\n'))
    assert array.line == 2 and "a list, not an object" in str(array)
    number = invalid(write(tmp_path, "n.jsonl", '{"text": 5}\n'))
    assert (number.line, number.column) == (1, "text")
    deep = invalid(write(tmp_path, "deep.jsonl", '{"text": ' + "[" * 100_000 + "]" * 100_000 + "}\n"))
    assert deep.line == 1


WORD = "{id}\t{form}\t{form}\tX\t_\t_\t{head}\tdep\t_\t_"


def conllu(*sentences: list[tuple[str, str, str]]) -> str:
    """Sentences of (id, form, head) as CoNLL-U, each after a sent_id comment."""
    blocks = []
    for number, words in enumerate(sentences, start=1):
        lines = [f"# sent_id = s{number}"] + [WORD.format(id=i, form=f, head=h) for i, f, h in words]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


GOOD = [("1", "the", "2"), ("2", "cat", "0")]


def test_conllu_with_a_cycle(tmp_path):
    cycle = [("1", "a", "0"), ("2", "b", "3"), ("3", "c", "4"), ("4", "d", "2")]
    error = invalid(write(tmp_path, "cycle.conllu", conllu(GOOD, cycle)))
    assert "sentence at line 5" in str(error) and "cycle (word 2 -> 3 -> 4 -> 2)" in str(error)
    assert (error.line, error.column) == (7, "HEAD")
    self_loop = invalid(write(tmp_path, "loop.conllu", conllu([("1", "a", "0"), ("2", "b", "2")])))
    assert "cycle (word 2 -> 2)" in str(self_loop) and self_loop.line == 3


def test_conllu_with_two_roots(tmp_path):
    error = invalid(
        write(tmp_path, "roots.conllu", conllu(GOOD, [("1", "a", "0"), ("2", "b", "1"), ("3", "c", "0")]))
    )
    assert (error.line, error.column) == (8, "HEAD")
    assert "sentence at line 5 already has its root at line 6" in str(error)
    no_root = invalid(write(tmp_path, "noroot.conllu", conllu([("1", "a", "2"), ("2", "b", "1")])))
    assert "no root" in str(no_root) and no_root.line == 1


def test_conllu_head_out_of_range(tmp_path):
    error = invalid(write(tmp_path, "range.conllu", conllu([("1", "a", "0"), ("2", "b", "7")])))
    assert (error.line, error.column) == (3, "HEAD") and "HEAD must be 0 to 2" in str(error)
    text_head = invalid(write(tmp_path, "h.conllu", conllu([("1", "a", "_")])))
    assert (text_head.line, text_head.column) == (2, "HEAD")


def test_conllu_ids_not_consecutive(tmp_path):
    error = invalid(write(tmp_path, "ids.conllu", conllu([("1", "a", "0"), ("3", "b", "1")])))
    assert (error.line, error.column) == (3, "ID") and "word ID 3 where 2 should come" in str(error)
    start = invalid(write(tmp_path, "start.conllu", conllu(GOOD, [("2", "a", "0")])))
    assert (start.line, start.column) == (6, "ID")
    garbage = invalid(write(tmp_path, "g.conllu", conllu([("x", "a", "0")])))
    assert garbage.column == "ID"
    ranges = conllu([("1-2", "dont", "_"), ("1", "do", "2"), ("2", "nt", "0"), ("2.1", "x", "_")])
    assert validate(write(tmp_path, "ranges.conllu", ranges)).words == 2


def test_conllu_wrong_column_count(tmp_path):
    text = conllu(GOOD).replace("2\tcat\tcat\tX\t_\t_\t0\tdep\t_\t_", "2 cat cat X _ _ 0 dep _ _")
    error = invalid(write(tmp_path, "cols.conllu", text))
    assert error.line == 3 and "this one has 1 (are they separated by spaces" in str(error)
    comments_only = invalid(write(tmp_path, "c.conllu", conllu(GOOD) + "\n# just a comment\n"))
    assert comments_only.line == 5 and "no words" in str(comments_only)
    separator = invalid(write(tmp_path, "sep.conllu", conllu([("1", "a\u2028b", "0")])))
    assert separator.line == 2 and "U+2028" in str(separator)


def test_max_rows(tmp_path):
    path = write(tmp_path, "big.tsv", "text\tlabel\n" + "".join(f"text {i}\t{i % 2}\n" for i in range(11)))
    with pytest.raises(DatasetTooLarge) as caught:
        validate(path, max_rows=10, rows_setting="BERTSCOPE_MAX_DATASET_ROWS")
    assert caught.value.status == 413 and caught.value.code == "dataset_too_large"
    assert str(caught.value) == (
        "big.tsv has more than 10 rows: the limit is 10 rows, set by BERTSCOPE_MAX_DATASET_ROWS."
    )
    assert validate(path, max_rows=11).rows == 11
    treebank = write_treebank(tmp_path / "t.conllu", 5)
    with pytest.raises(DatasetTooLarge, match="more than 4 sentences.*BERTSCOPE_X"):
        validate(treebank, max_rows=4, rows_setting="BERTSCOPE_X")


def test_unknown_suffix_sniffing(tmp_path):
    treebank = write_treebank(tmp_path / "upload")
    summary = validate(treebank, "upload")
    assert (summary.format, summary.kind, summary.rows) == (".conllu", "treebank", 8)
    text = write(tmp_path, "notes.data", "# a heading\nsome text\tand a tab\n\nmore\n")
    assert validate(text) == DatasetSummary("texts", ".txt", 3)
    assert_readers_agree(text, validate(text))
    assert [
        file_suffix(name) for name in ["a.TSV", "x.tar.CoNLLU", ".csv", "noext", "dir.csv/file", "a\\b.jsonl"]
    ] == [
        ".tsv",
        ".conllu",
        "",
        "",
        "",
        ".jsonl",
    ]


def test_kind_must_fit_the_format(tmp_path):
    error = invalid(write(tmp_path, "t.csv", "text,label\na,1\n"), kind="treebank")
    assert "a treebank must be a CoNLL-U file" in str(error) and "a CSV table" in str(error)
    sniffed = invalid(write(tmp_path, "upload", "one text\n"), kind="treebank")
    assert "judged by its content" in str(sniffed)
    assert "labelled data must be a .tsv, .csv or .jsonl" in str(
        invalid(write(tmp_path, "p.txt", "a\n"), kind="labelled")
    )
    assert "no named columns" in str(invalid(write(tmp_path, "q.txt", "a\n"), text_column="text"))
    with pytest.raises(InvalidInput, match="Unknown dataset kind"):
        validate(write(tmp_path, "r.txt", "a\n"), kind="tables")


@pytest.mark.parametrize(
    "filename",
    ["../../etc/passwd.tsv", "<script>alert(1)</script>.tsv", "C:\\Users\\me\\<b>x</b>.tsv", "/tmp/x.tsv"],
)
def test_the_file_name_is_only_a_suffix_and_shown_verbatim(tmp_path, filename):
    """The name's directories are never opened: a name that points at a valid file changes nothing."""
    (tmp_path / "x.tsv").write_text("text\tlabel\nfine\t1\n")
    path = write(tmp_path, "upload.bin", "text\tlabel\nbad\tpositive\n")
    error = invalid(path, filename.replace("/tmp/", f"{tmp_path}/"))
    assert str(error).startswith(filename.replace("/tmp/", f"{tmp_path}/") + ", line 2, column 'label': ")


def test_overlong_line(tmp_path):
    error = invalid(write(tmp_path, "long.txt", "short\n" + "x" * (MAX_LINE_BYTES + 10)))
    assert error.line == 2 and "longer than" in str(error)


def test_find_cycle():
    assert find_cycle([0, 1, 2]) == []
    assert find_cycle([0, 3, 2]) == [2, 3]
    assert find_cycle([2, 1, 0]) == [1, 2]
    assert find_cycle([0, 2]) == [2]


MEASURE_PEAK = """
import json, resource, sys
from pathlib import Path
from app.datasets import validate_dataset
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
summary = validate_dataset(Path(sys.argv[1]), "large.tsv", max_rows=10_000_000)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth_kib": after - before, "summary": summary.to_json()}))
"""


@pytest.mark.slow
def test_a_50_mb_file_streams(tmp_path):
    """Validating a 50 MB file raises the process's peak memory by a small fraction of the file's size (it is
    never read whole); measured as the growth of the peak resident set in a fresh interpreter (tracemalloc
    would slow the validation some fifteen-fold)."""
    path = tmp_path / "large.tsv"
    row = "a sentence of moderate length that repeats to fill the file with data\t{}\n"
    with path.open("w", encoding="utf-8") as handle:
        handle.write("sentence\tlabel\n")
        block = "".join(row.format(i % 3) for i in range(1000))
        while handle.tell() < 50 * 1024 * 1024:
            handle.write(block)
    size = path.stat().st_size
    command = [sys.executable, "-c", MEASURE_PEAK, str(path)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    measured = json.loads(result.stdout)
    assert measured["summary"]["labels"] == ["0", "1", "2"]
    assert measured["summary"]["rows"] == (size - len("sentence\tlabel\n")) // len(row.format(0))
    assert measured["growth_kib"] * 1024 < size / 10, (
        f"peak grew {measured['growth_kib']} KiB for {size} bytes"
    )


@pytest.mark.skipif(not SHARED.is_dir(), reason="real datasets absent")
def test_real_datasets_agree_with_the_readers(tmp_path):
    for path in sorted(SHARED.rglob("*")):
        if path.suffix in {".tsv", ".jsonl", ".txt", ".conllu"}:
            text_column = "sentence1" if path.suffix == ".jsonl" else None
            summary = validate(path, max_rows=1_000_000, text_column=text_column)
            copy = tmp_path / path.parent.name / path.name
            copy.parent.mkdir(exist_ok=True)
            shutil.copyfile(path, copy)
            assert_readers_agree(copy, summary, text_column)
