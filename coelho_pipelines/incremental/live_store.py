"""The Redis contract of the incremental learner: writers (the learner) and readers (the API).

Keys, under `coelho:<uc>:` (`namespace` defaults to `coelho`):
- `model` (string): signed pickle of `learner.LiveModel` (see `coelho_pipelines.signing`);
  `.predict(event)` gives the API response fields.
- `model_version` (string, int): version of `model`; only increases; set atomically with it.
- `status` (hash): state LIVE/FINISHED, mlflow_run_id, dagster_run_id, events_learned,
  last_update (ISO-8601 UTC), model_version, model_events (events in the live model),
  model_offsets (JSON {partition: next offset} the live model has learned up to),
  model_bytes, bad_events, drifts, snapshot_events, stop_reason.
- `metrics` (string): JSON of every River metric by its USE_CASES name (ConfusionMatrix and
  ClassificationReport as dicts, undefined values as null), plus events_learned, updated_at.
- `clusters` (string, clustering only): JSON {samples_per_cluster: {cluster: n},
  features: {feature: {cluster: {value: n}}}}.
- `drifts` (list): JSON drift records, oldest first (last 1000), each with an increasing `id`.
- `drift_seq` (string, int): the last drift id.
- `samples` (list): JSON of recent valid events, newest first (at most 100), for /sample.
- `leaderboard` (string): JSON of the online candidates' leaderboard (`Leaderboard.to_dict`:
  metric, served candidate, candidates with rank and value, promotions oldest first).

Readers never unpickle an unsigned or tampered model: `load_live_model` raises SignatureError.
No Dagster import here (the API imports this module).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from coelho_pipelines import signing

NAMESPACE = "coelho"
LIVE = "LIVE"
FINISHED = "FINISHED"
MAX_SAMPLES = 100
MAX_DRIFTS = 1000

# Sets model + version in one step; the version is max(stored, floor) + 1, so it keeps
# increasing even if Redis lost its data (the learner passes the last version it published).
_PUBLISH_SCRIPT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[2])
if current < floor then current = floor end
local version = current + 1
redis.call('SET', KEYS[1], version)
redis.call('SET', KEYS[2], ARGV[1])
return version
"""


@dataclass(frozen=True)
class Keys:
    """The Redis keys of one use case."""

    use_case: str
    namespace: str = NAMESPACE

    def _key(self, name: str) -> str:
        return f"{self.namespace}:{self.use_case}:{name}"

    @property
    def model(self) -> str:
        return self._key("model")

    @property
    def model_version(self) -> str:
        return self._key("model_version")

    @property
    def status(self) -> str:
        return self._key("status")

    @property
    def metrics(self) -> str:
        return self._key("metrics")

    @property
    def clusters(self) -> str:
        return self._key("clusters")

    @property
    def drifts(self) -> str:
        return self._key("drifts")

    @property
    def drift_seq(self) -> str:
        return self._key("drift_seq")

    @property
    def samples(self) -> str:
        return self._key("samples")

    @property
    def leaderboard(self) -> str:
        return self._key("leaderboard")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


# ---------------------------------------------------------------- writers (the learner)


def publish_model(client: Any, keys: Keys, signed_blob: bytes, floor_version: int = 0) -> int:
    """Store a signed live model; returns its version (> every earlier one)."""
    return int(client.eval(_PUBLISH_SCRIPT, 2, keys.model_version, keys.model, signed_blob,
                           floor_version))  # fmt: skip


def write_status(client: Any, keys: Keys, **fields: Any) -> None:
    """Update status fields (None values are left out, "" removes the field); last_update is
    set to now."""
    mapping = {k: str(v) for k, v in fields.items() if v is not None and v != ""}
    mapping["last_update"] = now_iso()
    cleared = [k for k, v in fields.items() if v == ""]
    if cleared:
        client.hdel(keys.status, *cleared)
    client.hset(keys.status, mapping=mapping)


