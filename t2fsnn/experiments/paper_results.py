"""The paper's published numbers (Park et al., DAC 2020), kept as data to print beside ours.

Every table here is the paper's, not a result of this package; ``AUTHORS_KERNELS`` holds the
kernels the authors released with their code.
"""
from __future__ import annotations

import pandas as pd

__all__ = ["TABLE_I", "TABLE_II", "TABLE_III", "AUTHORS_KERNELS", "table_i", "table_ii", "table_iii",
           "authors_kernels", "dataset_name"]

# our dataset names -> the paper's
_DATASET_NAMES = {"mnist": "MNIST", "mnist_subset": "MNIST", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}


def dataset_name(dataset: str) -> str:
    """The paper's name of one of our datasets ("cifar10" -> "CIFAR-10")."""
    if dataset not in _DATASET_NAMES:
        raise ValueError(f"dataset={dataset!r} is not allowed: choose one of {', '.join(_DATASET_NAMES)}")
    return _DATASET_NAMES[dataset]

# Table I: ablation study (VGG-16; T = 80, tau = 20 and t_d = 0 before optimization, early firing
# from step 40). Spikes per image (not 10^6); latency in time steps.
TABLE_I = {
    "CIFAR-10": {
        "T2FSNN": {"latency": 1280, "accuracy": 91.36, "spikes": 6.898e4},
        "T2FSNN+GO": {"latency": 1280, "accuracy": 91.37, "spikes": 6.887e4},
        "T2FSNN+EF": {"latency": 680, "accuracy": 91.37, "spikes": 6.893e4},
        "T2FSNN+GO+EF": {"latency": 680, "accuracy": 91.43, "spikes": 6.881e4},
    },
    "CIFAR-100": {
        "T2FSNN": {"latency": 1280, "accuracy": 66.04, "spikes": 8.626e4},
        "T2FSNN+GO": {"latency": 1280, "accuracy": 66.97, "spikes": 8.464e4},
        "T2FSNN+EF": {"latency": 680, "accuracy": 68.09, "spikes": 8.603e4},
        "T2FSNN+GO+EF": {"latency": 680, "accuracy": 68.79, "spikes": 8.444e4},
    },
}

# Table II: comparison with other DNN-to-SNN conversion methods. Spikes in 10^6 per image;
# normalized energy relative to rate coding on TrueNorth (TN) and SpiNNaker (SN).
# The paper gives only the accuracy of reverse coding (TDSNN) on MNIST.
TABLE_II = {
    "MNIST": {
        "rate": {"accuracy": 99.10, "latency": 200, "spikes": 0.100, "energy_tn": 1.000, "energy_sn": 1.000},
        "phase": {"accuracy": 99.20, "latency": 16, "spikes": 3.000, "energy_tn": 12.048, "energy_sn": 19.228},
        "burst": {"accuracy": 99.25, "latency": 87, "spikes": 0.251, "energy_tn": 1.265, "energy_sn": 1.763},
        "reverse": {"accuracy": 99.08, "latency": None, "spikes": None, "energy_tn": None, "energy_sn": None},
        "T2FSNN+GO+EF": {"accuracy": 99.33, "latency": 40, "spikes": 0.002, "energy_tn": 0.128, "energy_sn": 0.085},
    },
    "CIFAR-10": {
        "rate": {"accuracy": 91.14, "latency": 10000, "spikes": 61.949, "energy_tn": 1.000, "energy_sn": 1.000},
        "phase": {"accuracy": 91.21, "latency": 1500, "spikes": 35.196, "energy_tn": 0.317, "energy_sn": 0.418},
        "burst": {"accuracy": 91.41, "latency": 1125, "spikes": 6.920, "energy_tn": 0.112, "energy_sn": 0.112},
        "T2FSNN+GO+EF": {"accuracy": 91.43, "latency": 680, "spikes": 0.069, "energy_tn": 0.041, "energy_sn": 0.025},
    },
    "CIFAR-100": {
        "rate": {"accuracy": 66.50, "latency": 10000, "spikes": 81.525, "energy_tn": 1.000, "energy_sn": 1.000},
        "phase": {"accuracy": 68.66, "latency": 8950, "spikes": 258.408, "energy_tn": 1.805, "energy_sn": 2.351},
        "burst": {"accuracy": 68.77, "latency": 3100, "spikes": 25.074, "energy_tn": 0.309, "energy_sn": 0.308},
        "T2FSNN+GO+EF": {"accuracy": 68.79, "latency": 680, "spikes": 0.084, "energy_tn": 0.041, "energy_sn": 0.025},
    },
}

