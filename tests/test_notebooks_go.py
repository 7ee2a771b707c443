"""The kernel-optimization and ablation notebooks under the smoke profile: they ran and glued what the chapters paste."""
import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BOOK = Path(__file__).resolve().parents[1] / "book"


def _glued(path):
    keys = set()
    for cell in json.loads(path.read_text())["cells"]:
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error", output
            key = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if key:
                keys.add(key)
    return keys


def _pasted(chapter, stem):
    text = (BOOK / chapter).read_text()
    return set(re.findall(rf"generated/{stem}\.ipynb::(\w+)", text)) | set(
        re.findall(r"```\{glue\} (\w+)\n:doc: generated/" + stem, text))


@pytest.mark.parametrize("chapter,stem", [("kernel_optimization.md", "04_kernel_optimization"),
                                          ("ablation.md", "05_ablation")])
def test_every_pasted_key_is_glued(smoke_book, chapter, stem):
    keys = _glued(smoke_book / "book" / "generated" / f"{stem}.ipynb")
    wanted = _pasted(chapter, stem)
    assert wanted, "the chapter pastes nothing"
    assert wanted <= keys, f"missing: {sorted(wanted - keys)}"
