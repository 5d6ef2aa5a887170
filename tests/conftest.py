"""Shared fixtures: the real MNIST, fetched once per test session."""
import importlib
import os

import pytest

import data

DATA_DIR = "data"  # the project's default --data-dir: tests and users share one verified copy


@pytest.fixture(scope="session")
def mnist_dir():
    data.prepare_mnist(DATA_DIR)
    return DATA_DIR


def needs(reason):
    """Skip a test whose tool is missing here; under CI (CI set) fail instead: CI must not turn green by
    skipping the browser or the ONNX runtime."""
    if os.environ.get("CI"):
        pytest.fail(f"CI cannot run this test: {reason}")
    pytest.skip(reason)


def import_or_needs(module, reason):
    try:
        return importlib.import_module(module)
    except ImportError:
        needs(reason)
