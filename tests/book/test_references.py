"""Fast checks of the book's references (the build with ``-W -n`` is in test_book.py).

Chapters name the package's functions with ``{py:...}`` roles, cite with ``{cite}``
from ``references.bib``, number their exercises with sphinx-exercise and link to the
notation page; these tests find a stale name, a missing key or an unlabelled exercise
without building the book.
"""
import importlib
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TOC = yaml.safe_load((REPO / "_toc.yml").read_text())
CHAPTERS = [TOC["root"]] + [entry["file"] for part in TOC["parts"] if part["caption"] == "Chapters"
                            for entry in part["chapters"] if "file" in entry]
PAGES = sorted((REPO / "book").glob("*.md"))
PY_ROLE = re.compile(r"\{py:(func|class|meth|mod|data|attr)\}`([^`]+)`")
CITE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")
BIB_KEYS = set(re.findall(r"^@\w+\{([^,\s]+),", (REPO / "references.bib").read_text(), re.M))


def _resolve(target: str):
    target = target.split("<")[-1].rstrip(">").lstrip("~")
    parts = target.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(target)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_chapter_links_to_the_notation_page(chapter):
    assert "{ref}`notation`" in (REPO / f"{chapter}.md").read_text()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_python_roles_name_existing_objects(page):
    for role, target in PY_ROLE.findall(page.read_text()):
        _resolve(target)  # AttributeError or ImportError: a stale name


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_package_names_are_roles_not_inline_code(page):
    inline = re.findall(r"(?<![}\w])`(t2fsnn\.[A-Za-z_][\w.]*)`", page.read_text())
    assert not inline, f"{page.name}: name these with a {{py:...}} role: {inline}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_citations_are_in_the_bibliography(page):
    keys = {key.strip() for group in CITE.findall(page.read_text()) for key in group.split(",")}
    assert keys <= BIB_KEYS, f"{page.name}: keys missing from references.bib: {sorted(keys - BIB_KEYS)}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_exercises_are_labelled_and_solutions_point_at_them(page):
    text = page.read_text()
    assert "{admonition} Exercise" not in text, "use the exercise directive (numbered, with a label)"
    labels = re.findall(r"```\{exercise\}[^\n]*\n:label: ([\w-]+)", text)
    assert len(labels) == text.count("```{exercise}"), "every exercise needs a :label:"
    for solved in re.findall(r"```\{solution\} ([\w-]+)", text):
        assert solved in labels


def test_aligned_docstring_fields_become_a_definition_list():
    from t2fsnn.book.sphinx_ext import field_lists

    lines = ["Parameters.", "", "T:        length of a window,", "          in steps.", "tau, td:  the kernel.",
             "", "Notation: prose stays prose."]
    assert field_lists(lines) == ["Parameters.", "", "``T``", "   length of a window, in steps.",
                                  "``tau``, ``td``", "   the kernel.", "", "Notation: prose stays prose."]
    assert field_lists(["one: line alone", "and text"]) == ["one: line alone", "and text"]
