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
- **Citations in round brackets.** ``bibtex_reference_style: author_year_round``
  is sphinxcontrib-bibtex's ``author_year`` with round brackets:
  "Rueckauer et al. (2017)" for ``{cite:t}``, "(Diehl et al., 2015; Rueckauer et al., 2017)" for ``{cite}``.
- **Docstrings as the package writes them.** The API part documents the package
  with ``sphinx.ext.autodoc``. Configurations and results describe their fields as
  aligned ``name:  text`` lines; these become definition lists (one term per field)
  instead of reStructuredText errors.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"
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


_FIELD = re.compile(r"^(?P<name>[A-Za-z_]\w*(?:, [A-Za-z_]\w*)*):\s+(?P<text>\S.*)$")


def field_lists(lines: list[str]) -> list[str]:
    """Docstring lines with each block of aligned ``name:  text`` fields as a definition list.

    A block is two or more field lines at the margin, each followed by its indented
    continuation lines; it ends at a blank line or at unindented prose. Anything else
    is returned unchanged.
    """
    out: list[str] = []
    i = 0
    while i < len(lines):
        block, j = [], i
        while j < len(lines) and _FIELD.match(lines[j]):
            name, text = _FIELD.match(lines[j]).group("name", "text")
            j += 1
            while j < len(lines) and lines[j][:1].isspace() and lines[j].strip():
                text += " " + lines[j].strip()
                j += 1
            block.append((name, text))
        if len(block) < 2:
            out.append(lines[i])
            i += 1
            continue
        if out and out[-1].strip():
            out.append("")
        for name, text in block:
            out += [", ".join(f"``{part}``" for part in name.split(", ")), f"   {text}"]
        if j < len(lines) and lines[j].strip():
            out.append("")
        i = j
    return out


def _docstring_fields(app, what, name, obj, options, lines) -> None:
    lines[:] = field_lists(lines)


def _register_citation_style() -> None:
    from dataclasses import dataclass, field

    from sphinxcontrib.bibtex.plugin import register_plugin
    from sphinxcontrib.bibtex.style.referencing import BracketStyle
    from sphinxcontrib.bibtex.style.referencing.author_year import AuthorYearReferenceStyle

    def round_brackets() -> BracketStyle:
        return BracketStyle(left="(", right=")", sep="; ")

    @dataclass
    class RoundAuthorYearReferenceStyle(AuthorYearReferenceStyle):
        bracket_textual: BracketStyle = field(default_factory=round_brackets)
        bracket_parenthetical: BracketStyle = field(default_factory=round_brackets)
        bracket_author: BracketStyle = field(default_factory=round_brackets)
        bracket_label: BracketStyle = field(default_factory=round_brackets)
        bracket_year: BracketStyle = field(default_factory=round_brackets)

    register_plugin("sphinxcontrib.bibtex.style.referencing", "author_year_round", RoundAuthorYearReferenceStyle)


def setup(app):
    _register_citation_style()
    app.setup_extension("sphinx.ext.autodoc")  # its event, whatever the order of extra_extensions
    app.connect("autodoc-process-docstring", _docstring_fields)
    app.connect("config-inited", _configure)
    # early: a handler that returns a template name ends the event (emit_firstresult)
    app.connect("html-page-context", _unique_scripts, priority=100)
    app.connect("build-finished", _copy_mathjax)
    app.add_css_file("t2fsnn.css")
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
