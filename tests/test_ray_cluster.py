"""Corpus jobs on a real Ray cluster: a head started by the test on loopback with two CPUs (two model
workers), no mocks. A sharded index build equals the single-process build byte for byte (at the workers'
thread count); a worker process killed mid-build costs only its shards; Cancel stops both workers.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

from app.data import SAMPLE_CORPUS
from app.jobs.sharded_index import build_state_sharded
from app.methods.neurons.corpora import read_corpus
from app.methods.neurons.index import build_state
from app.methods.neurons.stats import IndexState
from app.modeling.loading import LoadedModel, load_model
from tests.conftest import make_settings
from tests.tiny import save_checkpoint

pytestmark = pytest.mark.slow
K, BATCH, SHARD = 5, 8, 24  # 120 sentences: 5 shards of 3 batches


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def cluster_addresses() -> Iterator[tuple[str, str]]:
    """A Ray head on loopback with 2 CPUs, stopped (with every process it started) after the module: its
    GCS address (this process connects there) and its Ray Client address (as the compose app uses)."""
    import ray

    port, client_port = _free_port(), _free_port()
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # Ray's socket paths must stay short
    command = [
        str(Path(sys.executable).parent / "ray"),
        "start",
        "--head",
        "--block",
        f"--port={port}",
        f"--ray-client-server-port={client_port}",
        "--node-ip-address=127.0.0.1",
        "--num-cpus=2",
        "--num-gpus=0",
        "--include-dashboard=false",
        "--disable-usage-stats",
        "--object-store-memory=150000000",
        f"--temp-dir={temp}",
    ]
    # a loopback cluster of the test's own: no token authentication (Ray turns it on once any earlier
    # local cluster of this user left a token in ~/.ray), for the head, this driver and the CLI subprocesses
    auth_mode = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    log = Path(temp) / "head.log"  # a file, not a pipe: a pipe nobody reads would block the head
    with log.open("wb") as output:
        head = subprocess.Popen(command, start_new_session=True, stdout=output, stderr=subprocess.STDOUT)
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
            break
        except (ConnectionError, RuntimeError):
            if head.poll() is not None or time.monotonic() > deadline:
                os.killpg(head.pid, signal.SIGKILL)
                raise AssertionError(f"ray head did not start: {log.read_text()[-2000:]}") from None
            time.sleep(1)
    try:
        yield address, f"ray://127.0.0.1:{client_port}"
    finally:
        ray.shutdown()
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(10)
        except subprocess.TimeoutExpired:  # a graceful stop can take half a minute: the test is over
            os.killpg(head.pid, signal.SIGKILL)
            head.wait(30)
        if auth_mode is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = auth_mode


@pytest.fixture(scope="module")
def cluster(cluster_addresses) -> str:
    return cluster_addresses[0]


@pytest.fixture(scope="module")
def checkpoint_model(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    """A tiny random BERT saved to disk: the workers load it by path, as the server did."""
    return load_model(str(save_checkpoint(tmp_path_factory.mktemp("ray-model"))), device="cpu")


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return read_corpus(SAMPLE_CORPUS)[:120]


@contextmanager
def _threads(count: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def single_process(checkpoint_model, corpus) -> IndexState:
    with _threads(1):  # the workers' thread count (ray_threads_per_worker)
        return build_state(checkpoint_model, corpus, k=K, batch_size=BATCH)


def _engine(cluster: str, tmp_path: Path):
    from app.jobs.ray.engine import RayEngine

    return RayEngine(make_settings(tmp_path, ray_address=cluster, ray_shard_sentences=SHARD))


def _assert_byte_equal(a: IndexState, b: IndexState) -> None:
    assert a.to_arrays().keys() == b.to_arrays().keys()
    for name, value in a.to_arrays().items():
        other = b.to_arrays()[name]
        if isinstance(value, np.ndarray):
            assert value.dtype == other.dtype and value.tobytes() == other.tobytes(), name
        else:
            assert value == other, name


def test_a_build_split_across_two_workers_equals_the_single_process_build(
    cluster, tmp_path, checkpoint_model, corpus, single_process
):
    engine = _engine(cluster, tmp_path)
    seen: list[tuple[int, int]] = []
    workers: set[int] = set()

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        workers.update(engine.worker_pids)

    state = build_state_sharded(
        checkpoint_model, corpus, runner=engine, k=K, batch_size=BATCH, progress=progress
    )
    assert len(workers) == 2  # two model workers, one per CPU of the cluster
    assert [total for _, total in seen] == [len(corpus)] * 5 and seen[-1][0] == len(corpus)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    _assert_byte_equal(state, single_process)
    assert engine.worker_pids == []  # the job's workers are gone with it


def test_a_feature_index_split_across_two_workers_equals_the_single_process_build(
    cluster, tmp_path, checkpoint_model, corpus
):
    """A dictionary's features travel to the workers with their weights; the joined state is byte-equal."""
    from app.methods.features.basis import FeatureBasis
    from app.methods.features.dictionary import FeatureDictionary
    from app.methods.features.sae import TopKSae

    sae = TopKSae(checkpoint_model.hidden_size, 64, 4, scale=2.0, generator=torch.Generator().manual_seed(0))
    dictionary = FeatureDictionary.from_sae(
        sae, name="d", model_name="m", model_revision=checkpoint_model.revision, layer=1, site="residual"
    )
    basis = FeatureBasis(dictionary)
    with _threads(1):
        here = build_state(checkpoint_model, corpus, k=K, batch_size=BATCH, basis=basis)
    engine = _engine(cluster, tmp_path)
    state = build_state_sharded(checkpoint_model, corpus, runner=engine, k=K, batch_size=BATCH, basis=basis)
    assert engine.shards_done >= 2 and state.top_values.shape == (1, 64, K)
    _assert_byte_equal(state, here)


