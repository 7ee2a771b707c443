"""A small trained and converted MNIST CNN shared by tests (embedded subset, seconds to train)."""
import pytest
import torch

from t2fsnn import convert
from t2fsnn.data import load
from t2fsnn.data import to_tensors
from t2fsnn.training import train_or_load


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory):
    cache_root = tmp_path_factory.mktemp("model-cache")
    return train_or_load(dataset="mnist_subset", model="mnist_cnn", epochs=1, lr=0.05, batch_size=64,
                         seed=0, train_limit=3000, cache_root=cache_root, device="cpu", progress=False)


@pytest.fixture(scope="session")
def trained_mnist(trained_model):
    """(converted network, 64 test images, their labels)."""
    train_images, _ = to_tensors(load("mnist_subset", "train"), 500)
    images, labels = to_tensors(load("mnist_subset", "test"), 64)
    return convert(trained_model.model, train_images), images, labels
