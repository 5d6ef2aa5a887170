"""Shared fixtures: the real MNIST, fetched once per test session; and the tiers.

`pytest` runs everything (about 5 minutes on a 2-core CPU); `pytest -m "not slow"` leaves out the tests
marked slow and every test that drives the browser, for about a minute while working."""
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


def pytest_collection_modifyitems(items):
    """A test that drives the browser is slow: Chromium's start and the mouse's strokes take seconds."""
    for item in items:
        if {"page", "browser"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
