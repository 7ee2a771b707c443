"""The reproduction report: computed verdicts, recorded runs with complete provenance, resumable records."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from t2fsnn.book import record, report, runner
from notebook_outputs import BOOK, glued

RECORDED = BOOK / "recorded"


@pytest.mark.parametrize("kind,paper,tolerance,inside,outside", [
    ("close", 99.33, 0.5, [99.33, 98.83, 99.83], [98.82, 99.84]),
    ("relative", 0.002, 0.25, [0.002, 0.0015, 0.0025], [0.00149, 0.00251]),
    ("at_most", 0.22, 0.05, [0.0, 0.22, 0.27], [0.2701, 1.0]),
    ("at_least", 0.01, 0.1, [0.01, -0.09, 5.0], [-0.1001, -1.0]),
])
def test_verdict_on_each_side_of_the_tolerance(kind, paper, tolerance, inside, outside):
    for ours in inside:
        assert report.verdict(kind, paper, ours, tolerance) == "reproduced", ours
    for ours in outside:
        assert report.verdict(kind, paper, ours, tolerance).startswith("not reproduced ("), ours


def test_verdict_words_for_properties_and_missing_runs():
    assert report.verdict("holds", "fewer", True) == "reproduced"
    assert report.verdict("holds", "fewer", False) == "not reproduced (does not hold)"
    assert report.verdict("close", 1.0, None, 0.1) == "not run (no recorded value)"
    assert report.verdict("close", 1.0, 5.0, 0.1, not_run="no copy of CIFAR-100 here") == \
        "not run (no copy of CIFAR-100 here)"
    assert report.verdict("close", 99.0, 98.0, 0.5) == "not reproduced (-1)"
    assert report.verdict("relative", 0.1, 0.15, 0.25) == "not reproduced (+50 %)"
    with pytest.raises(ValueError, match="kind='about'"):
        report.verdict("about", 1.0, 1.0)
    with pytest.raises(ValueError, match="tolerance=-1"):
        report.verdict("close", 1.0, 1.0, -1)


def _fake_run(root: Path, name: str, values: dict, notebook: str = "07_comparison", others: dict = None):
    """A recorded run whose ``notebook`` glued ``values`` (and each of ``others``: {notebook: values})."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    for stem, glued in {notebook: values, **(others or {})}.items():
        outputs = [{"output_type": "display_data", "data": {"text/plain": [repr(v) if not isinstance(v, str) else v]},
                    "metadata": {"scrapbook": {"name": k, "mime_prefix": ""}}} for k, v in glued.items()]
        cell = {"cell_type": "code", "source": "", "metadata": {}, "outputs": outputs, "execution_count": 1}
        (folder / f"{stem}.ipynb").write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4,
                                                          "nbformat_minor": 5}))
    (folder / "run.json").write_text(json.dumps({"complete": True, "revision": {"commit": "0" * 40}}))
    return report.RunValues(folder)


def test_claim_table_reads_recorded_values_and_computes_verdicts(tmp_path):
    _fake_run(tmp_path, "full-mnist", {"acc_t2fsnn_go_ef": 99.30, "latency_t2fsnn_go_ef": 40,
                                       "spikes_t2fsnn_go_ef": 0.0031, "latency_burst": 80.0})
    table = report.claim_table(root=tmp_path).set_index(["section", "claim"])
    row = table.loc[("Table II (MNIST) [full-mnist, MNIST CNN]", "T2FSNN+GO+EF: accuracy (%)")]
    assert row["ours"] == "99.3" and row["verdict"] == "reproduced" and row["reproduced when"] == "± 0.5"
    assert table.loc[("Table II (MNIST) [full-mnist, MNIST CNN]", "T2FSNN+GO+EF: latency (steps)"), "verdict"] == "reproduced"
    assert table.loc[("Table II (MNIST) [full-mnist, MNIST CNN]", "T2FSNN+GO+EF: spikes (10^6 per image)"), "verdict"] == \
        "not reproduced (+55 %)"
    assert table.loc[("Abstract, on MNIST [full-mnist, MNIST CNN]", "latency of T2FSNN+GO+EF over burst coding's (CIFAR-100: 22 %)"),
                     "verdict"].startswith("not reproduced")
    assert table.loc[("Table I (CIFAR-100) [paper-cifar100, VGG-16]", "T2FSNN: accuracy (%)"), "verdict"] == "not run (no copy of CIFAR-100 here)"
    assert table.loc[("Table I (CIFAR-10) [paper-cifar10, VGG-16]", "T2FSNN: accuracy (%)"), "verdict"] == \
        "not run (paper-cifar10 not recorded yet)"
    counts = report.summary(table.reset_index())
    assert counts["claims"] == len(report.CLAIMS) == counts["reproduced"] + counts["not reproduced"] + counts["not run"]


