"""One home for each value: the profiles hold every parameter value, the notebooks' defaults mirror ``quick``.

A notebook opened in Jupyter and run as it is must do what the default book does,
so each ``parameters`` cell's defaults equal the ``quick`` profile as
:func:`t2fsnn.book.runner.resolve_parameters` merges it. Every profile sets every name a
notebook declares (no value lives only in a notebook), and a value that a profile
gives every notebook taking that name alike lives in its ``defaults``, not once per notebook.
"""
import ast
import json
from pathlib import Path

import pytest

from t2fsnn.book import runner

REPO = Path(__file__).resolve().parents[2]


def _defaults(stem):
    return {name: ast.literal_eval(source) for name, source in runner.declared_parameters(stem).items()}


@pytest.mark.parametrize("stem", runner.BOOK_NOTEBOOKS)
def test_notebook_defaults_equal_the_quick_profile(stem):
    resolved = runner.resolve_parameters(stem, runner.DEFAULT_PROFILE)
    defaults = _defaults(stem)
    differ = {name: (value, resolved.get(name, "<not set by the profile>")) for name, value in defaults.items()
              if name not in resolved or resolved[name] != value or type(resolved[name]) is not type(value)}
    assert not differ, f"{stem}: parameters cell default != quick profile: {differ}"


@pytest.mark.parametrize("profile", runner.PROFILES)
def test_every_profile_sets_every_declared_name(profile):
    prof = runner.load_profile(profile)
    for stem in runner.BOOK_NOTEBOOKS:
        declared = set(runner.declared_parameters(stem))
        for dataset in [None, *(prof["datasets"] if "dataset" in declared else [])]:
            resolved = runner.resolve_parameters(stem, profile, {"dataset": dataset} if dataset else None)
            missing = sorted(declared - set(resolved))
            assert not missing, f"profile {profile!r} sets no value of {missing} for {stem} (dataset {dataset})"


def _notebook_sections(prof):
    yield "notebooks", prof["notebooks"]
    for dataset, entry in prof["datasets"].items():
        yield f"datasets.{dataset}.notebooks", (entry or {}).get("notebooks") or {}


@pytest.mark.parametrize("profile", runner.PROFILES)
def test_shared_values_live_in_the_defaults(profile):
    prof = runner.load_profile(profile)
    declared = {stem: set(runner.declared_parameters(stem)) for stem in runner.BOOK_NOTEBOOKS}
    for section, entries in _notebook_sections(prof):
        for name in sorted({name for entry in entries.values() for name in (entry or {})}):
            takers = [stem for stem in runner.BOOK_NOTEBOOKS if name in declared[stem]]
            values = {repr((entries.get(stem) or {}).get(name, "<unset>")) for stem in takers}
            assert len(takers) < 2 or len(values) > 1, (
                f"profile {profile!r}, {section}: {name} has the same value for every notebook that takes it "
                f"({', '.join(takers)}); move it to the profile's defaults")


@pytest.mark.parametrize("stem", runner.BOOK_NOTEBOOKS)
def test_run_record_is_built_from_the_declared_parameters(stem):
    nb = json.loads((REPO / "notebooks" / f"{stem}.ipynb").read_text())
    code = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "runner.parameter_values(globals())" in code
    assert "run = dict(" not in code, "the run record is not re-typed"
