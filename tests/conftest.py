"""Shared fixtures: the real MNIST, fetched once per test session."""
import pytest

import data

DATA_DIR = "data"  # the project's default --data-dir: tests and users share one verified copy


@pytest.fixture(scope="session")
def mnist_dir():
    data.prepare_mnist(DATA_DIR)
    return DATA_DIR
