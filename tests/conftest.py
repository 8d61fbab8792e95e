"""Shared fixtures: tiny random models, the embedded model, an app with its own settings."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

from app.main import create_app
from app.modeling.loading import EMBEDDED, LoadedModel, load_model
from app.settings import Settings
from tests.tiny import tiny_loaded

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--threads",
        type=int,
        default=None,
        help="run torch on N intra-op threads (torch.set_num_threads). Float32 results depend on the "
        "thread count and the CPU's kernels: run the numeric tests with --threads 1 and 2, and with "
        "ATEN_CPU_CAPABILITY=default / avx2 in the environment, to see a machine-dependent comparison "
        "(tests/numerics.py explains the tolerances that hold on any machine)",
    )


def pytest_configure(config: pytest.Config) -> None:
    threads = config.getoption("--threads")
    if threads is not None:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tiny")


@pytest.fixture(scope="session")
def tiny_bert(tiny_dir: Path) -> LoadedModel:
    return tiny_loaded(tiny_dir, "bert")


@pytest.fixture(scope="session")
def embedded() -> LoadedModel:
    """The embedded all-MiniLM-L6-v2, loaded once per test session from the installed package."""
    return load_model(EMBEDDED, device="cpu")


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'store.db'}"


def make_settings(directory: Path, **overrides: object) -> Settings:
    values = {
        "database_url": sqlite_url(directory),
        "model": "in-process",
        "device": "cpu",
        "index_sample_on_start": False,
        "train_probes_on_start": False,
        "dataset_cache_dir": directory / "dataset-files",
        "cache_dir": directory / "cache",
        "models_dir": directory / "models",
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
def client(tmp_path: Path, tiny_bert: LoadedModel) -> Iterator[TestClient]:
    """The real app (middleware, routes, pages, store) on the tiny BERT and a fresh SQLite file."""
    app = create_app(make_settings(tmp_path), tiny_bert)
    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        yield test_client


def postgres_url() -> str | None:
    """PostgreSQL test server URL; CI must provide one (a skip there would hide a broken store)."""
    url = os.environ.get("BERTSCOPE_TEST_POSTGRES_URL")
    if url is None and os.environ.get("CI"):
        pytest.fail("CI=true but BERTSCOPE_TEST_POSTGRES_URL is not set: .ci/run must start PostgreSQL")
    return url


@pytest.fixture
def pg_url() -> Iterator[URL]:
    """A fresh PostgreSQL database of its own, dropped afterwards: its schema is exactly what the
    migrations make, and start-up work does not touch other tests' rows."""
    url = postgres_url()
    if url is None:
        pytest.skip("set BERTSCOPE_TEST_POSTGRES_URL to a PostgreSQL database to run this test")
    base = make_url(url)
    name = f"bertscope_test_{secrets.token_hex(4)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright (never a downloaded browser)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (dev extra) is not installed")
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.errors = errors
    yield page
    context.close()
