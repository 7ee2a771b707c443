"""Notebooks 06 (Fig. 6) and 07 (Tables II, III) under the smoke profile: every coding ran, the tables are complete."""
import json

import pytest

pytestmark = pytest.mark.slow

CODINGS = ["rate", "phase", "burst", "T2FSNN", "T2FSNN+GO", "T2FSNN+EF", "T2FSNN+GO+EF"]


def _outputs(path):
    nb = json.loads(path.read_text())
    glued, texts = set(), []
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error", output
            key = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if key:
                glued.add(key)
            texts.append("".join(output.get("data", {}).get("text/plain", "")))
    return glued, "\n".join(texts)


def test_inference_curves_notebook(smoke_book):
    glued, text = _outputs(smoke_book / "book" / "generated" / "06_inference_curves.ipynb")
    assert {"fig_curves", "key_points", "first_within", "order_within", "ann_accuracy"} <= glued
    assert {f"final_{name.replace('T2FSNN', 't2fsnn').replace('+', '_').lower()}" for name in CODINGS} <= glued


def test_comparison_notebook(smoke_book):
    glued, text = _outputs(smoke_book / "book" / "generated" / "07_comparison.ipynb")
    assert {"table_ii", "table_ii_with_paper", "table_iii", "paper_table_iii", "fan_out", "spikes_per_layer"} <= glued
    assert {"tn_t2fsnn_go_ef", "sn_burst", "latency_rate", "ann_macs"} <= glued
    for name in CODINGS:
        assert f"\n{name} " in text  # a row of Table II / III for every coding
