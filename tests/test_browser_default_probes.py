"""Browser test: a fresh server trains the default probe set on its own; the Probes page follows the training
(progress, time left) and then shows the new set, its metrics and its example sentences, without a reload."""

from __future__ import annotations

import pytest

from app.jobs.probes import DEFAULT_SET_NAME
from tests.conftest import sqlite_url
from tests.server import running_server
from tests.tiny import save_checkpoint

TRAINING_TIMEOUT_MS = 600_000

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def training_server(tmp_path_factory):
    """A fresh server on a tiny model that trains the default probe set at its first start."""
    directory = tmp_path_factory.mktemp("default-probes")
    model = str(save_checkpoint(directory / "model"))
    with running_server(sqlite_url(directory), model=model, train_probes=True) as base:
        yield base


def test_probes_page_follows_the_default_training_then_shows_the_set(training_server, page):
    page.goto(training_server + "/probes")
    page.evaluate("window.notReloaded = true")
    page.wait_for_selector("#probe-training:not([hidden])")
    assert DEFAULT_SET_NAME in page.inner_text("#probe-training")
    assert "being trained" in page.inner_text("#probes-empty")
    # progress as it comes, then an estimate of the time left once the job has a pace
    page.wait_for_function(
        "/\\d+ %, (about|a few)[^.]* left/.test(document.getElementById('probe-training').textContent)",
        timeout=TRAINING_TIMEOUT_MS,
    )
    page.wait_for_selector("#probe-training", state="hidden", timeout=TRAINING_TIMEOUT_MS)
    page.wait_for_selector("#probe-metrics .main-svg")
    assert page.evaluate("window.notReloaded") is True
    assert DEFAULT_SET_NAME in page.inner_text("#probe-select")
    assert page.locator("#probe-table tbody tr").count() == 4  # embeddings, 2 layers, the chain baseline
    assert page.locator("#jobs-table tr[data-status='done']").count() == 1
    page.wait_for_selector("#tree-form:not([hidden]) #tree-examples:not([hidden]) button.example")
    page.click("#tree-examples button.example >> nth=0")
    page.click("#tree-form button[type='submit']")
    page.wait_for_url("**/a/*")
    page.wait_for_selector("#figure .main-svg")
    assert page.errors == []
