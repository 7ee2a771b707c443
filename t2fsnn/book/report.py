"""The reproduction report: every quantitative claim of the paper beside the recorded runs' numbers.

Each :class:`Claim` names the paper's value, where our value comes from (a recorded run under
``book/recorded/``, one of its executed notebooks and a glued key, or a function of several
keys), how the two are compared and with what tolerance. :func:`verdict` turns the two
numbers into ``reproduced``, ``not reproduced (...)`` or ``not run (...)``; no verdict is
ever typed by hand. Every claim not reproduced gets a cause (:func:`cause`), computed from the
same recorded numbers: the ANN, the horizon, the definition, the network, or a real difference.
"""
from __future__ import annotations

import ast
import math
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Mapping, Optional, Sequence, Union

import pandas as pd

from t2fsnn.experiments import paper_results
from t2fsnn.experiments.comparison import LATENCY_DEFINITIONS, definition_key
from t2fsnn.book.record import NUMERIC_SOURCES, PRESENTATION_SOURCES, RECORDED_DIR, glued_values, recorded_runs

__all__ = ["Claim", "CLAIMS", "KINDS", "CAUSES", "verdict", "cause", "claim_table", "summary", "run_overview",
           "ann_settings", "RunValues"]

# how ours is held against the paper's value
KINDS = {
    "close": "|ours - paper| <= tolerance",
    "relative": "|ours / paper - 1| <= tolerance",
    "at_most": "ours <= paper + tolerance",
    "at_least": "ours >= paper - tolerance",
    "holds": "the stated property holds in our run",
}


def verdict(kind: str, paper, ours, tolerance: float = 0.0, not_run: Optional[str] = None) -> str:
    """``reproduced``, ``not reproduced (<difference>)`` or ``not run (<reason>)``."""
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not allowed: choose one of {', '.join(KINDS)}")
    if not_run is not None or ours is None or (isinstance(ours, float) and math.isnan(ours)):
        return f"not run ({not_run or 'no recorded value'})"
    if not isinstance(tolerance, (int, float)) or tolerance < 0:
        raise ValueError(f"tolerance={tolerance!r} is not allowed: it must be a number >= 0")
    if kind == "holds":
        return "reproduced" if bool(ours) else "not reproduced (does not hold)"
    paper, ours = float(paper), float(ours)
    if kind == "close":
        ok, difference = abs(ours - paper) <= tolerance + 1e-12, f"{ours - paper:+.3g}"
    elif kind == "relative":
        if paper == 0:
            raise ValueError("a relative comparison needs a paper value other than 0")
        ok, difference = abs(ours / paper - 1) <= tolerance + 1e-12, f"{100 * (ours / paper - 1):+.0f} %"
    elif kind == "at_most":
        ok, difference = ours <= paper + tolerance + 1e-12, f"{ours - paper:+.3g} above"
    else:
        ok, difference = ours >= paper - tolerance - 1e-12, f"{ours - paper:+.3g} below"
    return "reproduced" if ok else f"not reproduced ({difference})"


def _number(text: str) -> Union[float, str]:
    text = text.strip().strip("'\"")
    try:
        return float(text)
    except ValueError:
        return text


class RunValues:
    """The glued values of one recorded run, read lazily per notebook."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._notebooks: Dict[str, Dict[str, Union[float, str]]] = {}

    def get(self, notebook: str, key: str):
        if notebook not in self._notebooks:
            path = self.folder / f"{notebook}.ipynb"
            self._notebooks[notebook] = ({k: _number(v) for k, v in glued_values(path).items()}
                                         if path.exists() else {})
        return self._notebooks[notebook].get(key)


Value = Union[str, Callable[[RunValues], object]]


@dataclass(frozen=True)
class Claim:
    """One quantitative claim of the paper and where our number comes from."""

    section: str
    claim: str
    paper: object
    run: str  # recorded run, e.g. "full-mnist"
    notebook: str
    value: Value  # glued key, or a function of the run's values
    kind: str = "close"
    tolerance: float = 0.0
    chapter: str = "comparison"
    network: str = ""
    not_run: Optional[str] = None  # why no run can check it here
    # what the causes of a failed verdict are tested against (see ``cause``)
    ann: Optional[str] = None  # glued key, in ``notebook``, of the run's ANN accuracy (accuracy claims)
    codings: tuple = ()  # baseline codings whose horizon the number depends on
    alternatives: tuple = ()  # ``(definition, value)``: the same number under another stated definition
    paper_network: str = ""  # the network the paper measured the claim on ("" where it names none)

    def ours(self, runs: Mapping[str, RunValues]):
        if self.run not in runs:
            return None
        return _evaluate(self.value, runs[self.run], self.notebook)


def _evaluate(value: Value, values: RunValues, notebook: str):
    """A glued key of ``notebook`` or a function of the run's values; ``None`` where a key is not recorded."""
    if callable(value):
        try:
            return value(values)
        except (TypeError, ValueError, AttributeError, ZeroDivisionError, KeyError):
            return None
    return values.get(notebook, value)