def test_the_codings_are_compared_on_vgg16_and_on_the_small_vgg_as_separate_rows(tmp_path):
    _fake_run(tmp_path, "paper-cifar10", {"acc_burst": 91.0, "ann_accuracy": 91.2})
    _fake_run(tmp_path, "full-cifar10", {"acc_burst": 80.8, "ann_accuracy": 81.0})
    table = report.claim_table(root=tmp_path).set_index(["section", "claim"])
    vgg16 = table.loc[("Table II (CIFAR-10) [paper-cifar10, VGG-16]", "burst: accuracy (%)")]
    small = table.loc[("Table II (CIFAR-10) [full-cifar10, small VGG]", "burst: accuracy (%)")]
    assert (vgg16["ours"], vgg16["verdict"]) == ("91", "reproduced")
    assert small["verdict"].startswith("not reproduced") and small["why"].startswith("ANN gap")
    sections = set(table.index.get_level_values("section"))
    for figure in ("Fig. 4", "Fig. 5", "Fig. 6", "Table III", "Abstract, on", "IV-C, on"):
        assert sum(s.startswith(figure) and "CIFAR-10" in s for s in sections) == 2, figure


def test_every_recorded_run_is_complete_with_provenance():
    runs = record.recorded_runs(RECORDED)
    for name, run in runs.items():
        missing = [k for k in record.REQUIRED_KEYS if k not in run]
        assert not missing, f"{name}/run.json lacks {missing}"
        assert run["complete"] and run["name"] == name
        assert len(run["revision"]["commit"]) == 40 and isinstance(run["revision"]["dirty"], bool)
        assert run["data"]["sha256"] and all(len(d) == 64 for d in run["data"]["sha256"].values())
        assert "/" not in run["data"]["root"].split(" ")[0][:1]  # never an absolute machine path
        for stem, entry in run["notebooks"].items():
            assert entry["status"] == "done" and entry["seconds"] >= 0 and entry["parameters"], (name, stem)
            assert (RECORDED / name / f"{stem}.ipynb").exists()
        # the ANNs a run vouches for are the one kind of large file kept, each under the cap
        networks = [p for p in (RECORDED / name).iterdir() if p.name in run["models"]]
        assert all(p.stat().st_size <= record.MODEL_FILE_LIMIT for p in networks)
        size = sum(p.stat().st_size for p in (RECORDED / name).iterdir() if p not in networks)
        assert size <= 8 * 2 ** 20, f"{name} is {size / 2 ** 20:.1f} MB"


def test_chapters_paste_only_keys_the_recorded_notebooks_glued():
    import re

    for chapter in BOOK.glob("*.md"):
        text = chapter.read_text()
        refs = set(re.findall(r"recorded/([\w-]+)/(\w+)\.ipynb::(\w+)", text))
        refs |= {(run, stem, key) for key, run, stem in
                 re.findall(r"```\{glue(?::\w+)?\} (\w+)\n:doc: recorded/([\w-]+)/(\w+)\.ipynb", text)}
        for run, stem, key in refs:
            path = RECORDED / run / f"{stem}.ipynb"
            assert path.exists(), f"{chapter.name} pastes from {path}, which is not recorded"
            assert key in glued(path), f"{chapter.name} pastes {key!r}, which {run}/{stem} does not glue"


