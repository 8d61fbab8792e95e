"""The HTTP API through the real app: contract, permalinks, and every class of bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.data import shipped_data

SENTENCE = "the cat sat on the mat ."


def _post(client, **body):
    return client.post("/api/analyses", json={"method": "attention", "text": SENTENCE, **body})


def _assert_error(response, status: int, code: str, fragment: str = "") -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert fragment in error["message"]


def test_health_and_model(client, tiny_bert):
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["model"]["revision"] == tiny_bert.revision
    model = client.get("/api/model").json()
    for key in (
        "name",
        "revision",
        "architecture",
        "layers",
        "heads",
        "hidden_size",
        "device",
        "dtype",
        "targets",
    ):
        assert key in model
    assert (model["layers"], model["heads"], model["hidden_size"]) == (2, 4, 32)
    assert [t["kind"] for t in model["targets"]] == ["zero_shot"]


def test_methods_list_kinds_and_schemas(client):
    methods = {m["name"]: m for m in client.get("/api/methods").json()}
    assert methods["attention"]["kind"] == "mixing"
    assert methods["attention"]["params_schema"]["type"] == "object"
    assert client.get("/api/methods/attention").json()["name"] == "attention"
    _assert_error(client.get("/api/methods/nope"), 404, "not_found", "attention")


def test_create_and_fetch_attention(client):
    response = _post(client)
    assert response.status_code == 201
    body = response.json()
    assert body["url"] == f"/a/{body['id']}" and body["method"] == "attention" and body["cached"] is False
    n = len(body["tokens"])
    layers, mean = np.array(body["result"]["layers"]), np.array(body["result"]["mean"])
    assert layers.shape == (2, 4, n, n) and mean.shape == (2, n, n)
    np.testing.assert_allclose(layers.sum(-1), 1, atol=1e-5)
    stored = client.get(f"/api/analyses/{body['id']}").json()
    assert stored["tokens"] == body["tokens"]
    np.testing.assert_array_equal(np.array(stored["result"]["layers"]), layers)
    again = _post(client).json()
    assert again["cached"] is True and again["id"] == body["id"]


def test_sentence_pair(client):
    body = _post(client, text_pair="a dog was good").json()
    assert body["tokens"].count("[SEP]") == 2
    assert body["encoding"]["sequence_ids"][-2] == 1


def test_figure_endpoint_and_view_validation(client):
    analysis = _post(client).json()
    answer = client.get(f"/api/analyses/{analysis['id']}/figure", params={"layer": 1, "head": 2}).json()
    trace = answer["figures"]["main"]["data"][0]
    assert trace["type"] == "heatmap"
    np.testing.assert_allclose(np.array(trace["z"]), np.array(analysis["result"]["layers"])[1, 2], atol=1e-5)
    assert [c["name"] for c in answer["controls"]] == ["layer", "head", "hide_special", "row"]
    hidden = client.get(f"/api/analyses/{analysis['id']}/figure", params={"hide_special": "1"}).json()
    assert "[CLS]" not in hidden["figures"]["main"]["layout"]["xaxis"]["ticktext"]
    _assert_error(
        client.get(f"/api/analyses/{analysis['id']}/figure", params={"layer": 7}), 422, "invalid_input"
    )
    _assert_error(
        client.get(f"/api/analyses/{analysis['id']}/figure", params={"head": "x"}), 422, "invalid_input"
    )


@pytest.mark.parametrize(
    ("body", "status", "code", "fragment"),
    [
        ({"method": "nope", "text": "x"}, 422, "unknown_method", "attention"),
        ({"method": "attention", "text": ""}, 422, "invalid_input", "empty"),
        ({"method": "attention", "text": "   "}, 422, "invalid_input", "empty"),
        ({"method": "attention"}, 422, "invalid_request", "text"),
        ({"method": "attention", "text": 42}, 422, "invalid_request", "text"),
        ({"method": ["attention"], "text": "x"}, 422, "invalid_request", "method"),
        ({"method": "attention", "text": "x", "params": {"bogus": 1}}, 422, "invalid_input", "params.bogus"),
        ({"method": "attention", "text": "x", "params": "layers"}, 422, "invalid_request", "params"),
        ({"method": "attention", "text": "x", "extra": 1}, 422, "invalid_request", "extra"),
        (
            {"method": "attention", "text": "x", "target": {"kind": "telepathy"}},
            422,
            "invalid_request",
            "target",
        ),
        ({"method": "attention", "text": "the " * 100}, 413, "input_too_long", "tokens"),
        ({"method": "attention", "text": "x", "text_pair": ""}, 422, "invalid_input", "text_pair"),
    ],
)
def test_bad_json_bodies(client, body, status, code, fragment):
    _assert_error(client.post("/api/analyses", json=body), status, code, fragment)


def test_malformed_and_oversized_bodies(client):
    _assert_error(
        client.post("/api/analyses", content=b"{nope", headers={"content-type": "application/json"}),
        422,
        "invalid_request",
    )
    _assert_error(
        client.post("/api/analyses", content=b"[]", headers={"content-type": "application/json"}),
        422,
        "invalid_request",
    )
    huge = b'{"method": "attention", "text": "' + b"a" * 70_000 + b'"}'
    _assert_error(
        client.post("/api/analyses", content=huge, headers={"content-type": "application/json"}),
        413,
        "request_too_large",
        "BERTSCOPE_MAX_REQUEST_BYTES",
    )

    def chunks():
        for _ in range(20):
            yield b"x" * 8192

    _assert_error(
        client.post("/api/analyses", content=chunks(), headers={"content-type": "application/json"}),
        413,
        "request_too_large",
    )


def test_too_many_characters(client):
    _assert_error(_post(client, text="cat " * 6000), 413, "input_too_long", "characters")


def test_unknown_ids_and_routes(client):
    _assert_error(client.get("/api/analyses/doesnotexist"), 404, "not_found")
    _assert_error(client.get("/api/nothing-here"), 404, "not_found")
    _assert_error(client.delete("/api/analyses/abc"), 405, "method_not_allowed")
    # a 405 names every method of the path, also when they are separate routes (GET and POST /api/jobs)
    assert client.delete("/api/analyses/abc").headers["allow"] == "GET"
    assert client.delete("/api/jobs").headers["allow"] == "GET, POST"
    page = client.get("/a/doesnotexist")
    assert page.status_code == 404 and "text/html" in page.headers["content-type"]
    assert "No stored analysis" in page.text


def test_unicode_text_round_trips(client):
    text = "é 日本 cat 🙂 \u202e"
    body = _post(client, text=text).json()
    assert client.get(f"/api/analyses/{body['id']}").json()["text"] == text


def test_script_in_text_is_escaped_on_the_permalink_page(client):
    body = _post(client, text="<script>alert(1)</script> cat").json()
    page = client.get(body["url"])
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; cat" in page.text


def test_pages_render(client):
    for path in ("/", "/about", "/neurons", "/probes", "/evaluations", "/docs"):
        assert client.get(path).status_code == 200, path
    about = client.get("/about").text
    assert 'id="method-attention"' in about
    # every shipped data file is listed with its source and licence
    for item in shipped_data():
        assert f'id="shipped-{item.file}"' in about and item.licence in about
    plotly = client.get("/vendor/plotly.min.js")
    assert plotly.status_code == 200 and len(plotly.content) > 1_000_000
    assert client.get("/static/js/app.js").status_code == 200


def test_openapi_documents_the_routes(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/health", "/api/model", "/api/methods", "/api/analyses", "/api/analyses/{analysis_id}"):
        assert path in paths


@pytest.mark.parametrize("method", ["value_zeroing", "attention_rollout", "attention_norm"])
def test_mixing_methods_through_the_api(client, method):
    body = _post(client, method=method).json()
    n = len(body["tokens"])
    layers = np.array(body["result"]["layers"])
    assert layers.shape == (2, n, n) and np.array(body["result"]["rollout"]).shape == (n, n)
    np.testing.assert_allclose(layers.sum(-1), 1, atol=1e-5)
    url = f"/api/analyses/{body['id']}/figure"
    answer = client.get(url, params={"view": "rollout", "layer": 1, "row": 2}).json()
    main = answer["figures"]["main"]
    assert main["layout"]["title"]["text"].endswith("rollout of layers 0-1")
    np.testing.assert_allclose(main["data"][0]["z"], body["result"]["rollout"], atol=1e-5)
    np.testing.assert_allclose(
        answer["figures"]["strip"]["data"][0]["z"][0], body["result"]["rollout"][2], atol=1e-5
    )
    hidden = client.get(url, params={"hide_special": "1"}).json()["figures"]["main"]
    np.testing.assert_allclose(np.array(hidden["data"][0]["z"]).sum(-1), 1, atol=1e-4)
    assert hidden["layout"]["meta"]["positions"] == list(range(1, n - 1))
    _assert_error(client.get(url, params={"view": "sideways"}), 422, "invalid_input", "rollout")


def test_compare_side_by_side(client):
    ids = [_post(client, method=m).json()["id"] for m in ("value_zeroing", "attention_norm", "attention")]
    joined = ",".join(ids)
    answer = client.get(f"/api/compare/{joined}/figure", params={"scale": "own", "layer": 1}).json()
    figure = answer["figures"]["main"]
    assert [trace["name"] for trace in figure["data"]] == ["value_zeroing", "attention_norm", "attention"]
    assert {trace["coloraxis"] for trace in figure["data"]} == {"coloraxis", "coloraxis2", "coloraxis3"}
    shared = client.get(f"/api/compare/{joined}/figure", params={"view": "rollout", "layer": 1}).json()
    shared = shared["figures"]["main"]
    assert {trace["coloraxis"] for trace in shared["data"]} == {"coloraxis"}
    vz = client.get(f"/api/analyses/{ids[0]}").json()["result"]
    np.testing.assert_allclose(shared["data"][0]["z"], vz["rollout"], atol=1e-4)
    page = client.get(f"/compare/{joined}")
    assert page.status_code == 200 and "Context mixing side by side" in page.text


def test_compare_refuses_bad_sets(client):
    a = _post(client, method="value_zeroing").json()["id"]
    b = _post(client, method="attention_norm", text="a dog").json()["id"]
    _assert_error(client.get(f"/api/compare/{a},{b}/figure"), 422, "invalid_input", "same sentence")
    _assert_error(client.get(f"/api/compare/{a}/figure"), 422, "invalid_input", "2 to 8")
    _assert_error(client.get(f"/api/compare/{a},nope/figure"), 404, "not_found")
    _assert_error(client.get(f"/api/compare/{a},{a}/figure", params={"scale": "wild"}), 422, "invalid_input")


def test_result_can_be_left_out(client):
    body = client.post(
        "/api/analyses?include_result=false", json={"method": "attention", "text": SENTENCE}
    ).json()
    assert "result" not in body and body["tokens"][0] == "[CLS]"
    assert "result" in client.get(f"/api/analyses/{body['id']}").json()


ZERO_SHOT = {"kind": "zero_shot", "labels": ["good", "bad"], "template": "it was {} ."}


def test_attribution_through_the_api(client):
    body = _post(client, method="iba", text="a good movie", target=ZERO_SHOT, params={"sweep": True}).json()
    result = body["result"]
    assert len(result["scores"]) == len(body["tokens"]) and np.array(result["layers"]).shape == (2, 5)
    assert body["target"]["spec"]["labels"] == ["good", "bad"] and result["prediction"]["label"] in (
        "good",
        "bad",
    )
    answer = client.get(f"/api/analyses/{body['id']}/figure").json()
    assert set(answer["figures"]) == {"main", "aux"}
    grid = answer["figures"]["main"]["data"][0]
    assert grid["text"][0][:3] == ["a", "good", "movie"]  # special tokens hidden by default
    shown = client.get(f"/api/analyses/{body['id']}/figure", params={"hide_special": "0"}).json()
    assert shown["figures"]["main"]["data"][0]["text"][0][0] == "[CLS]"


def test_word_merge_sums_word_pieces(client):
    body = _post(client, method="occlusion", text="the cats sat", target=ZERO_SHOT).json()
    assert body["tokens"] == ["[CLS]", "the", "cat", "##s", "sat", "[SEP]"]
    merged = client.get(
        f"/api/analyses/{body['id']}/figure", params={"merge": "1", "hide_special": "1"}
    ).json()
    grid = merged["figures"]["main"]["data"][0]
    assert grid["text"][0][:3] == ["the", "cats", "sat"]
    scores = body["result"]["scores"]
    assert grid["z"][0][1] == pytest.approx(scores[2] + scores[3], abs=1e-5)


def test_signed_methods_use_a_diverging_scale(client):
    signed = _post(client, method="gradient_x_input", text="a good movie", target=ZERO_SHOT).json()
    unsigned = _post(client, method="saliency", text="a good movie", target=ZERO_SHOT).json()
    main = client.get(f"/api/analyses/{signed['id']}/figure").json()["figures"]["main"]["data"][0]
    assert main["colorscale"] == "RdBu" and main["zmin"] == -main["zmax"]
    main = client.get(f"/api/analyses/{unsigned['id']}/figure").json()["figures"]["main"]["data"][0]
    assert main["colorscale"] == "Reds" and main["zmin"] == 0


def test_attribution_methods_stacked_with_agreement(client):
    ids = [
        _post(client, method=m, text="a good movie", target=ZERO_SHOT).json()["id"]
        for m in ("iba", "occlusion", "integrated_gradients")
    ]
    answer = client.get(f"/api/compare/{','.join(ids)}/figure").json()
    assert answer["figures"]["main"]["data"][0]["y"] == ["iba", "occlusion", "integrated_gradients"]
    agreement = np.array(answer["figures"]["aux"]["data"][0]["z"])
    assert agreement.shape == (3, 3) and np.allclose(np.diag(agreement), 1)
    mixing = _post(client, method="value_zeroing", text="a good movie").json()["id"]
    _assert_error(client.get(f"/api/compare/{ids[0]},{mixing}/figure"), 422, "invalid_input", "one kind")


def test_attribution_target_errors(client):
    _assert_error(_post(client, method="iba", target={"kind": "classification"}), 422, "target_not_available")
    _assert_error(
        _post(client, method="iba", target={"kind": "zero_shot", "labels": ["a"]}), 422, "invalid_request"
    )
    _assert_error(_post(client, method="iba", params={"layer": 9}), 422, "invalid_input", "below 2")
    _assert_error(_post(client, method="lime", params={"samples": 1}), 422, "invalid_input", "params.samples")


def test_stacked_view_hides_special_tokens_by_default(client):
    ids = [
        _post(client, method=m, text="a good movie", target=ZERO_SHOT).json()["id"]
        for m in ("iba", "saliency")
    ]
    main = client.get(f"/api/compare/{','.join(ids)}/figure").json()["figures"]["main"]
    assert main["layout"]["xaxis"]["ticktext"] == ["a", "good", "movie"]


def test_randomisation_sanity_check(client, tiny_bert):
    weights = {name: p.clone() for name, p in tiny_bert.model.state_dict().items()}
    body = _post(
        client, method="gradient_x_input", text="a good movie with a bad end", target=ZERO_SHOT
    ).json()
    answer = client.post(f"/api/analyses/{body['id']}/randomisation").json()
    result = answer["result"]
    assert result["randomised_blocks"] == [0, 1, 2] and result["spearman"][0] == 1.0
    assert all(-1 <= rho <= 1 for rho in result["spearman"])
    assert result["scores"][2] != result["scores"][0]  # randomising every block changes the map
    assert answer["figure"]["data"][0]["x"] == [0, 1, 2]
    for name, tensor in tiny_bert.model.state_dict().items():  # the served model is untouched
        assert torch.equal(tensor, weights[name]), name
    mixing = _post(client, method="attention").json()
    _assert_error(
        client.post(f"/api/analyses/{mixing['id']}/randomisation"), 422, "invalid_input", "attribution"
    )


def test_docs_work_offline(client):
    page = client.get("/docs")
    assert page.status_code == 200 and "/vendor/swagger/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower()
    assert client.get("/vendor/swagger/swagger-ui-bundle.js").status_code == 200


def test_out_of_range_params_are_422_not_500(client):
    huge = 99999999999999999999999
    _assert_error(
        _post(client, method="iba", params={"seed": huge}, target=ZERO_SHOT), 422, "invalid_input", "seed"
    )
    _assert_error(
        _post(client, method="lime", params={"seed": -1}, target=ZERO_SHOT), 422, "invalid_input", "seed"
    )
    duplicate = {"kind": "zero_shot", "labels": ["a", "a"]}
    _assert_error(_post(client, method="iba", target=duplicate), 422, "invalid_request", "distinct")
    _assert_error(_post(client, text="\u200b\u200b"), 422, "invalid_input", "no characters")
