"""Uploaded datasets through the real app: upload, list, delete, jobs that read them, who may do what, and
every kind of broken file refused before a job starts, with the store left as it was."""

from __future__ import annotations

import http.client
import json
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from app.main import create_app
from tests.conftest import make_settings
from tests.tiny import wait_for_job

LABELLED = "sentence\tlabel\n" + "".join(
    f"{text}\t{label}\n"
    for text, label in [
        ("a good movie", 1),
        ("a bad movie", 0),
        ("very good", 1),
        ("not good at all", 0),
        ("good and fun", 1),
        ("bad and dull", 0),
    ]
    * 4
)
TREEBANK = """# text = the cat sat
1\tthe\tthe\tDET\t_\t_\t2\tdet\t_\t_
2\tcat\tcat\tNOUN\t_\t_\t3\tnsubj\t_\t_
3\tsat\tsit\tVERB\t_\t_\t0\troot\t_\t_

"""


def _upload(client: TestClient, name: str, content: bytes | str, **fields: str):
    body = content.encode() if isinstance(content, str) else content
    return client.post("/api/datasets", files={"file": (name, body)}, data=fields)


def _error(response) -> str:
    return response.json()["error"]["message"]


def test_upload_list_reuse_and_delete(client):
    created = _upload(client, "reviews.tsv", LABELLED)
    assert created.status_code == 201, created.text
    dataset = created.json()
    assert dataset["kind"] == "labelled" and dataset["rows"] == 24 and dataset["name"] == "reviews"
    assert dataset["ref"] == f"dataset:{dataset['id']}" and dataset["created"] is True
    again = _upload(client, "copy-of-reviews.tsv", LABELLED)
    assert again.status_code == 200 and again.json()["id"] == dataset["id"]  # the same file is one dataset
    assert [d["id"] for d in client.get("/api/datasets").json()] == [dataset["id"]]
    assert client.get("/api/datasets?kind=treebank").json() == []
    assert client.get(f"/api/datasets/{dataset['id']}").json()["sha256"] == dataset["sha256"]
    assert client.delete(f"/api/datasets/{dataset['id']}").status_code == 200
    assert client.get(f"/api/datasets/{dataset['id']}").status_code == 404
    assert client.delete(f"/api/datasets/{dataset['id']}").status_code == 404


def _datasets_count(client: TestClient) -> int:
    return len(client.get("/api/datasets").json())


@pytest.mark.parametrize(
    ("name", "content", "fields", "expected"),
    [
        ("blob.txt", b"\x00\x01\x02binary\xff\xfe\x00", {}, "line 1"),
        ("utf16.tsv", "sentence\tlabel\nhello\t1\n".encode("utf-16"), {}, "UTF-16"),
        ("empty.txt", b"", {}, "empty"),
        ("nolabel.csv", "text,score\nfine,3\n", {"kind": "labelled"}, "label"),
        ("words.tsv", "sentence\tlabel\ngood\tpositive\n", {"kind": "labelled"}, "line 2"),
        ("roots.conllu", TREEBANK.replace("\t2\tdet", "\t0\tdet"), {}, "root"),
    ],
)
def test_broken_files_are_refused_with_line_and_nothing_is_stored(client, name, content, fields, expected):
    response = _upload(client, name, content, **fields)
    assert response.status_code == 422, response.text
    assert expected.lower() in _error(response).lower()
    assert _datasets_count(client) == 0


def test_a_cycle_names_where_it_is(client):
    cyclic = TREEBANK.replace("2\tcat\tcat\tNOUN\t_\t_\t3", "2\tcat\tcat\tNOUN\t_\t_\t1")
    # the -> cat -> the, sat is the root: a cycle that never reaches it
    response = _upload(client, "cycle.conllu", cyclic)
    assert response.status_code == 422
    assert "cycle" in _error(response).lower() and "line" in _error(response).lower()


def test_file_names_are_text_never_paths(client, tmp_path):
    markup = "<img src=x onerror=alert(1)>"
    response = _upload(client, f"../../etc/{markup}.tsv", LABELLED)
    assert response.status_code == 201
    dataset = response.json()
    assert dataset["name"] == markup and dataset["filename"] == f"../../etc/{markup}.tsv"
    # a job reads it from a file under the cache folder, named safely
    job = client.post(
        "/api/jobs", json={"kind": "fit_head", "params": {"data": dataset["ref"], "name": "evil"}}
    ).json()
    assert wait_for_job(client, job["id"])["status"] == "done"
    written = list((tmp_path / "dataset-files").rglob("*.tsv"))
    assert len(written) == 1 and written[0].is_relative_to(tmp_path / "dataset-files")
    assert "<" not in written[0].name and ".." not in written[0].relative_to(tmp_path).as_posix()
    page = client.get("/evaluations").text
    assert markup not in page  # names reach the page only as JSON data, escaped