def write_metrics(
    client: Any,
    keys: Keys,
    metrics: dict[str, Any],
    clusters: dict[str, Any] | None = None,
    samples: list[dict[str, Any]] | None = None,
    leaderboard: dict[str, Any] | None = None,
) -> None:
    """Current metric values (and cluster analytics, recent events, the leaderboard) in one
    round trip."""
    pipe = client.pipeline(transaction=True)
    pipe.set(keys.metrics, json.dumps(metrics, default=str))
    if leaderboard is not None:
        pipe.set(keys.leaderboard, json.dumps(leaderboard, default=str))
    if clusters is not None:
        pipe.set(keys.clusters, json.dumps(clusters, default=str))
    if samples:
        pipe.delete(keys.samples)
        newest_first = list(reversed(samples[-MAX_SAMPLES:]))
        pipe.rpush(keys.samples, *[json.dumps(e, default=str) for e in newest_first])
    pipe.execute()


def record_drift(client: Any, keys: Keys, record: dict[str, Any]) -> int:
    """Append a drift record; returns its id (ids only increase)."""
    drift_id = int(client.incr(keys.drift_seq))
    pipe = client.pipeline(transaction=True)
    pipe.rpush(keys.drifts, json.dumps({**record, "id": drift_id}, default=str))
    pipe.ltrim(keys.drifts, -MAX_DRIFTS, -1)
    pipe.execute()
    return drift_id


# ---------------------------------------------------------------- readers (the API, sensors)


def read_status(client: Any, use_case: str, namespace: str = NAMESPACE) -> dict[str, str] | None:
    """The status hash as text, or None if no learner ever ran."""
    raw = client.hgetall(Keys(use_case, namespace).status)
    return {_text(k): _text(v) for k, v in raw.items()} or None


def _read_json(client: Any, key: str) -> Any:
    raw = client.get(key)
    return None if raw is None else json.loads(raw)


def read_metrics(client: Any, use_case: str, namespace: str = NAMESPACE) -> dict | None:
    """Current metric values (see the table above), or None."""
    return _read_json(client, Keys(use_case, namespace).metrics)


def read_clusters(client: Any, use_case: str, namespace: str = NAMESPACE) -> dict | None:
    """Cluster analytics of a clustering use case, or None."""
    return _read_json(client, Keys(use_case, namespace).clusters)


def read_leaderboard(client: Any, use_case: str, namespace: str = NAMESPACE) -> dict | None:
    """The online candidates' leaderboard, or None."""
    return _read_json(client, Keys(use_case, namespace).leaderboard)


def live_model_version(client: Any, use_case: str, namespace: str = NAMESPACE) -> int | None:
    """The version of the live model (cheap: poll this, reload only on change)."""
    raw = client.get(Keys(use_case, namespace).model_version)
    return None if raw is None else int(raw)


def load_live_model(
    client: Any, use_case: str, namespace: str = NAMESPACE
) -> tuple[int, Any] | None:
    """(version, `learner.LiveModel`) or None; raises SignatureError on a bad payload."""
    keys = Keys(use_case, namespace)
    version, blob = client.mget([keys.model_version, keys.model])
    if blob is None:
        return None
    return int(version or 0), signing.loads(blob)


def read_drifts(
    client: Any, use_case: str, after_id: int = 0, namespace: str = NAMESPACE
) -> list[dict[str, Any]]:
    """Drift records with id > after_id, oldest first."""
    records = [json.loads(r) for r in client.lrange(Keys(use_case, namespace).drifts, 0, -1)]
    return [r for r in records if int(r.get("id", 0)) > after_id]


def random_sample(client: Any, use_case: str, namespace: str = NAMESPACE) -> dict | None:
    """One of the recent events the learner saw, at random, or None."""
    key = Keys(use_case, namespace).samples
    length = client.llen(key)
    if not length:
        return None
    raw = client.lindex(key, random.randrange(length))
    return None if raw is None else json.loads(raw)
