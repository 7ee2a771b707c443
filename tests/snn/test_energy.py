"""Normalized energy (Section IV-B): reproduces the paper's Table II from its own spikes and latencies."""
import pytest

from t2fsnn.experiments import paper_results
from t2fsnn.snn.metrics import normalized_energy


def test_burst_and_t2fsnn_on_cifar10():
    # rate coding on CIFAR-10 is the reference: 61.949e6 spikes in 10,000 steps
    ref = dict(ref_spikes=61.949e6, ref_latency=10_000)
    assert normalized_energy(6.920e6, 1125, hardware="truenorth", **ref) == pytest.approx(0.112, abs=5e-4)
    assert normalized_energy(6.920e6, 1125, hardware="spinnaker", **ref) == pytest.approx(0.112, abs=5e-4)
    assert normalized_energy(0.069e6, 680, hardware="truenorth", **ref) == pytest.approx(0.041, abs=5e-4)
    assert normalized_energy(0.069e6, 680, hardware="spinnaker", **ref) == pytest.approx(0.025, abs=5e-4)


def test_the_reference_has_energy_one():
    for hardware in ("truenorth", "spinnaker"):
        assert normalized_energy(5.0, 7, 5.0, 7, hardware) == pytest.approx(1.0)


@pytest.mark.parametrize("dataset", list(paper_results.TABLE_II))
def test_every_energy_of_the_papers_table_ii(dataset):
    rows = paper_results.TABLE_II[dataset]
    ref = rows["rate"]
    checked = 0
    for name, row in rows.items():
        if row["spikes"] is None:
            continue
        for hardware, key in (("truenorth", "energy_tn"), ("spinnaker", "energy_sn")):
            energy = normalized_energy(row["spikes"], row["latency"], ref["spikes"], ref["latency"], hardware)
            assert energy == pytest.approx(row[key], abs=1.5e-3), (dataset, name, hardware)
            checked += 1
    assert checked >= 8


@pytest.mark.parametrize("kwargs, text", [
    (dict(hardware="loihi"), "hardware='loihi'"),
    (dict(ref_spikes=0), "ref_spikes=0"),
    (dict(ref_latency=-1), "ref_latency=-1"),
    (dict(spikes=-5), "spikes=-5"),
])
def test_bad_values_are_refused(kwargs, text):
    args = dict(spikes=1.0, latency=1, ref_spikes=1.0, ref_latency=1, hardware="truenorth")
    args.update(kwargs)
    with pytest.raises(ValueError, match=text):
        normalized_energy(**args)