def test_jobs_read_uploaded_datasets(client):
    labelled = _upload(client, "reviews.tsv", LABELLED).json()
    job = client.post(
        "/api/jobs", json={"kind": "fit_head", "params": {"data": labelled["ref"], "limit": 20}}
    ).json()
    finished = wait_for_job(client, job["id"], timeout=120)
    assert finished["status"] == "done", finished
    heads = client.get("/api/heads").json()
    assert [head["name"] for head in heads] == ["reviews"]  # named after the dataset
    assert heads[0]["params"]["data"] == labelled["ref"]  # provenance: the dataset, not a temporary path
    degradation = client.post(
        "/api/jobs",
        json={
            "kind": "eval_degradation",
            "params": {
                "data": labelled["ref"],
                "limit": 4,
                "methods": ["gradient_x_input", "random"],
                "target": {"kind": "head", "head": "reviews"},
            },
        },
    ).json()
    assert wait_for_job(client, degradation["id"], timeout=120)["status"] == "done"


def test_jobs_refuse_missing_or_unfitting_datasets_before_queueing(client):
    texts = _upload(client, "lines.txt", "one sentence\nanother one\n").json()
    assert texts["kind"] == "texts"
    wrong = client.post("/api/jobs", json={"kind": "fit_head", "params": {"data": texts["ref"]}})
    assert wrong.status_code == 422 and "params.data" in _error(wrong) and "label" in _error(wrong)
    missing = client.post(
        "/api/jobs",
        json={
            "kind": "train_probes",
            "params": {"treebank": "dataset:nosuchdataset", "dev": "dataset:nosuchdataset"},
        },
    )
    assert missing.status_code == 404 and "params.treebank" in _error(missing)
    nofile = client.post("/api/jobs", json={"kind": "fit_head", "params": {"data": "/no/such/file.tsv"}})
    assert nofile.status_code == 422 and "/no/such/file.tsv" in _error(nofile)
    nested = client.post(
        "/api/jobs",
        json={
            "kind": "index_neurons",
            "params": {
                "corpora": [{"name": "ok", "path": texts["ref"]}, {"name": "gone", "path": "dataset:gone"}]
            },
        },
    )
    assert nested.status_code == 404 and "params.corpora[1].path" in _error(nested)
    assert client.get("/api/jobs").json() == []


def _shared(tmp_path: Path, tiny_bert, **overrides: object) -> TestClient:
    settings = make_settings(tmp_path, host="0.0.0.0", **overrides)
    return TestClient(create_app(settings, tiny_bert), base_url="http://127.0.0.1")


def test_shared_server_needs_the_token_unless_dataset_jobs_are_opened(tmp_path, tiny_bert):
    with _shared(tmp_path / "closed", tiny_bert) as closed:
        assert _upload(closed, "reviews.tsv", LABELLED).status_code == 403
    with _shared(tmp_path / "token", tiny_bert, admin_token="s3cret") as token:
        assert _upload(token, "reviews.tsv", LABELLED).status_code == 401
        sent = token.post(
            "/api/datasets",
            files={"file": ("reviews.tsv", LABELLED.encode())},
            headers={"Authorization": "Bearer s3cret"},
        )
        assert sent.status_code == 201
    with _shared(tmp_path / "open", tiny_bert, open_dataset_jobs=True) as opened:
        dataset = _upload(opened, "reviews.tsv", LABELLED).json()
        job = opened.post("/api/jobs", json={"kind": "fit_head", "params": {"data": dataset["ref"]}})
        assert job.status_code == 202
        assert opened.post(f"/api/jobs/{job.json()['id']}/cancel").status_code == 200
        path = opened.post("/api/jobs", json={"kind": "fit_head", "params": {"data": "/etc/passwd"}})
        assert path.status_code == 403 and "params.data" in _error(path) and "upload" in _error(path)
        swap = opened.post("/api/jobs", json={"kind": "load_model", "params": {"model": "embedded"}})
        assert swap.status_code == 403
        assert opened.delete(f"/api/datasets/{dataset['id']}").status_code == 200


