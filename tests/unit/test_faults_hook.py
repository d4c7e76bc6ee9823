"""The test-only fault-injection hook (polytask.ops.faults): inert unless POLYTASK_FAULT is set,
one-shot with a marker file, permanent without one."""

from __future__ import annotations

import pytest

from polytask.ops.faults import FAULT_ENV, InjectedFault, before_epoch


def test_unset_does_nothing(monkeypatch):
    monkeypatch.setenv(FAULT_ENV, "raise:equal/seed0:1")
    with pytest.raises(InjectedFault):  # the same call fires while the variable names the trial ...
        before_epoch("equal/seed0", 2)
    monkeypatch.delenv(FAULT_ENV)
    assert [before_epoch("equal/seed0", epoch) for epoch in range(1, 5)] == [None] * 4  # ... and not without it


def test_a_fault_without_a_marker_fires_on_every_epoch_after_its_own(monkeypatch):
    monkeypatch.setenv(FAULT_ENV, "raise:rlw/seed0:1")
    before_epoch("rlw/seed0", 1)  # epoch 1 trains
    before_epoch("equal/seed0", 2)  # another trial
    for _ in range(2):  # every attempt that reaches epoch 2
        with pytest.raises(InjectedFault, match="rlw/seed0 before epoch 2"):
            before_epoch("rlw/seed0", 2)


def test_a_fault_with_a_marker_fires_once(monkeypatch, tmp_path):
    marker = tmp_path / "once"
    marker.touch()
    monkeypatch.setenv(FAULT_ENV, f"raise:equal/seed0:1:{marker};raise:rlw/seed0:2")
    with pytest.raises(InjectedFault):
        before_epoch("equal/seed0", 2)
    assert not marker.exists()
    before_epoch("equal/seed0", 2)  # healed
    with pytest.raises(InjectedFault):
        before_epoch("rlw/seed0", 3)


def test_an_unknown_fault_is_an_error(monkeypatch):
    monkeypatch.setenv(FAULT_ENV, "hang:equal/seed0:1")
    with pytest.raises(ValueError, match="unknown fault 'hang'"):
        before_epoch("equal/seed0", 1)
