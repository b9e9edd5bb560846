"""Lifecycle of whole testbeds: tear-down leaves nothing, bad set-ups create nothing."""

from pathlib import Path

import pytest

from mec.clean import clean
from mec.testbed import Testbed
from topologies.loader import load

pytestmark = pytest.mark.integration
TOPO_DIR = Path(__file__).resolve().parents[2] / "topologies"


def test_teardown_leaves_nothing_behind():
    before = clean(dry=True).removed
    tb = Testbed(load(TOPO_DIR / "line2.yaml"), controller="os-ken")
    tb.start()
    assert len(clean(dry=True).removed) > len(before)
    tb.stop()
    assert tb.network is None
    assert clean(dry=True).removed == before


def test_standalone_mode_refuses_a_looped_topology_and_creates_nothing():
    before = clean(dry=True).removed
    with pytest.raises(ValueError, match="cycle"):
        Testbed(load(TOPO_DIR / "ring6.yaml"), controller=None).start()
    assert clean(dry=True).removed == before
