"""Test layout and shared fixtures.

    tests/firmware/          firmware modules, under pytest and again under MicroPython
    tests/firmware/cpython/  the firmware's parser and runner on CPython only (corpus,
                             properties, MicroPython-vs-CPython comparisons)
    tests/server/            the server: ingest, storage, analysis, API, CLI, OCR
    tests/host/              host tools (board commands, the receipt generator)
    tests/e2e/               the real path: firmware on the unix port, server, broker (marker
                             e2e; the dashboard in Chromium also has the marker browser)
    tests/support/           helpers the tests import (on pythonpath, see pyproject.toml)

`make test-fast` leaves out e2e, browser and soak.
"""
import os

import pytest
from dbtarget import db_target  # noqa: F401 -- the fixture, for every test module

E2E = os.path.join(os.path.dirname(os.path.abspath(__file__)), "e2e")


def pytest_collection_modifyitems(items):
    for item in items:
        if str(item.path).startswith(E2E + os.sep):
            item.add_marker(pytest.mark.e2e)
