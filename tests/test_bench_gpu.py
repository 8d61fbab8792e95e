"""bench/gpu.py, the one GPU check, must skip cleanly where there is no GPU (as on CI and this machine)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_gpu_check_skips_cleanly_without_a_gpu():
    report = ROOT / "docs" / "benchmarks" / "gpu.md"
    before = report.read_bytes() if report.exists() else None
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(
        [sys.executable, "-m", "bench.gpu"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "no CUDA device here; nothing measured, nothing written" in result.stdout
    assert (report.read_bytes() if report.exists() else None) == before
