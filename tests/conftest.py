"""Shared test setup: isolated caches, no downloads, and smoke runs of the book's notebooks."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def _isolated_environment(tmp_path_factory):
    """Tests never download, never read $T2FSNN_DATA, and cache trained models in a temporary folder."""
    saved = {k: os.environ.get(k) for k in ("T2FSNN_DATA", "T2FSNN_NO_DOWNLOAD", "T2FSNN_CACHE")}
    os.environ.pop("T2FSNN_DATA", None)
    os.environ["T2FSNN_NO_DOWNLOAD"] = "1"
    os.environ["T2FSNN_CACHE"] = str(tmp_path_factory.mktemp("t2fsnn-cache"))
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def git_repo(tmp_path):
    """A fresh git repository in ``tmp_path``: returns ``git(*args) -> stdout`` run in it."""

    def git(*args):
        return subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True, text=True).stdout

    git("init", "-q")
    git("config", "user.email", "t@example.org")
    git("config", "user.name", "t")
    return git


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory):
    """A copy of the book's sources in a temporary folder, with every book notebook run once (profile smoke).

    Returns the folder; executed notebooks are in ``<folder>/book/generated``.
    """
    from t2fsnn.book import runner

    root = tmp_path_factory.mktemp("smoke-book")
    for path in [REPO / "_config.yml", REPO / "_toc.yml", *REPO.glob("*.bib")]:
        shutil.copy(path, root / path.name)
    shutil.copytree(REPO / "book", root / "book", ignore=shutil.ignore_patterns("generated", "_build", ".ipynb_checkpoints"))
    runner.run_book_notebooks("smoke", output_dir=root / "book" / "generated", echo=lambda *_: None)
    return root
