"""tfd: card transactions from a persistent user population, with labelled fraud.

Legit users return with a stable home (currency, location, IP), device and spending
level; their account age grows with event time. Fraud (default 1% of events) comes from
two scenarios: fresh fraudster accounts (0..30 days old) used for a few bursts, and
takeovers of existing accounts from a foreign device and location. Fraud leans towards
missing CVV (~43% vs ~0.5%), billing mismatches (~37% vs ~2%), card-testing micro amounts
or high amounts, risky categories, crypto and credit cards, a subset of merchants, and
Linux devices. Amounts overlap: legit amounts are log-normal with a long tail and a third
of frauds copy legit spending. With `drift_at=N`, events from index N on use a new fraud
pattern: phished accounts used from their owners' own devices, places and merchants for
everyday amounts, with CVV and billing address as legit as anyone's; only the favoured
category `travel`, payment method `bank_transfer` and transaction types give them away.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from coelho_pipelines.use_cases.generation import (
    SECONDS_PER_DAY,
    BaseGenerator,
    Draws,
    EventClock,
    IsoFormatter,
    clip,
    fround,
    picker,
)
from coelho_pipelines.use_cases.tfd.vocabulary import (
    CURRENCIES,
    PAYMENT_METHODS,
    PRODUCT_CATEGORIES,
    RISKY_CATEGORIES,
)

MAX_ACCOUNT_AGE_DAYS = 1825
NEW_ACCOUNT_DAYS = 30
SIGNUP_RATE = 0.001  # share of legit events that come from a brand-new account
N_MERCHANTS = 200
# Merchants fraud favours (compromised or lax ones): a fixed subset of the 200.
FRAUD_MERCHANTS = tuple(f"merchant_{i}" for i in range(7, 201, 10))

MISSING_CVV = {0: 0.005, 1: 0.43}
BILLING_MISMATCH = {0: 0.02, 1: 0.37}
# After `drift_at`, fraudsters hold phished card details: CVV and billing address look legit.
DRIFT_MISSING_CVV = {0: 0.005, 1: 0.02}
DRIFT_BILLING_MISMATCH = {0: 0.02, 1: 0.04}

# Cities by currency: (lat, lon) home centres of the user population.
CITIES = {
    "USD": ((40.71, -74.01), (41.88, -87.63), (34.05, -118.24), (29.76, -95.37), (47.61, -122.33)),
    "EUR": ((48.86, 2.35), (52.52, 13.40), (40.42, -3.70), (45.46, 9.19)),
    "GBP": ((51.51, -0.13), (53.48, -2.24), (55.95, -3.19)),
    "JPY": ((35.68, 139.69), (34.69, 135.50)),
    "CAD": ((43.65, -79.38), (49.28, -123.12), (45.50, -73.57)),
    "AUD": ((-33.87, 151.21), (-37.81, 144.96)),
    "BRL": ((-23.55, -46.63), (-22.91, -43.17)),
}
CURRENCY_WEIGHTS = (0.45, 0.2, 0.1, 0.05, 0.07, 0.05, 0.08)

DEVICES = (  # (os, browser, legit weight, fraud weight)
    ("Windows", "Chrome", 22, 18), ("Windows", "Edge", 8, 5), ("Windows", "Firefox", 4, 8),
    ("Windows", "Opera", 1, 5), ("macOS", "Safari", 10, 4), ("macOS", "Chrome", 6, 4),
    ("macOS", "Firefox", 1, 2), ("Linux", "Chrome", 2, 14), ("Linux", "Firefox", 1, 12),
    ("Android", "Chrome", 22, 12), ("Android", "Firefox", 1, 3), ("Android", "Opera", 1, 4),
    ("iOS", "Safari", 18, 6), ("iOS", "Chrome", 3, 3),
)  # fmt: skip
_UA_PLATFORM = {
    "Windows": "Windows NT 10.0; Win64; x64",
    "macOS": "Macintosh; Intel Mac OS X 10_15_7",
    "Linux": "X11; Linux x86_64",
    "Android": "Linux; Android 14; Pixel 8",
    "iOS": "iPhone; CPU iPhone OS 17_4 like Mac OS X",
}


def user_agent(os_name: str, browser: str, version: int) -> str:
    """A plausible User-Agent string for an OS, browser and major version."""
    platform = _UA_PLATFORM[os_name]
    webkit = "AppleWebKit/537.36 (KHTML, like Gecko)"
    mobile = " Mobile" if os_name in ("Android", "iOS") else ""
    if browser == "Firefox":
        return f"Mozilla/5.0 ({platform}; rv:{version}.0) Gecko/20100101 Firefox/{version}.0"
    if browser == "Safari":
        return f"Mozilla/5.0 ({platform}) {webkit} Version/17.4{mobile} Safari/605.1.15"
    chrome = f"Mozilla/5.0 ({platform}) {webkit} Chrome/{version}.0.0.0{mobile} Safari/537.36"
    if browser == "Edge":
        return f"{chrome} Edg/{version}.0.0.0"
    if browser == "Opera":
        return f"{chrome} OPR/{version - 14}.0.0.0"
    return chrome


# Legit behaviour: category mix, its spend multiplier; payment and transaction type mix.
LEGIT_CATEGORY_WEIGHTS = dict(
    electronics=8, clothing=16, groceries=26, travel=5, services=14,
    digital_goods=9, luxury_items=2, gambling=2, other=18,
)  # fmt: skip
CATEGORY_SPEND = dict(
    electronics=3.0, clothing=1.3, groceries=0.9, travel=5.0, services=1.5,
    digital_goods=0.4, luxury_items=6.0, gambling=1.2, other=1.0,
)  # fmt: skip
LEGIT_PAYMENT_WEIGHTS = dict(
    credit_card=35, debit_card=32, paypal=18, bank_transfer=12, crypto=3
)  # fmt: skip
LEGIT_TYPE_WEIGHTS = dict(purchase=60, payment=15, transfer=10, withdrawal=8, deposit=7)
FRAUD_TYPE_WEIGHTS = dict(purchase=55, payment=5, transfer=20, withdrawal=19, deposit=1)


@dataclass(frozen=True)
class FraudPattern:
    """What fraud favours: category and payment method weights."""

    category_weights: dict[str, float]
    payment_weights: dict[str, float]


def _spread(favoured: dict[str, float], names: tuple[str, ...], rest: float) -> dict[str, float]:
    others = [n for n in names if n not in favoured]
    return {**favoured, **{n: rest / len(others) for n in others}}


BASE_PATTERN = FraudPattern(
    category_weights=_spread({c: 0.19 for c in RISKY_CATEGORIES}, PRODUCT_CATEGORIES, 0.24),
    payment_weights=_spread({"credit_card": 0.45, "crypto": 0.35}, PAYMENT_METHODS, 0.20),
)
DRIFT_PATTERN = FraudPattern(
    category_weights=_spread({"travel": 0.5}, PRODUCT_CATEGORIES, 0.5),
    payment_weights=_spread({"bank_transfer": 0.5}, PAYMENT_METHODS, 0.5),
)


@dataclass
class User:
    user_id: str
    created_at: float  # epoch seconds
    currency: str
    lat: float
    lon: float
    ip_address: str
    os: str
    browser: str
    user_agent: str
    spend_mu: float  # log of the median everyday amount
    merchants: tuple[str, ...]
    payment: str
    uses_left: int = 1_000_000_000  # fraudster accounts are abandoned after a few uses


class TransactionGenerator(BaseGenerator):
    """Seeded stream of tfd transaction events (JSON-ready dicts).

    Options: `fraud_rate` (0.01), `drift_at` (event index or None), `n_users` (5000),
    `start` (event-time start, default now floored to the hour), `events_per_second`
    (simulated event-time rate, default 1.0).
    """

    def __init__(
        self,
        seed: int = 42,
        *,
        fraud_rate: float = 0.01,
        drift_at: int | None = None,
        n_users: int = 5000,
        start: datetime | str | float | None = None,
        events_per_second: float = 1.0,
    ) -> None:
        if not 0.0 <= fraud_rate <= 1.0:
            raise ValueError("fraud_rate must be within 0..1")
        self.draws = Draws(seed, "tfd")
        self.rng = rng = self.draws.rng
        self.fraud_rate = fraud_rate
        self.drift_at = drift_at
        self.clock = EventClock(rng, start, events_per_second, profile=_ACTIVITY)
        self.emitted = 0
        self.frauds = 0
        self._iso = IsoFormatter()
        self._next_user = 1000
        self._merchants = tuple(f"merchant_{i}" for i in range(1, N_MERCHANTS + 1))
        self._pick_currency = picker(rng, CURRENCIES, CURRENCY_WEIGHTS)
        self._pick_legit_device = picker(rng, DEVICES, [d[2] for d in DEVICES])
        self._pick_fraud_device = picker(rng, DEVICES, [d[3] for d in DEVICES])
        self._pick_legit_category = _dict_picker(rng, LEGIT_CATEGORY_WEIGHTS)
        self._pick_legit_payment = _dict_picker(rng, LEGIT_PAYMENT_WEIGHTS)
        self._pick_legit_type = _dict_picker(rng, LEGIT_TYPE_WEIGHTS)
        self._pick_fraud_type = _dict_picker(rng, FRAUD_TYPE_WEIGHTS)
        self._patterns = {
            False: _pattern_pickers(rng, BASE_PATTERN),
            True: _pattern_pickers(rng, DRIFT_PATTERN),
        }
        self.users = [self._new_user(self._initial_created_at()) for _ in range(n_users)]
        activity = [rng.lognormvariate(0, 0.8) for _ in self.users]  # some users shop a lot
        self._pick_user_index = picker(rng, range(n_users), activity)
        self.fraudsters = [self._new_fraudster(self.clock.start) for _ in range(25)]

    # -- population -------------------------------------------------------------------------
    def _initial_created_at(self) -> float:
        rng, start = self.rng, self.clock.start
        if rng.random() < 0.025:  # recent sign-ups
            return start - rng.uniform(0, NEW_ACCOUNT_DAYS) * SECONDS_PER_DAY
        return start - rng.uniform(NEW_ACCOUNT_DAYS + 1, MAX_ACCOUNT_AGE_DAYS) * SECONDS_PER_DAY

    def _new_user(self, created_at: float, fraudster: bool = False) -> User:
        rng = self.rng
        currency = self._pick_currency()
        lat, lon = rng.choice(CITIES[currency])
        os_name, browser, _, _ = (
            self._pick_fraud_device if fraudster else self._pick_legit_device
        )()
        user_id = f"user_{self._next_user}"
        self._next_user += 1
        return User(
            user_id=user_id,
            created_at=created_at,
            currency=currency,
            lat=lat + rng.gauss(0, 0.08),
            lon=lon + rng.gauss(0, 0.08),
            ip_address=_ip(rng.random),
            os=os_name,
            browser=browser,
            user_agent=user_agent(os_name, browser, rng.randint(118, 126)),
            spend_mu=rng.gauss(math.log(38.0), 0.45),
            merchants=tuple(rng.sample(self._merchants, 6)),
            payment=self._pick_legit_payment(),
        )

    def _new_fraudster(self, now: float) -> User:
        user = self._new_user(now - self.rng.uniform(0, NEW_ACCOUNT_DAYS) * SECONDS_PER_DAY, True)
        user.uses_left = self.rng.randint(1, 8)
        return user

    @property
    def drifted(self) -> bool:
        """Whether the next event uses the drifted fraud pattern."""
        return self.drift_at is not None and self.emitted >= self.drift_at

    # -- events -----------------------------------------------------------------------------
    def __next__(self) -> dict[str, Any]:
        now = self.clock.tick()
        if self.draws.random() < self.fraud_rate:
            event = self._fraud(now)
            self.frauds += 1
        else:
            event = self._legit(now)
        self.emitted += 1
        return event

    def _legit(self, now: float) -> dict[str, Any]:
        d = self.draws
        r = d.random
        index = self._pick_user_index()
        if r() < SIGNUP_RATE:  # churn: a new customer takes this slot
            self.users[index] = self._new_user(now - d.uniform(0, 2) * SECONDS_PER_DAY)
        user = self.users[index]
        category = self._pick_legit_category()
        amount = math.exp(d.normal(user.spend_mu, 1.0)) * CATEGORY_SPEND[category]
        payment = user.payment if r() < 0.8 else self._pick_legit_payment()
        merchant = d.choice(user.merchants) if r() < 0.7 else d.choice(self._merchants)
        ip = user.ip_address if r() < 0.9 else _ip(r)  # mobile networks, travel
        return self._event(
            user, now, amount, user.currency, merchant, category, self._pick_legit_type(),
            payment, user.lat + d.normal(0, 0.05), user.lon + d.normal(0, 0.05), ip,
            user.os, user.browser, user.user_agent, 0,
        )  # fmt: skip

    def _fraud(self, now: float) -> dict[str, Any]:
        if self.drifted:
            return self._phished_fraud(now)
        d = self.draws
        r = d.random
        pick_category, pick_payment = self._patterns[False]
        if r() < 0.55:  # a fresh fraudster account, used a few times
            slot = int(r() * len(self.fraudsters))
            user = self.fraudsters[slot]
            user.uses_left -= 1
            if user.uses_left <= 0:
                self.fraudsters[slot] = self._new_fraudster(now)
            os_name, browser, agent, ip = user.os, user.browser, user.user_agent, user.ip_address
        else:  # account takeover: an existing user's account from a foreign device
            user = self.users[self._pick_user_index()]
            os_name, browser, _, _ = self._pick_fraud_device()
            agent, ip = user_agent(os_name, browser, 100 + int(r() * 27)), _ip(r)
        category = pick_category()
        amount = self._fraud_amount(user, category)
        lat, lon = d.choice(CITIES[d.choice(CURRENCIES)])
        currency = user.currency if r() < 0.6 else d.choice(CURRENCIES)
        merchant = d.choice(FRAUD_MERCHANTS) if r() < 0.5 else d.choice(self._merchants)
        return self._event(
            user, now, amount, currency, merchant, category, self._pick_fraud_type(),
            pick_payment(), lat + d.normal(0, 0.3), lon + d.normal(0, 0.3), ip,
            os_name, browser, agent, 1,
        )  # fmt: skip

    def _phished_fraud(self, now: float) -> dict[str, Any]:
        """The drifted fraud: a phished account used from its owner's own device, place and
        merchants for everyday amounts; only the new pattern (travel, bank transfers) and
        the transaction type still tell it apart."""
        d = self.draws
        user = self.users[self._pick_user_index()]
        pick_category, pick_payment = self._patterns[True]
        category = pick_category()
        amount = math.exp(d.normal(user.spend_mu, 1.0)) * CATEGORY_SPEND[category]
        merchant = d.choice(user.merchants) if d.random() < 0.7 else d.choice(self._merchants)
        return self._event(
            user, now, amount, user.currency, merchant, category, self._pick_fraud_type(),
            pick_payment(), user.lat + d.normal(0, 0.05), user.lon + d.normal(0, 0.05),
            user.ip_address, user.os, user.browser, user.user_agent, 1,
        )  # fmt: skip

    def _fraud_amount(self, user: User, category: str) -> float:
        d = self.draws
        scenario = d.random()
        if scenario < 0.25:  # card testing: micro amounts
            return d.uniform(0.5, 5.0)
        if scenario < 0.70:  # cash-out: high amounts
            return math.exp(d.normal(math.log(650.0), 0.8))
        return math.exp(d.normal(user.spend_mu, 1.0)) * CATEGORY_SPEND[category]  # blends in

    def _event(
        self,
        user: User,
        now: float,
        amount: float,
        currency: str,
        merchant: str,
        category: str,
        transaction_type: str,
        payment: str,
        lat: float,
        lon: float,
        ip: str,
        os_name: str,
        browser: str,
        agent: str,
        is_fraud: int,
    ) -> dict[str, Any]:
        r = self.draws.random
        age = int((now - user.created_at) / SECONDS_PER_DAY)
        missing_cvv, mismatch = (
            (DRIFT_MISSING_CVV, DRIFT_BILLING_MISMATCH)
            if self.drifted
            else (MISSING_CVV, BILLING_MISMATCH)
        )
        return {
            "transaction_id": self.draws.uuid4(),
            "user_id": user.user_id,
            "timestamp": self._iso(now),
            "amount": fround(clip(amount, 0.5, 250_000.0), 1e2),
            "currency": currency,
            "merchant_id": merchant,
            "product_category": category,
            "transaction_type": transaction_type,
            "payment_method": payment,
            "location": {
                "lat": fround(clip(lat, -90, 90), 1e5),
                "lon": fround(clip(lon, -180, 180), 1e5),
            },
            "ip_address": ip,
            "device_info": {"os": os_name, "browser": browser},
            "user_agent": agent,
            "account_age_days": age if age < MAX_ACCOUNT_AGE_DAYS else MAX_ACCOUNT_AGE_DAYS,
            "cvv_provided": r() >= missing_cvv[is_fraud],
            "billing_address_match": r() >= mismatch[is_fraud],
            "is_fraud": is_fraud,
        }


# Transactions by UTC hour: a worldwide population, busiest in the European/US day.
_ACTIVITY = (
    5, 4, 3, 3, 3, 4, 5, 6, 8, 9, 10, 10, 11, 12, 13, 14, 14, 14, 13, 12, 11, 9, 8, 6,
)  # fmt: skip


def _dict_picker(rng: random.Random, weights: dict[str, float]):
    return picker(rng, tuple(weights), tuple(weights.values()))


def _pattern_pickers(rng: random.Random, pattern: FraudPattern):
    return _dict_picker(rng, pattern.category_weights), _dict_picker(rng, pattern.payment_weights)


_IP_FIRST_OCTETS = (23, 24, 45, 49, 62, 73, 81, 98, 104, 151, 172, 185, 186, 201, 203, 212)


def _ip(r: Callable[[], float]) -> str:
    """A public-looking IPv4 address from a uniform source `r`."""
    first = _IP_FIRST_OCTETS[int(r() * len(_IP_FIRST_OCTETS))]
    return f"{first}.{int(r() * 256)}.{int(r() * 256)}.{1 + int(r() * 254)}"
