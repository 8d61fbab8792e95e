"""Neuron browser speed on a BERT-base-sized index (12 layers x 3,072 units = 36,864 neurons).

    python -m bench.neuron_browser [--sentences 400] [--repeats 20] [--keep DIR]

Builds a randomly initialised BERT-base-sized checkpoint (the embedded model's tokenizer, so the vocabulary is
real), starts ``bertscope serve`` on it, indexes and describes the shipped sample corpus through the
``index_neurons`` job (offline describer), then times what the neuron browser asks for: the first page, a
layer filter, sort by consistency, a descriptor search, a deep page, one neuron's page data (with the live
forward pass that shades its exemplars), and the HTML pages. Medians over ``--repeats`` requests each.
Random weights describe nothing in particular; the point is the size of the tables, not the descriptions.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from transformers import AutoTokenizer, BertConfig, BertModel

from app.data import SAMPLE_CORPUS
from app.modeling.loading import embedded_model_path
from bench.load import start_server
from bench.report import Table, write_report


def make_checkpoint(directory: Path) -> Path:
    """Random BERT-base-sized weights with the embedded (uncased WordPiece) tokenizer."""
    tokenizer = AutoTokenizer.from_pretrained(str(embedded_model_path()))
    config = BertConfig(vocab_size=tokenizer.vocab_size, attn_implementation="eager")
    model = BertModel(config)
    model.config.architectures = ["BertModel"]
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def median_ms(http: httpx.Client, url: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = http.get(url)
        times.append(time.perf_counter() - started)
        response.raise_for_status()
    return statistics.median(times) * 1000


def browser_timings(base: str, term: str, item: dict, repeats: int) -> Table | None:
    """What a user waits for in Chromium: the table filled, a search answered, a neuron page drawn."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("(playwright not installed: no browser timings)")
        return None
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
    steps: dict[str, list[float]] = {
        "/neurons: table filled": [],
        "search answered": [],
        "neuron page drawn": [],
    }
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=args, headless=True)
        page = browser.new_page()
        for _ in range(max(3, repeats // 4)):
            started = time.perf_counter()
            page.goto(f"{base}/neurons")
            page.wait_for_selector("#neuron-table tbody tr")
            steps["/neurons: table filled"].append(time.perf_counter() - started)
            before = page.inner_text("#neuron-status")
            started = time.perf_counter()
            page.fill("#neuron-q", term)
            page.click("#neuron-filter button[type='submit']")
            page.wait_for_function(f"document.getElementById('neuron-status').textContent !== {before!r}")
            steps["search answered"].append(time.perf_counter() - started)
            started = time.perf_counter()
            page.goto(f"{base}/neurons/{item['layer']}/{item['unit']}")
            page.wait_for_selector(".corpus-column .main-svg")
            steps["neuron page drawn"].append(time.perf_counter() - started)
        browser.close()
    rows = [[name, f"{statistics.median(times) * 1000:.0f}"] for name, times in steps.items()]
    table = Table(["in Chromium", "median ms"], rows, align_right=[False, True])
    print(table.markdown())
    return table


def write_docs_tables(args, neurons: int, indexing: float, tables: list[Table]) -> None:
    """The docs' tables, with what was indexed and how long that took."""
    write_report(
        "neuron_browser",
        f"Random BERT-base weights ({neurons:,} neurons), the sample corpus ({args.sentences} sentences) "
        f"indexed and described through the `index_neurons` job in {indexing:.0f} s; requests: median of "
        f"{args.repeats}, SQLite store; Chromium: median of {max(3, args.repeats // 4)}.",
        tables,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sentences", type=int, default=405, help="sentences of the sample corpus to index")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        checkpoint = make_checkpoint(directory / "bert-base-random")
        process, base = start_server(directory, batching=True, device="cpu", model=str(checkpoint))
        try:
            with httpx.Client(base_url=base, timeout=600) as http:
                started = time.perf_counter()
                corpus = {"name": "sample", "path": str(SAMPLE_CORPUS), "limit": args.sentences}
                job = http.post("/api/jobs", json={"kind": "index_neurons", "params": {"corpora": [corpus]}})
                job_id = job.json()["id"]
                while (state := http.get(f"/api/jobs/{job_id}").json())["status"] in ("queued", "running"):
                    time.sleep(2)
                if state["status"] != "done":
                    raise SystemExit(f"index job {state['status']}: {state['message']}")
                indexing = time.perf_counter() - started
                print(f"index + describe: {indexing:.0f} s")
                first = http.get("/api/neurons", params={"limit": 1}).json()
                item = first["items"][0]
                term = next(iter(item["descriptors"].values()))[0]["descriptor"].split()[0]
                print(f"neurons: {first['total']}; search term: {term!r}")
                routes = {
                    "first page (50, by score)": "/api/neurons?limit=50",
                    "layer 7": "/api/neurons?layer=7&limit=50",
                    "sort by consistency": "/api/neurons?sort=consistency&limit=50",
                    f"search {term!r}": f"/api/neurons?q={term}&limit=50",
                    "page at offset 30,000": "/api/neurons?offset=30000&limit=50",
                    "one neuron (with live shading)": f"/api/neurons/{item['layer']}/{item['unit']}",
                    "page /neurons (HTML)": "/neurons",
                    "page /neurons/L/U (HTML)": f"/neurons/{item['layer']}/{item['unit']}",
                }
                rows = [[name, f"{median_ms(http, url, args.repeats):.1f}"] for name, url in routes.items()]
                tables = [Table(["request", "median ms"], rows, align_right=[False, True])]
                print(tables[0].markdown())
                browser = browser_timings(base, term, item, args.repeats)
                tables += [browser] if browser else []
                write_docs_tables(args, first["total"], indexing, tables)
        finally:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
