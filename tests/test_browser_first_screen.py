"""Browser tests of the Sentence page's first screen on a fresh server (embedded model, empty store):
examples that run with one click, what each method shows, and analyses that cannot run yet saying why
before submit, then becoming usable without a reload when the job that makes them usable finishes."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest

from app.api.pages import SENTENCE_EXAMPLES
from app.methods import METHODS
from tests.conftest import sqlite_url
from tests.screens import screenshot
from tests.server import running_server
from tests.treebanks import write_treebank

JOB_TIMEOUT_MS = 600_000

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(sqlite_url(tmp_path_factory.mktemp("first-screen"))) as base:
        yield base


def _submit_job(base: str, kind: str, params: dict) -> dict:
    """POST /api/jobs as a script on this machine would (loopback: no token needed)."""
    body = json.dumps({"kind": kind, "params": params}).encode()
    request = urllib.request.Request(
        f"{base}/api/jobs", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 202
        return json.loads(response.read())


# the texts #method-availability shows, in order, and the first that carries a job's progress
RECORD_NOTICES = """() => {
  const notice = document.getElementById('method-availability');
  window.__notices = [notice.hidden ? '(hidden)' : notice.textContent];
  new MutationObserver(() => window.__notices.push(notice.hidden ? '(hidden)' : notice.textContent))
    .observe(notice, { attributes: true, childList: true, characterData: true, subtree: true });
}"""
PROGRESS_SHOWN = """() => {
  const notice = document.getElementById('method-availability');
  if (/being trained: \\d+ %, .* left/.test(notice.textContent) && !notice.hidden) return notice.textContent;
  return notice.hidden ? '(usable before any progress was shown)' : false;
}"""


def _example(label: str) -> int:
    return next(i for i, example in enumerate(SENTENCE_EXAMPLES) if example["label"] == label)


def test_examples_summaries_and_why_a_method_cannot_run_yet(server, page):
    page.goto(server + "/")
    page.wait_for_selector("#examples:not([hidden]) button.example-sentence")
    assert page.locator("button.example-sentence").count() == len(SENTENCE_EXAMPLES)
    assert page.inner_text("#method-summary") == METHODS["attention"].summary
    assert page.is_hidden("#method-availability") and page.is_enabled("#analyze-button")
    page.select_option("#method", "value_zeroing")
    assert page.inner_text("#method-summary") == METHODS["value_zeroing"].summary
    # no probe set yet: the structural probe says so, and what to do, before anything is submitted
    page.select_option("#method", "structural_probe")
    notice = page.inner_text("#method-availability")
    assert "No probe set has been trained" in notice and "Probes page" in notice
    assert page.is_disabled("#analyze-button")
    screenshot(page, "first-screen")
    # the garden-path example would draw a tree; without probes it runs its next method (ALTI) instead
    page.click(f"button.example-sentence[data-example='{_example('Garden path')}']")
    page.wait_for_url("**/a/*")
    page.wait_for_selector("#figure .main-svg")
    assert page.input_value("#method") == "alti"
    assert page.input_value("#text") == "The horse raced past the barn fell."
    assert "ALTI" in page.evaluate("document.getElementById('figure').layout.title.text")
    assert page.errors == []


def test_one_click_on_an_example_runs_it_and_shows_a_figure(server, page):
    pair = SENTENCE_EXAMPLES[_example("Sentence pair")]
    page.goto(server + "/")
    page.click(f"button.example-sentence[data-example='{_example('Sentence pair')}']")
    page.wait_for_url("**/a/*")
    page.wait_for_selector("#figure .main-svg")
    assert page.input_value("#method") == pair["methods"][0]
    assert page.input_value("#text") == pair["text"]
    assert page.input_value("#text_pair") == pair["text_pair"]
    ticks = page.evaluate("document.getElementById('figure').layout.xaxis.ticktext")
    assert "guitar" in ticks and "music" in ticks  # both sentences are in the analysis
    assert page.evaluate("document.getElementById('figure').data[0].type") == "heatmap"
    page.goto(server + "/")
    page.click(f"button.example-sentence[data-example='{_example('Sentiment')}']")
    page.wait_for_url("**/a/*")
    page.wait_for_selector("#figure .main-svg")
    assert page.input_value("#method") == "integrated_gradients"
    assert page.errors == []


def test_a_head_being_fitted_then_listed_in_the_target_picker_without_reload(server, page, tmp_path):
    rows = ["a good movie", "a great film", "i loved it", "very good", "wonderful acting"] * 4
    rows += ["a bad movie", "a terrible film", "i hated it", "very bad", "awful acting"] * 4
    labels = ["pos"] * 20 + ["neg"] * 20
    data = tmp_path / "labelled.tsv"
    data.write_text(
        "sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in zip(rows, labels, strict=True)), "utf-8"
    )
    page.goto(server + "/")
    page.select_option("#method", "integrated_gradients")
    assert page.locator("#target-kind option[value='head']").count() == 0
    assert "No head has been fitted" in page.inner_text("#target-head-status")
    _submit_job(server, "fit_head", {"data": str(data), "name": "first-screen-head"})
    # the page notices the job on its own (no reload) and lists the head once it is fitted
    page.wait_for_selector("#target-kind option[value='head']", state="attached", timeout=JOB_TIMEOUT_MS)
    assert page.locator("#target-head-status").count() == 0
    page.select_option("#target-kind", "head")
    assert "first-screen-head" in page.inner_text("#target-head")
    assert page.errors == []


def test_a_probe_set_in_training_shows_progress_then_the_probe_runs_without_reload(server, page, tmp_path):
    # large enough to run for a while (1600 sentences took 8 s on 2 idle cores): the page must see it run
    train = write_treebank(tmp_path / "train.conllu", count=4000)
    dev = write_treebank(tmp_path / "dev.conllu", count=40)
    params = {"treebank": str(train), "dev": str(dev), "rank": 16, "max_epochs": 8, "topological": False}
    job = _submit_job(server, "train_probes", params)
    page.goto(server + "/")
    page.select_option("#method", "structural_probe")
    assert page.is_disabled("#analyze-button")
    notice = page.inner_text("#method-availability")
    assert notice.startswith("A probe set is being trained"), notice
    # followed while it runs: the share done and the time left (every text the notice shows is recorded)
    page.evaluate(RECORD_NOTICES)
    seen = page.wait_for_function(PROGRESS_SHOWN, timeout=JOB_TIMEOUT_MS).json_value()
    shown = page.evaluate("window.__notices")
    assert re.search(r"being trained: \d+ %, (about .*|a few seconds) left\.", seen), f"no progress: {shown}"
    page.wait_for_selector("#method-availability[hidden]", state="attached", timeout=JOB_TIMEOUT_MS)
    assert page.is_enabled("#analyze-button")
    with urllib.request.urlopen(f"{server}/api/jobs/{job['id']}", timeout=30) as response:
        finished = json.loads(response.read())
    assert finished["status"] == "done" and finished["eta_s"] is None and finished["started_at"]
    page.fill("#text", "The horse raced past the barn fell.")
    page.click("#analyze-button")
    page.wait_for_url("**/a/*")
    page.wait_for_selector("#figure .main-svg")
    assert "Structural probe" in page.evaluate("document.getElementById('figure').layout.title.text")
    assert page.errors == []
