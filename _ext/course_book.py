"""The course book's own Sphinx extension (``_config.yml``: ``sphinx.local_extensions``).

Two jobs, each small:

1. **Inline scripts are written once.** Sphinx 7.4 stores an inline script
   (``app.add_js_file(None, body=...)``) in the HTML builder with the file name
   ``None`` but re-adds it from the registry with the file name ``""`` just before
   writing, so the two copies compare unequal and every page carries both.
   sphinx-thebe's ``const THEBE_JS_URL = ...`` then throws ``Identifier
   'THEBE_JS_URL' has already been declared`` in the browser on every page.
   Sphinx fixed this upstream (sphinx-doc/sphinx pull request 13402, in 8.x), but
   Jupyter Book 1.0.4 needs Sphinx 7. On ``write-started`` we give the builder's
   inline scripts the file name ``""`` that the registry copy will have, which is
   exactly the upstream fix, so the second copy is recognised as a duplicate.

2. **The repository URL is one setting.** ``repository.url`` in ``_config.yml``
   drives the launch buttons (Colab, Binder, JupyterHub via nbgitpuller) and the
   MyST substitutions ``{{ repo_url }}``, ``{{ repo_link }}``, ``{{ clone_command }}``
   (inline code) and ``{{ clone_block }}`` (a code block, on a line of its own:
   ``git clone URL mha-course && cd mha-course``) that pages use for "clone the
   repository". While the
   URL is empty (the course has no public address yet) the launch buttons are
   switched off, because they cannot point anywhere, and the substitutions say
   "the course repository" instead of a URL.
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx
from sphinx.builders import Builder
from sphinx.config import Config

NO_URL_TEXT = "the course repository"


def substitutions(url: str) -> dict[str, str]:
    """The MyST substitutions for repository URL ``url`` (``""`` when unset)."""
    target = url or "<URL of the course repository>"
    return {
        "repo_url": url or NO_URL_TEXT,
        "repo_link": f"[{url}]({url})" if url else NO_URL_TEXT,
        "clone_command": f"`git clone {target}`",
        "clone_block": f"```bash\ngit clone {target} mha-course && cd mha-course\n```",
    }


def _repository_settings(app: Sphinx, config: Config) -> None:
    """Derive launch buttons and substitutions from ``repository.url`` alone."""
    options = config.html_theme_options
    url = str(options.get("repository_url") or "").strip().rstrip("/")
    if not url:
        options.pop("launch_buttons", None)  # nowhere to launch from
    config.myst_substitutions = {**substitutions(url), **config.myst_substitutions}


def _write_inline_scripts_once(app: Sphinx, builder: Builder) -> None:
    """Give inline scripts the file name ``""``, as Sphinx 8 does (PR 13402)."""
    files = getattr(builder, "_js_files", None)
    if not files:
        return
    from sphinx.builders.html._assets import _JavaScript

    for i, js in enumerate(files):
        if js.filename is None:
            files[i] = _JavaScript("", priority=js.priority, **js.attributes)


def setup(app: Sphinx) -> dict[str, Any]:
    """Register both handlers; the extension keeps no state between builds."""
    app.connect("config-inited", _repository_settings, priority=900)
    app.connect("write-started", _write_inline_scripts_once)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
