"""Incremental learner tests: one signing key for the test process and its subprocesses."""

from __future__ import annotations

import pytest

from coelho_pipelines import signing


@pytest.fixture(autouse=True)
def _signing_key(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv(signing.KEY_ENV, "incremental-tests-signing-key")
    monkeypatch.setenv("COELHO_HOME", str(tmp_path / "coelho-home"))