def test_a_worker_killed_mid_build_costs_only_its_shards(
    cluster, tmp_path, checkpoint_model, corpus, single_process
):
    engine = _engine(cluster, tmp_path)
    killed: list[int] = []

    def progress(done: int, total: int) -> None:
        if not killed:  # after the first shard, while both workers hold queued shards
            killed.append(engine.worker_pids[0])
            os.kill(killed[0], signal.SIGKILL)

    state = build_state_sharded(
        checkpoint_model, corpus, runner=engine, k=K, batch_size=BATCH, progress=progress
    )
    assert killed
    _assert_byte_equal(state, single_process)


def test_cancel_stops_both_workers(cluster, tmp_path, checkpoint_model, corpus, single_process):
    import psutil

    engine = _engine(cluster, tmp_path)
    running: list[int] = []

    def progress(done: int, total: int) -> None:
        running.extend(pid for pid in engine.worker_pids if pid not in running)

    state = build_state_sharded(
        checkpoint_model,
        corpus,
        runner=engine,
        k=K,
        batch_size=BATCH,
        progress=progress,
        should_stop=lambda: bool(running),  # Cancel as soon as the first shard is in
    )
    assert len(running) == 2
    assert not state.complete and state.sentences_done % BATCH == 0  # a resumable prefix of the batch order
    deadline = time.monotonic() + 60
    while any(_alive(psutil, pid) for pid in running):
        assert time.monotonic() < deadline, "Ray workers still running after Cancel"
        time.sleep(0.2)
    # the prefix it kept resumes (here, in this process) to the uninterrupted result
    with _threads(1):
        resumed = build_state(checkpoint_model, corpus, k=K, batch_size=BATCH, resume=state)
    _assert_byte_equal(resumed, single_process)


def _alive(psutil, pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_the_index_job_through_the_app_runs_on_the_cluster(
    cluster, tmp_path, checkpoint_model, corpus, single_process
):
    """BERTSCOPE_RAY_ADDRESS set: the index job of the real app builds on the workers; the stored state is
    the single-process one, progress reaches the job row."""
    from fastapi.testclient import TestClient

    from app.main import create_app
    from tests.tiny import wait_for_job

    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(corpus) + "\n", encoding="utf-8")
    settings = make_settings(tmp_path, ray_address=cluster, ray_shard_sentences=SHARD)
    with TestClient(create_app(settings, checkpoint_model), base_url="http://127.0.0.1") as client:
        params = {"corpora": [{"name": "sample", "path": str(path)}], "k": K, "batch_size": BATCH}
        job = client.post(
            "/api/jobs", json={"kind": "index_neurons", "params": {**params, "describe": False}}
        )
        assert job.status_code == 202, job.text
        done = wait_for_job(client, job.json()["id"], timeout=300)
        assert done["status"] == "done" and done["progress"] == 1.0, done
        stores = client.app.state.services.stores
        stored = stores.neurons.load_state(done["result_id"])
    _assert_byte_equal(stored, single_process)


