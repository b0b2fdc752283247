"""The first code cell of every chapter: install ``mha`` where it is missing.

A reader who opens a chapter on Colab (or any Jupyter without the course
installed) has no ``mha``. Each notebook's first code cell, right after the
title, installs it from the course repository (``repository.url`` in
``_config.yml``) when ``import mha`` would fail, and does nothing, printing
nothing, where ``mha`` is installed (a clone with ``.venv``, Binder, which
installs ``requirements.txt``, a JupyterHub with the course environment). The
cell is tagged ``remove-cell``, so the book does not show it; the downloaded
``.ipynb`` keeps it.

Chapter owners do not write this cell: run

    python -m mha.course.notebook_setup --write      # insert or update it everywhere
    python -m mha.course.notebook_setup --check      # exit 1 if a chapter lacks it

after changing ``repository.url``. The script is idempotent: a second run
changes nothing.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

__all__ = ["MARKER", "CELL_ID", "repository_url", "install_source", "update", "main"]

ROOT = Path(__file__).resolve().parents[2]
MARKER = "# Install the course package `mha` where it is missing"
CELL_ID = "install-mha"
TAGS = ["remove-cell"]


def repository_url(config: Path = ROOT / "_config.yml") -> str:
    """``repository.url`` from the book's ``_config.yml`` (``""`` when unset)."""
    text = Path(config).read_text(encoding="utf-8")
    block = re.search(r"^repository:\s*\n((?:[ \t]+.*\n?)*)", text, re.M)
    found = re.search(r"^\s+url:\s*[\"']?([^\"'\s#]*)", block.group(1), re.M) if block else None
    return found.group(1).rstrip("/") if found else ""


def install_source(url: str) -> str:
    """The install cell's code for repository ``url`` (``""``: say how to install by hand)."""
    if url:
        action = (
            "    cmd = [sys.executable, '-m', 'pip', 'install', '--quiet', "
            f"'mha @ git+{url}']\n"
            "    subprocess.run(cmd, check=True)"
        )
    else:
        action = (
            "    raise ModuleNotFoundError(\n"
            "        'mha is not installed: in a clone of the course repository run '\n"
            "        '`pip install -e .` (the book sets no public repository URL yet)'\n"
            "    )"
        )
    imports = "import subprocess\nimport sys\n" if url else ""  # only what the action uses
    return (
        f"{MARKER} (on Colab); does nothing where it is installed.\n"
        "import importlib.util\n"
        f"{imports}\n"
        "if importlib.util.find_spec('mha') is None:\n"
        f"{action}"
    )


def _install_cell(url: str):
    cell = nbformat.v4.new_code_cell(install_source(url), metadata={"tags": list(TAGS)})
    cell.id = CELL_ID
    return cell


def _is_install_cell(cell) -> bool:
    return cell.cell_type == "code" and cell.source.startswith(MARKER)


def update(nb: nbformat.NotebookNode, url: str) -> bool:
    """Insert or update the install cell as ``nb``'s first code cell; return whether it changed."""
    want = _install_cell(url)
    found = [i for i, c in enumerate(nb.cells) if _is_install_cell(c)]
    first_code = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
    if found == [first_code]:
        cell = nb.cells[first_code]
        if cell.source == want.source and cell.metadata.get("tags") == TAGS and not cell.outputs:
            return False
    for i in reversed(found):
        del nb.cells[i]
    first_code = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
    nb.cells.insert(first_code, want)
    return True


def chapters(root: Path = ROOT) -> list[Path]:
    """Every chapter notebook of the book in ``root``."""
    return sorted((Path(root) / "chapters").glob("*.ipynb"))


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m mha.course.notebook_setup``."""
    p = argparse.ArgumentParser(prog="python -m mha.course.notebook_setup", description=__doc__)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="insert or update the cell")
    mode.add_argument("--check", action="store_true", help="exit 1 if a notebook needs it")
    p.add_argument("--root", type=Path, default=ROOT, help="the book's folder")
    a = p.parse_args(argv)
    url = repository_url(a.root / "_config.yml")
    stale = []
    for path in chapters(a.root):
        nb = nbformat.read(path, as_version=4)
        if update(nb, url):
            stale.append(path.name)
            if a.write:
                nbformat.write(nb, path)
    verb = "updated" if a.write else "needs the install cell"
    for name in stale:
        print(f"{name}: {verb}")
    return 1 if (a.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
