"""The admin token in a real browser: jobs refused without it, started with it, kept for the tab only."""

from __future__ import annotations

import pytest

from tests.browser_forms import server_file
from tests.conftest import sqlite_url
from tests.server import running_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TOKEN = "team-s3cret"


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BERTSCOPE_ADMIN_TOKEN", TOKEN)
        with running_server(sqlite_url(tmp_path_factory.mktemp("admin"))) as base:
            yield base


def _start(tab, data) -> None:
    server_file(tab, "eval_mixing-data", data)
    tab.fill("#eval_mixing-limit", "2")
    tab.click("#eval-start")


def test_jobs_need_the_admin_token_typed_in_the_top_bar(guarded_server, page, tmp_path):
    data = tmp_path / "sentences.txt"
    data.write_text("a fine film .\nnot worth the ticket .\n")
    page.goto(guarded_server + "/evaluations")
    assert page.locator("#admin-token").is_visible()
    _start(page, data)
    page.wait_for_selector("#eval-error:not([hidden])")
    assert "admin token" in page.inner_text("#eval-error")
    page.fill("#admin-token", "wrong")
    _start(page, data)
    page.wait_for_function("document.getElementById('eval-error').textContent.includes('wrong')")
    assert page.locator("#jobs-table tbody tr").count() == 0
    page.fill("#admin-token", TOKEN)
    _start(page, data)
    page.wait_for_selector("#jobs-table tr[data-status='done']", timeout=120_000)
    page.reload()
    assert page.input_value("#admin-token") == TOKEN  # kept for this tab
    assert TOKEN not in page.content().replace(f'value="{TOKEN}"', "")  # never rendered by the server
    other_tab = page.context.browser.new_context().new_page()
    other_tab.goto(guarded_server + "/evaluations")
    assert other_tab.input_value("#admin-token") == ""  # a new session starts without it
    other_tab.context.close()
    unexpected = [e for e in page.errors if "Failed to load resource" not in e]
    assert unexpected == []
