"""Benchmark tables for the docs: each script in ``bench/`` writes its table to ``docs/benchmarks/<name>.md``.

The docs include these files (``docs/benchmarks.md``, via ``--8<--``), so the published figures are always
those of the last run, with the machine, date and command that produced them; nobody copies numbers by hand.

    write_report("iba", "20 sentences of SST-2 dev ...", [Table(["implementation", "ms"], rows)])
"""

from __future__ import annotations

import datetime
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

REPORTS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"


@dataclass
class Table:
    """A markdown table: header, body rows (any values, shown with ``str``) and an optional caption."""

    header: list[str]
    rows: list[list[object]]
    caption: str = ""
    align_right: list[bool] = field(default_factory=list)

    def markdown(self) -> str:
        """The table as GitHub/Python-Markdown pipe table (numbers right-aligned when asked)."""
        rules = [
            "---:" if i < len(self.align_right) and self.align_right[i] else "---"
            for i in range(len(self.header))
        ]
        lines = [_row(self.header), _row(rules)] + [_row([str(cell) for cell in row]) for row in self.rows]
        if self.caption:
            lines.insert(0, f"{self.caption}\n")
        return "\n".join(lines)


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def cpu_name() -> str:
    """The CPU model as the kernel reports it (``platform.processor()`` is empty on most Linux systems)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: str = "cpu") -> str:
    """Where a benchmark ran: CPU, cores available to this process, torch threads, GPU, torch version."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    text = f"{cpu_name()}, {cores} CPU cores, {torch.get_num_threads()} torch threads"
    if device.startswith("cuda") and torch.cuda.is_available():
        text += f", GPU {torch.cuda.get_device_name()}"
    else:
        text += ", no GPU used"
    return f"{text}, {platform.system()} {platform.machine()}, torch {torch.__version__}"


def write_report(
    name: str,
    setup: str,
    tables: Sequence[Table],
    notes: Sequence[str] = (),
    device: str = "cpu",
    directory: Path = REPORTS,
    script: str | None = None,
) -> Path:
    """Write ``docs/benchmarks/<name>.md``: provenance line, ``setup``, the tables, then ``notes``.

    ``setup`` says what was measured (model, data, repeats); the machine, date and command line are added
    here, so every file states where its figures came from.
    """
    script = script or name  # the bench script, when one script writes several files
    command = " ".join(["python -m", f"bench.{script}", *sys.argv[1:]])
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    parts = [
        f"<!-- written by `python -m bench.{script}` (bench/report.py): rerun it, do not edit by hand -->",
        f"Measured {today} on {machine(device)}: `{command}`. {setup}",
        *[table.markdown() for table in tables],
        *notes,
    ]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.md"
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    print(f"table written to {path}")
    return path
