"""Where a browser test writes its screenshot.

Under var/screenshots/ on every run (look there after a test run); into docs/img/, the
copy the docs show, only when TEMPLATOR_UPDATE_SCREENSHOTS=1, so a test run does not
rewrite tracked files: `TEMPLATOR_UPDATE_SCREENSHOTS=1 make test` refreshes them.
"""

from __future__ import annotations

import os
from pathlib import Path

from templator.config import PROJECT_ROOT


def screenshot_path(name: str) -> Path:
    """The file the screenshot `name` (e.g. "dashboard.png") is written to."""
    if os.environ.get("TEMPLATOR_UPDATE_SCREENSHOTS") == "1":
        folder = PROJECT_ROOT / "docs" / "img"
    else:
        folder = PROJECT_ROOT / "var" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name
