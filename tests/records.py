"""Kept importable for tests on branches made before tests/helpers.py (issue 35), which is where these live now."""
from tests.helpers import make_record, replace, save, seeds, sweep  # noqa: F401