def test_an_interrupted_record_resumes_and_finishes(tmp_path):
    """kill -9 after the first notebook; the rerun keeps it and completes the second."""
    out = tmp_path / "recorded"
    command = [sys.executable, "-m", "t2fsnn.book.cli", "record", "--profile", "smoke", "--allow-dirty", "-q",
               "--notebooks", "01_train_and_convert,02_ttfs_coding_primer", "--output-root", str(out)]
    proc = subprocess.Popen(command, cwd=runner.REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    run_file = out / "smoke-mnist_subset" / "run.json"
    deadline = time.time() + 300
    first = None
    while time.time() < deadline and proc.poll() is None:
        if run_file.exists():
            entries = json.loads(run_file.read_text())["notebooks"]
            if entries.get("01_train_and_convert", {}).get("status") == "done" and "02_ttfs_coding_primer" in entries:
                first = entries["01_train_and_convert"]
                break
        time.sleep(0.5)
    assert first is not None, "the first notebook never finished"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    interrupted = json.loads(run_file.read_text())
    assert not interrupted["complete"]
    done = subprocess.run(command, cwd=runner.REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "kept from the earlier record" in done.stdout + done.stderr
    finished = json.loads(run_file.read_text())
    assert finished["complete"] and finished["notebooks"]["01_train_and_convert"]["start"] == first["start"]
    assert finished["notebooks"]["02_ttfs_coding_primer"]["status"] == "done"
    assert finished["notebooks"]["02_ttfs_coding_primer"]["scheduler"] == "this process"
    assert not list((out / "smoke-mnist_subset").glob(".*.ipynb"))  # no half-written notebook left


def test_a_record_on_a_local_cluster_trains_first_then_runs_the_rest_as_tasks(tmp_path, monkeypatch):
    pytest.importorskip("dask.distributed", reason="needs Dask: pip install 't2fsnn[cluster]'")
    monkeypatch.setenv("T2FSNN_CACHE", str(tmp_path / "cache"))  # the workers inherit it: one cache for all
    stems = ["01_train_and_convert", "02_ttfs_coding_primer", "03_spike_time_distributions"]
    folder = record.record("smoke", notebooks=stems, allow_dirty=True, output_root=tmp_path / "recorded",
                           scheduler="local:2")
    run = json.loads((folder / "run.json").read_text())
    assert run["complete"] and all(run["notebooks"][s]["scheduler"] == "local:2" for s in stems)
    assert all((folder / f"{s}.ipynb").exists() for s in stems)
    trained = run["notebooks"]["01_train_and_convert"]["end"]
    assert all(run["notebooks"][s]["start"] >= trained for s in stems[1:])  # they waited for the ANN
    models = list((tmp_path / "cache" / "models").glob("*.pt"))
    assert len(models) == 1  # trained once, by notebook 01; the others loaded it


def test_record_refuses_a_dirty_tree_and_unknown_notebooks(tmp_path, monkeypatch):
    monkeypatch.setattr(record, "source_revision", lambda: {"commit": "0" * 40, "dirty": True, "changed": ["x.py"]})
    with pytest.raises(record.RecordError, match="uncommitted changes \\(x.py\\).*--allow-dirty"):
        record.record("smoke", output_root=tmp_path)
    with pytest.raises(record.RecordError, match="unknown notebook 99_nothing"):
        record.record("smoke", notebooks=["99_nothing"], allow_dirty=True, output_root=tmp_path)
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_a_run_is_labelled_stale_for_code_changes_not_for_comment_changes(tmp_path, git_repo):
    git = git_repo
    source = tmp_path / "t2fsnn" / "profiles" / "p.yml"
    source.parent.mkdir(parents=True)
    source.write_text("# a comment\nepochs: 8\n")
    git("add", "-A")
    git("commit", "-qm", "recorded")
    recorded = git("rev-parse", "HEAD").strip()
    source.write_text("# another comment, same numbers\nepochs: 8\n")
    git("commit", "-qam", "comment")
    assert report._changed_since(recorded, tmp_path) == []
    source.write_text("# another comment, same numbers\nepochs: 9\n")
    git("commit", "-qam", "code")
    assert report._changed_since(recorded, tmp_path) == ["t2fsnn/profiles/p.yml"]
    assert report._changed_since("0" * 40, tmp_path) == ["(revision not in this repository)"]


def test_a_run_is_not_labelled_stale_for_docstring_changes(tmp_path, git_repo):
    git = git_repo
    source = tmp_path / "t2fsnn" / "m.py"
    source.parent.mkdir(parents=True)
    source.write_text('"""Module."""\n\ndef f(x):\n    """Double."""\n    return 2 * x\n')
    git("add", "-A")
    git("commit", "-qm", "recorded")
    recorded = git("rev-parse", "HEAD").strip()
    source.write_text('"""The module, reworded."""\n\ndef f(x):\n    """Twice ``x``."""\n    return 2 * x\n')
    git("commit", "-qam", "docstrings")
    assert report._changed_since(recorded, tmp_path) == []
    source.write_text('"""The module, reworded."""\n\ndef f(x):\n    """Twice ``x``."""\n    return 3 * x\n')
    git("commit", "-qam", "code")
    assert report._changed_since(recorded, tmp_path) == ["t2fsnn/m.py"]


def test_a_moved_module_is_compared_with_its_old_self(tmp_path, git_repo):
    """A run recorded before a module moved (its package imports rewritten) is not stale for the move."""
    git = git_repo
    old = tmp_path / "t2fsnn" / "kernels.py"
    old.parent.mkdir(parents=True)
    user = tmp_path / "t2fsnn" / "user.py"
    old.write_text("import math\n\n\ndef f(x):\n    return math.exp(-x)\n" + "".join(f"\n\ndef h{i}(x):\n    return x + {i}\n" for i in range(8)))
    user.write_text("from .kernels import f\n\n\ndef g(x):\n    return f(x) + 1\n")
    git("add", "-A")
    git("commit", "-qm", "recorded")
    recorded = git("rev-parse", "HEAD").strip()
    (tmp_path / "t2fsnn" / "snn").mkdir()
    git("mv", "t2fsnn/kernels.py", "t2fsnn/snn/kernels.py")
    (tmp_path / "t2fsnn" / "snn" / "__init__.py").write_text('"""The method."""\n')
    user.write_text("from t2fsnn.snn.kernels import f\n\n\ndef g(x):\n    return f(x) + 1\n")
    git("add", "-A")
    git("commit", "-qm", "move")
    assert report._changed_since(recorded, tmp_path) == []
    moved = tmp_path / "t2fsnn" / "snn" / "kernels.py"
    moved.write_text("import math\n\n\ndef f(x):\n    return math.exp(-2 * x)\n" + "".join(f"\n\ndef h{i}(x):\n    return x + {i}\n" for i in range(8)))
    git("commit", "-qam", "code")
    assert report._changed_since(recorded, tmp_path) == ["t2fsnn/snn/kernels.py"]


def test_notebook_prose_and_presentation_code_do_not_make_a_run_stale(tmp_path, git_repo):
    import json

    git = git_repo
    notebook = tmp_path / "notebooks" / "n.ipynb"
    notebook.parent.mkdir(parents=True)
    browser = tmp_path / "t2fsnn" / "book" / "browser.py"
    browser.parent.mkdir(parents=True)
    browser.write_text("X = 1\n")

    def write(markdown, code):
        cells = [{"cell_type": "markdown", "metadata": {}, "source": [markdown]},
                 {"cell_type": "code", "metadata": {}, "source": [code], "outputs": [], "execution_count": None}]
        notebook.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))

    write("# Title", "from t2fsnn import plots\nT = 80  # steps")
    git("add", "-A")
    git("commit", "-qm", "recorded")
    recorded = git("rev-parse", "HEAD").strip()
    write("# Another title", "from t2fsnn.experiments import plots\nT = 80  # the time window")
    browser.write_text("X = 2\n")
    git("commit", "-qam", "prose")
    assert report._changed_since(recorded, tmp_path) == []
    write("# Another title", "from t2fsnn.experiments import plots\nT = 40")
    git("commit", "-qam", "code")
    assert report._changed_since(recorded, tmp_path) == ["notebooks/n.ipynb"]


