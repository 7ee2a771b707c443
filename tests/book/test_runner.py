import nbformat
import pytest

from t2fsnn.book import cli, runner

NB = "01_train_and_convert"


@pytest.fixture
def no_papermill(monkeypatch):
    """Fail the test if a notebook would start."""
    import papermill

    def refuse(*args, **kwargs):
        raise AssertionError("papermill started although the parameters are invalid")

    monkeypatch.setattr(papermill, "execute_notebook", refuse)


def test_resolve_merges_profile_and_overrides():
    got = runner.resolve_parameters(NB, "smoke", {"epochs": "2", "lr": "0.1", "train_limit": "None"})
    assert got["epochs"] == 2 and got["lr"] == 0.1 and got["train_limit"] is None
    assert got["profile"] == "smoke" and got["dataset"] == "mnist_subset"
    assert set(got) == set(runner.declared_parameters(NB))  # only what the notebook declares
    assert "T" not in got


def test_dataset_specific_profile_values():
    got = runner.resolve_parameters(NB, "full", {"dataset": "mnist"})
    assert got["model"] == "mnist_cnn"
    assert runner.resolve_parameters(NB, "full")["model"] == "vgg_small"
    # a value given on the command line wins over the dataset entry
    assert runner.resolve_parameters(NB, "full", {"dataset": "mnist", "epochs": "1"})["epochs"] == 1


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"epoch": "3"}, "unknown parameter 'epoch'; allowed parameters: T, "),
        ({"epochs": "0"}, "epochs=0 is not allowed: it must be an integer >= 1"),
        ({"epochs": "many"}, "epochs='many' is not allowed"),
        ({"percentile": "101"}, "percentile=101.0 is not allowed"),
        ({"dataset": "svhn"}, "one of 'mnist_subset', 'mnist', 'cifar10', 'cifar100'"),
        ({"tau": "5"}, "does not take parameter 'tau'; it takes: "),
        ({"profile": "paper"}, "--profile"),
    ],
)
def test_bad_parameters_refused_before_papermill(no_papermill, tmp_path, overrides, message):
    with pytest.raises(runner.ParameterError) as err:
        runner.run_notebook(NB, "smoke", overrides, output_dir=tmp_path)
    assert message in str(err.value)
    assert not list(tmp_path.iterdir())


def test_book_run_checks_every_notebook_first(no_papermill, tmp_path):
    with pytest.raises(runner.ParameterError, match="unknown parameter 'bogus'"):
        runner.run_book_notebooks("smoke", {"bogus": "0"}, output_dir=tmp_path)
    with pytest.raises(runner.ParameterError, match="T=0 is not allowed"):
        runner.run_book_notebooks("smoke", {"T": "0"}, output_dir=tmp_path)
    with pytest.raises(runner.ParameterError):
        runner.run_book_notebooks("smoke", {"epochs": "0"}, output_dir=tmp_path)


def test_unknown_profile(no_papermill):
    with pytest.raises(runner.ParameterError, match="allowed profiles: smoke, quick, full, paper"):
        runner.resolve_parameters(NB, "huge")


def test_cli_refuses_with_exit_code_2(no_papermill, capsys):
    assert cli.main(["run", NB, "--profile", "smoke", "-p", "lr", "-1"]) == 2
    err = capsys.readouterr().err
    assert "lr=-1.0 is not allowed" in err and "> 0" in err
    assert cli.main(["run", "no_such_notebook"]) == 2
    assert "not found" in capsys.readouterr().err


def test_cli_data_and_params(tmp_path, capsys):
    assert cli.main(["data", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "mnist_subset" in out and "verified" in out and "missing" in out
    assert cli.main(["params"]) == 0
    assert "ef_start" in capsys.readouterr().out


def test_failed_run_leaves_no_half_written_output(tmp_path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("epochs = 1\nprofile = 'x'")
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell("raise RuntimeError('boom')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    src = tmp_path / "broken.ipynb"
    nbformat.write(nb, src)
    out = tmp_path / "out"
    with pytest.raises(Exception, match="boom"):
        runner.run_notebook(src, "smoke", {"epochs": "2"}, output_dir=out)
    assert sorted(p.name for p in out.iterdir()) == ["broken.failed.ipynb"]


def test_record_run():
    table = runner.record_run({"profile": "smoke", "dataset": "mnist_subset", "epochs": 1, "device": "cpu"})
    values = table["value"].to_dict()
    assert values["profile"] == "smoke" and values["dataset"] == "mnist_subset"
    assert "embedded subset" in values["data root"]
    assert values["parameter epochs"] == "1"
    assert values["device"].startswith("cpu")
    for item in ("t2fsnn version", "torch", "python", "source revision"):
        assert values[item]
    assert repr(runner.Text("quick")) == "quick"


def test_source_revision_of_a_run_ignores_the_recorded_runs_it_rewrites(tmp_path, git_repo):
    git = git_repo
    (tmp_path / "book" / "recorded" / "run").mkdir(parents=True)
    (tmp_path / "book" / "recorded" / "run" / "01.ipynb").write_text("{}")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", "-A")
    git("commit", "-qm", "base")
    head = git("rev-parse", "HEAD").strip()
    (tmp_path / "book" / "recorded" / "run" / "01.ipynb").write_text('{"rewritten": true}')
    assert runner._git_commit(tmp_path) == head[:7]
    (tmp_path / "code.py").write_text("x = 2\n")
    assert runner._git_commit(tmp_path) == head[:7] + "-dirty"
    assert runner._git_commit(tmp_path / "not-a-repository") == "unknown"
