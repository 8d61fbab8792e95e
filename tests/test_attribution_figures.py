"""What the Sentence page shows for the decomposition methods: per-class rows, the accounting lines, the
comparison and agreement panel, and the estimator IBA used (through the real app on the tiny BERT)."""

from __future__ import annotations

import numpy as np

ZERO_SHOT = {"kind": "zero_shot", "labels": ["good", "bad", "cat"]}
TEXT = "the movie was very good"


def _analysis(client, method: str, **params) -> dict:
    response = client.post(
        "/api/analyses", json={"method": method, "text": TEXT, "target": ZERO_SHOT, "params": params}
    )
    assert response.status_code in (200, 201), response.text
    return response.json()


def test_decompx_shows_one_signed_row_per_class_and_its_decomposition_error(client):
    analysis = _analysis(client, "decompx")
    result = analysis["result"]
    figures = client.get(f"/api/analyses/{analysis['id']}/figure").json()["figures"]
    rows = figures["aux"]["data"][0]
    assert [name.split(" (")[0] for name in rows["y"]] == ["good", "bad", "cat"]
    assert rows["colorscale"] == "RdBu" and rows["zmid"] == 0.0
    # the rows are the stored per-class scores (specials hidden by default, so compare the word columns)
    words = [i for i, special in enumerate(analysis["encoding"]["special"]) if not special]
    np.testing.assert_allclose(np.array(rows["z"]), np.array(result["class_scores"])[:, words], atol=1e-5)
    explained = result["class_labels"].index(result["prediction"]["label"])
    np.testing.assert_allclose(result["scores"], result["class_scores"][explained], atol=1e-6)
    title = figures["main"]["layout"]["title"]["text"]
    assert "bias part" in title and f"{result['decomposition_error']:.1e}" in title


def test_attnlrp_states_its_conservation_ledger(client):
    analysis = _analysis(client, "attnlrp")
    ledger = analysis["result"]["conservation"]
    title = client.get(f"/api/analyses/{analysis['id']}/figure").json()["figures"]["main"]["layout"]["title"]
    assert f"relative error {ledger['relative_error']:.0%}" in title["text"]
    assert f"of f(x) = {ledger['score']:+.3g}" in title["text"]


def test_decompx_and_attnlrp_join_the_comparison_and_agreement_panel(client):
    ids = [_analysis(client, method)["id"] for method in ("decompx", "attnlrp", "gradient_x_input")]
    answer = client.get(f"/api/compare/{','.join(ids)}/figure").json()["figures"]
    assert answer["main"]["data"][0]["y"] == ["decompx", "attnlrp", "gradient_x_input"]
    agreement = np.array(answer["aux"]["data"][0]["z"])
    assert agreement.shape == (3, 3) and np.allclose(np.diag(agreement), 1)
    page = client.get(f"/compare/{','.join(ids)}")
    assert page.status_code == 200


def test_iba_heatmap_names_the_estimator_that_produced_it(client):
    for estimator, words in (("dataset", "dataset estimator"), ("sentence", "per-sentence estimator")):
        analysis = _analysis(client, "iba", estimator=estimator, steps=2)
        assert analysis["params"]["estimator"] == estimator
        title = client.get(f"/api/analyses/{analysis['id']}/figure").json()["figures"]["main"]["layout"]
        assert words in title["title"]["text"]
    default = _analysis(client, "iba", steps=2)
    assert default["params"]["estimator"] == "dataset"
