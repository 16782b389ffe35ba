"""tfd generator: fraud rate, fraud skews, overlapping amounts, returning users, drift."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import datetime

import pytest

from coelho_pipelines.use_cases.tfd.generator import TransactionGenerator
from coelho_pipelines.use_cases.tfd.vocabulary import RISKY_CATEGORIES

from .conftest import START


def _share(events, predicate) -> float:
    return sum(1 for e in events if predicate(e)) / len(events)


@pytest.fixture(scope="module")
def split(tfd_events):
    fraud = [e for e in tfd_events if e["is_fraud"] == 1]
    legit = [e for e in tfd_events if e["is_fraud"] == 0]
    return fraud, legit


def test_default_fraud_rate_is_one_percent(tfd_events):
    assert _share(tfd_events, lambda e: e["is_fraud"] == 1) == pytest.approx(0.01, abs=0.0015)


def test_fraud_rate_is_configurable():
    events = TransactionGenerator(seed=3, start=START, fraud_rate=0.05).take(20_000)
    assert _share(events, lambda e: e["is_fraud"] == 1) == pytest.approx(0.05, abs=0.005)
    with pytest.raises(ValueError):
        TransactionGenerator(fraud_rate=1.5)


def test_missing_cvv_skew(split):
    fraud, legit = split
    assert _share(fraud, lambda e: not e["cvv_provided"]) == pytest.approx(0.43, abs=0.07)
    assert _share(legit, lambda e: not e["cvv_provided"]) == pytest.approx(0.005, abs=0.002)


def test_billing_mismatch_skew(split):
    fraud, legit = split
    assert _share(fraud, lambda e: not e["billing_address_match"]) == pytest.approx(0.37, abs=0.07)
    assert _share(legit, lambda e: not e["billing_address_match"]) == pytest.approx(0.02, abs=0.004)


def test_fraud_leans_to_new_accounts(split):
    fraud, legit = split
    assert _share(fraud, lambda e: e["account_age_days"] <= 30) > 0.45
    assert _share(legit, lambda e: e["account_age_days"] <= 30) < 0.08


def test_fraud_leans_to_risky_categories_crypto_and_credit_cards(split):
    fraud, legit = split
    risky = set(RISKY_CATEGORIES)
    assert _share(fraud, lambda e: e["product_category"] in risky) > 0.65
    assert _share(legit, lambda e: e["product_category"] in risky) < 0.3
    favoured = {"crypto", "credit_card"}
    assert _share(fraud, lambda e: e["payment_method"] in favoured) > 0.7
    crypto_fraud = _share(fraud, lambda e: e["payment_method"] == "crypto")
    assert crypto_fraud > 5 * _share(legit, lambda e: e["payment_method"] == "crypto")


def test_fraud_amounts_are_micro_or_high(split):
    fraud, legit = split
    assert _share(fraud, lambda e: e["amount"] < 5) > 0.15
    assert _share(legit, lambda e: e["amount"] < 5) < 0.05
    assert _share(fraud, lambda e: e["amount"] > 500) > 0.2
    assert _share(legit, lambda e: e["amount"] > 500) < 0.05


def test_legit_and_fraud_amounts_overlap(tfd_events, split):
    fraud, legit = split
    fraud_median = statistics.median(e["amount"] for e in fraud)
    assert _share(legit, lambda e: e["amount"] > fraud_median) > 0.05
    legit_p90 = sorted(e["amount"] for e in legit)[int(0.9 * len(legit))]
    assert _share(fraud, lambda e: 5 <= e["amount"] <= legit_p90) > 0.15
    big = [e for e in tfd_events if e["amount"] > 500]
    precision = _share(big, lambda e: e["is_fraud"] == 1)
    recall = _share(fraud, lambda e: e["amount"] > 500)
    assert precision < 0.5 and recall < 0.7  # "amount > 500" is no fraud rule
    assert max(e["amount"] for e in legit) > 2000  # a long legit tail


def test_users_return_with_a_stable_device_home_and_growing_account_age(split):
    _, legit = split
    by_user = defaultdict(list)
    for event in legit:
        by_user[event["user_id"]].append(event)
    assert len(by_user) < len(legit) / 5
    regulars = [events for events in by_user.values() if len(events) >= 10]
    assert len(regulars) > 200
    for events in regulars:
        assert len({(e["device_info"]["os"], e["device_info"]["browser"]) for e in events}) == 1
        assert len({e["user_agent"] for e in events}) == 1
        assert len({e["currency"] for e in events}) == 1
        assert (
            max(e["location"]["lat"] for e in events) - min(e["location"]["lat"] for e in events)
            < 1.0
        )
        first, last = events[0], events[-1]
        days = (
            datetime.fromisoformat(last["timestamp"]) - datetime.fromisoformat(first["timestamp"])
        ).total_seconds() / 86_400
        ages = [e["account_age_days"] for e in events]
        assert ages == sorted(ages)
        assert abs((ages[-1] - ages[0]) - days) <= 1.0 or ages[-1] == 1825


def test_fraud_uses_foreign_devices_and_merchants(split):
    fraud, legit = split
    assert _share(fraud, lambda e: e["device_info"]["os"] == "Linux") > 0.15
    assert _share(legit, lambda e: e["device_info"]["os"] == "Linux") < 0.08
    merchants = Counter(e["merchant_id"] for e in fraud)
    assert len(merchants) > 20  # spread, yet concentrated on some
    assert merchants.most_common(1)[0][1] > 3 * len(fraud) / 200


def test_drift_changes_the_fraud_pattern():
    generator = TransactionGenerator(seed=21, start=START, fraud_rate=0.05, drift_at=20_000)
    before = [e for e in generator.take(20_000) if e["is_fraud"]]
    assert generator.drifted
    after = [e for e in generator.take(20_000) if e["is_fraud"]]
    risky = set(RISKY_CATEGORIES)
    assert _share(before, lambda e: e["product_category"] in risky) > 0.65
    assert _share(after, lambda e: e["product_category"] in risky) < 0.45
    assert _share(before, lambda e: e["product_category"] == "travel") < 0.1
    assert _share(after, lambda e: e["product_category"] == "travel") > 0.4
    assert _share(before, lambda e: e["payment_method"] == "bank_transfer") < 0.1
    assert _share(after, lambda e: e["payment_method"] == "bank_transfer") > 0.4
    # Phished accounts: the card details and the device look legit, the owner's own IP.
    assert _share(before, lambda e: not e["cvv_provided"]) > 0.3
    assert _share(after, lambda e: not e["cvv_provided"]) < 0.05
    assert _share(after, lambda e: not e["billing_address_match"]) < 0.08
    owners = {u.user_id: u for u in generator.users}
    own_ip = _share(after, lambda e: e["user_id"] in owners
                    and e["ip_address"] == owners[e["user_id"]].ip_address)  # fmt: skip
    assert own_ip > 0.8


def test_no_drift_without_drift_at():
    generator = TransactionGenerator(seed=21, start=START, fraud_rate=0.05)
    generator.take(30_000)
    assert not generator.drifted
