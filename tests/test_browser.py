"""Browser tests: Playwright drives Debian's Chromium against a real ``bertscope serve``."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.browser_forms import server_file, upload_file
from tests.conftest import sqlite_url
from tests.screens import SCREENS, screenshot
from tests.server import running_server
from tests.test_job_forms import PAGES as JOB_FORMS
from tests.treebanks import write_treebank

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    directory: Path = tmp_path_factory.mktemp("browser")
    with running_server(sqlite_url(directory)) as base:
        yield base


def _figure_title(page) -> str:
    return page.evaluate("document.getElementById('figure').layout.title.text")


def _wait_for_title(page, fragment: str) -> None:
    page.wait_for_function(
        "(f) => { const g = document.getElementById('figure');"
        " return g && g.layout && g.layout.title.text.includes(f); }",
        arg=fragment,
    )


def test_type_analyze_share_and_reopen(server, browser, page):
    page.goto(server + "/")
    page.fill("#text", "The keys to the cabinet are on the table.")
    page.select_option("#method", "attention")
    page.click("#analyze-button")
    page.wait_for_url("**/a/*")
    page.wait_for_selector("#figure .main-svg")
    assert page.evaluate("document.getElementById('figure').data[0].type") == "heatmap"
    page.eval_on_selector("#view-layer", "(el) => { el.value = '3'; el.dispatchEvent(new Event('change')); }")
    _wait_for_title(page, "layer 3")
    page.select_option("#view-head", "5")
    _wait_for_title(page, "layer 3, head 5")
    z = page.evaluate("document.getElementById('figure').data[0].z")
    ticks = page.evaluate("document.getElementById('figure').layout.xaxis.ticktext")
    assert ticks[0] == "[CLS]" and "cabinet" in ticks
    page.click("#share-button")
    page.wait_for_function("document.getElementById('share-status').dataset.link !== undefined")
    link = page.eval_on_selector("#share-status", "(el) => el.dataset.link")
    assert "/a/" in link and "layer=3" in link and "head=5" in link
    screenshot(page, "sentence")

    other = browser.new_context().new_page()
    other.goto(link)
    other.wait_for_selector("#figure .main-svg")
    assert _figure_title(other) == "Raw attention, layer 3, head 5"
    assert other.evaluate("document.getElementById('figure').data[0].z") == z
    assert other.evaluate("document.getElementById('figure').layout.xaxis.ticktext") == ticks
    assert other.input_value("#text") == "The keys to the cabinet are on the table."
    assert other.input_value("#view-layer") == "3"
    screenshot(other, "permalink")
    assert page.errors == []


def test_script_in_sentence_is_shown_not_run(server, page):
    payload = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> hi'
    page.goto(server + "/")
    page.fill("#text", payload)
    page.click("#analyze-button")
    page.wait_for_url("**/a/*")
    page.wait_for_selector("#figure .main-svg")
    assert page.evaluate("window.__pwned") is None
    assert page.input_value("#text") == payload
    assert "script" in page.evaluate("document.getElementById('figure').layout.xaxis.ticktext.join(' ')")
    assert page.locator("#figure .xtick text").filter(has_text="<").count() > 0


def test_bad_input_shows_a_clear_message(server, page):
    page.goto(server + "/")
    page.fill("#text", "word " * 600)
    page.click("#analyze-button")
    page.wait_for_selector("#form-error:not([hidden])")
    assert "tokens; the limit is" in page.inner_text("#form-error")
    assert page.url.endswith("/")


def test_unknown_permalink_shows_an_error_page(server, page):
    response = page.goto(server + "/a/not-a-real-id")
    assert response.status == 404
    assert "No stored analysis" in page.inner_text("#page-error")


def _rendered(page) -> int:
    return int(page.eval_on_selector("#figure", "(el) => Number(el.dataset.rendered || 0)"))


def _wait_rerender(page, before: int) -> None:
    page.wait_for_function(f"Number(document.getElementById('figure').dataset.rendered || 0) > {before}")


def test_value_zeroing_view_rollout_row_strip_and_compare(server, browser, page):
    page.goto(server + "/")
    page.fill("#text", "The keys to the cabinet are on the table.")
    page.select_option("#method", "value_zeroing")
    page.click("#analyze-button")
    page.wait_for_url("**/a/*")
    page.wait_for_selector("#figure .main-svg")
    assert _figure_title(page) == "Value Zeroing, layer 0"
    before = _rendered(page)
    page.click("#view-view-rollout")
    _wait_rerender(page, before)
    page.eval_on_selector("#view-layer", "(el) => { el.value = '5'; el.dispatchEvent(new Event('change')); }")
    _wait_for_title(page, "rollout of layers 0-5")
    rows = page.evaluate("document.getElementById('figure').data[0].z")
    assert all(abs(sum(row) - 1) < 1e-3 for row in rows)
    # clicking a cell shows its query row as a strip over the sentence
    cells = page.locator("#figure .nsewdrag").first
    cells.scroll_into_view_if_needed()  # mouse.click takes viewport coordinates and does not scroll
    box = cells.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.2)
    page.wait_for_selector("#strip .main-svg")
    assert page.evaluate("document.getElementById('strip').layout.title.text").startswith("Row of")
    assert "row=" in page.url and "view=rollout" in page.url
    screenshot(page, "mixing-rollout")
    page.click("#compare-button")
    page.wait_for_url("**/compare/*")
    page.wait_for_selector("#figure .main-svg")
    names = page.evaluate("document.getElementById('figure').data.map((t) => t.name)")
    assert names == [
        "value_zeroing",
        "attention",
        "attention_rollout",
        "attention_norm",
        "alti",
        "decompx_mixing",
    ]
    before = _rendered(page)
    page.select_option("#view-scale", "own")
    _wait_rerender(page, before)
    assert len(set(page.evaluate("document.getElementById('figure').data.map((t) => t.coloraxis)"))) == 6
    screenshot(page, "compare")
    page.click("#share-button")
    page.wait_for_function("document.getElementById('share-status').dataset.link !== undefined")
    link = page.eval_on_selector("#share-status", "(el) => el.dataset.link")
    other = browser.new_context().new_page()
    other.goto(link)
    other.wait_for_selector("#figure .main-svg")
    assert other.input_value("#view-scale") == "own"
    assert page.errors == []


def test_long_input_stays_responsive(server, page):
    text = " ".join(["the", "cat", "sat", "on", "a", "mat"] * 84)  # 506 tokens
    page.goto(server + "/")
    page.fill("#text", text)
    page.click("#analyze-button")
    page.wait_for_url("**/a/*", timeout=120_000)
    page.wait_for_selector("#figure .main-svg", timeout=60_000)
    assert len(page.evaluate("document.getElementById('figure').data[0].z")) == 506
    before = _rendered(page)
    page.check("#view-hide_special")
    _wait_rerender(page, before)
    assert page.evaluate("document.getElementById('figure').layout.xaxis.ticktext[0]") != "[CLS]"
    drag = page.locator("#figure .nsewdrag").first
    drag.scroll_into_view_if_needed()
    box = drag.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + 40, steps=5)
    page.wait_for_function("document.getElementById('hover-info').textContent.includes('key')")
    assert "query" in page.inner_text("#hover-info")  # tokens named even where hover labels are dropped
    assert page.errors == []


def test_evaluation_job_from_the_page(server, page, tmp_path):
    data = tmp_path / "sentences.txt"
    data.write_text("a fine film .\nthe plot is thin but the cast is great .\nnot worth the ticket .\n")
    page.goto(server + "/evaluations")
    upload_file(page, "eval_mixing-data", data)
    page.wait_for_function(  # the page's list of datasets shows it too
        "document.querySelector('#datasets-table tbody').textContent.includes('sentences')"
    )
    page.fill("#eval_mixing-limit", "3")
    page.click("#eval-start")
    page.wait_for_selector("#jobs-table tr[data-status='done']", timeout=120_000)
    page.wait_for_selector("#evaluation-figure .main-svg")
    assert page.locator("#evaluation-table tbody tr").count() == 7
    assert "value_zeroing" in page.inner_text("#evaluation-table")
    screenshot(page, "evaluations")
    server_file(page, "eval_mixing-data", tmp_path / "missing.tsv")
    page.click("#eval-start")
    page.wait_for_selector("#eval-error:not([hidden])")  # refused before a job is queued
    assert "missing.tsv" in page.inner_text("#eval-error")
    assert page.locator("#jobs-table tbody tr").count() == 1
    assert [error for error in page.errors if "status of 422" not in error] == []


@pytest.mark.parametrize("path", list(JOB_FORMS))
def test_job_forms_have_an_input_for_every_params_field(server, page, path):
    """Each job's form is generated from its Params schema: one input per field, named after it, with the
    id ``<kind>-<field>``, the schema's default filled in."""
    from app.jobs.registry import JOBS

    page.goto(server + path)
    page.wait_for_selector("form.job-form .field", state="attached")  # forms may start folded
    forms = page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('form.job-form')].map((form) =>"
        " [form.dataset.kind, { names: [...new Set([...form.querySelectorAll('[name]')].map((n) => n.name))],"
        " ids: [...form.querySelectorAll('[id]')].map((n) => n.id) }]))"
    )
    assert sorted(forms) == sorted(JOB_FORMS[path])
    for kind, form in forms.items():
        fields = list(JOBS[kind].Params.model_fields)
        assert sorted(form["names"]) == sorted(fields), kind
        assert all(f"{kind}-{name}" in form["ids"] for name in fields), kind
    if path == "/probes":
        assert page.input_value("#train_probes-rank") == "128"  # the schema's default
        assert page.is_checked("#train_probes-topological") and not page.is_checked("#train_probes-control")
        assert not page.is_visible("#train_probes-seed")  # advanced fields start folded
    if path == "/evaluations":
        ticked = page.eval_on_selector_all(
            "#eval_degradation-methods input:checked", "(boxes) => boxes.map((box) => box.value)"
        )
        methods = JOBS["eval_degradation"].Params.model_fields["methods"]
        assert ticked == methods.get_default(call_default_factory=True)
    assert page.errors == []


