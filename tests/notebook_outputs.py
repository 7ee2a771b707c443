"""Reading executed notebooks and chapters in tests: what a notebook glued, what a chapter pastes."""
import json
import re
from pathlib import Path

from t2fsnn.book.record import glued_values

BOOK = Path(__file__).resolve().parents[1] / "book"


def assert_no_error_output(path):
    for cell in json.loads(Path(path).read_text())["cells"]:
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error", output


def glued(path):
    """``{key: text/plain}`` of every glued output of an executed notebook; fails on an error output."""
    assert_no_error_output(path)
    return glued_values(path)


def pasted(chapter, stem):
    """The keys a chapter pastes from ``generated/<stem>.ipynb``."""
    text = (BOOK / chapter).read_text()
    return set(re.findall(rf"generated/{stem}\.ipynb::(\w+)", text)) | set(
        re.findall(r"```\{glue\} (\w+)\n:doc: generated/" + stem, text))
