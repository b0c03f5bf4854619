"""The auto-switch rule against hand-made cases (pure functions, no model)."""

import math

import pytest

from wsd_local.switch import SwitchDetector, first_switch, near_ties, switch_index, window_scores


def test_fewer_tokens_than_window_never_switch_and_keep_everything():
    probs = [0.99, 0.99, 0.99]
    assert first_switch(probs, window=6, threshold=0.8) is None
    assert switch_index(probs, window=6, threshold=0.8) == 2
    assert window_scores(probs, 6) == [0.0, 0.0, 0.0]


def test_empty_draft_keeps_nothing():
    assert switch_index([], window=6, threshold=0.8) == -1


def test_never_reaching_threshold_keeps_whole_draft():
    probs = [0.5] * 20
    assert first_switch(probs, 6, 0.8) is None
    assert switch_index(probs, 6, 0.8) == 19


def test_exactly_at_threshold_switches():
    # Geometric mean of six equal probabilities is that probability, bit for bit
    # through exp(log(p)*6/6) only if we choose p representable: use a window of 1.
    probs = [0.1, 0.8, 0.9]
    assert switch_index(probs, window=1, threshold=0.8) == 1
    # window 2: g_1 = sqrt(0.1*0.8) < 0.8, g_2 = sqrt(0.72) = 0.85 -> switch at 2
    assert first_switch(probs, 2, 0.8) == 2
    assert first_switch(probs, 2, 0.86) is None
    exact = [0.64, 1.0]
    assert window_scores(exact, 2)[1] == pytest.approx(0.8, abs=1e-15)
    # sqrt(0.25 * 1.0) is exactly 0.5: the window ending at j=2 reaches a 0.5 threshold.
    assert switch_index([0.2, 0.25, 1.0, 0.8], window=2, threshold=0.5) == 2
    assert first_switch(exact, 2, window_scores(exact, 2)[1]) == 1


def test_window_at_the_very_end():
    probs = [0.2] * 10 + [0.95] * 6
    assert first_switch(probs, 6, 0.8) == 15
    assert switch_index(probs, 6, 0.8) == 15


def test_first_qualifying_window_wins_and_positions_before_window_count_zero():
    probs = [0.99] * 4 + [0.1] + [0.99] * 12
    scores = window_scores(probs, 6)
    assert scores[:5] == [0.0] * 5
    assert first_switch(probs, 6, 0.8) == 10  # first window without the 0.1
    assert scores[10] == pytest.approx(0.99)


def test_zero_probability_makes_window_zero():
    probs = [1.0, 0.0, 1.0, 1.0]
    assert window_scores(probs, 2) == [0.0, 0.0, 0.0, 1.0]


def test_geometric_mean_value():
    probs = [0.5, 0.8, 0.9]
    assert window_scores(probs, 3)[2] == pytest.approx((0.5 * 0.8 * 0.9) ** (1 / 3))


def test_detector_matches_pure_rule_and_truncates():
    probs = [0.3, 0.9, 0.95, 0.7, 0.99, 0.99, 0.98, 0.97, 0.99, 0.99]
    det = SwitchDetector(window=3, threshold=0.9)
    for p in probs:
        det.push(p)
    assert det.scores == window_scores(probs, 3)
    k = det.switch_at
    assert k is not None and k == first_switch(probs, 3, 0.9)
    det.truncate(k)
    assert not det.fired and len(det.probs) == k
    det.push(probs[len(det.probs)])
    assert det.fired


def test_near_ties_flags_scores_within_1e3_of_threshold():
    probs = [0.8005] * 6
    assert near_ties(probs, 6, 0.8) == [5]
    assert near_ties([0.9] * 6, 6, 0.8) == []


def test_window_must_be_positive():
    with pytest.raises(ValueError):
        window_scores([0.5], 0)
    assert math.isclose(window_scores([0.25, 1.0], 2)[1], 0.5)


def test_just_below_threshold_does_not_switch():
    exact = [0.64, 1.0]
    g = window_scores(exact, 2)[1]
    assert first_switch(exact, 2, g + 1e-12) is None
