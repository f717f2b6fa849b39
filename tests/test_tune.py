import math

from specbench.tune import score


def record(final: float | None, ttt: float | None, target: float = 1e-2) -> dict:
    return {"final_train_loss": final, "time_to_target_s": ttt, "target_loss": target}


def test_a_point_that_keeps_the_target_on_more_seeds_beats_a_faster_one_that_misses_it():
    steady = [record(5e-3, 6.0), record(4e-3, 7.0), record(6e-3, 8.0)]
    knife_edge = [record(5e-3, 2.0), record(2e-2, None), record(4e-3, 3.0)]  # fast on two seeds, lost on one
    assert score(steady) < score(knife_edge)
    assert score(knife_edge) == (1, 3.0, 5e-3)


def test_medians_decide_among_points_that_keep_the_target_and_missing_values_count_as_never():
    assert score([record(5e-3, 6.0), record(4e-3, 2.0), record(6e-3, 3.0)]) == (0, 3.0, 5e-3)
    assert score([record(None, None), record(0.5, None)]) == (2, math.inf, math.inf)
    assert score([record(0.2, None)]) < score([record(0.3, None)])  # none reaches it: the lower final metric