def _why(claim, values):
    ours = claim.ours({claim.run: values})
    assert report.verdict(claim.kind, claim.paper, ours, claim.tolerance).startswith("not reproduced")
    return report.cause(claim, values, ours)


ACCURACY = report.Claim(section="s", claim="c", paper=91.4, run="run", notebook="05_ablation", value="acc",
                        tolerance=1.0, ann="ann_accuracy", network="VGG-16", paper_network="VGG-16")


@pytest.mark.parametrize("ann, snn, expected", [
    (88.0, 87.5, "ANN gap"),  # ANN 3.4 below the paper, SNN within 1 of it
    (88.0, 86.9, "real"),  # the SNN loses more than the tolerance: the ANN does not explain it
    (90.5, 89.0, "real"),  # the ANN is within the tolerance of the paper's SNN
])
def test_the_ann_gap_explains_an_accuracy_only_when_the_snn_follows_its_ann(tmp_path, ann, snn, expected):
    values = _fake_run(tmp_path, "run", {"acc": snn, "ann_accuracy": ann}, notebook="05_ablation")
    assert _why(ACCURACY, values).split(":")[0] == expected


@pytest.mark.parametrize("flat, expected", [
    ("not flat at the end of the horizon: phase, burst", "horizon"),
    ("not flat at the end of the horizon: rate", "real"),  # another coding was cut short, not this one
    ("every baseline curve is flat at the end of its horizon", "real"),
])
def test_a_horizon_explains_only_the_codings_that_were_not_flat(tmp_path, flat, expected):
    claim = report.Claim(section="s", claim="c", paper=1500, run="run", notebook="07_comparison", value="latency_phase",
                         kind="relative", tolerance=0.25, codings=("phase",))
    values = _fake_run(tmp_path, "run", {"latency_phase": 200.0}, others={"06_inference_curves": {"horizons_flat": flat}})
    assert _why(claim, values).split(":")[0] == expected


