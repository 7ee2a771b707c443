import json
from pathlib import Path

import pytest

from t2fsnn.book import params, runner

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("epochs", 3, 3), ("lr", 1, 1.0), ("tau", 20.0, 20.0), ("td", -1.5, -1.5),
        ("train_limit", None, None), ("ef_start", None, None), ("percentile", 100, 100.0),
        ("dataset", "cifar100", "cifar100"), ("engine", "clock", "clock"), ("seed", 0, 0),
    ],
)
def test_valid_values(name, value, expected):
    assert params.validate(name, value) == expected


@pytest.mark.parametrize(
    "name, value, allowed",
    [
        ("epochs", 0, ">= 1"), ("epochs", 2.5, "integer"), ("epochs", True, "integer"), ("epochs", None, "integer"),
        ("lr", 0.0, "> 0"), ("lr", float("nan"), "number"), ("batch_size", -1, ">= 1"), ("seed", -1, ">= 0"),
        ("percentile", 0, "> 0"), ("percentile", 100.1, "<= 100"), ("T", 0, ">= 1"), ("tau", 0, "> 0"),
        ("ef_start", 0, ">= 1"), ("dataset", "imagenet", "mnist_subset"), ("engine", "fast", "exact"),
        ("device", "tpu", "cuda"), ("test_limit", 0, "or None"), ("model", 3, "vgg16"),
    ],
)
def test_invalid_values_name_value_and_allowed(name, value, allowed):
    with pytest.raises(ValueError) as err:
        params.validate(name, value)
    text = str(err.value)
    assert name in text and repr(value) in text and allowed in text


def test_unknown_parameter_lists_allowed_names():
    with pytest.raises(ValueError) as err:
        params.validate("epoch", 3)
    assert "'epoch'" in str(err.value)
    for name in ("epochs", "lr", "tau", "ef_start"):
        assert name in str(err.value)


def test_ef_start_checked_against_T():
    assert params.validate_all({"T": 80, "ef_start": 40}) == {"T": 80, "ef_start": 40}
    assert params.validate_all({"T": 80, "ef_start": 80})["ef_start"] == 80
    with pytest.raises(ValueError, match="ef_start=81.*T=80"):
        params.validate_all({"T": 80, "ef_start": 81})


@pytest.mark.parametrize(
    "name, text, expected",
    [("epochs", "3", 3), ("epochs", "1e2", 100), ("lr", "0.01", 0.01), ("tau", "20", 20.0),
     ("train_limit", "None", None), ("ef_start", "none", None), ("dataset", "cifar10", "cifar10")],
)
def test_parse_from_strings(name, text, expected):
    value = params.parse(name, text)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("name, text", [("epochs", "1.5"), ("epochs", "three"), ("lr", "fast"), ("T", "None")])
def test_parse_refuses(name, text):
    with pytest.raises(ValueError, match=name):
        params.parse(name, text)


def test_describe_lists_every_parameter():
    text = params.describe()
    assert all(name in text for name in params.PARAMS)


@pytest.mark.parametrize("profile", runner.PROFILES)
def test_profiles_are_valid(profile):
    prof = runner.load_profile(profile)
    assert prof["description"] and prof["cost"]
    params.validate_all(prof["defaults"])
    for stem in prof["notebooks"]:
        assert stem in runner.BOOK_NOTEBOOKS
    # what every book notebook would get, for the default dataset and each dataset entry
    for stem in runner.BOOK_NOTEBOOKS:
        declared = runner.declared_parameters(stem)
        runner.resolve_parameters(stem, profile)
        if "dataset" in declared:
            for dataset in prof["datasets"]:
                assert runner.resolve_parameters(stem, profile, {"dataset": dataset})["dataset"] == dataset


def test_paper_profile_settings():
    paper = runner.load_profile("paper")
    assert (paper["defaults"]["T"], paper["defaults"]["tau"], paper["defaults"]["ef_start"]) == (80, 20.0, 40)
    assert paper["defaults"]["model"] == "vgg16"
    mnist = paper["datasets"]["mnist"]
    assert (mnist["T"], mnist["tau"], mnist["td"]) == (20, 5.0, 0.0)


@pytest.mark.parametrize("stem", runner.BOOK_NOTEBOOKS)
def test_book_notebooks_declare_known_parameters_and_have_no_outputs(stem):
    path = REPO / "notebooks" / f"{stem}.ipynb"
    nb = json.loads(path.read_text())
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    declared = runner.declared_parameters(path)
    assert "profile" in declared
    assert set(declared) <= set(params.PARAMS)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [] and cell.get("execution_count") is None, "commit notebooks without outputs"
    code = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "record_run(" in code, "every book notebook records its run (t2fsnn.book.runner.record_run)"
