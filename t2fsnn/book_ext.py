"""Sphinx extension of the book (``_config.yml``: ``sphinx.extra_extensions``).

- **Math without network.** MathJax 3 is copied from the ``django-static-mathjax``
  package (a plain copy of MathJax's ``es5`` build, Apache-2.0, no Django needed)
  into ``_build/html/_static/mathjax/``, and pages load it from there instead of a
  CDN: the built HTML typesets every formula on a machine without internet, and
  as an archived copy.
- **A clean console.** Repeated ``<script>`` entries are dropped (sphinx-thebe's
  configuration is added twice, a SyntaxError on every page).
- **Readable code.** ``t2fsnn.css`` wraps long lines of code cells (the
  parameters cell among them) instead of scrolling them sideways.
"""

from __future__ import annotations

import shutil
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "book_static"
MATHJAX_ENTRY = "tex-chtml.js"  # TeX input, HTML-CSS output with MathJax's own web fonts
# combined builds other than MATHJAX_ENTRY and the node.js entry are not needed by a page
_UNUSED = {"mml-chtml.js", "mml-svg.js", "tex-chtml-full-speech.js", "tex-chtml-full.js", "tex-mml-chtml.js",
           "tex-mml-svg.js", "tex-svg-full.js", "tex-svg.js", "node-main.js"}


def mathjax_source() -> Path:
    """MathJax's ``es5`` folder inside the installed ``django-static-mathjax`` package."""
    try:
        import mathjax
    except ImportError as exc:  # pragma: no cover - a dependency of t2fsnn
        raise RuntimeError("MathJax for the book comes from the package django-static-mathjax: "
                           "pip install django-static-mathjax") from exc
    es5 = Path(mathjax.__file__).resolve().parent / "static" / "mathjax" / "es5"
    if not (es5 / MATHJAX_ENTRY).is_file():
        raise RuntimeError(f"{es5 / MATHJAX_ENTRY} is missing; reinstall django-static-mathjax")
    return es5


def _configure(app, config) -> None:
    mathjax_source()  # fail early, before any page is written
    config.mathjax_path = f"mathjax/{MATHJAX_ENTRY}"  # relative: served from _static
    config.html_static_path = list(config.html_static_path) + [str(STATIC)]


def _copy_mathjax(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.builder.outdir) / "_static" / "mathjax"
    shutil.copytree(mathjax_source(), target, dirs_exist_ok=True,
                    ignore=lambda folder, names: [n for n in names if n in _UNUSED and Path(folder).name == "es5"])


def _unique_scripts(app, pagename, templatename, context, doctree) -> None:
    """Drop repeated ``<script>`` entries: sphinx-thebe adds its ``const THEBE_JS_URL ...``
    twice under Jupyter Book, and the second copy is a SyntaxError in every page's console."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        key = (getattr(script, "filename", None) or "",  # an inline script has None or ""
               tuple(sorted((k, str(v)) for k, v in (getattr(script, "attributes", None) or {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique  # in place: later handlers (MathJax) still add to the same list


def setup(app):
    app.connect("config-inited", _configure)
    # early: a handler that returns a template name ends the event (emit_firstresult)
    app.connect("html-page-context", _unique_scripts, priority=100)
    app.connect("build-finished", _copy_mathjax)
    app.add_css_file("t2fsnn.css")
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
