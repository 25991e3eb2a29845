"""Put the linked collection on sys.path so tests import it by its FQCN,
and tests/ so that they share helpers; select the tier (tests/tiers.py)."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".collections")
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
# Helpers shared by the suites (sql_actions: SQL only tests use).
TESTS = os.path.dirname(os.path.abspath(__file__))
if TESTS not in sys.path:
    sys.path.append(TESTS)

import tiers  # noqa: E402


def pytest_configure(config):
    tiers.configure(config)


def pytest_collection_modifyitems(config, items):
    tiers.select(config, items)
