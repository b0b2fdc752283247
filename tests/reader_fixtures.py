"""The book as a reader meets it: one build, one local server, one headless Chromium per session.

``reader_book`` builds the book once per test session with an example
repository URL and JupyterHub (so the launch buttons exist), from the real
``_config.yml`` with only those two settings changed. ``book_server`` serves
its HTML on 127.0.0.1; ``chromium`` is Debian's ``/usr/bin/chromium`` driven by
Playwright. The tests in ``test_browser.py``, ``test_search.py``,
``test_launch.py`` and ``test_alt_text.py`` share them (imported in
``conftest.py``).

Where Chromium (or TeX, for the PDF) is missing, the tests skip locally but
fail under CI (``CI=true``), so CI cannot pass without them.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import os
import shutil
import socketserver
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
EXAMPLE_REPO = "https://github.com/example-org/mha-course"
EXAMPLE_HUB = "https://hub.example.edu"
ARTIFACTS = ROOT / "_build" / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--no-first-run",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
]


def need(ok: bool, what: str) -> None:
    """Skip when ``what`` is missing here, but fail under CI (which must install it)."""
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"{what} is missing: .ci/run must install it")
        pytest.skip(f"{what} is missing (installed by .ci/run)")


def example_config(dest: Path) -> Path:
    """Write ``_config.yml`` with the example repository URL and hub to ``dest``."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    config["repository"]["url"] = EXAMPLE_REPO
    config["launch_buttons"]["jupyterhub_url"] = EXAMPLE_HUB
    local = config["sphinx"].get("local_extensions", {})
    config["sphinx"]["local_extensions"] = {k: str(ROOT / v) for k, v in local.items()}
    dest.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return dest


def build(out: Path, builder: str = "html", timeout: float = 900) -> subprocess.CompletedProcess:
    """``jupyter-book build`` of the repository with the example config into ``out``."""
    jb = Path(sys.executable).with_name("jupyter-book")
    cfg = example_config(out / "_config.yml")
    cmd = [str(jb), "build", str(ROOT), "--config", str(cfg), "--path-output", str(out)]
    cmd += ["--builder", builder, "-n", "--keep-going"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def reader_book(tmp_path_factory) -> Path:
    """The HTML of the book built with the example URLs (``.../_build/html``)."""
    out = tmp_path_factory.mktemp("reader_book")
    proc = build(out)
    html = out / "_build" / "html"
    assert proc.returncode == 0 and (html / "index.html").exists(), proc.stderr[-3000:]
    return html


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep the test output clean
        pass


@pytest.fixture(scope="session")
def book_server(reader_book):
    """Base URL of ``reader_book`` served on 127.0.0.1 (a free port)."""
    handler = functools.partial(_Quiet, directory=str(reader_book))
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.server_address[1]}"
        server.shutdown()


@pytest.fixture(scope="session")
def chromium():
    """Headless Debian Chromium through Playwright."""
    need(CHROMIUM.exists(), "Debian chromium (/usr/bin/chromium)")
    need(importlib.util.find_spec("playwright") is not None, "playwright (requirements.txt)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """``_build/artifacts`` (not committed): screenshots of the book."""
    shutil.rmtree(ARTIFACTS / "screenshots", ignore_errors=True)
    (ARTIFACTS / "screenshots").mkdir(parents=True)
    return ARTIFACTS