@pytest.mark.parametrize("simulated, expected", [(1400, "definition"), (1100, "real")])  # ±25 % of 1,500
def test_a_latency_that_passes_under_another_definition_names_it(tmp_path, simulated, expected):
    claim = [c for c in report.CLAIMS if c.section == "Table II (CIFAR-10)" and c.run == "full-cifar10" and c.claim == "phase: latency (steps)"][0]
    values = _fake_run(tmp_path, claim.run, {"latency_phase": 195.0}, others={"06_inference_curves": {
        "reach_phase": 180, "steps_phase": simulated, "horizons_flat": "every baseline curve is flat"}})
    why = _why(claim, values)
    if expected == "definition":
        assert why == f"definition: reproduced with the steps simulated ({simulated:,})"
    else:  # the small VGG stands in for VGG-16, so the row falls to the network
        assert why.startswith("network: measured on the small VGG")


@pytest.mark.parametrize("simulated_energy, expected", [(0.30, "definition"), (0.45, "network")])  # ±25 % of 0.317
def test_an_energy_that_passes_at_another_latency_names_that_definition(tmp_path, simulated_energy, expected):
    claim = [c for c in report.CLAIMS if c.section == "Table II (CIFAR-10)" and c.run == "full-cifar10" and c.claim.startswith("phase: energy, TrueNorth")][0]
    values = _fake_run(tmp_path, claim.run, {"tn_phase": 1.86, "tn_phase_settled": 1.86, "tn_phase_within_1": 2.5,
                                             "tn_phase_within_0_1": float("nan"), "tn_phase_simulated": simulated_energy},
                       others={"06_inference_curves": {"horizons_flat": "every baseline curve is flat"}})
    why = _why(claim, values)
    assert why.split(":")[0] == expected
    if expected == "definition":
        assert why == f"definition: reproduced with the latency steps simulated ({simulated_energy:g})"


