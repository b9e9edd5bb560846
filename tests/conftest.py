"""Shared fixtures: integration tests need root and the services `make setup` starts."""

import os

import pytest


def pytest_collection_modifyitems(config, items):
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="integration test: needs root (run `sudo make test`)")
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(skip)
