"""Runs the book's notebooks with the smoke profile (once per session) and builds the book from them."""
import json
import re
from pathlib import Path

import pytest

from t2fsnn.book import runner

REPO = Path(__file__).resolve().parents[2]

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


def _machine_paths(text: str) -> list:
    from t2fsnn.book.record import MACHINE_PATH

    return sorted({text[max(0, m.start() - 30):m.end() + 30] for m in MACHINE_PATH.finditer(text)})


def test_built_pages_show_no_path_of_this_machine(smoke_book):
    """The built book shows no folder of the machine that built it: not the work tree, not $HOME, not /tmp."""
    pages = sorted((smoke_book / "_build" / "html").rglob("*.html"))
    assert pages
    found = {str(page.relative_to(smoke_book)): hits for page in pages if (hits := _machine_paths(page.read_text()))}
    assert found == {}
    for folder in (str(REPO), str(Path.home()), str(smoke_book)):
        assert not [page for page in pages if folder + "/" in page.read_text()], folder


def test_recorded_notebooks_and_commands_show_no_machine_path():
    recorded = sorted((REPO / "book" / "recorded").glob("*/*.ipynb")) + [REPO / "benchmarks" / "results" / "runs.yml"]
    assert recorded
    found = {str(path.relative_to(REPO)): hits for path in recorded if (hits := _machine_paths(path.read_text()))}
    assert found == {}


def test_the_machine_path_check_and_rewrite_see_such_paths(monkeypatch, tmp_path):
    from t2fsnn.book import record

    monkeypatch.setenv("T2FSNN_DATA", str(tmp_path))
    text = (f"{record.runner.REPO_ROOT}/t2fsnn/training.py:136: UserWarning: checksums differ for "
            f"{tmp_path}/cifar-10-batches-py/test_batch; /work/other-tree/notebooks/01.ipynb; "
            "/opt/venv/lib/python3.11/site-packages/torch/nn/modules/module.py")
    assert _machine_paths(text)
    portable = record.portable_text(text)
    assert _machine_paths(portable) == []
    assert portable == ("t2fsnn/training.py:136: UserWarning: checksums differ for $T2FSNN_DATA/cifar-10-batches-py/"
                        "test_batch; notebooks/01.ipynb; <site-packages>/torch/nn/modules/module.py")
