"""Features as units of the index, descriptions and illusion check (the neurons' pipeline, unchanged, over a
dictionary's features): exactness against a direct computation, the API and its bad input."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from app.methods.features.activations import site_module
from app.methods.features.basis import FeatureBasis
from app.methods.features.dictionary import FeatureDictionary
from app.methods.features.effects import nearest_neurons, probe_effect, token_directions
from app.methods.features.sae import TopKSae
from app.methods.neurons.index import build_state, plan_batches, run_encoder, token_activations
from app.modeling.hooks import capture
from tests.tiny import wait_for_job, write_corpus

TRAIN = {"layer": 1, "site": "residual", "width_multiplier": 2, "k": 4, "steps": 30, "batch_size": 64}


def _dictionary(
    loaded, site: str = "residual", layer: int = 1, width: int = 48, k: int = 4
) -> FeatureDictionary:
    dimension = loaded.num_units if site == "ffn" else loaded.hidden_size
    sae = TopKSae(dimension, width, k, scale=2.0, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        sae.encoder_bias.normal_(0, 0.1, generator=torch.Generator().manual_seed(1))
    return FeatureDictionary.from_sae(
        sae, name="d", model_name=loaded.name, model_revision=loaded.revision, layer=layer, site=site
    )


def _direct_codes(loaded, dictionary, sentences):
    """Each token's codes computed directly (the site's output, encoded): [sentence, token, width], valid."""
    plan = plan_batches(loaded, sentences, len(sentences))
    batch = plan.batch(np.arange(len(sentences)))
    module = site_module(loaded, dictionary.layer, dictionary.site)
    with torch.inference_mode(), capture({"x": module}) as seen:
        run_encoder(loaded, batch)
    with torch.no_grad():
        codes = dictionary.sae().encode(seen["x"].reshape(-1, seen["x"].shape[-1]).float())
    return codes.reshape(*seen["x"].shape[:2], -1).numpy(), batch.valid.numpy()


@pytest.mark.parametrize("site", ["residual", "ffn"])
def test_feature_index_equals_direct_codes(tiny_bert, tmp_path, site):
    """Top exemplars and statistics of every feature are those of its codes computed directly."""
    sentences = write_corpus(tmp_path / "c.txt", 40).read_text().splitlines()
    dictionary = _dictionary(tiny_bert, site=site)
    state = build_state(tiny_bert, sentences, k=5, batch_size=7, basis=FeatureBasis(dictionary))
    assert state.complete and state.top_values.shape == (1, dictionary.width, 5)
    codes, valid = _direct_codes(tiny_bert, dictionary, sentences)
    counted = codes[valid]  # [token, feature]
    assert state.tokens == counted.shape[0]
    np.testing.assert_allclose(state.maximum[0], counted.max(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(state.total[0], counted.astype(np.float64).sum(0), rtol=1e-4, atol=1e-3)
    best = np.sort(counted, axis=0)[::-1][:5].T  # [feature, 5]
    np.testing.assert_allclose(state.top_values[0], best, rtol=1e-5, atol=1e-6)
    # each exemplar points at a token whose code is its value
    for feature in range(0, dictionary.width, 7):
        for value, sentence, position in zip(
            state.top_values[0, feature],
            state.top_sentences[0, feature],
            state.top_positions[0, feature],
            strict=True,
        ):
            assert codes[sentence, position, feature] == pytest.approx(value, rel=1e-5, abs=1e-6)


def test_stopped_feature_index_resumes_to_the_uninterrupted_state(tiny_bert, tmp_path):
    """Cancel mid-build keeps a partial state; resuming it gives exactly the uninterrupted index."""
    sentences = write_corpus(tmp_path / "c.txt", 50).read_text().splitlines()
    basis = FeatureBasis(_dictionary(tiny_bert))
    whole = build_state(tiny_bert, sentences, k=4, batch_size=8, basis=basis)
    asked = iter([False, False, True])
    partial = build_state(
        tiny_bert, sentences, k=4, batch_size=8, basis=basis, should_stop=lambda: next(asked)
    )
    assert not partial.complete and partial.sentences_done == 16
    resumed = build_state(tiny_bert, sentences, k=4, batch_size=8, basis=basis, resume=partial)
    assert resumed.digest() == whole.digest()


def test_feature_token_activations_are_the_codes(tiny_bert, tmp_path):
    sentences = write_corpus(tmp_path / "c.txt", 6).read_text().splitlines()
    dictionary = _dictionary(tiny_bert)
    codes, valid = _direct_codes(tiny_bert, dictionary, sentences)
    rows = token_activations(tiny_bert, sentences, 0, 3, basis=FeatureBasis(dictionary))
    for number, row in enumerate(rows):
        expected = np.where(valid[number, : len(row.tokens)], codes[number, : len(row.tokens), 3], np.nan)
        np.testing.assert_allclose(row.activations, expected, rtol=1e-5, atol=1e-6)


def test_ffn_feature_nearest_neurons_are_its_largest_coordinates(tiny_bert):
    dictionary = _dictionary(tiny_bert, site="ffn", layer=0)
    direction = dictionary.decoder[5]
    found = nearest_neurons(tiny_bert, dictionary, 5, count=3)["items"]
    assert [item["unit"] for item in found] == list(np.argsort(-np.abs(direction))[:3])
    assert found[0]["value"] == pytest.approx(
        direction[found[0]["unit"]] / np.linalg.norm(direction), rel=1e-5
    )


def test_residual_feature_nearest_neuron_is_planted(tiny_bert):
    """A feature whose direction is a neuron's output weights has that neuron first, at cosine 1."""
    dictionary = _dictionary(tiny_bert, layer=2)
    weights = tiny_bert.adapter.ffn_output_projection(tiny_bert.model, 1).weight.detach().numpy()
    dictionary.decoder[0] = weights[:, 7] / np.linalg.norm(weights[:, 7])
    [first, *_] = nearest_neurons(tiny_bert, dictionary, 0)["items"]
    assert (first["layer"], first["unit"]) == (1, 7) and first["value"] == pytest.approx(1.0, abs=1e-6)
    assert nearest_neurons(tiny_bert, _dictionary(tiny_bert, layer=0), 0)["items"] == []