def test_attribution_view_sweep_merge_and_stacked_methods(server, page):
    page.goto(server + "/")
    page.fill("#text", "An unforgettable, wonderfully acted film.")
    page.select_option("#method", "iba")
    page.check("#param-sweep")
    page.fill("#target-labels", "positive, negative")
    page.fill("#target-template", "This film is {}.")
    page.click("#analyze-button")
    page.wait_for_url("**/a/*")
    page.wait_for_selector("#figure .main-svg")
    page.wait_for_selector("#aux .main-svg")  # the per-layer sweep
    title = page.evaluate("document.getElementById('figure').layout.title.text")
    assert title.startswith("Information Bottleneck Attribution, explaining 'positive'")
    assert page.input_value("#target-template") == "This film is {}."  # the reopened form shows its target
    cells = page.evaluate("document.getElementById('figure').data[0].text.flat().filter(Boolean)")
    assert "##able" in cells or "unforgettable" not in cells  # word pieces shown separately
    before = _rendered(page)
    page.check("#view-merge")
    _wait_rerender(page, before)
    merged = page.evaluate("document.getElementById('figure').data[0].text.flat().filter(Boolean)")
    assert "unforgettable" in merged and "[CLS]" not in merged
    screenshot(page, "attribution")
    assert len(page.evaluate("document.getElementById('aux').data[0].y")) == 6
    for name in (
        "gradient_x_input",
        "saliency",
        "lime",
        "value_zeroing_row",
        "attention_rollout_row",
        "alti_row",
        "decompx",
        "attnlrp",
    ):
        page.uncheck(f"#compare-box input[value='{name}']")
    page.click("#compare-button")
    page.wait_for_url("**/compare/*", timeout=120_000)
    page.wait_for_selector("#aux .main-svg")
    assert page.evaluate("document.getElementById('figure').data[0].y") == [
        "iba",
        "integrated_gradients",
        "occlusion",
    ]
    screenshot(page, "compare-attribution")
    assert page.errors == []


