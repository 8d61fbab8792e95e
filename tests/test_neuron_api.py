"""Neurons through the real app: index + describe as a job, browse, search, one neuron, active neurons."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.main import create_app
from tests.conftest import make_settings
from tests.tiny import wait_for_job

SENTENCES = [
    "the cat sat on the mat .",
    "the dog was good .",
    "this movie is very bad .",
    "my cat sat with the dog",
    "the keys to the cabinet are on the table .",
    "i have a big dog .",
    "you can see the old mat",
    "we had a long review",
    "she said it was not good !",
    "what a great movie , 1 2 3",
    "his old cat is very small",
    "they will have been at the table",
]


def _corpus(tmp_path, name: str, lines: list[str]) -> dict:
    path = tmp_path / f"{name}.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"name": name, "path": str(path)}


def _index(client, tmp_path) -> dict:
    params = {
        "corpora": [_corpus(tmp_path, "one", SENTENCES), _corpus(tmp_path, "two", SENTENCES[::-1] * 2)],
        "k": 5,
        "batch_size": 4,
        "directions": 8,
    }
    job = client.post("/api/jobs", json={"kind": "index_neurons", "params": params})
    assert job.status_code == 202, job.text
    done = wait_for_job(client, job.json()["id"], timeout=180)
    assert done["status"] == "done", done
    return done


def test_index_describe_browse_and_detail(client, tmp_path, tiny_bert):
    empty = client.get("/api/neurons").json()
    assert empty["total"] == 0 and empty["items"] == []
    _index(client, tmp_path)
    page = client.get("/api/neurons", params={"limit": 10}).json()
    units = tiny_bert.model.config.intermediate_size
    assert page["total"] == tiny_bert.num_layers * units
    assert len(page["items"]) == 10 and {i["corpus"] for i in page["indexes"]} == {"one", "two"}
    summary = page["description"]["summary"]
    assert summary["corpora"] == ["one", "two"] and summary["random_directions"]["units"] == 8
    assert summary["generator"]["kind"] == "offline"
    layer_one = client.get("/api/neurons", params={"layer": 1, "sort": "consistency", "limit": 500}).json()
    assert all(item["layer"] == 1 for item in layer_one["items"])
    detail = client.get("/api/neurons/1/3").json()
    assert [c["corpus"] for c in detail["corpora"]] == ["one", "two"]
    first = detail["corpora"][0]
    assert len(first["exemplars"]) == 5 and first["exemplars"][0]["sentence"] in SENTENCES
    tokens, values = first["exemplars"][0]["tokens"], first["exemplars"][0]["token_activations"]
    assert len(tokens) == len(values) and values[0] is None  # [CLS] is not a neuron input the index counts
    top = first["exemplars"][0]
    assert abs(values[top["position"]] - top["activation"]) < 1e-4
    assert sum(first["histogram"]["counts"]) == first["stats"]["count"]
    assert detail["label"] in {"consistent", "inconsistent", "corpus-specific", "undescribed"}
    labels = page["description"]["descriptor_labels"]
    if labels:
        hits = client.get("/api/neurons", params={"q": labels[0][:4]}).json()
        assert all(
            labels[0][:4].lower()
            in " ".join(d["descriptor"] for ds in item["descriptors"].values() for d in ds).lower()
            for item in hits["items"]
        )
    analysis = client.post("/api/analyses", json={"method": "attention", "text": "the cat sat"}).json()
    active = client.get(f"/api/analyses/{analysis['id']}/neurons").json()
    assert len(active["items"]) == 12 and active["items"][0]["url"].startswith("/neurons/")
    assert active["items"][0]["token"] in {"the", "cat", "sat"}


def test_bad_neuron_requests(client, tmp_path):
    assert client.get("/api/neurons/0/0").status_code == 422  # nothing indexed yet
    assert client.get("/api/neurons", params={"q": "x"}).status_code == 422
    assert client.get("/api/neurons", params={"sort": "nope"}).status_code == 422
    assert client.get("/api/neurons", params={"limit": 0}).status_code == 422
    bad = client.post(
        "/api/jobs", json={"kind": "index_neurons", "params": {"corpora": [{"name": "a b", "path": "x"}]}}
    )
    assert bad.status_code == 422 and "corpora.0.name" in bad.json()["error"]["message"]
    missing = client.post(
        "/api/jobs",
        json={"kind": "index_neurons", "params": {"corpora": [{"name": "a", "path": str(tmp_path / "no")}]}},
    )
    assert missing.status_code == 422  # refused before a job is queued
    assert "params.corpora[0].path" in missing.json()["error"]["message"]
    _index(client, tmp_path)
    assert client.get("/api/neurons/99/0").status_code == 404
    assert client.get("/api/neurons/0/999999").status_code == 404
    too_deep = client.get("/api/neurons", params={"layer": 9})
    assert too_deep.status_code == 422 and "between 0 and 1" in too_deep.json()["error"]["message"]
    page = client.get("/neurons/9/0", headers={"Accept": "text/html"})
    assert page.status_code == 404 and "layers 0-1" in page.text
    assert client.get("/neurons/1/3").status_code == 200


def test_corpora_outside_the_description_run_are_marked(client, tmp_path):
    _index(client, tmp_path)  # indexes and describes "one" and "two"
    params = {"corpora": [_corpus(tmp_path, "three", SENTENCES * 20)], "k": 5, "describe": False}
    job = client.post("/api/jobs", json={"kind": "index_neurons", "params": params})
    assert wait_for_job(client, job.json()["id"], timeout=180)["status"] == "done"
    corpora = client.get("/api/neurons/1/3").json()["corpora"]
    assert [(c["corpus"], c["in_description"]) for c in corpora] == [
        ("one", True),
        ("two", True),
        ("three", False),
    ]
    assert corpora[2]["descriptors"] == [] and corpora[2]["stability"] is None
    # 12 and 24 sentences for k = 5 are too few for selective exemplars; 240 are enough
    assert "12 sentences for k = 5" in corpora[0]["warning"] and corpora[1]["warning"]
    assert corpora[2]["warning"] is None
    from app.services.neuron_views import neuron_detail

    services = client.app.state.services
    runner = services.runner
    detail = neuron_detail(runner, services.stores, 1, 3, shaded=2)["corpora"][
        2
    ]  # beyond 2 exemplars: the token by name
    tokenized = runner.token_strings([e["sentence"] for e in detail["exemplars"]], 128)
    for exemplar, tokens in zip(detail["exemplars"][2:], tokenized[2:], strict=True):
        assert "tokens" not in exemplar and exemplar["token"] == tokens[exemplar["position"]]


def test_first_serve_indexes_and_describes_the_two_shipped_corpora(tmp_path, tiny_bert):
    """The whole default run (no limit: a smaller slice leaves the tiny model's random directions with no unit
    described on both corpora, so nothing to check); about half a minute with the tiny model."""
    app = create_app(make_settings(tmp_path, index_sample_on_start=True), tiny_bert)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        jobs = client.get("/api/jobs").json()
        assert [job["kind"] for job in jobs] == ["index_neurons"]
        assert [c["name"] for c in jobs[0]["params"]["corpora"]] == ["sample", "wikipedia"]
        done = wait_for_job(client, jobs[0]["id"], timeout=300)
        assert done["status"] == "done", done
        page = client.get("/api/neurons/summary").json()
        assert sorted(index["corpus"] for index in page["indexes"]) == ["sample", "wikipedia"]
        assert all(index["status"] == "done" for index in page["indexes"])
        summary = page["description"]["summary"]
        assert summary["corpora"] == ["sample", "wikipedia"]
        for name in ("neurons", "random_directions"):
            _assert_cross_corpus_figures(client, summary, name)
    with TestClient(
        create_app(make_settings(tmp_path, index_sample_on_start=True), tiny_bert),
        base_url="http://127.0.0.1",
    ) as again:
        assert len(again.get("/api/jobs").json()) == 1  # not started twice


CROSS_CORPUS = ("consistent", "inconsistent", "corpus-specific")


def _assert_cross_corpus_figures(client, summary: dict, group_name: str) -> None:
    """Two corpora give the illusion check its figures: no unit is "single corpus", the labels' counts add up
    to the units, some unit is compared across corpora (a consistency exists), and for the neurons each
    label's share is the count the browser lists under that label."""
    group = summary[group_name]
    units = group["units"]
    assert units > 0 and set(group["per_corpus"]) == {"sample", "wikipedia"}
    assert "single corpus" not in group["labels"]
    assert set(group["labels"]) <= {*CROSS_CORPUS, "undescribed"}
    counts = {label: round(share * units) for label, share in group["labels"].items()}
    assert all(abs(counts[label] - share * units) < 1e-6 for label, share in group["labels"].items())
    assert sum(counts.values()) == units
    assert sum(counts.get(label, 0) for label in CROSS_CORPUS) > 0
    assert counts.get("consistent", 0) + counts.get("inconsistent", 0) > 0  # described on both corpora
    assert 0.0 <= group["mean_consistency"] <= 1.0
    if group_name == "neurons":
        for label in (*CROSS_CORPUS, "undescribed", "single corpus"):
            listed = client.get("/api/neurons", params={"label": label, "limit": 1}).json()["total"]
            assert listed == counts.get(label, 0), label


