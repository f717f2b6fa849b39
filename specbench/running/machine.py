"""What the protocol reads off the machine: peak memory during training and the environment a record names."""
from __future__ import annotations

import ctypes
import gc
import importlib.metadata
import platform
import resource
import subprocess
from functools import lru_cache
from pathlib import Path

import numpy
import psutil
import torch

from specbench.core.defaults import cores


def _growth(now: int | None, before: int | None) -> int | None:
    return None if now is None or before is None else max(0, now - before)


@lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's malloc_trim, or None where the C library is not glibc (then the measure keeps the heap's slack)."""
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def _trim_heap() -> None:
    """Hand the heap's free pages back to the OS, so that the resident set counts memory in use rather than what
    earlier work freed and the allocator kept: without it one spectral run (element mini-batches, 2001 times)
    measured 6.3 MiB in a sweep and 15.8 MiB alone, from the heap that the data, the setup or an evaluation left."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


class PeakMemory:
    """Peak memory growth over the state at `start()`: the allocator's peak on CUDA, peak RSS on CPU. Between
    `pause()` and `resume()` (evaluations) allocations are not counted, where the peak can be reset (CUDA; Linux
    >= 4.0 on CPU). On CPU the heap's free pages go back to the OS before each baseline is taken (start, current,
    resume), so what an evaluation or the setup freed is not counted as held. With `measure=False` (a process that
    is not the run's own) it measures nothing, at no cost: every figure is None."""

    def __init__(self, cuda: bool, measure: bool = True):
        self.cuda, self.measure = cuda, measure

    def current(self) -> int | None:
        """Bytes in use now: the allocator's on CUDA, the resident set on CPU."""
        if not self.measure:
            return None
        if self.cuda:
            return int(torch.cuda.memory_allocated())
        _trim_heap()
        return int(psutil.Process().memory_info().rss)

    def start(self):
        gc.collect()  # measured or not: what a process ran before leaves no garbage for training's clock to collect
        self.best = 0
        self.paused_at = None
        self.base = self.current()
        self.resettable = self.measure and self._reset()

    def _reset(self) -> bool:
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
            return True
        try:  # Linux >= 4.0: writing 5 resets the peak RSS (VmHWM) to the current RSS
            Path("/proc/self/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    def _since_reset(self) -> int | None:
        if self.base is None:
            return None
        if self.cuda:
            return max(0, int(torch.cuda.max_memory_allocated()) - self.base)
        hwm = _status_kb("VmHWM") if self.resettable else \
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, peak since the process began
        return max(0, hwm * 1024 - self.base)

    def pause(self):
        if self.resettable and self.base is not None:
            self.best = max(self.best, self._since_reset())
            self.paused_at = self.current()

    def resume(self):
        """Count from here again. What the pause kept (an evaluation's first-use buffers: MKL keeps the work space
        of each new matrix shape) moves the baseline up, so that it is not counted as training's."""
        if self.resettable and self.base is not None:
            now = self.current()  # trims the heap on CPU
            if now is not None and self.paused_at is not None and now > self.paused_at:
                self.base += now - self.paused_at
            self._reset()

    def peak(self) -> int | None:
        now = self._since_reset()
        return None if now is None else max(self.best, now)


def _status_kb(field_name: str) -> int | None:
    """A field of /proc/self/status in kB: the peak RSS since its reset (VmHWM), which psutil does not give."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def environment(device: str, threads: int) -> dict:
    """Versions, hardware and the git commit a record was made with."""
    return dict(_environment(device, threads))


@lru_cache(maxsize=None)
def _environment(device: str, threads: int) -> dict:
    """`environment`, found once per process (two git commands): a persistent worker's runs all run the code it
    imported, at the commit it started at."""
    cpu = platform.processor() or platform.machine()
    try:  # the CPU's model name, which neither platform nor psutil gives
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        git = lambda *a: subprocess.run(["git", *a], cwd=Path(__file__).parent, capture_output=True,  # noqa: E731
                                        text=True, timeout=5).stdout.strip()
        commit = git("rev-parse", "--short", "HEAD") or "unknown"
        if commit != "unknown" and git("status", "--porcelain", "--untracked-files=no", "--", "."):
            commit += "-dirty"  # the package's files differ from that commit
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    gpu = torch.cuda.get_device_name() if device == "cuda" and torch.cuda.is_available() else None
    # torchode's version from its metadata: importing it took a second of every run that does not use it
    version = importlib.metadata.version
    return {"python": platform.python_version(), "torch": torch.__version__, "torchdiffeq": version("torchdiffeq"),
            "torchode": version("torchode"),
            "numpy": numpy.__version__, "threads": threads, "device": device, "gpu": gpu, "cpu": cpu,
            "cores": cores(), "platform": platform.platform(), "git_commit": commit}