def _key(name: str) -> str:
    return name.replace("T2FSNN", "t2fsnn").replace("+", "_").lower()


def _ratio(notebook: str, top: str, bottom: str):
    def value(v: RunValues):
        return float(v.get(notebook, top)) / float(v.get(notebook, bottom))
    return value


def _fraction_of(notebook: str, key: str):
    """``"k of n"`` as k / n."""
    def value(v: RunValues):
        k, n = re.match(r"\s*(\d+) of (\d+)", str(v.get(notebook, key))).groups()
        return int(k) / int(n)
    return value


def _glued(notebook: str, key: str):
    """A key of another notebook of the same run."""
    return lambda v: float(v.get(notebook, key))


def _negative(notebook: str, key: str):
    def value(v: RunValues):
        return float(v.get(notebook, key)) < 0
    return value


def _speed_order(order: Sequence[str]):
    """Fig. 6: the codings reach the ANN's accuracy (within a point) in the stated order, fastest first."""
    def value(v: RunValues):
        steps = [float(v.get("06_inference_curves", f"reach_{_key(name)}")) for name in order]
        steps = [math.inf if s < 0 else s for s in steps]
        return all(a <= b for a, b in zip(steps, steps[1:])) and math.isfinite(steps[0])
    return value


def _fastest(name: str, others: Sequence[str]):
    def value(v: RunValues):
        mine = float(v.get("06_inference_curves", f"reach_{_key(name)}"))
        rest = [float(v.get("06_inference_curves", f"reach_{_key(o)}")) for o in others]
        return mine > 0 and all(r < 0 or mine <= r for r in rest)
    return value


def _energy_share(reference: str):
    """Mean over TrueNorth and SpiNNaker of T2FSNN+GO+EF's energy over ``reference``'s."""
    def value(v: RunValues):
        shares = [float(v.get("07_comparison", f"{hw}_t2fsnn_go_ef")) / float(v.get("07_comparison", f"{hw}_{reference}"))
                  for hw in ("tn", "sn")]
        return sum(shares) / len(shares)
    return value


NO_CIFAR100 = "no copy of CIFAR-100 here"
CODINGS = ("rate", "phase", "burst", "T2FSNN+GO+EF")
# the runs that compare the codings: (dataset, run, network); CIFAR-10 on the paper's VGG-16 (a subset of the
# test images on a CPU) and on the small VGG (every test image)
CODING_RUNS = (("MNIST", "full-mnist", "MNIST CNN"), ("CIFAR-10", "paper-cifar10", "VGG-16"),
               ("CIFAR-10", "full-cifar10", "small VGG"))
# the paper's networks: VGG-16 on CIFAR; it does not name its MNIST network
PAPER_NETWORKS = {"MNIST": "", "CIFAR-10": "VGG-16", "CIFAR-100": "VGG-16"}
BASELINES = ("rate", "phase", "burst")


