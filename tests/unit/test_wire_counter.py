"""Interface counters: arithmetic, and nothing counted where there is no namespace to count in."""

from mec.core.netns import LinkCounters, WireCounter


def test_counters_add_and_subtract_per_field():
    a, b = LinkCounters(1000, 200, 10, 4), LinkCounters(300, 50, 3, 1)
    assert a - b == LinkCounters(700, 150, 7, 3) and (a - b).bytes == 850
    assert b + (a - b) == a


def test_no_namespace_means_not_counted():
    with WireCounter(None) as wire:
        pass
    assert wire.counted is None and wire.bytes is None
