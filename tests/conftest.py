import os

import pytest

from tests.helpers import run_cli  # noqa: F401  (tests on branches made before tests/helpers.py import it from here)


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Tests never read or write the user's dataset cache."""
    os.environ["SPECBENCH_CACHE"] = str(tmp_path_factory.mktemp("cache"))