def test_cli_index_describe_list(tmp_path):
    from click.testing import CliRunner

    from app.cli import main
    from tests.conftest import sqlite_url
    from tests.tiny import save_checkpoint

    checkpoint = save_checkpoint(tmp_path / "ckpt", "bert")
    common = ["--model", str(checkpoint), "--device", "cpu", "--database-url", sqlite_url(tmp_path)]
    one = tmp_path / "one.txt"
    one.write_text("\n".join(SENTENCES), encoding="utf-8")
    runner = CliRunner()
    indexed = runner.invoke(
        main, ["neurons", "index", "--corpus", f"one={one}", "-k", "4", "--directions", "4", *common]
    )
    assert indexed.exit_code == 0, indexed.output
    assert '"random_directions"' in indexed.output
    again = runner.invoke(main, ["neurons", "describe", "--corpus", "one", "--directions", "4", *common])
    assert again.exit_code == 0, again.output
    listed = runner.invoke(main, ["neurons", "list", *common])
    assert "one" in listed.output and "done" in listed.output
    bad = runner.invoke(main, ["neurons", "index", "--corpus", "no-equals-sign", *common])
    assert bad.exit_code == 2 and "NAME=FILE" in bad.output
    unknown = runner.invoke(main, ["neurons", "describe", "--corpus", "nope", *common])
    assert unknown.exit_code == 2 and "index it first" in unknown.output


