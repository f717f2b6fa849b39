"""The common metric's solver: torchdiffeq's adaptive dopri5 (0.2.5, `odeint(method="dopri5")` with its default
options: RMS norm over every component, safety 0.9, growth at most 10x, shrink at most 5x, Hairer's initial step, the
fourth-order Shampine interpolant at the output times), step for step in numpy, for a field evaluated in numpy.

Why a port and not the library: the common metric's rollouts are untimed but not free (issue 37). A rollout takes
hundreds of small steps over small batches (16 trajectories of 2 to 10 states), where each of torchdiffeq's steps is
about thirty tensor operations of a few microseconds of dispatch each, about 70% of a rollout's time, for arithmetic
worth well under a microsecond; numpy's per-operation cost on such arrays is a fraction of torch's. The algorithm and
its constants are torchdiffeq's, so the rollouts are torchdiffeq's to round-off (`tests/test_evaluate.py` compares
the two on random fields, counts of field evaluations included), and every record made with torchdiffeq stays
comparable. A time-dependent field (a driven one: f(t, x) = f(x, u(t)) with a held input) is called at the stages'
times as torchdiffeq calls it, and told where it jumps (`jumps`, torchdiffeq's `jump_t`).
"""
from __future__ import annotations

from typing import Callable

import bisect
import math

import numpy as np

# Dormand-Prince-Shampine: the stages' weights (the last row is the solution's: first same as last),
# the error estimate's weights and the interpolant's mid-point weights, as in torchdiffeq/_impl/dopri5.py.
BETA = (
    np.array([1 / 5]),
    np.array([3 / 40, 9 / 40]),
    np.array([44 / 45, -56 / 15, 32 / 9]),
    np.array([19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729]),
    np.array([9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656]),
    np.array([35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84]),
)
C_ERROR = np.array([35 / 384 - 1951 / 21600, 0, 500 / 1113 - 22642 / 50085, 125 / 192 - 451 / 720,
                    -2187 / 6784 - -12231 / 42400, 11 / 84 - 649 / 6300, -1. / 60.])
C_MID = np.array([6025192743 / 30085553152 / 2, 0, 51252292925 / 65400821598 / 2, -2691868925 / 45128329728 / 2,
                  187940372067 / 1594534317056 / 2, -1776094331 / 19743644256 / 2, 11237099 / 235043384 / 2])
ALPHA = (1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)  # the stages' nodes (the last two at the step's end)
BETA_ROWS = np.array([np.pad(b, (0, 6 - len(b))) for b in BETA])  # (6, 6), row s: stage s+1's weights
SAFETY, IFACTOR, DFACTOR, ORDER = 0.9, 10.0, 0.2, 5

Field = Callable[[float, np.ndarray], np.ndarray]  # (t, x (..., state)) -> dx/dt, float64


class SolverFailed(Exception):
    """The step size underflowed or the state went non-finite (torchdiffeq's AssertionError)."""


def _rms(x: np.ndarray) -> float:
    """np.sqrt(np.mean(x * x)) to the bit (the same sum, divided by the same count), without np.mean's overhead."""
    return math.sqrt(float(np.add.reduce(x * x)) / x.size)


def _initial_step(f: Field, t0: float, y0: np.ndarray, f0: np.ndarray, rtol: float, atol: float) -> float:
    """Hairer, Norsett and Wanner's empirical first step (torchdiffeq's `_select_initial_step`, order 4)."""
    scale = atol + np.abs(y0) * rtol
    d0, d1 = _rms(y0 / scale), _rms(f0 / scale)
    h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    f1 = f(t0 + h0, y0 + h0 * f0)
    d2 = _rms((f1 - f0) / scale) / h0
    if d1 <= 1e-15 and d2 <= 1e-15:
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / max(d1, d2)) ** (1. / 5)
    return min(100 * h0, h1)


def _next_step(dt: float, error_ratio: float) -> float:
    """torchdiffeq's `_optimal_step_size`: NaN in, NaN out (the next step then fails, as there)."""
    if error_ratio == 0:
        return dt * IFACTOR
    if math.isnan(error_ratio):
        return math.nan
    shrink = 1.0 if error_ratio < 1 else DFACTOR
    return dt * min(IFACTOR, max(SAFETY / error_ratio ** (1. / ORDER), shrink))