def test_degradation_job_from_the_page(server, page, tmp_path):
    """Upload a labelled file, fit a head on it from the page, and test attributions against that head."""
    data = tmp_path / "labelled.tsv"
    rows = [("what a fine film .", 1), ("a dull and tired plot .", 0), ("great acting and a warm story .", 1)]
    rows += [
        ("boring , slow and far too long .", 0),
        ("a delight from start to end .", 1),
        ("i want my money back .", 0),
    ]
    data.write_text("sentence\tlabel\n" + "".join(f"{text}\t{label}\n" for text, label in rows * 3))
    page.goto(server + "/evaluations")
    upload_file(page, "fit_head-data", data)
    page.fill("#fit_head-name", "page-head")
    page.click("form[data-kind='fit_head'] button[type='submit']")
    # the new head appears in the degradation form's target picker without a reload
    page.wait_for_function(
        "[...document.getElementById('eval_degradation-target').options]"
        ".some((option) => option.text.includes('page-head'))",
        timeout=120_000,
    )
    head = page.locator("#eval_degradation-target option", has_text="page-head").get_attribute("value")
    page.select_option("#eval_degradation-target", head)
    page.select_option("#eval_degradation-data", page.input_value("#fit_head-data"))  # the uploaded dataset
    page.fill("#eval_degradation-limit", "2")
    page.uncheck("form[data-kind='eval_degradation'] input[value='lime']")
    page.click("form[data-kind='eval_degradation'] button[type='submit']")
    page.wait_for_function(
        "[...document.querySelectorAll('#jobs-table tbody tr')].some("
        "(row) => row.children[1].textContent === 'eval_degradation' && row.dataset.status === 'done')",
        timeout=120_000,
    )
    # the page switches to the new result by itself; wait until its table (not an earlier one) is shown
    page.wait_for_function("document.querySelector('#evaluation-table thead')?.textContent.includes('AOPC')")
    page.wait_for_selector("#evaluation-figure .main-svg")
    assert page.locator("#evaluation-table tbody tr").count() == 4  # iba, IG, occlusion, random
    assert "AOPC" in page.inner_text("#evaluation-table thead")
    screenshot(page, "evaluations-degradation")
    assert page.errors == []


