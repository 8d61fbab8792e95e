"""Run the real ``bertscope serve`` in a subprocess on a free loopback port (for browser tests)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A started server: its base URL and its process (tests may kill it)."""

    base: str
    process: subprocess.Popen


@contextmanager
def running_server(
    database_url: str,
    model: str = "embedded",
    timeout: float = 180.0,
    index_sample: bool = False,
    train_probes: bool = False,
) -> Iterator[str]:
    """Start ``python -m app.cli serve`` and yield its base URL once /api/health answers ok."""
    with started_server(database_url, model, timeout, index_sample, train_probes) as server:
        yield server.base


@contextmanager
def started_server(
    database_url: str,
    model: str = "embedded",
    timeout: float = 180.0,
    index_sample: bool = False,
    train_probes: bool = False,
) -> Iterator[Server]:
    """Start ``python -m app.cli serve``; yield it once /api/health answers ok; stop it (if still alive)."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "app.cli",
        "serve",
        "--model",
        model,
        "--device",
        "cpu",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--database-url",
        database_url,
    ]
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "BERTSCOPE_INDEX_SAMPLE_ON_START": str(index_sample).lower(),
        "BERTSCOPE_TRAIN_PROBES_ON_START": str(train_probes).lower(),
    }
    log = open(Path(database_url.removeprefix("sqlite:///")).with_suffix(".log"), "w")
    process = subprocess.Popen(
        command, cwd=Path(__file__).resolve().parents[1], env=env, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}; see {log.name}")
            try:
                with urllib.request.urlopen(f"{base}/api/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"server did not become healthy in {timeout}s; see {log.name}")
            time.sleep(0.3)
        yield Server(base, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