def test_eval_neurons_cli_and_evaluation_view(tmp_path, client):
    from click.testing import CliRunner

    from app.cli import main
    from tests.conftest import sqlite_url
    from tests.tiny import save_checkpoint

    rows = ["sentence\tlabel"] + [f"{text}\t{index % 2}" for index, text in enumerate(SENTENCES * 3)]
    data = tmp_path / "labelled.tsv"
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    checkpoint = save_checkpoint(tmp_path / "ckpt", "bert")
    common = ["--model", str(checkpoint), "--device", "cpu", "--database-url", sqlite_url(tmp_path)]
    result = CliRunner().invoke(
        main,
        [
            "eval",
            "neurons",
            "--dataset",
            f"toy={data}",
            "--label-names",
            "toy=0:even,1:odd",
            "--exemplars",
            "5",
            "--directions",
            "4",
            "--out",
            str(tmp_path / "out.json"),
            *common,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "precision@2" in result.output and "random_directions" in result.output
    bad = CliRunner().invoke(main, ["eval", "neurons", "--dataset", "nofile", *common])
    assert bad.exit_code == 2 and "NAME=FILE" in bad.output
    job = client.post(
        "/api/jobs",
        json={
            "kind": "eval_neurons",
            "params": {"datasets": [{"name": "toy", "path": str(data)}], "exemplars": 5},
        },
    )
    done = wait_for_job(client, job.json()["id"])
    assert done["status"] == "done", done
    view = client.get(f"/api/evaluations/{done['result_id']}/figure").json()
    assert view["table"]["columns"][0] == "units" and view["figure"]["data"]