def _injection_treebank(path: Path) -> Path:
    """The tiny treebank plus a sentence whose word is a script tag (it must be shown, never run)."""
    write_treebank(path)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(
            "# sent_id = inj\n# text = the <script>window.pwned=1</script> cat sat\n"
            "1\tthe\tthe\tDET\t_\t_\t3\tdet\t_\t_\n"
            "2\t<script>window.pwned=1</script>\tx\tX\t_\t_\t3\tdep\t_\t_\n"
            "3\tcat\tcat\tNOUN\t_\t_\t4\tnsubj\t_\t_\n"
            "4\tsat\tsit\tVERB\t_\t_\t0\troot\t_\t_\n\n"
        )
    return path


def test_train_probes_and_draw_a_tree(server, page, tmp_path):
    train = write_treebank(tmp_path / "train.conllu", count=24)
    dev = _injection_treebank(tmp_path / "dev.conllu")
    page.goto(server + "/probes")
    upload_file(page, "train_probes-treebank", train)
    upload_file(page, "train_probes-dev", dev)
    page.fill("#train_probes-rank", "16")
    page.fill("#train_probes-max_epochs", "3")
    page.uncheck("input[name='topological']")
    page.click("#train-form button[type='submit']")
    page.wait_for_selector("#jobs-table tr[data-status='done']", timeout=180_000)
    page.wait_for_selector("#probe-metrics .main-svg")
    assert "right-branching chain" in page.inner_text("#probe-table")
    assert page.locator("#probe-table tbody tr").count() == 8  # 7 layers + the chain
    assert "±" in page.inner_text("#probe-table tbody tr >> nth=0")  # mean ± spread over the 3 seeds
    page.wait_for_selector("#probe-check-selectivity .main-svg")
    seeds = page.inner_text("#probe-check-seeds")
    assert "mean over 3 seeds (0, 1, 2)" in seeds
    selectivity = page.inner_text("#probe-check-selectivity")
    assert "Selectivity = real metric − control metric" in selectivity
    assert page.locator("#probe-check-selectivity tbody tr").count() == 7
    screenshot(page, "probes")
    page.locator("#probe-check-selectivity").screenshot(path=str(SCREENS / "probe-selectivity.png"))
    page.reload()  # the dev sentences are offered once a probe set exists
    page.wait_for_selector("#tree-form:not([hidden])")
    page.click("button.example >> nth=0")
    page.fill("#tree-layer", "3")
    page.click("#tree-form button[type='submit']")
    page.wait_for_url("**/a/*")
    page.wait_for_selector("#figure .main-svg")
    _wait_for_title(page, "Structural probe tree, layer 3, UUAS")
    names = page.evaluate("document.getElementById('figure').data.map((trace) => trace.name)")
    assert "gold tree" in names
    page.eval_on_selector("#view-layer", "(el) => { el.value = '5'; el.dispatchEvent(new Event('change')); }")
    _wait_for_title(page, "layer 5")
    page.wait_for_selector("#strip .main-svg")
    page.wait_for_selector("#aux .main-svg")
    screenshot(page, "probe-tree")
    # the injected dev sentence: shown as text on the page and in the tree, never executed
    page.goto(server + "/probes")
    page.wait_for_selector("#tree-form:not([hidden])")
    page.fill("#tree-text", "the <script>window.pwned=1</script> cat sat")
    page.click("#tree-form button[type='submit']")
    page.wait_for_url("**/a/*")
    page.wait_for_selector("#figure .main-svg")
    assert "<script>" in page.inner_text("#figure")
    assert page.evaluate("window.pwned") is None
    assert page.errors == []


