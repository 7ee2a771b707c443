"""The primer and spike-time notebooks under the smoke profile: they ran, glued what their chapters paste, and
the glued numbers hang together."""
import ast
import re

import pytest
from notebook_outputs import glued, pasted

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("chapter,stem", [("ttfs_coding_primer.md", "02_ttfs_coding_primer"),
                                          ("spike_time_distributions.md", "03_spike_time_distributions")])
def test_every_pasted_key_is_glued(smoke_book, chapter, stem):
    keys = set(glued(smoke_book / "book" / "generated" / f"{stem}.ipynb"))
    wanted = pasted(chapter, stem)
    assert len(wanted) > 10, "the chapter pastes almost nothing"
    assert wanted <= keys, f"missing: {sorted(wanted - keys)}"


def test_primer_latencies_match_the_paper_and_the_network(smoke_book):
    values = {k: v for k, v in glued(smoke_book / "book" / "generated" / "02_ttfs_coding_primer.ipynb").items()
              if not k.startswith(("fig_", "run_record")) and "\n" not in v}
    number = {k: ast.literal_eval(v) for k, v in values.items() if re.fullmatch(r"-?[0-9.e+-]+", v)}
    assert number["latency_vgg"] == 1280 and number["latency_vgg_ef"] == 680
    T, s = number["T"], number["ef_start"]
    assert number["latency_ours"] == (number["num_spiking_layers"] - 1) * T + T
    assert number["latency_ours_ef"] == (number["num_spiking_layers"] - 1) * s + T
    assert 0 < number["smallest_sent"] < 1 and number["z_min"] < number["smallest_sent"]


def test_spike_time_numbers_hang_together(smoke_book):
    values = glued(smoke_book / "book" / "generated" / "03_spike_time_distributions.ipynb")
    number = {k: ast.literal_eval(v) for k, v in values.items() if re.fullmatch(r"-?[0-9.e+-]+", v)}
    assert number["latency_ef"] < number["latency_base"]
    assert number["first_base_conv1"] >= number["T"] and number["first_ef_conv1"] >= number["ef_start"]
    assert number["first_ef_conv1"] < number["first_base_conv1"]
    assert 1 <= number["settled_base"] <= number["latency_base"]
    parts = number["loss_input"] + number["loss_range"] + number["loss_rounding"] + number["loss_ef"]
    assert abs(parts - number["loss_total"]) < 1e-6
