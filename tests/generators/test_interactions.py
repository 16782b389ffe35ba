"""ecci generator: bounded sessions, one device per session, returning customers, null rules,
product-like search queries, latent segments with signal."""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from datetime import datetime

import pytest

from coelho_pipelines.use_cases.ecci import SPEC
from coelho_pipelines.use_cases.ecci.generator import (
    CATEGORY_WORDS,
    IDLE_TIMEOUT_SECONDS,
    PROFILES,
    SEARCH_SUFFIXES,
    InteractionGenerator,
)
from coelho_pipelines.use_cases.ecci.vocabulary import SEGMENTS

from .conftest import START

PRODUCT_FIELDS = ("product_id", "product_category", "price")


def _time(event: dict) -> float:
    return datetime.fromisoformat(event["timestamp"]).timestamp()


@pytest.fixture(scope="module")
def sessions(ecci_stream) -> dict[str, list[dict]]:
    by_session = defaultdict(list)
    for event in ecci_stream[1]:
        by_session[event["session_id"]].append(event)
    return by_session


def test_sequence_numbers_are_bounded_and_consecutive(sessions):
    for events in sessions.values():
        assert [e["session_event_sequence"] for e in events] == list(range(1, len(events) + 1))
        assert len(events) <= 40
    lengths = [len(events) for events in sessions.values()]
    assert 2 < statistics.mean(lengths) < 12


def test_max_session_events_option_bounds_sessions():
    events = InteractionGenerator(seed=2, start=START, max_session_events=5).take(10_000)
    assert max(e["session_event_sequence"] for e in events) == 5


def test_a_session_keeps_its_customer_device_and_place(sessions):
    for events in sessions.values():
        assert len({e["customer_id"] for e in events}) == 1
        assert len({tuple(sorted(e["device_info"].items())) for e in events}) == 1
        assert len({(e["location"]["lat"], e["location"]["lon"]) for e in events}) == 1


def test_sessions_end_on_purchase_or_15_minutes_idle(sessions):
    ended_by_purchase = 0
    for events in sessions.values():
        times = [_time(e) for e in events]
        assert all(b - a < IDLE_TIMEOUT_SECONDS for a, b in zip(times, times[1:], strict=False))
        kinds = [e["event_type"] for e in events]
        assert "purchase" not in kinds[:-1]
        ended_by_purchase += kinds[-1] == "purchase"
    assert ended_by_purchase > 0.1 * len(sessions)


def test_customers_return_in_separate_sessions(sessions):
    by_customer = defaultdict(list)
    for events in sessions.values():
        by_customer[events[0]["customer_id"]].append((_time(events[0]), _time(events[-1])))
    returning = [spans for spans in by_customer.values() if len(spans) > 1]
    assert len(returning) > 0.5 * len(by_customer)
    for spans in returning:
        spans.sort()
        for (_, end), (next_start, _) in zip(spans, spans[1:], strict=False):
            assert next_start - end >= IDLE_TIMEOUT_SECONDS  # a new session, not a continuation


def test_first_event_mix_follows_the_state_machine(sessions):
    firsts = Counter(events[0]["event_type"] for events in sessions.values())
    assert set(firsts) == {"page_view", "search"}
    assert firsts["page_view"] / len(sessions) == pytest.approx(0.8, abs=0.02)


def test_later_events_follow_the_state_machine(ecci_stream):
    later = [e for e in ecci_stream[1] if e["session_event_sequence"] > 1]
    kinds = Counter(e["event_type"] for e in later)
    n = len(later)
    # focus (0.4): cart .6 (x .7 stays cart, x .3 purchase), view .35, review .05;
    # browse (0.6): view .6, search .2, cart .2
    assert kinds["purchase"] / n == pytest.approx(0.4 * 0.6 * 0.3, abs=0.01)
    assert kinds["add_to_cart"] / n == pytest.approx(0.4 * 0.6 * 0.7 + 0.6 * 0.2, abs=0.015)
    assert kinds["leave_review"] / n == pytest.approx(0.4 * 0.05, abs=0.005)
    assert kinds["search"] / n == pytest.approx(0.6 * 0.2, abs=0.01)


def test_nullable_fields_are_null_exactly_when_the_spec_says(ecci_stream):
    for event in ecci_stream[1]:
        is_search = event["event_type"] == "search"
        for name in PRODUCT_FIELDS:
            assert (event[name] is None) == is_search, (name, event)
        assert (event["search_query"] is None) != is_search
        assert (event["quantity"] is not None) == (
            event["event_type"] in ("add_to_cart", "purchase")
        )
        assert (event["referrer_url"] is not None) == (event["session_event_sequence"] == 1)
        if event["product_id"] is not None:
            assert 1000 <= int(event["product_id"].removeprefix("prod_")) <= 1100


