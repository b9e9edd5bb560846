"""The loss figures of `mec bench links`: round-trip and one-way loss with exact 95% intervals."""

import math

import pytest

from mec.bench.links import loss_estimate


def test_no_loss_in_1000_pings_still_has_an_upper_bound():
    est = loss_estimate(1000, 1000)
    assert est.rt_pct == 0 and est.rt_ci95_pct[0] == 0
    # Clopper-Pearson with no event: the upper end solves (1 - p)^n = 0.025
    assert est.rt_ci95_pct[1] == pytest.approx(100 * (1 - 0.025 ** (1 / 1000)), rel=1e-6)
    assert est.one_way_ci95_pct[1] == pytest.approx(
        100 * (1 - math.sqrt(0.025 ** (1 / 1000))), rel=1e-6)


def test_every_ping_lost():
    est = loss_estimate(1000, 0)
    assert est.rt_pct == est.one_way_pct == 100
    assert est.rt_ci95_pct[0] == pytest.approx(100 * 0.025 ** (1 / 1000), rel=1e-6)


def test_one_way_loss_follows_from_the_round_trip():
    # 2% per direction loses 1 - 0.98^2 = 3.96% of round trips: 40 of 1000
    est = loss_estimate(1000, 960)
    assert (est.sent, est.received, est.rt_pct) == (1000, 960, pytest.approx(4.0))
    assert est.one_way_pct == pytest.approx(100 * (1 - math.sqrt(0.96)))
    lo, hi = est.rt_ci95_pct
    assert lo < 4.0 < hi and hi - lo < 3  # enough pings for a narrow interval
    # ends mapped through the same monotone transform
    assert est.one_way_ci95_pct == pytest.approx(
        (100 * (1 - math.sqrt(1 - lo / 100)), 100 * (1 - math.sqrt(1 - hi / 100))))
    assert est.one_way_ci95_pct[0] < 2.0 < est.one_way_ci95_pct[1]
    # 20 replies to 20 pings (the old bench then said "0.0") bound the loss only below ~9%
    assert loss_estimate(20, 20).one_way_ci95_pct[1] > 8
    assert loss_estimate(1000, 1000).one_way_ci95_pct[1] < 0.2


def test_undefined_counts_are_refused():
    with pytest.raises(ValueError):
        loss_estimate(0, 0)
    with pytest.raises(ValueError):
        loss_estimate(10, 11)
