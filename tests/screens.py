"""Screenshots of the dashboard's pages for the docs, taken by the browser tests so they never go stale.

Every browser test that reaches a page in a state worth showing calls :func:`screenshot`; the PNGs land in
``docs/images/screens/<name>.png`` (committed; the README shows one, the dashboard page of the docs all).
"""

from __future__ import annotations

from pathlib import Path

SCREENS = Path(__file__).resolve().parents[1] / "docs" / "images" / "screens"
MAX_HEIGHT = 1800  # px: long pages (exemplar lists) are cut, the top of a page is what the docs show


def screenshot(page, name: str) -> Path:
    """Save what ``page`` shows (its full width, at most ``MAX_HEIGHT`` px of its height) as ``name``.png."""
    SCREENS.mkdir(parents=True, exist_ok=True)
    path = SCREENS / f"{name}.png"
    height = int(page.evaluate("document.documentElement.scrollHeight"))
    width = int(page.viewport_size["width"])
    page.screenshot(
        path=str(path),
        full_page=True,
        animations="disabled",
        caret="hide",
        clip={"x": 0, "y": 0, "width": width, "height": min(height, MAX_HEIGHT)},
    )
    return path