def test_upload_form_errors_are_clear(client):
    no_file = client.post("/api/datasets", data={"name": "x"}, files={"other": ("a.txt", b"x")})
    assert no_file.status_code == 422 and "other" in _error(no_file)
    just_text = client.post("/api/datasets", data={"file": "not a file"})
    assert just_text.status_code == 422 and "'file'" in _error(just_text)
    kind = _upload(client, "a.txt", "a line\n", kind="images")
    assert kind.status_code == 422 and "texts, labelled, treebank" in _error(kind)


def test_row_limit_is_a_setting(tmp_path, tiny_bert):
    settings = make_settings(tmp_path, max_dataset_rows=5)
    with TestClient(create_app(settings, tiny_bert), base_url="http://127.0.0.1") as client:
        response = _upload(client, "reviews.tsv", LABELLED)
        assert response.status_code == 413 and "BERTSCOPE_MAX_DATASET_ROWS" in _error(response)
        assert _datasets_count(client) == 0


def test_declared_size_over_the_limit_is_refused_before_reading(tmp_path, tiny_bert):
    settings = make_settings(tmp_path, max_upload_bytes=4096)
    with TestClient(create_app(settings, tiny_bert), base_url="http://127.0.0.1") as client:
        response = _upload(client, "big.txt", "a sentence\n" * 20_000)
        assert response.status_code == 413 and "BERTSCOPE_MAX_UPLOAD_BYTES" in _error(response)
        small = _upload(client, "small.txt", "a sentence\n" * 10)
        assert small.status_code == 201  # uploads are not held to the small JSON body limit


@pytest.fixture
def live_server(tmp_path, tiny_bert):
    """The app served by uvicorn on a loopback port (a real socket, so a body can stream in chunks)."""
    settings = make_settings(tmp_path, max_upload_bytes=1 << 20)
    server = uvicorn.Server(uvicorn.Config(create_app(settings, tiny_bert), host="127.0.0.1", port=0))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield port
    server.should_exit = True
    thread.join(timeout=30)


def test_a_2gb_upload_is_refused_while_it_streams(live_server):
    """Chunked, with no declared length: the server answers 413 once 1 MiB (+ form overhead) has arrived and
    stops reading; the client never gets to send the 2 GB."""
    boundary = "bertscopeboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="huge.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    chunk = b"a sentence of a huge upload\n" * 2340  # ~64 KiB
    total = 2 * 1024**3
    sent = 0
    connection = http.client.HTTPConnection("127.0.0.1", live_server, timeout=60)
    connection.putrequest("POST", "/api/datasets")
    connection.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    try:
        connection.send(b"%x\r\n%s\r\n" % (len(head), head))
        while sent < total:
            connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError, TimeoutError):
        pass  # the server stopped reading: exactly what should happen
    response = connection.getresponse()
    body = response.read().decode()
    assert response.status == 413, body
    assert "BERTSCOPE_MAX_UPLOAD_BYTES" in body
    assert sent < 64 * 1024**2  # refused long before the end (socket buffers let some more through)


def test_cli_adds_lists_and_deletes_datasets(tmp_path):
    from click.testing import CliRunner

    from app.cli import main

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    good = tmp_path / "reviews.tsv"
    good.write_text(LABELLED)
    runner = CliRunner()
    added = runner.invoke(main, ["datasets", "add", str(good), "--database-url", url])
    assert added.exit_code == 0, added.output
    assert "labelled, 24 rows" in added.output
    again = runner.invoke(main, ["datasets", "add", str(good), "--database-url", url])
    assert "already stored" in again.output
    listed = runner.invoke(main, ["datasets", "list", "--json", "--database-url", url])
    (dataset,) = json.loads(listed.output)
    broken = tmp_path / "broken.tsv"
    broken.write_text("sentence\tlabel\ngood\tpositive\n")
    refused = runner.invoke(
        main, ["datasets", "add", str(broken), "--kind", "labelled", "--database-url", url]
    )
    assert refused.exit_code == 2 and "line 2" in refused.output
    deleted = runner.invoke(main, ["datasets", "delete", dataset["id"], "--database-url", url])
    assert deleted.exit_code == 0
    missing = runner.invoke(main, ["datasets", "delete", dataset["id"], "--database-url", url])
    assert missing.exit_code == 2 and "No dataset" in missing.output
