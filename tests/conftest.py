import os

import pytest
import torch

from specbench.core.defaults import cores, limit_threads
from tests.helpers import registries_put_back


def pytest_collection_modifyitems(items):
    """The slow tests first: pytest-xdist hands the tests to its workers in this order, so the longest start while
    the short ones can still fill the other worker, not last on one worker while the others have finished."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: the file order otherwise


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Tests never read or write the user's dataset cache."""
    os.environ["SPECBENCH_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(autouse=True, scope="session")
def _cores_shared_by_the_workers():
    """pytest-xdist's N workers share the cores: each test process's torch and BLAS pools get cores / N threads.
    With every core's thread in every worker, the pools' spinning took 3x the CPU of the tests that train here.
    The environment is left alone, so the runs and commands the tests start get the usual default."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = max(1, cores() // workers)
        torch.set_num_threads(threads)
        limit_threads(threads)  # kept for the session


@pytest.fixture(autouse=True)
def _registries_as_they_were():
    """A plugin one test loads stays out of the next test's registries: a preset without `trainers` (paper) takes
    every registered trainer, so a leftover plugin trainer would join it, in whatever order xdist runs the tests."""
    with registries_put_back():
        yield