def _table_i_claims() -> list:
    claims = []
    for dataset, rows in paper_results.TABLE_I.items():
        reason = NO_CIFAR100 if dataset == "CIFAR-100" else None
        for method, row in rows.items():
            common = dict(section=f"Table I ({dataset})", run=f"paper-{dataset.lower().replace('-', '')}",
                          notebook="05_ablation", chapter="ablation", network="VGG-16", not_run=reason,
                          paper_network="VGG-16")
            claims += [
                Claim(claim=f"{method}: accuracy (%)", paper=row["accuracy"], value=f"acc_{_key(method)}",
                      tolerance=1.0, ann="ann_accuracy", **common),
                Claim(claim=f"{method}: latency (steps)", paper=row["latency"], value=f"latency_{_key(method)}",
                      **common),
                Claim(claim=f"{method}: spikes per image", paper=row["spikes"], value=f"spikes_{_key(method)}",
                      kind="relative", tolerance=0.25, **common),
            ]
    # the changes GO brings hold for any network: checked on VGG-16 and on the small VGG as well
    deltas = (("CIFAR-10", 0.01, -0.2, "paper-cifar10", "VGG-16"), ("CIFAR-10", 0.01, -0.2, "full-cifar10", "small VGG"),
              ("CIFAR-100", 0.93, -1.9, "paper-cifar100", "VGG-16"))
    for dataset, gain, spikes, run, network in deltas:
        common = dict(section=f"Table I ({dataset})", run=run, notebook="05_ablation", chapter="ablation",
                      network=network, not_run=NO_CIFAR100 if dataset == "CIFAR-100" else None,
                      paper_network="VGG-16")
        claims += [
            Claim(claim="GO: accuracy change (points), no loss", paper=gain, value="go_gain", kind="at_least",
                  tolerance=max(gain, 0.0) + 0.1, **common),
            Claim(claim=f"GO: fewer spikes (paper {spikes:+.1f} %)", paper="fewer", value=_negative("05_ablation", "go_spike_change"),
                  kind="holds", **common),
        ]
    claims.append(Claim(section="Table I (CIFAR-10)", claim="EF: latency cut (%)", paper=46.9, run="paper-cifar10",
                        notebook="05_ablation", value="ef_latency_cut", tolerance=0.1, chapter="ablation",
                        network="VGG-16", paper_network="VGG-16"))
    return claims


def _latency_definitions(coding: str) -> tuple:
    """Latency under the other definitions the comparison records (the claim's own: the settled latency)."""
    key = _key(coding)
    return (("the first step within 1 point of the ANN", _glued("06_inference_curves", f"reach_{key}")),
            ("the first step within 0.1 point of the ANN", _glued("07_comparison", f"latency_{key}_within_0_1")),
            ("the steps simulated", _glued("06_inference_curves", f"steps_{key}")))


def _energy_definitions(coding: str, hardware: str) -> tuple:
    """The energy (``tn`` or ``sn``) under every latency definition of notebook 07 (runs recorded before it
    glued them have none)."""
    key = _key(coding)
    return tuple((f"the latency {definition}", _glued("07_comparison", f"{hardware}_{key}_{definition_key(definition)}"))
                 for definition in LATENCY_DEFINITIONS)


def _table_ii_claims() -> list:
    claims = []
    for dataset, run, network in CODING_RUNS + (("CIFAR-100", "", ""),):  # no run for CIFAR-100
        rows = paper_results.TABLE_II[dataset]
        reason = NO_CIFAR100 if dataset == "CIFAR-100" else None
        for coding in CODINGS:
            row = rows[coding]
            baseline = () if coding.startswith("T2FSNN") else (coding,)
            common = dict(section=f"Table II ({dataset})", run=run, notebook="07_comparison", chapter="comparison",
                          network=network, not_run=reason, codings=baseline, paper_network=PAPER_NETWORKS[dataset])
            key = _key(coding)
            claims += [
                Claim(claim=f"{coding}: accuracy (%)", paper=row["accuracy"], value=f"acc_{key}", tolerance=0.5,
                      ann="ann_accuracy", **common),
                Claim(claim=f"{coding}: latency (steps)", paper=row["latency"], value=f"latency_{key}",
                      kind="relative", tolerance=0.25, alternatives=_latency_definitions(coding), **common),
                Claim(claim=f"{coding}: spikes (10^6 per image)", paper=row["spikes"], value=f"spikes_{key}",
                      kind="relative", tolerance=0.25, **common),
            ]
            if coding != "rate":
                claims += [
                    Claim(claim=f"{coding}: energy, TrueNorth (rate = 1)", paper=row["energy_tn"], value=f"tn_{key}",
                          kind="relative", tolerance=0.25, alternatives=_energy_definitions(coding, "tn"), **common),
                    Claim(claim=f"{coding}: energy, SpiNNaker (rate = 1)", paper=row["energy_sn"], value=f"sn_{key}",
                          kind="relative", tolerance=0.25, alternatives=_energy_definitions(coding, "sn"), **common),
                ]
    return claims


