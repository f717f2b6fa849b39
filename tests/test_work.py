"""The work gate: work measures that repeat bit for bit, compared exactly with a reference."""
import json
from dataclasses import asdict

import pytest
import torch

from specbench.cli import main
from specbench.core.workfile import compare as compare_work
from specbench.core.workfile import REFERENCE, Settings
from specbench.registries import SYSTEMS, equation_systems
from specbench.registries import TRAINERS
from specbench.running.work_measures import held_bytes, work, work_table
from tests.helpers import ROOT

SMALL = Settings(iterations=4, cap=6, every=2)


def test_held_bytes_counts_each_storage_once():
    class Holder:
        pass

    h = Holder()
    h.a = torch.zeros(10, dtype=torch.float64)  # 80 bytes
    h.view = h.a[None, 2:]  # a view: the same storage, not counted again
    h.nested = {"x": [torch.zeros(3, dtype=torch.float32)], "n": 3}  # 12 bytes
    h.model = torch.nn.Linear(2, 3)  # weight 6 + bias 3 floats = 36 bytes
    h.opt = torch.optim.Adam(h.model.parameters())
    h.model(torch.ones(1, 2)).sum().backward()
    h.opt.step()  # gradients (36 bytes) and Adam's two moments (72 bytes) and step counters (2 x 4 bytes)
    assert held_bytes(h) == 80 + 12 + 36 + 36 + 72 + 8


def test_work_values_repeat_bit_for_bit():
    first = work("oscillator", "backprop-dopri5", SMALL)
    assert first == work("oscillator", "backprop-dopri5", SMALL)
    assert first["nfe_per_iteration"] > 6 and first["held_bytes"] > 0  # an adaptive solve: many evaluations


@pytest.mark.slow
def test_work_values_do_not_depend_on_the_number_of_processes():
    pairs = [("oscillator", "spectral"), ("oscillator", "backprop-rk4"), ("lorenz", "adjoint-dopri5")]
    one, shared = work_table(pairs, SMALL)["values"], work_table(pairs, SMALL, workers=2)["values"]
    assert one == shared and list(shared) == ["oscillator", "lorenz"]  # equal, and in the pairs' order


def test_work_gate_passes_unchanged_and_names_a_trainer_that_needs_more_iterations(tmp_path, monkeypatch, capsys):
    """spectral reaches 3x the oscillator's target within the cap; with a 100x larger rho (set where the job
    factory takes it: tuned settings win over the class default) it needs more iterations than the cap."""
    import specbench.running.job

    ref = tmp_path / "reference.json"
    pair = ["--systems", "oscillator", "--trainers", "spectral"]
    assert main(["work", *pair, "--out", str(ref)]) == 0
    assert json.loads(ref.read_text())["values"]["oscillator"]["spectral"]["iterations_to_target"] is not None
    assert main(["work", *pair, "--check", str(ref)]) == 0
    assert "work values equal to the reference" in capsys.readouterr().out

    config_for = specbench.running.job.config_for

    def larger_rho(preset, system, regime, trainer):
        config = config_for(preset, system, regime, trainer)
        return {**config, "rho": 100 * config.get("rho", 1.0)} if trainer == "spectral" else config

    monkeypatch.setattr(specbench.running.job, "config_for", larger_rho)
    assert main(["work", *pair, "--check", str(ref)]) == 1
    out = capsys.readouterr().out.split("differ from the reference")[1]
    assert "oscillator / spectral: iterations to 3x target" in out and "(worse)" in out
    assert "specbench work --out" in out  # how to regenerate, if the change is intended


def test_compare_work_is_exact_except_for_the_metric():
    values = {"nfe_per_iteration": 2.0, "metric_after_n": 0.5, "iterations_to_target": 40, "held_bytes": 1000}
    ref = {"metric_rtol": 1e-3, "values": {"s": {"t": values}}}

    def now(**change):
        return {"values": {"s": {"t": {**values, **change}}}}

    assert compare_work(ref, now())[1] == []
    assert compare_work(ref, now(metric_after_n=0.5 * (1 + 1e-4)))[1] == []
    for change, measure, verdict in ((dict(metric_after_n=0.51), "metric after N iterations", "worse"),
                                     (dict(held_bytes=1008), "bytes held by the trainer", "worse"),
                                     (dict(iterations_to_target=None), "iterations to 3x target", "worse"),
                                     (dict(nfe_per_iteration=1.9), "network evaluations / iteration", "better")):
        lines = compare_work(ref, now(**change))[1]
        assert lines[0].startswith(f"s / t: {measure}") and lines[0].endswith(f"({verdict})"), lines
    assert "no work values in the candidate" in compare_work(ref, {"values": {}})[1][0]


def test_committed_reference_covers_every_builtin_pair_with_the_default_settings():
    """The values themselves are checked by `.ci/run` (`specbench work --check`); here only that the file was
    made by the documented command for every built-in system and trainer (a plugin's are not in it)."""
    def builtin(registry):
        return [name for name, cls in registry.items() if cls.__module__.startswith("specbench.")]

    ref = json.loads((ROOT / REFERENCE).read_text())
    assert ref["settings"] == asdict(Settings())
    assert {(s, t) for s in ref["values"] for t in ref["values"][s]} == \
        {(s, t) for s in builtin(SYSTEMS) if s in equation_systems() for t in builtin(TRAINERS)}
