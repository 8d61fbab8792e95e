"""Clients that go away mid-request: the server keeps serving, and finished work is kept (a later hit)."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlparse

import httpx
import pytest

from tests.conftest import sqlite_url
from tests.server import running_server

pytestmark = pytest.mark.slow

SLOW_REQUEST = {
    "method": "integrated_gradients",
    "text": "The committee postponed the decision until the spring meeting of the board.",
    "params": {"steps": 300},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(sqlite_url(tmp_path_factory.mktemp("disconnect"))) as base:
        yield base


def test_client_gone_while_the_model_works(server):
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{server}/api/analyses", json=SLOW_REQUEST, timeout=httpx.Timeout(10, read=0.3))
    assert httpx.get(f"{server}/api/health", timeout=10).status_code == 200
    quick = httpx.post(
        f"{server}/api/analyses", json={"method": "attention", "text": "Still here?"}, timeout=60
    )
    assert quick.status_code == 201
    deadline = time.monotonic() + 120
    while True:  # the abandoned analysis finished and was stored: asking again is a cache hit
        again = httpx.post(f"{server}/api/analyses", json=SLOW_REQUEST, timeout=120).json()
        if again["cached"] or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert again["cached"] is True


def test_client_gone_while_sending_the_body(server):
    url = urlparse(server)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/analyses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 5000\r\n\r\n{"method": "attention", "te'
        )
    assert httpx.get(f"{server}/api/health", timeout=10).status_code == 200
    ok = httpx.post(
        f"{server}/api/analyses", json={"method": "attention", "text": "After a cut."}, timeout=60
    )
    assert ok.status_code == 201