def test_token_directions_rank_embeddings_by_cosine(tiny_bert):
    dictionary = _dictionary(tiny_bert, layer=1)
    embeddings = tiny_bert.model.get_input_embeddings().weight.detach().numpy()
    token_id = tiny_bert.tokenizer.convert_tokens_to_ids("cat")
    dictionary.decoder[2] = embeddings[token_id] / np.linalg.norm(embeddings[token_id])
    found = token_directions(tiny_bert, dictionary, 2)
    assert found["promoted"][0]["token"] == "cat" and found["promoted"][0]["cosine"] == pytest.approx(
        1, abs=1e-6
    )
    cosines = [item["cosine"] for item in found["suppressed"]]
    assert cosines == sorted(cosines)


def test_probe_effect_hand_computed():
    """B = diag(3, 1) in 2-d: along e1 ||B d|| = 3; a random unit direction's median norm is that of
    (3 cos t, sin t) over uniform t, computed here by quadrature."""
    distance = np.diag([3.0, 1.0])
    effect = probe_effect(np.array([1.0, 0.0]), distance, samples=20_000)
    t = np.linspace(0, 2 * np.pi, 200_001)
    median = np.median(np.sqrt(9 * np.cos(t) ** 2 + np.sin(t) ** 2))
    assert effect["norm"] == pytest.approx(3.0)
    assert effect["random_median"] == pytest.approx(median, rel=0.02)
    assert effect["ratio"] == pytest.approx(3.0 / median, rel=0.02)


def _index_and_train(client, tmp_path, names=("c", "e")) -> dict:
    corpora = [{"name": n, "path": str(write_corpus(tmp_path / f"{n}.txt", 120))} for n in names]
    job = client.post(
        "/api/jobs", json={"kind": "index_neurons", "params": {"corpora": corpora, "directions": 12}}
    )
    assert wait_for_job(client, job.json()["id"], timeout=120)["status"] == "done"
    job = client.post(
        "/api/jobs", json={"kind": "train_dictionary", "params": {"corpora": list(names), **TRAIN}}
    )
    done = wait_for_job(client, job.json()["id"], timeout=240)
    assert done["status"] == "done", done
    return client.get(f"/api/dictionaries/{done['result_id']}").json()