def _kernel_figure_claims(dataset: str, run: str, network: str) -> list:
    """Fig. 4 and Fig. 5: GO's loss trends, earlier first spikes and fewer spikes, on one run."""
    fig = dict(run=run, network=network, paper_network=PAPER_NETWORKS[dataset])
    return [
        Claim(section=f"Fig. 4 ({dataset})", claim="GO loss trends: the five trends of Fig. 4 hold",
              paper="all five", notebook="04_kernel_optimization",
              value=lambda v: str(v.get("04_kernel_optimization", "all_trends_hold")).startswith("all five"),
              kind="holds", chapter="kernel_optimization", **fig),
        Claim(section=f"Fig. 5 ({dataset})", claim="GO moves every layer's first spike earlier (share of layers)",
              paper=1.0, notebook="05_ablation", value=_fraction_of("05_ablation", "first_earlier"),
              kind="at_least", chapter="ablation", **fig),
        Claim(section=f"Fig. 5 ({dataset})", claim="GO reduces the number of spikes", paper="fewer",
              notebook="05_ablation", value=_negative("05_ablation", "go_spike_change"), kind="holds",
              chapter="ablation", **fig),
    ]


def _figure_and_text_claims() -> list:
    claims = []
    for dataset, run, network in CODING_RUNS:
        fig = dict(run=run, network=network, paper_network=PAPER_NETWORKS[dataset], codings=BASELINES)
        claims += _kernel_figure_claims(dataset, run, network) + [
            Claim(section=f"Fig. 6 ({dataset})", claim="speed, fast to slow: burst, phase, T2FSNN, rate",
                  paper="burst > phase > T2FSNN > rate", notebook="06_inference_curves",
                  value=_speed_order(("burst", "phase", "T2FSNN", "rate")), kind="holds",
                  chapter="inference_curves", **fig),
            Claim(section=f"Fig. 6 ({dataset})", claim="T2FSNN+GO+EF is the fastest", paper="fastest",
                  notebook="06_inference_curves",
                  value=_fastest("T2FSNN+GO+EF", ("rate", "phase", "burst", "T2FSNN", "T2FSNN+GO", "T2FSNN+EF")),
                  kind="holds", chapter="inference_curves", **fig),
            Claim(section=f"Table III ({dataset})", claim="T2FSNN+GO+EF's synaptic additions over rate coding's",
                  paper=1.0, notebook="07_comparison", value=_ratio("07_comparison", "ours_syn_vs_ann", "rate_syn_vs_ann"),
                  kind="at_most", chapter="comparison", **fig),
            Claim(section=f"Abstract, on {dataset}", claim="latency of T2FSNN+GO+EF over burst coding's (CIFAR-100: 22 %)",
                  paper=0.22, notebook="07_comparison", value=_ratio("07_comparison", "latency_t2fsnn_go_ef", "latency_burst"),
                  kind="at_most", tolerance=0.05, chapter="comparison", **fig),
            Claim(section=f"Abstract, on {dataset}", claim="spikes of T2FSNN+GO+EF over burst coding's (CIFAR-100: < 1 %)",
                  paper=0.01, notebook="07_comparison", value=_ratio("07_comparison", "spikes_t2fsnn_go_ef", "spikes_burst"),
                  kind="at_most", chapter="comparison", **fig),
            Claim(section=f"IV-C, on {dataset}", claim="energy of T2FSNN+GO+EF over rate coding's (mean of TN, SN)",
                  paper=0.06, notebook="07_comparison", value=_energy_share("rate"), kind="at_most", tolerance=0.04,
                  chapter="comparison", **fig),
            Claim(section=f"IV-C, on {dataset}", claim="energy of T2FSNN+GO+EF over burst coding's (mean of TN, SN)",
                  paper=0.16, notebook="07_comparison", value=_energy_share("burst"), kind="at_most", tolerance=0.04,
                  chapter="comparison", **fig),
        ]
    claims += [
        Claim(section="Abstract (CIFAR-100)", claim="latency of T2FSNN+GO+EF over burst coding's", paper=0.22,
              run="paper-cifar100", notebook="07_comparison", value="", kind="at_most", network="VGG-16",
              not_run=NO_CIFAR100),
        Claim(section="Abstract (CIFAR-100)", claim="spikes of T2FSNN+GO+EF over burst coding's", paper=0.01,
              run="paper-cifar100", notebook="07_comparison", value="", kind="at_most", network="VGG-16",
              not_run=NO_CIFAR100),
    ]
    return claims


