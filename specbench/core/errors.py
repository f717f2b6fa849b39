"""Exceptions that specbench turns into a clear message instead of a traceback."""


class UsageError(Exception):
    """Bad input from the user (unknown name, bad value, broken config): one line, exit status 2."""


class Diverged(Exception):
    """A training step produced non-finite values or its ODE solver failed; the run is recorded as `diverged`."""
