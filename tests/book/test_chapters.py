"""Fast checks of the chapters' glue references (the book build itself is in test_book.py)."""
import re
from pathlib import Path

import pytest
import yaml

from t2fsnn.book import runner

REPO = Path(__file__).resolve().parents[2]
CHAPTERS = sorted((REPO / "book").glob("*.md"))
CROSS_TEXT = re.compile(r"\{glue:text\}`([^`]*)`")


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name)
def test_cross_document_text_glue_has_a_format(chapter):
    # myst-nb splits {glue:text} at the last colon, so `doc::key` without `:fmt` breaks
    for ref in CROSS_TEXT.findall(chapter.read_text()):
        if "::" in ref:
            key_part = ref.split("::", 1)[1]
            assert ":" in key_part, f"{chapter.name}: {{glue:text}}`{ref}` needs a format, e.g. `{ref}:s` or `{ref}:.2f`"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name)
def test_chapters_paste_from_book_notebooks(chapter):
    text = chapter.read_text()
    docs = set(re.findall(r"generated/([A-Za-z0-9_]+)\.ipynb", text))
    unknown = docs - set(runner.BOOK_NOTEBOOKS)
    assert not unknown, f"{chapter.name} pastes from notebooks missing in runner.BOOK_NOTEBOOKS: {sorted(unknown)}"


def test_every_chapter_is_in_the_toc():
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    files = {entry["file"] for part in toc["parts"] for entry in part["chapters"] if "file" in entry}
    files.add(toc["root"])
    missing = [p.name for p in CHAPTERS if f"book/{p.stem}" not in files]
    assert not missing, f"chapters not listed in _toc.yml: {missing}"
