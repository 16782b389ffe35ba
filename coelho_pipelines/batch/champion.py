"""Champion promotion: the candidate against the registered champion on the same test split.

Both models are scored on the candidate's test split with the use case's one rule
(`spec.batch_primary`); only a strictly better candidate may become the champion.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from coelho_pipelines.batch import registry
from coelho_pipelines.use_cases.spec import UseCaseSpec


@dataclass(frozen=True)
class Comparison:
    """The verdict and the numbers behind it."""

    metric: str
    direction: str
    candidate_run_id: str
    candidate_value: float | None
    champion_version: str | None
    champion_run_id: str | None
    champion_value: float | None
    promote: bool
    already_champion: bool
    reason: str

    def as_metadata(self) -> dict[str, Any]:
        return {k: ("" if v is None else v) for k, v in asdict(self).items()}


def compare_with_champion(
    tracking_uri: str,
    spec: UseCaseSpec,
    candidate_run_id: str,
    candidate_value: float | None,
    test_frame: Any,
) -> Comparison:
    """Score the current champion on `test_frame` and apply the best-model rule."""
    from coelho_pipelines.batch.evaluation import evaluate

    rule = spec.batch_primary
    base = {"metric": rule.name, "direction": rule.direction,
            "candidate_run_id": candidate_run_id, "candidate_value": candidate_value}  # fmt: skip
    champion = registry.load_champion(tracking_uri, spec)
    if champion is None:
        promote = candidate_value is not None
        return Comparison(**base, champion_version=None, champion_run_id=None,
                          champion_value=None, promote=promote, already_champion=False,
                          reason="no champion registered yet" if promote else
                          f"candidate has no {rule.name}")  # fmt: skip
    if champion.run_id == candidate_run_id:
        return Comparison(**base, champion_version=champion.version,
                          champion_run_id=champion.run_id, champion_value=candidate_value,
                          promote=False, already_champion=True,
                          reason="the candidate already is the champion")  # fmt: skip
    try:
        champion_metrics = evaluate(champion.model, test_frame, spec.label_field)
    except ValueError as error:  # e.g. a champion trained on other inputs (missing columns)
        return Comparison(**base, champion_version=champion.version,
                          champion_run_id=champion.run_id, champion_value=None,
                          promote=candidate_value is not None, already_champion=False,
                          reason=f"champion v{champion.version} cannot score this test split "
                          f"({str(error).splitlines()[0]})")  # fmt: skip
    champion_value = registry.primary_value(spec, champion_metrics)
    promote = registry.is_better(spec, candidate_value, champion_value)
    word = "higher" if rule.direction == "max" else "lower"
    verdict = "beats" if promote else "does not beat"
    reason = (
        f"candidate {rule.name} {_fmt(candidate_value)} {verdict} champion v{champion.version} "
        f"{_fmt(champion_value)} on the same test split ({word} is better)"
    )
    return Comparison(**base, champion_version=champion.version, champion_run_id=champion.run_id,
                      champion_value=champion_value, promote=promote, already_champion=False,
                      reason=reason)  # fmt: skip


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.6g}"