def test_without_a_cluster_ray_is_never_imported(tmp_path):
    """No BERTSCOPE_RAY_ADDRESS: the app starts and a corpus job runs without importing Ray."""
    script = f"""
import sys
from fastapi.testclient import TestClient
from app.main import create_app
from tests.conftest import make_settings
from tests.tiny import tiny_loaded, wait_for_job, write_corpus
from pathlib import Path
tmp = Path({str(tmp_path)!r})
with TestClient(create_app(make_settings(tmp), tiny_loaded(tmp)), base_url="http://127.0.0.1") as client:
    corpus = {{"name": "c", "path": str(write_corpus(tmp / "c.txt", 20))}}
    params = {{"corpora": [corpus], "describe": False}}
    job = client.post("/api/jobs", json={{"kind": "index_neurons", "params": params}})
    assert wait_for_job(client, job.json()["id"])["status"] == "done"
print("ray imported" if any(name == "ray" or name.startswith("ray.") for name in sys.modules) else "no ray")
"""
    env = {**os.environ, "BERTSCOPE_RAY_ADDRESS": ""}
    env.pop("BERTSCOPE_RAY_ADDRESS")
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "no ray"


def _without_timings(value):
    """A result with its wall-clock figures removed (they differ run to run)."""
    if isinstance(value, dict):
        return {
            key: _without_timings(item)
            for key, item in value.items()
            if key not in ("seconds", "timings") and not key.endswith("_s")
        }
    if isinstance(value, list):
        return [_without_timings(item) for item in value]
    return value


def _corpus_jobs(tmp_path: Path, corpus: list[str]) -> list[tuple[str, dict]]:
    from tests.treebanks import write_treebank

    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(corpus[:40]) + "\n", encoding="utf-8")
    labelled = tmp_path / "labelled.tsv"
    rows = [(text, "good" if index % 3 else "bad") for index, text in enumerate(corpus[:40])]
    labelled.write_text(
        "sentence\tlabel\n" + "".join(f"{t}\t{label}\n" for t, label in rows), encoding="utf-8"
    )
    numbered = tmp_path / "numbered.tsv"
    numbered.write_text("sentence\tlabel\n" + "".join(f"{t}\t{i % 2}\n" for i, t in enumerate(corpus)))
    zero_shot = {"kind": "zero_shot", "labels": ["good", "bad"], "template": "it was {} ."}
    return [
        (
            "index_neurons",
            {"corpora": [{"name": "c", "path": str(texts)}], "k": K, "batch_size": BATCH, "directions": 12},
        ),
        (  # trained here, then its features indexed and described (on the cluster when there is one)
            "train_dictionary",
            {"corpora": ["c"], "layer": 1, "width_multiplier": 2, "k": 4, "steps": 20, "batch_size": 64},
        ),
        (
            "eval_degradation",
            {
                "data": str(labelled),
                "methods": ["occlusion", "random"],
                "target": zero_shot,
                "label_col": "label",
            },
        ),
        ("eval_mixing", {"data": str(texts), "methods": ["attention_rollout", "value_zeroing", "random"]}),
        ("eval_neurons", {"datasets": [{"name": "n", "path": str(numbered)}], "exemplars": 10}),
        (
            "train_probes",
            {
                "treebank": str(write_treebank(tmp_path / "train.conllu", count=70)),
                "dev": str(write_treebank(tmp_path / "dev.conllu", count=40)),
                "rank": 8,
                "max_epochs": 2,
                "topological_epochs": 1,
            },
        ),
    ]


def _run_jobs(settings, loaded, jobs: list[tuple[str, dict]]) -> tuple[list[dict], int | None]:
    """Each job's stored result (timings removed), and how many shards the Ray engine ran (None: no Ray)."""
    from fastapi.testclient import TestClient

    from app.main import create_app
    from tests.tiny import wait_for_job

    results = []
    with TestClient(create_app(settings, loaded), base_url="http://127.0.0.1") as client:
        for kind, params in jobs:
            job = client.post("/api/jobs", json={"kind": kind, "params": params})
            assert job.status_code == 202, job.text
            done = wait_for_job(client, job.json()["id"], timeout=300)
            assert done["status"] == "done", done
            results.append(_without_timings(_stored_result(client, kind, done["result_id"])))
        engine = client.app.state.services.jobs.shards
    return results, (None if engine is None else engine.shards_done)