def _interpolant(dt: float, y: np.ndarray, y1: np.ndarray, k: np.ndarray) -> tuple:
    """The fourth-order interpolant's coefficients over an accepted step of size dt from y to y1 with stages k
    (torchdiffeq's `_interp_fit` with its mid-point), lowest power first."""
    y_mid = y + (dt * C_MID) @ k
    f_start, f_end = k[0], k[6]
    return (y, dt * f_start,
            dt * (f_end - 4 * f_start) - 11 * y - 5 * y1 + 16 * y_mid,
            dt * (5 * f_start - 3 * f_end) + 18 * y + 14 * y1 - 32 * y_mid,
            2 * dt * (f_end - f_start) - 8 * (y1 + y) + 16 * y_mid)


def odeint(f: Field, y0: np.ndarray, t: np.ndarray, rtol: float, atol: float,
           jumps: np.ndarray | None = None) -> np.ndarray:
    """The solution of dy/dt = f(t, y) from y0 (any shape) at the increasing times t (t[0] the start), shape
    (len(t), *y0.shape); SolverFailed where torchdiffeq's dopri5 fails an assertion. `jumps`: the times where f
    jumps (torchdiffeq's `jump_t`, sorted): a step that would cross one ends on it, its last stages read f just
    before it, and the next step starts from f just after it."""
    shape, field = np.shape(y0), f

    def f(s: float, x: np.ndarray) -> np.ndarray:  # the state as one vector: the stages' sums are small matmuls
        return field(s, x.reshape(shape)).ravel()

    y0 = np.asarray(y0, dtype=np.float64).ravel()
    out = np.empty((len(t), y0.size))
    out[0] = y0
    k = np.empty((7, y0.size))  # the stages, first index first (torchdiffeq stacks them last: the same sums)
    t = np.asarray(t, dtype=np.float64)
    t0 = t1 = float(t[0])
    f0 = f(t0, y0)
    dt = _initial_step(f, t0, y0, f0, rtol, atol)
    jumps = [] if jumps is None else sorted(float(j) for j in jumps if j >= t0)
    jump = min(bisect.bisect(jumps, t0), len(jumps) - 1)  # the index of the next jump (torchdiffeq's rule)
    y, fy, step = y0, f0, None  # step: the last accepted step's (dt, y, y1, k), for its interpolant
    i = 1
    while i < len(t):
        if t[i] <= t1:  # every output time inside the last step, from its interpolant at once
            j = int(np.searchsorted(t, t1, side="right"))
            x = ((t[i:j] - t0) / (t1 - t0))[:, None]
            coeffs = _interpolant(*step)
            total, power = coeffs[0] + x * coeffs[1], x
            for c in coeffs[2:]:
                power = power * x
                total = total + power * c
            out[i:j] = total
            i = j
            continue
        # torchdiffeq's _adaptive_step: until the next output time is inside the last accepted step
        if not np.isfinite(dt):
            dt = 0.0
        start = t1
        if not start + dt > start:
            raise SolverFailed(f"underflow in dt {dt}")
        if not np.isfinite(y).all():
            raise SolverFailed("non-finite values in the state")
        end = start + dt
        on_jump = bool(jumps) and start < jumps[jump] < start + dt
        if on_jump:
            end = jumps[jump]
            dt = end - start
        k[0] = fy
        weights = BETA_ROWS * dt  # each stage's row: (beta * dt), as one product
        for s in range(6):
            yi = y + weights[s, :s + 1] @ k[:s + 1]
            # a stage at the step's end reads f just before it (torchdiffeq's Perturb.PREV)
            k[s + 1] = f(math.nextafter(end, -math.inf) if ALPHA[s] == 1 else start + ALPHA[s] * dt, yi)
        y1 = yi  # the last stage is the solution (first same as last)
        error = (dt * C_ERROR) @ k
        error_ratio = _rms(error / (atol + rtol * np.maximum(np.abs(y), np.abs(y1))))
        if error_ratio <= 1:  # accepted; its interpolant is made when an output time falls inside it
            t0, t1 = start, end
            step = (dt, y, y1, k.copy())
            y, fy = y1, k[6].copy()
            if on_jump:  # past a jump of f: the next step starts from f just after it (Perturb.NEXT)
                jump = min(jump + 1, len(jumps) - 1)
                fy = f(math.nextafter(end, math.inf), y1).copy()
        dt = _next_step(dt, error_ratio)
    return out.reshape(len(t), *shape)
