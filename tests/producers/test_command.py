"""`coelho produce` option handling (pure: no broker)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from coelho.cli import CommandError, build_parser
from coelho.commands.produce import _event_time, build_generator
from coelho_pipelines.use_cases import all_specs, get_spec


def _args(*argv: str):
    return build_parser().parse_args(["produce", *argv])


def test_drift_at_reaches_every_generator():
    common = {"start": 0, "events_per_second": 1.0}
    for spec in all_specs():
        generator, unused = build_generator(spec, 1, common, {"drift_at": 7})
        assert generator.drift_at == 7 and unused == [], spec.key
    eta, unused = build_generator(get_spec("eta"), 1, common, {"fraud_rate": 0.1})
    assert unused == ["fraud_rate"] and not hasattr(eta, "fraud_rate")


def test_an_option_a_use_case_lacks_is_an_error(capsys):
    from coelho.cli import main

    assert main(["produce", "--use-case", "eta", "--fraud-rate", "0.1", "--stdout"]) == 1
    assert capsys.readouterr().err.strip() == "coelho produce: --fraud-rate does not apply to eta"


def test_event_time_follows_the_clock_when_paced():
    start, event_rate = _event_time(_args("--rate", "25"))
    assert event_rate == 25
    assert abs(datetime.now(UTC) - start) < timedelta(seconds=5)


def test_an_unpaced_count_ends_about_now():
    start, event_rate = _event_time(_args("--rate", "0", "--count", "86400"))
    assert event_rate == 1.0
    assert abs(datetime.now(UTC) - timedelta(days=1) - start) < timedelta(seconds=5)


def test_explicit_start_and_event_rate():
    start, event_rate = _event_time(_args("--start", "2025-01-02T03:04:05", "--event-rate", "2"))
    assert start == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC) and event_rate == 2
    with pytest.raises(CommandError):
        _event_time(_args("--start", "yesterday"))


@pytest.mark.parametrize(
    "argv",
    [
        ("--rate", "-1"),
        ("--count", "-3"),
        ("--fraud-rate", "2"),
        ("--use-case", "all", "--topic", "x"),
    ],
)
def test_bad_options_are_one_line_errors(argv, capsys):
    from coelho.cli import main

    assert main(["produce", "--stdout", *argv]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("coelho produce: ") and "\n" not in err
