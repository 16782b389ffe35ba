"""Signed pickles: refused when tampered, and still loaded after a class moved modules."""

from __future__ import annotations

import importlib
import inspect
import pickle
import sys

import pytest

from coelho_pipelines import signing
from coelho_pipelines.river_models.online_kmeans import OnlineKMeans

KEY = b"k" * 32


def test_a_signed_model_round_trips_and_a_flipped_byte_is_refused() -> None:
    model = OnlineKMeans(n_clusters=3, seed=1)
    blob = signing.dumps(model, KEY)
    assert type(signing.loads(blob, KEY)) is OnlineKMeans
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(signing.SignatureError):
        signing.loads(tampered, KEY)


def _classes_defined_in(module_name: str) -> list[type]:
    module = importlib.import_module(module_name)
    return [v for v in vars(module).values() if inspect.isclass(v) and v.__module__ == module_name]


@pytest.mark.parametrize("old, new", sorted(signing.MOVED_MODULES.items()))
def test_a_class_pickled_under_its_old_module_still_loads(
    old: str, new: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    classes = _classes_defined_in(new)
    assert classes, f"{new} defines no class"
    with monkeypatch.context() as patch:  # pickle as the code before the move did
        patch.setitem(sys.modules, old, sys.modules[new])
        for cls in classes:
            patch.setattr(cls, "__module__", old)
        old_payloads = [pickle.dumps(cls) for cls in classes]
    for cls, payload in zip(classes, old_payloads, strict=True):
        assert old.encode() in payload
        with pytest.raises(ModuleNotFoundError):
            pickle.loads(payload)
        assert signing.loads(signing.sign(payload, KEY), KEY) is cls