def _stored_result(client, kind: str, result_id: str) -> dict:
    if kind == "index_neurons":  # index and description: the neuron browser's first page and summary
        page = client.get("/api/neurons", params={"limit": 100, "sort": "consistency"}).json()
        return {"items": page["items"], "summary": page["description"]["summary"], "total": page["total"]}
    if kind == "train_probes":
        return client.get(f"/api/probes/{result_id}").json()["metrics"]
    if kind == "train_dictionary":  # its features' browser page and summary (ids and links differ by run)
        params = {"basis": f"features:{result_id}", "limit": 100, "sort": "consistency"}
        page = client.get("/api/neurons", params=params).json()
        items = [{key: value for key, value in item.items() if key != "url"} for item in page["items"]]
        summary = {key: value for key, value in page["description"]["summary"].items() if key != "basis"}
        return {
            "items": items,
            "summary": summary,
            "metrics": client.get(f"/api/dictionaries/{result_id}").json()["metrics"],
        }
    return client.get(f"/api/evaluations/{result_id}").json()["summary"]


def test_every_corpus_job_on_the_cluster_equals_the_single_process_run(
    cluster, tmp_path, checkpoint_model, corpus
):
    """Index + describe (its random directions' pass), a dictionary's feature index and description, the
    three evaluations and the probe job's word features, run in shards on the workers, give the stored
    results of the single-process run."""
    jobs = _corpus_jobs(tmp_path, corpus)
    with _threads(1):
        here, none = _run_jobs(make_settings(tmp_path / "here"), checkpoint_model, jobs)
        on_ray, shards = _run_jobs(
            make_settings(tmp_path / "ray", ray_address=cluster, ray_shard_sentences=SHARD),
            checkpoint_model,
            jobs,
        )
    assert none is None and shards >= 2 * len(jobs)  # every job ran in several shards on the cluster
    for (kind, _), mine, theirs in zip(jobs, here, on_ray, strict=True):
        assert mine == theirs, kind


def test_the_cli_runs_an_index_through_the_ray_client_address(
    cluster_addresses, tmp_path, checkpoint_model, corpus, single_process
):
    """``bertscope neurons index --ray ray://HOST:PORT`` in its own process (a Ray Client driver, as the
    compose app is) stores the single-process build."""
    from app.store.db import make_engine
    from app.store.neurons import NeuronStore
    from tests.conftest import sqlite_url

    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(corpus) + "\n", encoding="utf-8")
    command = [str(Path(sys.executable).parent / "bertscope"), "neurons", "index", "--corpus", f"c={path}"]
    command += ["--ray", cluster_addresses[1], "-k", str(K), "--batch-size", str(BATCH), "--no-describe"]
    command += ["--model", checkpoint_model.source, "--database-url", sqlite_url(tmp_path)]
    env = {**os.environ, "BERTSCOPE_RAY_SHARD_SENTENCES": str(SHARD), "BERTSCOPE_RAY_THREADS_PER_WORKER": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    store = NeuronStore(make_engine(sqlite_url(tmp_path)))
    [info] = store.list_for_revision(checkpoint_model.revision)
    _assert_byte_equal(store.load_state(info.id), single_process)
    listed = subprocess.run(
        [command[0], "neurons", "list", "--digest", "--model", checkpoint_model.source]
        + ["--database-url", sqlite_url(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"sha256 {single_process.digest()}" in listed.stdout  # how a user compares two builds


def test_an_unreachable_cluster_is_a_clear_cli_error(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("the cat sat\na dog\n", encoding="utf-8")
    model = save_checkpoint(tmp_path / "model")
    command = [
        str(Path(sys.executable).parent / "bertscope"),
        "neurons",
        "index",
        "--corpus",
        f"c={corpus}",
    ]
    command += [
        "--no-describe",
        "--ray",
        "127.0.0.1:1",
        "--model",
        str(model),
        "--database-url",
        f"sqlite:///{tmp_path}/s.db",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 2
    assert "error (ray_failed): Cannot reach the Ray cluster at '127.0.0.1:1'" in result.stderr
