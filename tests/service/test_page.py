"""The search page in a real headless browser (Debian's chromium): the hits it draws, read
back from a screenshot by OCR (tesseract), and the highlighted words in its DOM."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TESSERACT = shutil.which("tesseract")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or TESSERACT is None, reason="needs chromium and tesseract-ocr (apt-get install, as .ci/run does)"
)


def _browser(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=20000"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120, check=False)


def test_the_page_shows_the_hits_with_the_matched_words_marked(served: str, tmp_path: Path) -> None:
    page = httpx.get(served)
    assert page.status_code == 200
    assert "<form" in page.text
    url = f"{served}/?q={quote('Who wrote Hamlet?')}&k=3"
    shot = tmp_path / "page.png"
    _browser("--window-size=1280,1100", f"--screenshot={shot}", url)
    assert shot.stat().st_size > 10_000
    assert TESSERACT is not None
    ocr = subprocess.run([TESSERACT, str(shot), "-"], capture_output=True, text=True, timeout=120, check=True)
    seen = " ".join(ocr.stdout.split())  # lines as drawn, joined
    assert "3 results for" in seen
    assert "1. shakespeare" in seen
    assert "Hamlet, Macbeth" in seen  # the passage that answers, drawn on the page
    dom = _browser("--dump-dom", url).stdout
    assert "<mark>wrote</mark>" in dom
    assert dom.count('class="hit"') == 3
