"""Recorded benchmark runs: the early-firing certificates are summed per network and method from their files."""
import pandas as pd
import pytest
import yaml

from t2fsnn.experiments import benchmark


def _recorded_folder(tmp_path, methods=("cutoffs", "candidates")):
    timings = pd.DataFrame([
        {"model": "mnist_cnn", "device": "cpu", "method": "converted ANN forward", "ratio to ANN": 1.0},
        *({"model": "mnist_cnn", "device": "cpu", "method": f"T2FSNN+EF exact, {m} (ef_start=10, trained, test images)",
           "ratio to ANN": ratio} for m, ratio in zip(methods, (7.5, 12.0))),
    ])
    timings.to_csv(tmp_path / "cpu-ef.csv", index=False)
    ties = pd.DataFrame([{"network": "mnist_cnn", "method": m, "layer": layer, "differing": d, "certified ties": d}
                         for m in ("cutoffs", "candidates") for layer, d in ((1, 0), (2, 3), (3, 1))])
    ties.to_csv(tmp_path / "cpu-ef_ties.csv", index=False)
    runs = [{"file": "cpu-ef.csv", "kind": "early_firing", "ties": "cpu-ef_ties.csv", "images": 64, "machine": "here"},
            {"file": "cpu-ef.csv", "machine": "a timing run without ties"}]
    (tmp_path / "runs.yml").write_text(yaml.safe_dump(runs))
    return tmp_path


def test_certificates_are_totals_per_method_with_their_cost(tmp_path):
    table = benchmark.recorded_certificates(_recorded_folder(tmp_path))
    assert table["method"].tolist() == ["cutoffs", "candidates"]
    assert table["ANN passes"].tolist() == [7.5, 12.0]
    assert table["differing"].tolist() == [4, 4] and table["certified ties"].tolist() == [4, 4]
    assert table["test images"].tolist() == [64, 64]


def test_a_certificate_without_its_timing_row_is_an_error_naming_the_file(tmp_path):
    with pytest.raises(ValueError, match=r"cpu-ef.csv: expected one timing row for early-firing method 'candidates'"):
        benchmark.recorded_certificates(_recorded_folder(tmp_path, methods=("cutoffs",)))


def test_no_recorded_runs_give_an_empty_table(tmp_path):
    assert benchmark.recorded_certificates(tmp_path).empty


def test_a_recorded_ratio_is_the_first_matching_row_of_its_file():
    table = pd.DataFrame([
        {"file": "gpu.csv", "model": "vgg16", "device": "NVIDIA H200", "method": "T2FSNN exact", "ratio to ANN": 2.0},
        {"file": "a.csv", "model": "vgg16", "device": "cpu (16 threads)", "method": "T2FSNN exact", "ratio to ANN": 3.0},
        {"file": "b.csv", "model": "vgg16", "device": "cpu (2 threads)", "method": "T2FSNN exact", "ratio to ANN": 1.8},
        {"file": "b.csv", "model": "vgg16", "device": "cpu (2 threads)", "method": "T2FSNN exact (fused)", "ratio to ANN": 1.4,
         "ms per batch": 70.0},
    ])
    assert benchmark.recorded_ratio(table, "vgg16", "T2FSNN exact (fused)", "cpu", "b.csv", column="ms per batch") == 70.0
    assert benchmark.recorded_ratio(table, "vgg16", "T2FSNN exact") == 2.0
    assert benchmark.recorded_ratio(table, "vgg16", "T2FSNN exact", "cpu") == 3.0
    assert benchmark.recorded_ratio(table, "vgg16", "T2FSNN exact", "cpu", "b.csv") == 1.8
    assert benchmark.recorded_ratio(table, "vgg16", "T2FSNN exact (fused)", "cpu", "b.csv") == 1.4
    assert pd.isna(benchmark.recorded_ratio(table, "mnist_cnn", "T2FSNN exact"))
    assert pd.isna(benchmark.recorded_ratio(pd.DataFrame(), "vgg16", "T2FSNN exact"))


def test_time_against_pairs_each_call_with_the_reference_timed_just_before_it(monkeypatch):
    """On a clock whose speed halves after the first pair, each call still costs three references: the paired
    ratio stays 3, where the ratio of the two medians would not."""
    import torch

    now = [0.0]
    monkeypatch.setattr(benchmark.time, "perf_counter", lambda: now[0])
    slowdown = iter([1.0] * 5 + [2.0] * 100)  # the warm-up call and the first pair at full speed, then half speed

    def reference():
        now[0] += 1.0 * next(slowdown)

    def engine():
        now[0] += 3.0 * next(slowdown)

    seconds, reference_seconds, ratio = benchmark.time_against(engine, reference, torch.device("cpu"), repeats=2,
                                                               reference_repeats=3)
    assert ratio == 3.0
    assert seconds == (3.0 + 6.0) / 2 and reference_seconds == (1.0 + 2.0) / 2