@pytest.mark.parametrize("network, expected", [("small VGG", "network"), ("VGG-16", "real")])
def test_a_stand_in_network_is_named_and_the_paper_network_is_not(tmp_path, network, expected):
    claim = report.Claim(section="s", claim="c", paper=6.9e4, run="run", notebook="05_ablation", value="spikes",
                         kind="relative", tolerance=0.25, network=network, paper_network="VGG-16")
    values = _fake_run(tmp_path, "run", {"spikes": 1.2e5}, notebook="05_ablation")
    assert _why(claim, values).split(":")[0] == expected


def test_the_report_counts_each_cause_and_explains_every_failure(tmp_path):
    _fake_run(tmp_path, "full-mnist", {"acc_t2fsnn_go_ef": 99.30, "latency_t2fsnn_go_ef": 40,
                                       "spikes_t2fsnn_go_ef": 0.0031, "latency_burst": 80.0})
    _fake_run(tmp_path, "paper-cifar10", {"acc_t2fsnn": 88.0, "ann_accuracy": 88.5, "spikes_t2fsnn": 1.0e5},
              notebook="05_ablation")
    table = report.claim_table(root=tmp_path)
    failed = table[table["verdict"].str.startswith("not reproduced")]
    assert (failed["why"] != "").all() and (table.loc[table["verdict"] == "reproduced", "why"] == "").all()
    rows = table.set_index(["section", "claim"])
    assert rows.loc[("Table I (CIFAR-10) [paper-cifar10, VGG-16]", "T2FSNN: accuracy (%)"), "why"].startswith("ANN gap")
    assert rows.loc[("Table I (CIFAR-10) [paper-cifar10, VGG-16]", "T2FSNN: spikes per image"), "why"].startswith("real")
    counts = report.summary(table)
    assert sum(counts["causes"].values()) == counts["not reproduced"] == len(failed)
    assert counts["causes text"].startswith(f"of {len(failed)} not reproduced, {counts['causes']['ANN gap']} explained")


def test_a_run_is_stale_for_its_own_notebooks_and_the_package_not_for_other_notebooks(tmp_path, git_repo):
    import json

    git = git_repo
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "t2fsnn").mkdir()
    (tmp_path / "t2fsnn" / "m.py").write_text("X = 1\n")

    def notebook(stem, code):
        cells = [{"cell_type": "code", "metadata": {}, "source": [code], "outputs": [], "execution_count": None}]
        (tmp_path / "notebooks" / f"{stem}.ipynb").write_text(json.dumps({"cells": cells, "metadata": {},
                                                                          "nbformat": 4, "nbformat_minor": 5}))

    notebook("05_ablation", "T = 80")
    notebook("00_reproduction_report", "x = 1")
    git("add", "-A")
    git("commit", "-qm", "recorded")
    recorded = git("rev-parse", "HEAD").strip()
    run = {"notebooks": {"05_ablation": {"commit": recorded}}}
    notebook("00_reproduction_report", "x = 2")  # the report's code: not a notebook of the run
    git("commit", "-qam", "report")
    assert report._run_changes(run, recorded, tmp_path) == []
    notebook("05_ablation", "T = 40")
    (tmp_path / "t2fsnn" / "m.py").write_text("X = 2\n")
    git("commit", "-qam", "code")
    assert sorted(report._run_changes(run, recorded, tmp_path)) == ["notebooks/05_ablation.ipynb", "t2fsnn/m.py"]


def test_ann_settings_name_the_notebooks_of_a_run_that_used_another_network():
    """A run re-recorded in part with a new ANN says which notebooks used which settings."""
    same = {"dataset": "cifar10", "model": "vgg16", "epochs": 8, "lr": 0.05, "precision": "bf16"}
    run = {"notebooks": {"01_train_and_convert": {"parameters": same},
                         "05_ablation": {"parameters": {**same, "T": 80}},
                         "02_ttfs_coding_primer": {"parameters": {"T": 20}}}}  # trains nothing
    assert report.ann_settings(run) == "one"
    run["notebooks"]["01_train_and_convert"]["parameters"] = {**same, "epochs": 18, "precision": "fp32"}
    text = report.ann_settings(run)
    assert text.startswith("2 different: 01_train_and_convert;")
    assert "05_ablation (epochs 8, precision bf16)" in text
    assert report.ann_settings({}) == "one"