@pytest.fixture(scope="module")
def indexing_server(tmp_path_factory):
    """A fresh server that indexes and describes the two shipped corpora on its own, as on first serve."""
    with running_server(sqlite_url(tmp_path_factory.mktemp("neurons")), index_sample=True) as base:
        yield base


def _assert_cross_corpus_summary(page) -> None:
    """The default run describes two corpora: per row (neurons, random directions) the consistent,
    inconsistent, corpus-specific and undescribed shares are numbers that add up to 100 %, and the mean
    consistency is a number."""
    heads = page.eval_on_selector_all("#illusion-table thead th", "(ths) => ths.map((th) => th.textContent)")
    assert "described on sample" in heads and "described on wikipedia" in heads
    labels = [heads.index(name) for name in ("consistent", "inconsistent", "corpus-specific", "undescribed")]
    rows = page.eval_on_selector_all(
        "#illusion-table tbody tr", "(trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent))"
    )
    assert len(rows) == 2
    for cells in rows:
        shares = [float(cells[i].removesuffix(" %")) for i in labels]
        assert abs(sum(shares) - 100.0) < 0.5, cells  # each share rounded to 0.1 %
        assert shares[0] + shares[1] > 0, cells  # some units described on both corpora
        assert 0.0 <= float(cells[heads.index("mean consistency")]) <= 1.0, cells  # not "–"
    sentence = page.inner_text("#illusion-sentence")
    assert sentence.startswith("Neurons:") and "random directions" in sentence and "Only" not in sentence


def test_neuron_browser_neuron_page_and_active_neurons(indexing_server, page):
    page.goto(indexing_server + "/neurons")
    page.wait_for_selector("#illusion-table", timeout=600_000)  # filled in once both corpora are described
    assert "random directions" in page.inner_text("#illusion-table")
    _assert_cross_corpus_summary(page)
    page.wait_for_selector("#neuron-table tbody tr")
    assert page.locator("#neuron-table tbody tr").count() == 50
    assert "of 9216 neurons" in page.inner_text("#neuron-status")
    screenshot(page, "neurons")
    page.select_option("#neuron-layer", "3")
    page.wait_for_function(
        "[...document.querySelectorAll('#neuron-table tbody tr')]"
        ".every((r) => r.dataset.neuron.startsWith('3/'))"
    )
    page.click("#next-page")
    page.wait_for_function("document.getElementById('neuron-status').textContent.startsWith('51')")
    page.fill("#neuron-q", "<script>window.pwned=1</script>")
    page.click("#neuron-filter button[type='submit']")
    page.wait_for_function("document.getElementById('neuron-status').textContent === 'no neurons'")
    page.fill("#neuron-q", "")
    page.select_option("#neuron-layer", "")
    page.click("#neuron-filter button[type='submit']")
    page.wait_for_selector("#neuron-table tbody tr")
    page.click("#neuron-table tbody tr >> nth=0 >> a")
    page.wait_for_url("**/neurons/*/*")
    page.wait_for_selector(".corpus-column .exemplars li .tok.top")
    page.wait_for_selector(".corpus-column .main-svg")
    columns = page.eval_on_selector_all(".corpus-column", "(cs) => cs.map((c) => c.dataset.corpus)")
    assert columns == ["sample", "wikipedia"]  # the described corpora, in the run's order
    # the top neuron has a significant descriptor on at least one of the two corpora
    assert "significance" in page.inner_text(".corpus-column table.descriptors caption >> nth=0")
    screenshot(page, "neuron")
    page.goto(indexing_server + "/")
    page.fill("#text", "The council voted on Tuesday to open 3 new libraries.")
    page.click("#analyze-button")
    page.wait_for_url("**/a/*")
    page.wait_for_selector("#active-neurons li a")
    assert page.locator("#active-neurons li").count() == 12
    assert page.locator("#active-neurons li code.token").count() == 12  # the token in code, not in quotes
    page.wait_for_function("!document.getElementById('active-features').textContent.includes('Loading')")
    assert "No dictionary for this model yet" in page.inner_text("#active-features")  # none trained yet
    screenshot(page, "active-neurons")
    assert page.evaluate("window.pwned") is None
    assert page.errors == []


def _column_keys(page) -> list[str]:
    return page.eval_on_selector_all("#neuron-table thead th", "(ths) => ths.map((th) => th.dataset.column)")


