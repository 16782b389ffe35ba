"""The fences in front of the fast paths: a fast path serves only on an allowed library
version, with `COELHO_ACCEL` not off and an agreeing probe; otherwise the public path serves and
one log line says why. Fakes here stand in for broken fast paths (pure logic of the gate)."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest

from coelho_pipelines.accel import fence as fence_module
from coelho_pipelines.accel.fence import Fence
from coelho_serving.accel import frozen

ALLOWED = frozenset({"1.2.3"})


def _fence(version: str | None = "1.2.3", probe: Any = None) -> Fence:
    return Fence("fake fast path", "fakelib", ALLOWED, probe, version=lambda _name: version)


@pytest.fixture(autouse=True)
def _accel_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(fence_module.ENV, raising=False)


def test_fence_opens_on_an_allowed_version_and_an_agreeing_probe() -> None:
    calls = []
    gate = _fence(probe=lambda: calls.append(1) or True)
    assert gate.open() and gate.open()
    assert gate.reason() == ""
    assert calls == [1]  # the probe runs once per process


@pytest.mark.parametrize("version", ["1.2.4", None])
def test_fence_closes_off_the_allow_list(version: str | None, caplog: Any) -> None:
    probed = []
    gate = _fence(version, probe=lambda: probed.append(1) or True)
    with caplog.at_level(logging.WARNING, logger="coelho.accel"):
        assert not gate.open() and not gate.open()
    assert "not on the allow-list" in gate.reason() and str(version) in gate.reason()
    assert probed == []  # a foreign version is never probed
    lines = [r.getMessage() for r in caplog.records if r.name == "coelho.accel"]
    assert len(lines) == 1 and "fake fast path" in lines[0]  # one line, saying why


def test_fence_closes_when_the_probe_disagrees_or_fails(caplog: Any) -> None:
    def fake_failing_probe() -> bool:
        raise RuntimeError("fake internals moved")

    with caplog.at_level(logging.WARNING, logger="coelho.accel"):
        disagrees, fails = _fence(probe=lambda: False), _fence(probe=fake_failing_probe)
        assert not disagrees.open() and not fails.open()
    assert "disagrees" in disagrees.reason()
    assert "fake internals moved" in fails.reason()
    assert len([r for r in caplog.records if r.name == "coelho.accel"]) == 2


def test_coelho_accel_0_closes_every_fence_while_set(monkeypatch: pytest.MonkeyPatch) -> None:
    gate = _fence(probe=lambda: True)
    monkeypatch.setenv(fence_module.ENV, "0")
    assert not gate.open() and gate.reason() == "COELHO_ACCEL=0"
    monkeypatch.setenv(fence_module.ENV, "1")
    assert gate.open()


def test_the_lock_file_versions_are_the_allowed_ones() -> None:
    """The fences allow the versions this install (requirements-dev.lock) runs, so the fast
    paths are measured and tested here."""
    from coelho_pipelines.accel import fast_predict, forest_vote

    for gate in (frozen.RIVER, forest_vote.RIVER, fast_predict.CATBOOST, fast_predict.SKLEARN):
        assert fence_module.installed_version(gate.distribution) in gate.versions, gate.name


# --- serving: frozen forests ------------------------------------------------------------------


def _live_forest() -> Any:
    """A LiveModel-like holder of a small fitted ARFClassifier (freeze reads `.model`)."""
    from river import forest

    model = forest.ARFClassifier(n_models=3, seed=1)
    for x, y in frozen._probe_stream(100):
        model.learn_one(x, y)
    return SimpleNamespace(model=model)


def test_serving_probe_agrees_and_freeze_serves_the_fast_path() -> None:
    assert frozen.agrees(frozen.served_model)
    live = _live_forest()
    assert isinstance(frozen.freeze(live).model, frozen.FrozenARFClassifier)


def test_freeze_serves_river_off_the_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    gate = Fence("frozen", "river", frozen.RIVER_VERSIONS, version=lambda _name: "0.0.fake")
    monkeypatch.setattr(frozen, "RIVER", gate)
    live = _live_forest()
    assert frozen.freeze(live) is live  # River's own model serves
    assert "0.0.fake" in gate.reason()


class FakeBrokenFrozen:
    """A deliberately wrong fast path: the frozen forest with its first label's probability
    nudged, as a River internals change could do."""

    def __init__(self, model: Any) -> None:
        self.served = frozen.served_model(model)

    def predict_proba_one(self, x: dict) -> dict:
        proba = dict(self.served.predict_proba_one(x))
        if proba:
            first = next(iter(proba))
            proba[first] += 1e-12
        return proba

    def predict_one(self, x: dict) -> Any:
        return self.served.predict_one(x)


def test_freeze_serves_river_when_the_probe_disagrees(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not frozen.agrees(FakeBrokenFrozen)
    gate = Fence("frozen", "river", frozen.RIVER_VERSIONS, lambda: frozen.agrees(FakeBrokenFrozen))
    monkeypatch.setattr(frozen, "RIVER", gate)
    live = _live_forest()
    assert frozen.freeze(live) is live
    assert "disagrees" in gate.reason()


def test_freeze_serves_river_with_coelho_accel_0(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(fence_module.ENV, "0")
    live = _live_forest()
    assert frozen.freeze(live) is live