def test_a_product_keeps_its_category_and_price(ecci_stream):
    seen = {}
    for event in ecci_stream[1]:
        if event["product_id"] is not None:
            info = (event["product_category"], event["price"])
            assert seen.setdefault(event["product_id"], info) == info


def test_search_queries_are_product_words(ecci_stream):
    vocabulary = set()
    for adjectives, nouns in CATEGORY_WORDS.values():
        for phrase in (*adjectives, *nouns):
            vocabulary.update(phrase.split())
    for profile in PROFILES.values():
        for phrase in profile.modifiers:
            vocabulary.update(phrase.split())
    for phrase in SEARCH_SUFFIXES:
        vocabulary.update(phrase.split())
    queries = [e["search_query"] for e in ecci_stream[1] if e["search_query"]]
    assert len(queries) > 3000
    assert all(set(q.split()) <= vocabulary for q in queries)
    assert not {"lorem", "ipsum", "dolor"} & vocabulary
    assert len(set(queries)) > 300
    nouns = {n for _, ns in CATEGORY_WORDS.values() for n in ns}
    assert all(any(n in q for n in nouns) for q in queries)  # every query names a product


def test_segment_is_latent_and_readable_for_truth(ecci_stream):
    generator, events, truth = ecci_stream
    assert "segment" not in events[0] and "segment" not in {f.name for f in SPEC.fields}
    assert "segment" not in SPEC.feature_names
    for event, labels in zip(events[:2000], truth[:2000], strict=True):
        assert generator.segment_of(event["customer_id"]) == labels["segment"]
        assert labels["session_id"] == event["session_id"]
    assert set(t["segment"] for t in truth) == set(SEGMENTS) == set(SPEC.segments.names)


def test_segments_behave_differently(ecci_stream):
    _, events, truth = ecci_stream
    by_segment = defaultdict(list)
    for event, labels in zip(events, truth, strict=True):
        by_segment[labels["segment"]].append(event)

    def median_price(segment):
        return statistics.median(e["price"] for e in by_segment[segment] if e["price"])

    def median_time(segment):
        return statistics.median(e["time_on_page_seconds"] for e in by_segment[segment])

    def mobile_share(segment):
        events = by_segment[segment]
        return sum(e["device_info"]["device_type"] == "Mobile" for e in events) / len(events)

    assert median_price("big_spender") > 5 * median_price("bargain_hunter")
    assert median_time("researcher") > 5 * median_time("mobile_impulse_buyer")
    assert mobile_share("mobile_impulse_buyer") > 0.9 > 0.3 > mobile_share("researcher")


def test_segments_are_recoverable_from_features(ecci_stream):
    """A nearest-centroid rule on three features beats chance by far: clustering has signal."""
    _, events, truth = ecci_stream
    rows = [
        (
            math.log(e["price"]),
            math.log(e["time_on_page_seconds"]),
            float(e["device_info"]["device_type"] == "Mobile"),
            labels["segment"],
        )
        for e, labels in zip(events, truth, strict=True)
        if e["price"] is not None
    ]
    train, test = rows[::2], rows[1::2]
    centroids = {}
    for segment in SEGMENTS:
        members = [r for r in train if r[3] == segment]
        centroids[segment] = [statistics.mean(r[i] for r in members) for i in range(3)]

    def nearest(row):
        return min(centroids, key=lambda s: sum((row[i] - centroids[s][i]) ** 2 for i in range(3)))

    accuracy = sum(nearest(r) == r[3] for r in test) / len(test)
    assert accuracy > 0.6  # chance is about 0.3


def test_active_sessions_are_reported(ecci_stream):
    generator = ecci_stream[0]
    assert 0 < generator.active_sessions < 1000
    assert generator.sessions_started > 5000


def test_drift_stretches_the_time_on_page_from_drift_at_on():
    from coelho_pipelines.use_cases.ecci.generator import DRIFT_TIME_ON_PAGE

    plain = InteractionGenerator(seed=5, start=START).take(6000)
    generator = InteractionGenerator(seed=5, start=START, drift_at=3000)
    drifted = generator.take(6000)
    assert generator.drifted and not InteractionGenerator(seed=5, drift_at=1).drifted
    assert drifted[:3000] == plain[:3000]
    seconds = "time_on_page_seconds"
    ratio = statistics.median(e[seconds] for e in drifted[3000:]) / statistics.median(
        e[seconds] for e in plain[3000:]
    )
    assert DRIFT_TIME_ON_PAGE * 0.8 < ratio < DRIFT_TIME_ON_PAGE * 1.2