def _wait_status(page, prefix: str) -> None:
    try:
        page.wait_for_function(
            "(p) => document.getElementById('neuron-status').textContent.startsWith(p)", arg=prefix
        )
    except Exception as error:  # say what the page shows instead
        shown = page.inner_text("#neuron-status"), page.inner_text("#neuron-error")
        raise AssertionError(f"waited for {prefix!r}; the page shows {shown}") from error


def test_neuron_browser_columns_and_url_state(indexing_server, page):
    page.goto(indexing_server + "/neurons")
    page.wait_for_selector("#illusion-table", timeout=600_000)
    page.wait_for_selector("#neuron-table tbody tr")
    assert "max" not in _column_keys(page) and "match" not in _column_keys(page)  # described view
    assert page.locator("#illusion-table th", has_text="mean consistency").count() == 1
    assert page.inner_text("#illusion-sentence").strip()
    page.select_option("#neuron-layer", "3")
    page.wait_for_function(
        "[...document.querySelectorAll('#neuron-table tbody tr')]"
        ".every((r) => r.dataset.neuron.startsWith('3/'))"
    )
    page.select_option("#neuron-sort", "consistency")
    page.wait_for_function("location.search.includes('sort=consistency')")
    page.click("#next-page")
    _wait_status(page, "51")
    assert page.url.endswith("/neurons?layer=3&sort=consistency&offset=50")
    page.reload()
    _wait_status(page, "51")
    assert page.input_value("#neuron-layer") == "3" and page.input_value("#neuron-sort") == "consistency"
    assert page.evaluate(
        "[...document.querySelectorAll('#neuron-table tbody tr')]"
        ".every((r) => r.dataset.neuron.startsWith('3/'))"
    )
    page.set_viewport_size({"width": 480, "height": 900})  # a phone: the page itself never scrolls sideways
    assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth + 1")
    assert page.errors == []


def test_neuron_browser_search_shows_the_match(indexing_server, page):
    page.goto(indexing_server + "/neurons")
    page.wait_for_selector("#illusion-table", timeout=600_000)
    page.wait_for_selector("#neuron-table tbody tr td[data-column='best descriptors']")
    cell = page.inner_text("#neuron-table tbody tr >> nth=0 >> td[data-column='best descriptors']")
    descriptor = cell.split(",")[0].strip()
    page.fill("#neuron-q", descriptor)
    page.click("#neuron-filter button[type='submit']")
    page.wait_for_selector("#neuron-table thead th[data-column='match']")
    assert "q=" in page.url
    page.reload()
    page.wait_for_selector("#neuron-table tbody tr td[data-column='match']")
    assert page.input_value("#neuron-q") == descriptor
    matches = page.eval_on_selector_all(
        "#neuron-table tbody td[data-column='match']", "(cells) => cells.map((c) => c.textContent)"
    )
    assert matches and all(descriptor.lower() in text.lower() for text in matches), matches[:3]
    assert all(re.search(r" on (sample|wikipedia)$", text) for text in matches), matches[:3]  # score, corpus
    assert page.errors == []


OVERFLOWING_ROWS = """() => [...document.querySelectorAll('.corpus-column .exemplars li, .corpus-column')]
    .filter((node) => node.scrollWidth > node.clientWidth + 1).length"""


@pytest.mark.parametrize("width", [1280, 480])
def test_neuron_page_exemplars_wrap_inside_their_column(indexing_server, page, width):
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(indexing_server + "/neurons")
    page.wait_for_selector("#illusion-table", timeout=600_000)
    page.wait_for_selector("#neuron-table tbody tr a")
    page.click("#neuron-table tbody tr >> nth=0 >> a")
    page.wait_for_selector(".corpus-column .exemplars li .tok.top")
    assert page.evaluate(OVERFLOWING_ROWS) == 0
    card = page.evaluate("document.getElementById('neuron-page').getBoundingClientRect().right")
    right = page.eval_on_selector_all(
        ".corpus-column .exemplars li span",
        "(spans) => Math.max(...spans.map((s) => s.getBoundingClientRect().right))",
    )
    assert right <= card + 1
    # [CLS] sits on the first line of its sentence, muted, not on a line of its own
    same_line = page.evaluate(
        "() => [...document.querySelectorAll('.exemplars li')].every((li) => {"
        " const [special, first] = li.querySelectorAll('.tok');"
        " return !first || !special.classList.contains('special')"
        " || Math.abs(special.getBoundingClientRect().bottom - first.getBoundingClientRect().bottom) < 4; })"
    )
    assert same_line
    assert page.errors == []


