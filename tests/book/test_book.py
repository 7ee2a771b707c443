"""Runs the book's notebooks with the smoke profile (once per session) and builds the book from them."""
import json
import re

import pytest

from t2fsnn.book import runner

pytestmark = pytest.mark.slow


def glued_keys(path):
    nb = json.loads(path.read_text())
    keys = set()
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error", output
            key = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if key:
                keys.add(key)
    return nb, keys


def test_every_book_notebook_ran(smoke_book):
    generated = smoke_book / "book" / "generated"
    assert sorted(p.name for p in generated.iterdir()) == sorted(f"{s}.ipynb" for s in runner.BOOK_NOTEBOOKS)


def test_notebook_01_smoke(smoke_book):
    nb, keys = glued_keys(smoke_book / "book" / "generated" / "01_train_and_convert.ipynb")
    assert {"run_record", "ann_accuracy", "converted_accuracy", "agreement", "fig_activations", "scales"} <= keys
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and 'profile = "smoke"' in "".join(injected[0]["source"])


def test_book_builds_without_warnings(smoke_book):
    index = runner.build_book(smoke_book)  # jupyter-book build -W -n --keep-going
    assert index.is_file()
    html = (smoke_book / "_build" / "html" / "book" / "index.html").read_text()
    pasted = re.findall(r'pasted-text">([^<]*)<', html)
    assert ["smoke", "mnist_subset"] in [pasted[i:i + 2] for i in range(len(pasted))]  # "This copy"
    chapter = (smoke_book / "_build" / "html" / "book" / "train_and_convert.html").read_text()
    images = re.findall(r'<img[^>]*src="\.\./(_images/[^"]+)"', chapter)
    assert len(images) >= 2
    assert all((smoke_book / "_build" / "html" / img).is_file() for img in images)
