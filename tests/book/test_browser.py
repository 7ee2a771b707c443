"""The built book as a reader sees it: every page loaded in headless Chromium with the network off.

Needs Debian's ``chromium`` (``.ci/run`` installs it); skipped, with the install
command, where it is missing. Screenshots of every page go to ``_build/screenshots/``.
"""
import os
import shutil
from pathlib import Path

import pytest
import yaml

from t2fsnn.book import browser, runner

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "_build" / "screenshots"


@pytest.fixture
def chromium():
    """Skip without Chromium, with the install command; fail instead under .ci/run ($T2FSNN_REQUIRE_BROWSER)."""
    found = browser.find_chromium()
    if found is None:
        message = f"Chromium is not installed; install it with: {browser.INSTALL_COMMAND}"
        if os.environ.get("T2FSNN_REQUIRE_BROWSER"):
            pytest.fail(message + " ($T2FSNN_REQUIRE_BROWSER is set)")
        pytest.skip(message)
    return found



@pytest.fixture(scope="session")
def smoke_html(smoke_book):
    """The HTML of the smoke book (built by test_book.py earlier in the session, else built here)."""
    index = smoke_book / "_build" / "html" / "index.html"
    if not index.is_file():
        runner.build_book(smoke_book)
    return smoke_book / "_build" / "html"


def _toc_files(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("root", "file") and isinstance(value, str):
                yield value
            else:
                yield from _toc_files(value)
    elif isinstance(node, list):
        for item in node:
            yield from _toc_files(item)


@pytest.mark.slow
def test_every_page_reads_well_offline(chromium, smoke_html, smoke_book):
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    # no path of the machine that built the book may show on a page
    forbidden = [str(smoke_book.resolve()), str(REPO)]
    reports = browser.check_book(smoke_html, screenshots=SCREENSHOTS, forbidden=forbidden)
    pages = {r.page for r in reports}
    toc = yaml.safe_load((smoke_book / "_toc.yml").read_text())
    chapters = {f"{name.removesuffix('.md')}.html" for name in _toc_files(toc)}
    assert len(chapters) >= 9
    assert chapters <= pages, chapters - pages
    problems = browser.format_reports(r for r in reports if r.problems)
    assert not problems, "\n" + problems
    assert sum(r.typeset for r in reports) > 20  # the chapters' formulas, typeset from the book's own MathJax
    shots = {r.page: r.screenshot for r in reports if r.screenshot is not None}  # redirect pages have none
    assert chapters <= set(shots)
    assert all(Path(shot).stat().st_size > 10_000 for shot in shots.values())
    assert (smoke_html / "_static" / "mathjax" / "tex-chtml.js").is_file()


BROKEN_PAGE = """\
# Broken

- **Energy**:
  $E = \\frac{a}{b} E_\\text{dyn}
  + \\frac{c}{d} E_\\text{sta}$, with more.

![a figure that is not there](missing.png)
"""

GOOD_PAGE = """\
# Good

Inline $\\tau$ and $t_d$, and a display:

$$
E = \\frac{a}{b} E_\\text{dyn} + \\frac{c}{d} E_\\text{sta}
$$

On to [the broken page](broken.md).
"""


@pytest.mark.slow
def test_broken_page_fails(chromium, tmp_path):
    """A page with raw ``$...$`` TeX and a missing image is caught; its good neighbour passes."""
    shutil.copy(REPO / "_config.yml", tmp_path / "_config.yml")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: good\nchapters:\n  - file: broken\n")
    (tmp_path / "good.md").write_text(GOOD_PAGE)
    (tmp_path / "broken.md").write_text(BROKEN_PAGE)
    with pytest.raises(RuntimeError, match="missing.png"):  # the build (-W) warns; --keep-going still writes it
        runner.build_book(tmp_path)
    build = tmp_path / "_build" / "html"
    reports = {r.page: r for r in browser.check_book(build, screenshots=tmp_path / "shots")}
    assert reports["good.html"].problems == [] and reports["good.html"].typeset == 3
    broken = "\n".join(reports["broken.html"].problems)
    assert "raw TeX command in visible text" in broken and "\\frac" in broken
    assert "image not loaded" in broken
    assert "ERR_FILE_NOT_FOUND" in broken  # the console error of the failed load


def test_run_record_has_no_machine_path(monkeypatch, tmp_path):
    monkeypatch.setenv("T2FSNN_DATA", str(tmp_path))
    for dataset in ("mnist_subset", "mnist", "cifar10"):
        root = runner.run_record({"profile": "smoke", "dataset": dataset, "device": "cpu"})["data root"]
        assert str(tmp_path) not in root and str(REPO) not in root and not root.startswith("/"), root
    monkeypatch.delenv("T2FSNN_DATA")
    assert runner.run_record({"profile": "smoke", "dataset": "mnist", "device": "cpu"})["data root"].startswith("data")