def test_corpus_outside_the_description_run(indexing_server, page, tmp_path):
    corpus = tmp_path / "tiny.txt"
    corpus.write_text("The cat sat on the mat.\nPrices rose by 3 percent on Monday.\nShe scored twice.\n")
    page.goto(indexing_server + "/neurons")
    page.wait_for_selector("#illusion-table", timeout=600_000)
    params = {"corpora": [{"name": "tiny", "path": str(corpus)}], "describe": False}
    answer = page.request.post(
        indexing_server + "/api/jobs", data={"kind": "index_neurons", "params": params}
    )
    assert answer.status == 202, answer.text()
    job = answer.json()["id"]
    deadline = time.monotonic() + 180
    while page.request.get(f"{indexing_server}/api/jobs/{job}").json()["status"] != "done":
        assert time.monotonic() < deadline, page.request.get(f"{indexing_server}/api/jobs/{job}").text()
        time.sleep(0.5)
    page.goto(indexing_server + "/neurons/2/7")
    page.wait_for_selector(".corpus-column[data-corpus='tiny'] .exemplars li")
    columns = page.eval_on_selector_all(".corpus-column", "(cs) => cs.map((c) => c.dataset.corpus)")
    assert columns == ["sample", "wikipedia", "tiny"]  # the described corpora first
    tiny = page.inner_text(".corpus-column[data-corpus='tiny']")
    assert "Not part of the latest description run" in tiny and "stability not computed" in tiny
    assert "No significant descriptor" not in tiny
    assert page.inner_text(".corpus-column[data-corpus='tiny'] .corpus-warning").strip()  # 3 sentences < k
    assert page.evaluate(OVERFLOWING_ROWS) == 0
    assert page.errors == []


