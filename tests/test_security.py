"""Security: admin token for jobs, CORS closed by default, no remote code, unguessable ids, no form CSRF."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from app.data import SAMPLE_CORPUS
from app.errors import BertscopeError
from app.main import create_app
from app.modeling.loading import load_model
from tests.conftest import make_settings
from tests.tiny import make_model, make_tokenizer

JOB = {"kind": "eval_mixing", "params": {"data": str(SAMPLE_CORPUS), "limit": 2}}


def _client(tmp_path, tiny_bert, **settings) -> TestClient:
    return TestClient(create_app(make_settings(tmp_path, **settings), tiny_bert), base_url="http://127.0.0.1")


def test_jobs_are_open_on_a_loopback_server_without_token(client):
    response = client.post("/api/jobs", json=JOB)
    assert response.status_code == 202, response.text


def test_a_shared_server_without_token_refuses_admin_operations(tmp_path, tiny_bert):
    with _client(tmp_path, tiny_bert, host="0.0.0.0") as shared:
        response = shared.post("/api/jobs", json=JOB)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "admin_forbidden"
        assert "BERTSCOPE_ADMIN_TOKEN" in response.json()["error"]["message"]
        assert shared.post("/api/jobs/abc/cancel").status_code == 403
        assert shared.get("/api/jobs").status_code == 200  # reading progress stays open
        assert 'id="admin-token"' not in shared.get("/evaluations").text


def test_admin_token_is_required_and_checked(tmp_path, tiny_bert):
    with _client(tmp_path, tiny_bert, host="0.0.0.0", admin_token="s3cret-token") as shared:
        missing = shared.post("/api/jobs", json=JOB)
        assert missing.status_code == 401 and missing.json()["error"]["code"] == "admin_token_required"
        wrong = shared.post("/api/jobs", json=JOB, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403 and "wrong" in wrong.json()["error"]["message"]
        right = shared.post("/api/jobs", json=JOB, headers={"Authorization": "Bearer s3cret-token"})
        assert right.status_code == 202
        job = right.json()["id"]
        assert shared.post(f"/api/jobs/{job}/cancel").status_code == 401
        cancelled = shared.post(f"/api/jobs/{job}/cancel", headers={"Authorization": "Bearer s3cret-token"})
        assert cancelled.status_code == 200
        page = shared.get("/evaluations").text
        assert 'id="admin-token"' in page and "s3cret-token" not in page
        assert "s3cret-token" not in json.dumps(shared.get("/openapi.json").json())


def test_a_token_also_guards_a_loopback_server(tmp_path, tiny_bert):
    with _client(tmp_path, tiny_bert, admin_token="t0ken") as local:
        assert local.post("/api/jobs", json=JOB).status_code == 401


def test_openapi_documents_the_bearer_token(client):
    schema = client.get("/openapi.json").json()
    assert schema["paths"]["/api/jobs"]["post"]["security"]
    assert "security" not in schema["paths"]["/api/analyses"]["post"]


def test_cors_is_closed_by_default(client):
    evil = {"Origin": "http://evil.example"}
    assert "access-control-allow-origin" not in client.get("/api/health", headers=evil).headers
    preflight = client.options("/api/analyses", headers={**evil, "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_allows_only_configured_origins(tmp_path, tiny_bert):
    with _client(tmp_path, tiny_bert, cors_origins=["http://lab.example"]) as app:
        ok = app.get("/api/health", headers={"Origin": "http://lab.example"})
        assert ok.headers["access-control-allow-origin"] == "http://lab.example"
        other = app.get("/api/health", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_a_cross_site_form_post_is_not_accepted(client):
    """Browsers send forms from other sites as text/plain or urlencoded, without preflight: never run them."""
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        response = client.post("/api/jobs", content=json.dumps(JOB), headers={"Content-Type": content_type})
        assert response.status_code == 422, (content_type, response.text)
    assert client.get("/api/jobs").json() == []


def test_analysis_ids_are_unguessable_and_not_listed(client):
    ids = {
        client.post("/api/analyses", json={"method": "attention", "text": f"the cat {word}"}).json()["id"]
        for word in ("sat", "was", "is", "had", "did", "ran")
    }
    assert len(ids) == 6 and all(len(i) >= 12 for i in ids)
    assert client.get("/api/analyses").status_code in (404, 405)
    assert client.get("/api/analyses/AAAAAAAAAAAA").status_code == 404


def _checkpoint_with_remote_code(directory, model_type: str):
    """A checkpoint whose config asks for custom code that would leave a marker file if it ever ran."""
    model = make_model("bert")
    model.save_pretrained(directory)
    make_tokenizer(directory).save_pretrained(directory)
    marker = directory / "PWNED"
    (directory / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    config = json.loads((directory / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"}
    config["model_type"] = model_type
    (directory / "config.json").write_text(json.dumps(config))
    return marker


def test_custom_code_in_a_checkpoint_never_runs(tmp_path):
    marker = _checkpoint_with_remote_code(tmp_path / "custom", "evil_custom")
    with pytest.raises(BertscopeError) as raised:
        load_model(str(tmp_path / "custom"), device="cpu")
    assert 400 <= raised.value.status < 500
    assert not marker.exists()


def test_a_known_architecture_with_custom_code_loads_the_library_class(tmp_path):
    marker = _checkpoint_with_remote_code(tmp_path / "bertish", "bert")
    loaded = load_model(str(tmp_path / "bertish"), device="cpu")
    assert type(loaded.model).__module__.startswith("transformers.")
    assert not marker.exists()


def test_no_source_file_enables_remote_code():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "app"
    offenders = [
        str(path)
        for path in root.rglob("*.py")
        if "trust_remote_code=True" in path.read_text(encoding="utf-8").replace(" ", "")
    ]
    assert offenders == []


def test_a_foreign_host_name_cannot_use_the_open_admin_mode(client):
    """DNS rebinding: a page at attacker.example that resolves to 127.0.0.1 is same-origin to the browser."""
    rebound = {"Host": "attacker.example:8000", "Origin": "http://attacker.example:8000"}
    response = client.post("/api/jobs", json=JOB, headers=rebound)
    assert response.status_code == 403 and "BERTSCOPE_ADMIN_TOKEN" in response.json()["error"]["message"]
    assert client.post("/api/jobs", json=JOB, headers={"Host": "localhost:8000"}).status_code == 202
    assert client.get("/api/jobs").json()[0]["status"] in ("queued", "running", "failed", "done")


def test_cross_site_posts_are_refused_whatever_their_body(client):
    made = client.post("/api/analyses", json={"method": "gradient_x_input", "text": "the cat sat"}).json()
    evil = {"Origin": "https://evil.example"}
    for path, kwargs in (
        (f"/api/analyses/{made['id']}/randomisation", {"content": b"x=1"}),
        ("/api/analyses", {"json": {"method": "attention", "text": "the dog"}}),
        ("/api/jobs", {"json": JOB}),
    ):
        response = client.post(path, headers=evil, **kwargs)
        assert response.status_code == 403, path
        assert response.json()["error"]["code"] == "cross_origin_refused"
    own = client.post(
        "/api/analyses",
        json={"method": "attention", "text": "the dog"},
        headers={"Origin": "http://127.0.0.1"},
    )
    assert own.status_code == 201  # the server's own pages
    assert client.get("/api/jobs").json() == []


def test_trusted_origins_may_post(tmp_path, tiny_bert):
    with _client(tmp_path, tiny_bert, cors_origins=["https://lab.example"]) as app:
        ok = app.post(
            "/api/analyses",
            json={"method": "attention", "text": "the cat"},
            headers={"Origin": "https://lab.example"},
        )
        assert ok.status_code == 201


def test_a_body_that_is_not_json_is_told_so(client):
    response = client.post("/api/analyses", content=b"text=hi", headers={"Content-Type": "text/plain"})
    assert response.status_code == 422
    assert "Content-Type: application/json" in response.json()["error"]["message"]


def test_unpaired_surrogates_are_a_clear_422(client):
    for body in (
        b'{"method": "attention", "text": "a\\ud800b"}',
        b'{"method": "integrated_gradients", "text": "a\\udfffb"}',
        b'{"method": "attention", "text": "ok", "text_pair": "\\udfff"}',
    ):
        response = client.post("/api/analyses", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 422, response.text
        assert "surrogate" in response.json()["error"]["message"]
    assert client.get("/api/health").status_code == 200


def test_identical_concurrent_requests_compute_once(tmp_path, tiny_bert, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    from app.methods.mixing.value_zeroing import ValueZeroing

    calls = []
    original = ValueZeroing.run

    def counted(self, *args, **kwargs):
        calls.append(1)
        time.sleep(0.5)  # long enough for every identical request to arrive meanwhile
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ValueZeroing, "run", counted)
    body = {"method": "value_zeroing", "text": "the cat sat on the mat"}
    # eight requests at once from one client: let all in (the per-client limit is tested in test_fair_share)
    app = create_app(make_settings(tmp_path, max_requests_per_client=8), tiny_bert)
    with TestClient(app, base_url="http://127.0.0.1") as client, ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: client.post("/api/analyses", json=body).json(), range(8)))
    assert len(calls) == 1
    assert len({answer["id"] for answer in answers}) == 1
    assert sorted(answer["cached"] for answer in answers) == [False] + [True] * 7


def test_timestamps_always_carry_their_zone(client):
    made = client.post("/api/analyses", json={"method": "attention", "text": "the cat"}).json()
    again = client.post("/api/analyses", json={"method": "attention", "text": "the cat"}).json()
    stored = client.get(f"/api/analyses/{made['id']}").json()
    assert made["created_at"].endswith("+00:00")
    assert again["created_at"] == stored["created_at"] == made["created_at"]
    job = client.post("/api/jobs", json=JOB).json()
    assert client.get(f"/api/jobs/{job['id']}").json()["updated_at"].endswith("+00:00")


def test_an_unknown_evaluation_kind_is_refused(client):
    response = client.get("/api/evaluations", params={"kind": "evil"})
    assert response.status_code == 422 and "kind" in response.json()["error"]["message"]
    assert client.get("/api/evaluations", params={"kind": "mixing"}).json() == []