# Table III: computational cost in millions of operations per image (VGG-16 on CIFAR-100).
# None marks the paper's "-" (no multiplications for rate coding).
TABLE_III = {
    "DNN": {"mult": 146.50, "add": 146.50},
    "rate": {"mult": None, "add": 81.525},
    "phase": {"mult": 258.408, "add": 258.408},
    "burst": {"mult": 25.074, "add": 25.074},
    "TDSNN": {"mult": 14.84, "add": 154.21},
    "T2FSNN": {"mult": 0.084, "add": 0.084},
}


def table_i(dataset: str) -> pd.DataFrame:
    """The paper's Table I rows for ``dataset`` ("CIFAR-10" or "CIFAR-100"); the paper has no MNIST ablation."""
    if dataset not in TABLE_I:
        raise ValueError(f"dataset={dataset!r} is not allowed: choose one of {', '.join(TABLE_I)}")
    frame = pd.DataFrame(TABLE_I[dataset]).T[["latency", "accuracy", "spikes"]]
    frame.index.name = "method"
    return frame


def table_ii(dataset: str) -> pd.DataFrame:
    """The paper's Table II rows for ``dataset`` ("MNIST", "CIFAR-10" or "CIFAR-100")."""
    if dataset not in TABLE_II:
        raise ValueError(f"dataset={dataset!r} is not allowed: choose one of {', '.join(TABLE_II)}")
    frame = pd.DataFrame(TABLE_II[dataset]).T
    frame.index.name = "coding"
    return frame.rename(columns={"accuracy": "accuracy (%)", "latency": "latency (steps)", "spikes": "spikes (10^6)",
                                 "energy_tn": "energy TrueNorth", "energy_sn": "energy SpiNNaker"})


def table_iii() -> pd.DataFrame:
    """The paper's Table III (millions of operations, VGG-16 on CIFAR-100)."""
    frame = pd.DataFrame(TABLE_III).T
    frame.index.name = "coding"
    return frame


# The authors' trained kernels for VGG-16 on CIFAR-10 (T = 80, tau = 20 and t_d = 0 before GO), as released
# with their code: temporal_coding/vgg_cifar_ro_0/tc-20_tw-80_itr-60000_outlier of
# github.com/seongsikpark/SNN-neural-coding. One (tau, t_d) per spiking layer, input first.
AUTHORS_KERNELS = {
    ("CIFAR-10", "VGG-16", 80): {
        "layers": ("in", "conv1", "conv1_1", "conv2", "conv2_1", "conv3", "conv3_1", "conv3_2", "conv4", "conv4_1",
                   "conv4_2", "conv5", "conv5_1", "conv5_2", "fc1", "fc2"),
        "tau": (25.492895, 19.455557, 19.904726, 19.588089, 19.378021, 19.330545, 19.327015, 19.291615, 19.285181,
                19.287987, 19.259449, 19.247034, 19.25396, 19.225698, 19.343956, 19.333632),
        "td": (0.0, -2.0043764, -1.7328169, -2.0950897, -1.5212977, -2.9436326, -2.7657661, -2.6294494, -3.4544876,
               -4.0598626, -3.675116, -3.2784688, -3.276257, -2.3806674, -3.7171903, -4.551571),
    },
}


def authors_kernels(dataset: str, network: str, T: int) -> pd.DataFrame:
    """The authors' released kernels for ``(dataset, network, T)``: one row per spiking layer (their names)."""
    key = (dataset, network, T)
    if key not in AUTHORS_KERNELS:
        known = ", ".join(repr(k) for k in AUTHORS_KERNELS)
        raise ValueError(f"(dataset, network, T)={key!r} is not allowed: the authors released kernels for {known}")
    entry = AUTHORS_KERNELS[key]
    frame = pd.DataFrame({"authors' layer": entry["layers"], "tau": entry["tau"], "td": entry["td"]})
    frame.index.name = "position"
    return frame

