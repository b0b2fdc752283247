"""Launch buttons and the first-cell install, all from the one setting ``repository.url``.

The book is built with an example repository URL and JupyterHub (``reader_book``);
every chapter must offer Colab, Binder and JupyterHub (nbgitpuller) links that
are well formed and point at that chapter's notebook in the repository.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlparse

import nbformat
import pytest
from packaging.requirements import Requirement
from reader_fixtures import EXAMPLE_HUB, EXAMPLE_REPO

from mha.course import notebook_setup

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "_ext"))
import course_book  # noqa: E402

TOC = (ROOT / "_toc.yml").read_text()
NOTEBOOKS = [
    d for d in re.findall(r"(?:root|file):\s*(\S+)", TOC) if (ROOT / f"{d}.ipynb").exists()
]
ORG_REPO = urlparse(EXAMPLE_REPO).path.strip("/")


def launch_links(html: Path, docname: str) -> dict[str, str]:
    """The page's launch links by provider (Colab, Binder, JupyterHub)."""
    text = (html / f"{docname}.html").read_text(encoding="utf-8")
    hrefs = re.findall(r'href="(https://[^"]+)"', text)
    found = {}
    for name, host in [("colab", "colab.research.google.com"), ("binder", "mybinder.org")]:
        found[name] = [h for h in hrefs if urlparse(h).hostname == host]
    found["hub"] = [h for h in hrefs if h.startswith(EXAMPLE_HUB)]
    for name, links in found.items():
        assert len(set(links)) == 1, f"{docname}: expected one {name} link, found {links}"
    return {name: links[0].replace("&amp;", "&") for name, links in found.items()}


@pytest.mark.parametrize("docname", NOTEBOOKS)
def test_launch_links_are_well_formed(reader_book, docname):
    links = launch_links(reader_book, docname)
    path = f"{docname}.ipynb"
    assert (ROOT / path).exists()
    colab = urlparse(links["colab"])
    assert colab.scheme == "https" and colab.path == f"/github/{ORG_REPO}/blob/main/{path}"
    binder = urlparse(links["binder"])
    assert binder.path == f"/v2/gh/{ORG_REPO}/main"
    assert parse_qs(binder.query) == {"urlpath": [f"lab/tree/{path}"]}
    hub = urlparse(links["hub"])
    assert f"{hub.scheme}://{hub.netloc}" == EXAMPLE_HUB
    assert hub.path == "/hub/user-redirect/git-pull"  # nbgitpuller
    query = parse_qs(hub.query)
    repo_name = ORG_REPO.split("/")[1]
    assert query == {
        "repo": [EXAMPLE_REPO],
        "branch": ["main"],
        "urlpath": [f"lab/tree/{repo_name}/{path}"],
    }


def test_no_page_shows_an_unreplaced_substitution(reader_book):
    for docname in re.findall(r"(?:root|file):\s*(\S+)", TOC):
        text = (reader_book / f"{docname}.html").read_text(encoding="utf-8")
        assert "{{" not in re.sub(r"<script.*?</script>", "", text, flags=re.S), docname


def _settings(url: str) -> SimpleNamespace:
    options = {"repository_url": url, "launch_buttons": {"colab_url": "https://colab"}}
    config = SimpleNamespace(html_theme_options=options, myst_substitutions={})
    course_book._repository_settings(None, config)
    return config


def test_repository_url_drives_substitutions():
    config = _settings(EXAMPLE_REPO + "/")
    assert config.myst_substitutions["repo_url"] == EXAMPLE_REPO
    assert config.myst_substitutions["clone_command"] == f"`git clone {EXAMPLE_REPO}`"
    assert f"git clone {EXAMPLE_REPO} mha-course" in config.myst_substitutions["clone_block"]
    assert "launch_buttons" in config.html_theme_options


def test_without_a_url_there_are_no_launch_buttons():
    config = _settings("")
    assert "launch_buttons" not in config.html_theme_options
    assert config.myst_substitutions["repo_url"] == course_book.NO_URL_TEXT
    assert "http" not in config.myst_substitutions["clone_command"]


def test_repository_url_is_read_from_config(tmp_path):
    cfg = tmp_path / "_config.yml"
    cfg.write_text(f'title: x\nrepository:\n  url: "{EXAMPLE_REPO}/"  # set me\n  branch: main\n')
    assert notebook_setup.repository_url(cfg) == EXAMPLE_REPO
    cfg.write_text('repository:\n  url: ""\n')
    assert notebook_setup.repository_url(cfg) == ""


def _run_install_cell(url: str, installed: bool) -> subprocess.CompletedProcess:
    """Run the cell's code with ``find_spec`` faked and ``subprocess.run`` recorded."""
    fake = (
        "import importlib.util, subprocess\n"
        f"importlib.util.find_spec = lambda name: {'object()' if installed else 'None'}\n"
        "subprocess.run = lambda cmd, check: print(repr(cmd))\n"
    )
    code = fake + notebook_setup.install_source(url)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_install_cell_installs_from_the_repository_where_mha_is_missing():
    proc = _run_install_cell(EXAMPLE_REPO, installed=False)
    assert proc.returncode == 0, proc.stderr
    cmd = eval(proc.stdout)  # the recorded pip command line
    assert cmd[1:5] == ["-m", "pip", "install", "--quiet"]
    req = Requirement(cmd[5])
    assert req.name == "mha" and req.url == f"git+{EXAMPLE_REPO}"


def test_install_cell_does_nothing_and_prints_nothing_where_mha_is_installed():
    for url in (EXAMPLE_REPO, ""):
        proc = _run_install_cell(url, installed=True)
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_install_cell_without_url_says_how_to_install():
    proc = _run_install_cell("", installed=False)
    assert proc.returncode != 0 and "pip install -e ." in proc.stderr


def test_install_cell_script_is_idempotent(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# T"), nbformat.v4.new_code_cell("import mha")]
    assert notebook_setup.update(nb, EXAMPLE_REPO)
    assert [c.cell_type for c in nb.cells] == ["markdown", "code", "code"]
    assert nb.cells[1].metadata["tags"] == ["remove-cell"]
    assert not notebook_setup.update(nb, EXAMPLE_REPO)
    assert notebook_setup.update(nb, "https://github.com/other/repo")  # the URL changed
    assert sum(notebook_setup.MARKER in c.source for c in nb.cells) == 1


def test_every_chapter_has_the_install_cell():
    """Fails until ``python -m mha.course.notebook_setup --write`` has been run."""
    url = notebook_setup.repository_url()
    stale = []
    for path in notebook_setup.chapters():
        if notebook_setup.update(nbformat.read(path, as_version=4), url):
            stale.append(path.name)
    assert stale == [], f"run `python -m mha.course.notebook_setup --write`: {stale}"
