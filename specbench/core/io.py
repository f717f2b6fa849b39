"""Atomic writes: a file appears whole or not at all (a temporary file beside it, then a rename), readable by
colleagues sharing a results directory (mode 0666 less the umask, like any file a user writes: 0644 under the
usual umask 022)."""
from __future__ import annotations

import errno
import json
import math
import os
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def finite_or_none(value):
    """JSON has no inf/NaN: non-finite numbers are written as null (read: not reached / no value)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


def ensure_dir(directory: Path | str) -> Path:
    """Make `directory` and its parents; where a component is a file, an OSError that says so ("Not a
    directory", naming it), not the "File exists" mkdir gives."""
    directory = Path(directory)
    for part in [directory, *directory.parents]:
        if part.exists() and not part.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(part))
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def check_writable(directory: Path | str) -> Path:
    """Make `directory` (`ensure_dir`) and create and remove a temporary file in it, as an atomic write does: an
    OSError now, not after the work whose result was to be written there."""
    directory = ensure_dir(directory)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-write-test-")
    os.close(fd)
    os.unlink(tmp)
    return directory


def to_json(payload: dict, indent: int | None = 1) -> str:
    """`payload` as JSON, non-finite numbers as null: the one serialisation of every file specbench writes."""
    return json.dumps(finite_or_none(payload), indent=indent, allow_nan=False)


def write_json_atomic(path: Path | str, payload: dict) -> None:
    """`payload` as indented JSON, non-finite numbers as null."""
    write_bytes_atomic(path, to_json(payload).encode())


def write_text_atomic(path: Path | str, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def write_bytes_atomic(path: Path | str, data: bytes) -> None:
    """Write `data` to a temporary file beside `path` (never read as a record: it starts with '.tmp-'), then
    rename it over `path`. An OSError names `path`, the file the user asked for, not the temporary one."""
    path = Path(path)
    try:
        ensure_dir(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o666 & ~_umask())  # mkstemp makes 0600: colleagues could not read the results
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
