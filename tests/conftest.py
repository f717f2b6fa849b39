import os
import subprocess
import sys

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Tests never read or write the user's dataset cache."""
    os.environ["SPECBENCH_CACHE"] = str(tmp_path_factory.mktemp("cache"))


def run_cli(*args, timeout=600, cwd=None):
    """Run `python -m specbench ARGS` in a fresh process (in `cwd`); returns the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "specbench", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ}, cwd=cwd)