def _wait_job_done(page, base: str, kind: str, timeout: float = 600) -> dict:
    """The newest job of ``kind`` once it has finished (fails the test if it failed)."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = [job for job in page.request.get(f"{base}/api/jobs").json() if job["kind"] == kind]
        if jobs and jobs[0]["status"] in ("done", "failed", "cancelled"):
            assert jobs[0]["status"] == "done", jobs[0]
            return jobs[0]
        assert time.monotonic() < deadline, jobs
        time.sleep(1)


def test_dictionary_trained_in_the_page_then_features_browsed(indexing_server, page):
    """Train a dictionary through the Neurons page's form; its features are indexed and described after it;
    browse them beside neurons and random directions, open a feature, see them on a sentence; links keep
    the basis."""
    page.goto(indexing_server + "/neurons")
    page.wait_for_selector("#illusion-table", timeout=600_000)
    page.click("#dictionaries summary")
    for field, value in {
        "corpora": "sample, wikipedia",
        "layer": "2",
        "width_multiplier": "2",
        "k": "8",
    }.items():
        page.fill(f"#train_dictionary-{field}", value)
    page.fill("#train_dictionary-steps", "40")
    page.fill("#train_dictionary-batch_size", "256")
    page.click("#dictionary-form button[type='submit']")
    page.wait_for_selector("#jobs-table tbody tr td:has-text('train_dictionary')")
    job = _wait_job_done(page, indexing_server, "train_dictionary")
    dictionary = job["result_id"]
    page.reload()
    basis = f"features:{dictionary}"
    page.wait_for_selector(f"#neuron-basis option[value='{basis}']", state="attached")
    page.select_option("#neuron-basis", basis)
    _wait_status(page, "1–50 of 768 features")
    assert f"basis=features%3A{dictionary}" in page.url
    rows = page.eval_on_selector_all(
        "#illusion-table tbody tr td:first-child", "(tds) => tds.map((td) => td.firstChild.textContent)"
    )
    assert [row.split(" (")[0].split("random directions, ")[-1] for row in rows] == [
        "neurons",
        "SAE features",
        "FFN space",
        "L2 residual space",
    ], rows
    sentences = page.inner_text("#illusion-sentence")
    assert sentences.startswith("Neurons:") and "Features:" in sentences
    units = page.eval_on_selector_all("#neuron-table tbody tr", "(trs) => trs.map((tr) => tr.dataset.unit)")
    assert all(unit.startswith("L2 · f") for unit in units)
    screenshot(page, "features")
    shared = page.url
    page.goto(shared)  # a shared link reopens the same basis
    _wait_status(page, "1–50 of 768 features")
    assert page.input_value("#neuron-basis") == basis
    page.select_option("#neuron-basis", f"random:{basis}")
    _wait_status(page, "1–50 of 256 random directions")
    assert page.locator("#neuron-table tbody tr a").count() == 0  # random directions have no page
    page.select_option("#neuron-basis", basis)
    _wait_status(page, "1–50 of 768 features")
    page.click("#neuron-table tbody tr >> nth=0 >> a")
    page.wait_for_url(f"**/features/{dictionary}/*")
    page.wait_for_selector(".corpus-column .exemplars li .tok.top")
    page.wait_for_selector("#feature-effects .effect-list li a[href^='/neurons/']")
    assert page.locator("#feature-effects .effect-list >> nth=1").locator("li code").count() == 10
    assert page.inner_text("#probe-effect").startswith("Probe effect")
    columns = page.eval_on_selector_all(".corpus-column", "(cs) => cs.map((c) => c.dataset.corpus)")
    assert columns == ["sample", "wikipedia"]
    screenshot(page, "feature")
    page.goto(indexing_server + "/")
    page.fill("#text", "The council voted on Tuesday to open 3 new libraries.")
    page.click("#analyze-button")
    page.wait_for_url("**/a/*")
    page.wait_for_selector("#active-features li a")
    assert (
        page.locator("#active-features li a")
        .first.get_attribute("href")
        .startswith(f"/features/{dictionary}/")
    )
    page.wait_for_function("(d) => location.search.includes('dictionary=' + d)", arg=dictionary)
    page.click("#share-button")
    page.wait_for_function("document.getElementById('share-status').dataset.link !== undefined")
    assert f"dictionary={dictionary}" in page.eval_on_selector("#share-status", "(s) => s.dataset.link")
    assert page.errors == []


@pytest.mark.parametrize("path", ["/about", "/neurons", "/probes", "/evaluations"])
def test_every_page_renders_with_navigation(server, page, path):
    page.goto(server + path)
    assert page.locator("nav a").count() == 5
    assert (
        page.locator("nav a.active").inner_text() == page.locator("h1").inner_text().split()[-1]
        or path == "/about"
    )
    if path == "/about":  # the other pages are shown with data by the tests above
        screenshot(page, "about")
    assert page.errors == []


def test_broken_uploads_say_what_to_fix_and_datasets_can_be_deleted(server, page, tmp_path):
    """A broken file is refused at once with the line to fix and stored nowhere; a good one is listed,
    can be picked by another form, and deleted from the list."""
    two_roots = tmp_path / "two_roots.conllu"
    two_roots.write_text(
        "1\tthe\tthe\tDET\t_\t_\t2\tdet\t_\t_\n2\tcat\tcat\tNOUN\t_\t_\t0\troot\t_\t_\n"
        "3\tsat\tsit\tVERB\t_\t_\t0\troot\t_\t_\n\n"
    )
    page.goto(server + "/probes")
    page.set_input_files("#train_probes-treebank-upload", str(two_roots))
    status = "#train_probes-treebank-upload-status.error"
    page.wait_for_selector(status)
    assert "line 3" in page.inner_text(status) and "root" in page.inner_text(status)
    assert page.input_value("#train_probes-treebank") == ""
    utf16 = tmp_path / "utf16.txt"
    utf16.write_bytes("one sentence\n".encode("utf-16"))
    page.goto(server + "/neurons")
    page.locator("summary", has_text="Index corpora").click()
    page.set_input_files("#index_neurons-corpora-upload", str(utf16))
    page.wait_for_selector("#index_neurons-corpora-upload-status.error")
    assert "UTF-16" in page.inner_text("#index_neurons-corpora-upload-status")
    name = "markup <img src=x onerror=window.pwned=1> corpus"
    good = tmp_path / f"{name}.txt"
    good.write_text("a first sentence .\na second one .\n")
    page.set_input_files("#index_neurons-corpora-upload", str(good))
    box = "#index_neurons-corpora-datasets input:checked"
    page.wait_for_selector(box)  # the upload is ticked as a corpus of the index
    label = page.inner_text("#index_neurons-corpora-datasets")
    assert f"{name} (texts, 2 rows)" in label  # shown as text, never as markup
    assert page.evaluate("window.pwned") is None
    page.click("#datasets summary")
    row = page.locator("#datasets-table tr", has_text=name)
    row.locator("button.delete-dataset").click()
    page.wait_for_function("!document.querySelector('#datasets-table tbody').textContent.includes('markup')")
    page.wait_for_function(  # gone from the corpora picker too (other tests' datasets stay)
        "!document.getElementById('index_neurons-corpora-datasets').textContent.includes('markup')"
    )
    assert [error for error in page.errors if "status of 422" not in error] == []