CLAIMS = _table_i_claims() + _table_ii_claims() + _figure_and_text_claims()


def _shown(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "holds" if value else "does not hold"
    if isinstance(value, (int, float)):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return str(value)


def _tolerance(claim: Claim) -> str:
    return {"holds": "-", "relative": f"± {100 * claim.tolerance:.0f} %", "close": f"± {claim.tolerance:g}",
            "at_most": f"≤ paper + {claim.tolerance:g}", "at_least": f"≥ paper - {claim.tolerance:g}"}[claim.kind]


# the causes of a failed verdict, tested in this order (see ``cause``)
CAUSES = ("ANN gap", "horizon", "definition", "network", "real")
_NOT_FLAT = re.compile(r"^not flat at the end of the horizon: (.*)$")


def _not_flat(values: RunValues) -> list:
    """The baseline codings whose curve the run's inference-curve notebook found not flat at its horizon."""
    match = _NOT_FLAT.match(str(values.get("06_inference_curves", "horizons_flat") or "").strip())
    return [name.strip() for name in match.group(1).split(",")] if match else []


def cause(claim: Claim, values: RunValues, ours) -> str:
    """Why a claim is not reproduced, from the run's own numbers: the first of ``CAUSES`` that holds.

    * ANN gap: our ANN is below the paper's SNN accuracy by more than the tolerance, while our SNN
      stays within the tolerance of our ANN (the paper gives no ANN accuracy to hold the gap against);
    * horizon: a baseline coding the number depends on was not flat at the steps simulated;
    * definition: the number passes under another definition the run records;
    * network: the run's network stands in for the one the paper used;
    * real: none of these; the difference is a finding.
    """
    if claim.ann is not None and ours is not None:
        ann = _evaluate(claim.ann, values, claim.notebook)
        if ann is not None and float(ann) < float(claim.paper) - claim.tolerance \
                and float(ann) - float(ours) <= claim.tolerance + 1e-12:
            return (f"ANN gap: our ANN reaches {float(ann):.2f} %, {float(claim.paper) - float(ann):.2f} points below the "
                    f"paper's SNN; our SNN is within {claim.tolerance:g} of our ANN ({float(ours) - float(ann):+.2f})")
    stuck = [name for name in claim.codings if name in _not_flat(values)]
    if stuck:
        return f"horizon: {', '.join(stuck)} not flat at the steps simulated"
    for definition, value in claim.alternatives:
        other = _evaluate(value, values, claim.notebook)
        if other is not None and verdict(claim.kind, claim.paper, other, claim.tolerance) == "reproduced":
            return f"definition: reproduced with {definition} ({_shown(other)})"
    if claim.paper_network and claim.network and claim.network != claim.paper_network:
        return f"network: measured on the {claim.network}, a stand-in for the paper's {claim.paper_network}"
    return "real: neither the ANN, the horizon, the definition nor the network explains it"


def claim_table(claims: Sequence[Claim] = CLAIMS, root: os.PathLike = RECORDED_DIR) -> pd.DataFrame:
    """One row per claim: section with its recorded run, claim, paper, ours, the test, verdict, why, chapter."""
    runs = {name: RunValues(Path(root) / name) for name, run in recorded_runs(root).items() if run.get("complete")}
    rows = []
    for claim in claims:
        ours = None if claim.not_run else claim.ours(runs)
        reason = claim.not_run or (None if claim.run in runs else f"{claim.run} not recorded yet")
        word = verdict(claim.kind, claim.paper, ours, claim.tolerance, reason if ours is None else None)
        why = cause(claim, runs[claim.run], ours) if word.startswith("not reproduced") else ""
        run = f"{claim.run}, {claim.network}" if claim.network else claim.run
        rows.append({"section": f"{claim.section} [{run}]", "claim": claim.claim, "paper": _shown(claim.paper),
                     "ours": _shown(ours), "reproduced when": _tolerance(claim), "verdict": word, "why": why,
                     "chapter": claim.chapter})
    table = pd.DataFrame(rows)
    # claims with a recorded number first, those that could not be run after them
    order = table["verdict"].str.startswith("not run").astype(int)
    return table.iloc[order.argsort(kind="stable")].reset_index(drop=True)


def summary(table: pd.DataFrame) -> Dict[str, object]:
    """Counts of each verdict, of each cause among the claims not reproduced, and those claims."""
    words = table["verdict"].str.extract(r"^(reproduced|not reproduced|not run)")[0]
    failed = table[words == "not reproduced"]
    causes = failed["why"].str.split(":").str[0] if "why" in failed else pd.Series(dtype=str)
    by_cause = {name: int((causes == name).sum()) for name in CAUSES}
    return {"claims": len(table), "reproduced": int((words == "reproduced").sum()),
            "not reproduced": int((words == "not reproduced").sum()), "not run": int((words == "not run").sum()),
            "causes": by_cause, "causes text": _causes_text(len(failed), by_cause),
            "not reproduced list": [f"{r.section}: {r.claim} (paper {r.paper}, ours {r.ours})" for r in failed.itertuples()]}


_CAUSE_WORDS = {"ANN gap": "explained by our weaker ANN", "horizon": "by a baseline horizon too short to be flat",
                "definition": "by the definition of the number", "network": "by a stand-in network"}


def _causes_text(failed: int, by_cause: Mapping[str, int]) -> str:
    """``of N not reproduced, k are explained by ..., and m are real differences``."""
    parts = [f"{by_cause[name]} {_CAUSE_WORDS[name]}" for name in CAUSES[:-1]]
    real = by_cause["real"]
    return (f"of {failed} not reproduced, {', '.join(parts)}, and {real} "
            f"{'is a real difference' if real == 1 else 'are real differences'}")


def _changed_since(commit: str, root: Path, sources: Sequence[str] = NUMERIC_SOURCES) -> list:
    """Files under ``sources`` (by default all that can change numbers) that differ in substance between ``commit`` and HEAD.

    Renames are followed (``git diff -M``): a moved file is compared with its old self. Left out
    are changes that cannot move a number: comments and docstrings, the package's own import lines
    (a module that moved is imported from its new place), the layout of a YAML file, the prose of a
    notebook, and the book's presentation machinery (``PRESENTATION_SOURCES``).
    """
    try:
        out = subprocess.run(["git", "-C", str(root), "diff", "--name-status", "-M", commit, "HEAD", "--",
                              *sources], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ["(git not available)"]
    if out.returncode != 0:
        return ["(revision not in this repository)"]
    changed = []
    for line in out.stdout.splitlines():
        fields = line.split("\t")
        if len(fields) < 2:
            continue
        old, new = (fields[1], fields[2]) if fields[0][0] in "RC" and len(fields) > 2 else (fields[1], fields[1])
        if fields[0][0] == "A":
            old = None
        if any(new == p or new.startswith(p) for p in PRESENTATION_SOURCES):
            continue
        if fields[0][0] == "D" or not _same_substance(root, commit, old, new):
            changed.append(new)
    return changed


def _same_substance(root: Path, commit: str, old: Optional[str], new: str) -> bool:
    """Whether ``old`` at ``commit`` and ``new`` at HEAD hold the same code (``old=None``: an added file)."""
    texts = []
    for revision, path in ((commit, old), ("HEAD", new)):
        if path is None:
            texts.append("")
            continue
        try:
            shown = subprocess.run(["git", "-C", str(root), "show", f"{revision}:{path}"],
                                   capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return False
        if shown.returncode != 0:
            return False
        texts.append(shown.stdout)
    try:
        return _substance(new, texts[0]) == _substance(new, texts[1])
    except (SyntaxError, ValueError):
        return False


def _substance(path: str, text: str):
    """What of a source file can change a number: its code without docstrings and package imports,
    a YAML file's values, a notebook's code cells."""
    if path.endswith(".py"):
        return _python_substance(text)
    if path.endswith((".yml", ".yaml")):
        import yaml

        return yaml.safe_load(text) if text else None
    if path.endswith(".ipynb"):
        import json

        cells = json.loads(text)["cells"] if text else []
        return [_python_substance("".join(cell["source"])) for cell in cells if cell["cell_type"] == "code"]
    return text


def _python_substance(text: str) -> str:
    tree = _without_docstrings(ast.parse(text))
    for node in ast.walk(tree):
        if hasattr(node, "body") and isinstance(node.body, list):
            node.body = [item for item in node.body if not _imports_the_package(item)] or [ast.Pass()]
        if isinstance(node, ast.Constant) and isinstance(node.value, str):  # a module named in a message
            node.value = re.sub(r"\bt2fsnn(\.[A-Za-z_]\w*)+", "t2fsnn.<module>", node.value)
    dumped = ast.dump(tree)
    return "" if dumped == ast.dump(ast.Module(body=[ast.Pass()], type_ignores=[])) else dumped


def _imports_the_package(node: ast.AST) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.level > 0 or (node.module or "").split(".")[0] == "t2fsnn"
    if isinstance(node, ast.Import):
        return all(alias.name.split(".")[0] == "t2fsnn" for alias in node.names)
    return False


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def _run_changes(run: Mapping, commit: str, repo: Path) -> list:
    """Files that change numbers and differ since the run: the package, and each recorded notebook's own source.

    Each notebook is held against the revision it was recorded with; another notebook's code (the
    report's, say) cannot change this run's numbers.
    """
    notebooks = run.get("notebooks") or {}
    if not notebooks:
        return _changed_since(commit, repo) if commit else []
    changed: list = []
    for stem, entry in notebooks.items():
        revision = entry.get("commit") or commit
        if revision:
            changed += [path for path in _changed_since(revision, repo, ("t2fsnn", f"notebooks/{stem}.ipynb"))
                        if path not in changed]
    return changed


#: the notebook parameters that pick the ANN a notebook trains or loads (its cache key)
ANN_PARAMETERS = ("dataset", "model", "epochs", "lr", "batch_size", "seed", "precision", "train_jpeg_quality",
                  "label_smoothing", "train_limit")


def ann_settings(run: Mapping) -> str:
    """The ANN settings of a run's notebooks: ``"one"`` when all are the same, otherwise which notebooks used which,
    so that a run re-recorded in part with a new network says so."""
    groups: Dict[tuple, list] = {}
    for stem, entry in (run.get("notebooks") or {}).items():
        parameters = entry.get("parameters") or {}
        if "model" not in parameters:
            continue
        settings = tuple((key, parameters.get(key)) for key in ANN_PARAMETERS)
        groups.setdefault(settings, []).append(stem)
    if len(groups) <= 1:
        return "one"
    reference = dict(next(iter(groups)))
    parts = []
    for settings, stems in groups.items():
        differing = ", ".join(f"{key} {value}" for key, value in settings if value != reference[key])
        parts.append(", ".join(stems) + (f" ({differing})" if differing else ""))
    return f"{len(groups)} different: " + "; ".join(parts)


def run_overview(root: os.PathLike = RECORDED_DIR, repo: os.PathLike = RECORDED_DIR.parents[1]) -> pd.DataFrame:
    """Every recorded run: profile, dataset, revision (labelled when numeric sources changed since), the ANNs its
    notebooks used, machine, time."""
    rows = []
    for name, run in recorded_runs(root).items():
        commit = run.get("revision", {}).get("commit", "")
        changed = _run_changes(run, commit, Path(repo))
        label = commit[:10] + (" (dirty)" if run.get("revision", {}).get("dirty") else "")
        if changed:
            label = f"recorded with revision {label}; {len(changed)} file(s) that change numbers differ in this book"
        machine = run.get("machine", {})
        hours = (run.get("seconds") or 0) / 3600
        rows.append({"run": name, "profile": run.get("profile"), "dataset": run.get("dataset"),
                     "revision": label, "ANN settings": ann_settings(run), "complete": bool(run.get("complete")),
                     "machine": f"{machine.get('cpu')}, {machine.get('cpu cores')} cores"
                                + (f", {machine['gpu']}" if machine.get("gpu") else ""),
                     "notebooks": len(run.get("notebooks", {})), "wall time (h)": round(hours, 2)})
    columns = ["run", "profile", "dataset", "revision", "ANN settings", "complete", "machine", "notebooks",
               "wall time (h)"]
    return pd.DataFrame(rows, columns=columns).set_index("run")