def test_features_browsed_beside_neurons_and_random_directions(client, tmp_path, tiny_bert):
    dictionary = _index_and_train(client, tmp_path)
    key = f"features:{dictionary['id']}"
    bases = [basis["key"] for basis in client.get("/api/features/bases").json()]
    assert bases == ["neurons", key, "random:neurons", f"random:{key}"]
    page = client.get("/api/neurons", params={"basis": key, "sort": "layer", "limit": 500}).json()
    width = dictionary["width"]
    assert page["total"] == width and len(page["items"]) == width
    assert page["basis"]["kind"] == "features" and page["basis"]["dictionary"]["id"] == dictionary["id"]
    first = page["items"][0]
    assert first["url"] == f"/features/{dictionary['id']}/0" and first["name"] == "L1 · f0"
    # the summaries side by side: neurons, features, and random directions in each one's space
    comparison = page["comparison"]
    features, neurons = comparison["features"], comparison["neurons"]
    assert features["basis"] == key and features["units"]["units"] == width
    assert neurons["units"]["units"] == tiny_bert.num_layers * tiny_bert.num_units
    assert features["corpora"] == ["c", "e"] and features["random_directions"]["units"] > 0
    labels = sum(page["description"]["summary"]["units"]["labels"].values())
    assert labels == pytest.approx(1.0)
    # the layer filter: the dictionary's layer lists its features, any other none
    assert client.get("/api/neurons", params={"basis": key, "layer": 1}).json()["total"] == width
    assert client.get("/api/neurons", params={"basis": key, "layer": 0}).json()["total"] == 0
    randoms = client.get("/api/neurons", params={"basis": f"random:{key}", "limit": 500}).json()
    assert randoms["total"] == features["random_directions"]["units"]
    assert randoms["description"]["summary"]["units"] == features["random_directions"]
    assert randoms["description"]["summary"]["generator"] == features["generator"]
    assert all(item["url"] is None and item["name"].startswith("L1 · d") for item in randoms["items"])
    neuron_page = client.get("/api/neurons", params={"limit": 1}).json()
    assert neuron_page["total"] == tiny_bert.num_layers * tiny_bert.num_units  # the neurons, unchanged
    # one feature: exemplars shaded by its codes, per corpus, and what its direction touches
    best = max(page["items"], key=lambda item: item.get("best_score") or -1)
    detail = client.get(f"/api/features/{dictionary['id']}/{best['unit']}").json()
    assert [c["corpus"] for c in detail["corpora"]] == ["c", "e"]
    exemplar = detail["corpora"][0]["exemplars"][0]
    shaded = exemplar["token_activations"][exemplar["position"]]
    assert shaded == pytest.approx(exemplar["activation"], rel=1e-4, abs=1e-5)
    assert detail["label"] == best["label"] and detail["dictionary"]["id"] == dictionary["id"]
    effects = detail["effects"]
    assert (
        len(effects["nearest_neurons"]["items"]) == 10
        and effects["nearest_neurons"]["items"][0]["layer"] == 0
    )
    assert len(effects["tokens"]["promoted"]) == 10 and "skipped" in effects["probe"]
    # the features most active on an analysed sentence
    analysis = client.post(
        "/api/analyses", json={"text": "the cat sat on the mat", "method": "attention"}
    ).json()
    active = client.get(f"/api/analyses/{analysis['id']}/features").json()
    assert active["dictionary"]["id"] == dictionary["id"] and 0 < len(active["items"]) <= 12
    assert all(item["url"].startswith(f"/features/{dictionary['id']}/") for item in active["items"])
    # pages
    assert client.get(f"/features/{dictionary['id']}/{best['unit']}").status_code == 200
    assert client.get(f"/neurons?basis={key}").status_code == 200


def test_feature_bad_input(client):
    for url, status, words in (
        ("/api/neurons?basis=nonsense", 422, "Unknown basis"),
        ("/api/neurons?basis=features:nope", 404, "No dictionary 'nope'"),
        ("/api/features/nope/3", 404, "No dictionary 'nope'"),
        ("/api/features/nope/-1", 422, "feature"),
        ("/features/nope/3", 404, "No dictionary"),
    ):
        answer = client.get(url)
        assert answer.status_code == status, (url, answer.text)
        assert words in answer.text, (url, answer.text)
    job = client.post("/api/jobs", json={"kind": "index_features", "params": {"dictionary": "nope"}}).json()
    failed = wait_for_job(client, job["id"])
    assert failed["status"] == "failed" and "No dictionary 'nope'" in failed["message"]
    job = client.post("/api/jobs", json={"kind": "index_features", "params": {"corpora": []}})
    assert job.status_code == 422


def test_cli_trains_then_indexes_features_on_other_corpora(tmp_path):
    """`neurons index`, `features train --no-index-features`, then `features index` over another corpus: the
    summary printed is the feature run's, beside its random directions; a bad dictionary exits non-zero."""
    from click.testing import CliRunner

    from app.cli import main
    from tests.conftest import sqlite_url
    from tests.tiny import save_checkpoint

    model = str(save_checkpoint(tmp_path / "model", "bert"))
    common = ["--model", model, "--database-url", sqlite_url(tmp_path)]
    corpora = [f"--corpus={n}={write_corpus(tmp_path / f'{n}.txt', 60)}" for n in ("a", "b")]

    def run(*args: str):
        return CliRunner().invoke(main, [*args, *common], catch_exceptions=False)

    assert run("neurons", "index", *corpora, "--no-describe").exit_code == 0
    train = ["--corpus", "a", "--layer", "1", "--width-multiplier", "2", "--k", "4", "--steps", "20"]
    trained = run("features", "train", *train, "--batch-size", "64", "--no-index-features")
    assert trained.exit_code == 0, trained.output
    dictionary = re.search(r"dictionary ([A-Za-z0-9_-]+) \(", trained.output).group(1)
    answer = run("features", "index", "--dictionary", dictionary, "--corpus", "b", "--directions", "8")
    assert answer.exit_code == 0, answer.output
    summary = json.loads(answer.output[answer.output.index("{") :])
    assert summary["basis"] == f"features:{dictionary}" and summary["corpora"] == ["b"]
    assert summary["units"]["units"] == 2 * 32 and summary["random_directions"]["units"] == 8
    wrong = CliRunner().invoke(main, ["features", "index", "--dictionary", "nope", *common])
    assert wrong.exit_code != 0 and "No dictionary 'nope'" in wrong.output
