"""Signed model payloads: HMAC-SHA256 over pickled bytes, so readers refuse tampered models.

Pickle runs code on load; a model blob is only unpickled after its signature checks out.
The key comes from `COELHO_MODEL_SIGNING_KEY`, else from a key file generated once at
`$COELHO_HOME/model-signing.key` (mode 0600). Writer and reader must share the key: on
Kubernetes, give every pod the same `COELHO_MODEL_SIGNING_KEY` from a Secret.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import pickle
import secrets
from pathlib import Path
from typing import Any

from coelho_pipelines.settings import coelho_home

KEY_ENV = "COELHO_MODEL_SIGNING_KEY"
KEY_FILE = "model-signing.key"
MAGIC = b"COELHO-SIGNED-1\n"
_DIGEST_SIZE = hashlib.sha256().digest_size


class SignatureError(ValueError):
    """A payload is unsigned, truncated or was signed with another key."""


def key_path() -> Path:
    return coelho_home() / KEY_FILE


def signing_key() -> bytes:
    """The HMAC key: the environment variable, else the key file (created on first use)."""
    value = os.environ.get(KEY_ENV)
    if value:
        return value.encode()
    path = key_path()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
    key = path.read_text().strip()
    if not key:
        raise SignatureError(f"empty signing key file {path}")
    return key.encode()


def signature(payload: bytes | memoryview, key: bytes | None = None) -> bytes:
    return hmac.new(key or signing_key(), payload, hashlib.sha256).digest()


def sign(payload: bytes, key: bytes | None = None) -> bytes:
    """`payload` wrapped in a signed envelope: magic, HMAC-SHA256, payload."""
    return MAGIC + signature(payload, key) + payload


def verify(blob: bytes, key: bytes | None = None) -> memoryview:
    """The payload of a signed envelope, or `SignatureError`."""
    if (
        not isinstance(blob, bytes | bytearray | memoryview)
        or not bytes(blob[: len(MAGIC)]) == MAGIC
    ):
        raise SignatureError("payload is not signed")
    view = memoryview(blob)
    start = len(MAGIC) + _DIGEST_SIZE
    if len(view) < start:
        raise SignatureError("signed payload is truncated")
    expected = bytes(view[len(MAGIC) : start])
    payload = view[start:]
    if not hmac.compare_digest(expected, signature(payload, key)):
        raise SignatureError("payload signature does not match (tampered or another key)")
    return payload


def dumps(obj: Any, key: bytes | None = None) -> bytes:
    """Pickle and sign."""
    return sign(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), key)


# Modules whose classes moved: models pickled before the move still load.
MOVED_MODULES: dict[str, str] = {
    "coelho_pipelines.incremental.online_kmeans": "coelho_pipelines.river_models.online_kmeans",
    "coelho_pipelines.use_cases.rate_models": "coelho_pipelines.river_models.rate_models",
}


class _MovedModulesUnpickler(pickle.Unpickler):
    """Finds a class under its new module when it was pickled under a moved one."""

    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(MOVED_MODULES.get(module, module), name)


def loads(blob: bytes, key: bytes | None = None) -> Any:
    """Verify, then unpickle (never unpickles an unverified payload)."""
    return _MovedModulesUnpickler(io.BytesIO(verify(blob, key))).load()
