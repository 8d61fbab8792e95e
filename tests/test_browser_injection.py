"""Script injection via corpus lines and generated descriptors: shown as text in a real browser, never run.

A corpus whose lines carry markup is indexed by a real ``bertscope serve``; its describer is a fake
OpenAI-compatible server that answers with markup as descriptors. The neuron browser and a neuron page must
show all of it as text.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.conftest import sqlite_url
from tests.server import running_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

IMG = "<img src=x onerror=window.pwned=3>"
SCRIPT = "<script>window.pwned=4</script>"
INJECTED = [
    "Officials said <script>window.pwned=1</script> the vote was close.",
    '<img src=x onerror="window.pwned=2"> The river flooded the lower town.',
    "The mayor wrote <script>alert(1)</script> in her letter to the council.",
    'A reader pasted <img src=x onerror="alert(2)"> into the comment box.',
    "Nobody noticed the <script>document.title='x'</script> tag in the post.",
]
PLAIN = [
    "The train left the station a few minutes late.",
    "Rain fell across the valley for most of the week.",
    "She cooked rice with garlic and a little butter.",
    "The team scored twice in the second half.",
    "Prices at the market rose again in March.",
    "He read the whole novel on a long flight.",
    "The children planted tomatoes behind the school.",
    "A small boat drifted slowly toward the harbour.",
]


class MarkupDescriber(BaseHTTPRequestHandler):
    """OpenAI-compatible chat endpoint: markup descriptors for lines with markup, a topic for the rest."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        answer = {}
        for number, sentence in re.findall(r"^(\d+)\. (.*)$", body["messages"][-1]["content"], re.M):
            answer[number] = [IMG, SCRIPT] if "<" in sentence else ["everyday life"]
        reply = json.dumps({"choices": [{"message": {"role": "assistant", "content": json.dumps(answer)}}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply.encode())))
        self.end_headers()
        self.wfile.write(reply.encode())

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def injected_server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("injection")
    corpus = directory / "markup.txt"
    corpus.write_text("\n".join(INJECTED * 4 + PLAIN * 3) + "\n", encoding="utf-8")
    describer = ThreadingHTTPServer(("127.0.0.1", 0), MarkupDescriber)
    threading.Thread(target=describer.serve_forever, daemon=True).start()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("BERTSCOPE_DESCRIBER_URL", f"http://127.0.0.1:{describer.server_address[1]}/v1")
            patch.setenv("BERTSCOPE_DESCRIBER_MODEL", "markup")
            with running_server(sqlite_url(directory)) as base:
                job = httpx.post(
                    f"{base}/api/jobs",
                    json={
                        "kind": "index_neurons",
                        "params": {"corpora": [{"name": "markup", "path": str(corpus)}], "directions": 8},
                    },
                ).json()
                deadline = time.monotonic() + 300
                while (state := httpx.get(f"{base}/api/jobs/{job['id']}").json())["status"] in (
                    "queued",
                    "running",
                ):
                    assert time.monotonic() < deadline, state
                    time.sleep(1)
                assert state["status"] == "done", state
                yield base
    finally:
        describer.shutdown()
        describer.server_close()


def test_markup_in_descriptors_and_corpus_lines_stays_text(injected_server, page):
    found = httpx.get(f"{injected_server}/api/neurons", params={"q": "onerror", "limit": 5}).json()
    assert found["total"] > 0, "no neuron was tied to the markup descriptor"
    page.goto(injected_server + "/neurons")
    page.fill("#neuron-q", "onerror")
    page.click("#neuron-filter button[type='submit']")
    page.wait_for_selector("#neuron-table tbody tr")
    # descriptors lose edge punctuation when normalised; the markup inside stays, as text
    table = page.inner_text("#neuron-table")
    assert "onerror=window.pwned=3" in table and "</script" in table
    page.click("#neuron-table tbody tr >> nth=0 >> a")
    page.wait_for_url("**/neurons/*/*")
    page.wait_for_selector(".corpus-column .exemplars li")
    text = page.inner_text("main")
    assert "onerror=window.pwned=3" in text and "</script" in text  # the descriptors
    assert "script" in page.inner_text(".corpus-column .exemplars")  # the corpus lines, as tokens
    assert page.locator("main img").count() == 0
    assert page.evaluate("window.pwned") is None
    assert page.errors == []
