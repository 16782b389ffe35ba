"""Running per-customer profiles: the learner's feature stage of a use case that clusters
customers (`spec.profile`, see `use_cases.spec.CustomerProfile`).

`ProfileStore` keeps, per customer, the decayed sums of each profile value and of its
observation weights: a new event multiplies both by `decay`, then adds the event's value
(and weight 1) where the event observes it. The profile is their ratio, the same decayed
mean `batch/profiles.py` computes in SQL. Memory is bounded: beyond `max_customers`, the
least recently seen customer is forgotten.

`ProfilePipeline` is the drop-in `FeaturePipeline` of such a use case: `learn_transform`
applies an event to its customer's profile and returns the profile, standardised with
running statistics of the profiles it has produced; `transform` answers the same for a
copy (the served state is not touched). It is pickled in the model bundle.
"""

from __future__ import annotations

import math
from array import array
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from coelho_pipelines.incremental.features import RunningScaler
from coelho_pipelines.use_cases.spec import CustomerProfile, UseCaseSpec

# Scaled profile values are clipped to this many standard deviations (see `_scaled`).
Z_CLIP = 5.0


class CustomerState:
    """One customer's decayed sums (`sums`, `weights`: one slot per profile value)."""

    __slots__ = ("events", "sums", "weights")

    def __init__(self, size: int) -> None:
        self.events = 0
        self.sums = [0.0] * size
        self.weights = [0.0] * size

    def copy(self) -> CustomerState:
        other = CustomerState(0)
        other.events, other.sums, other.weights = self.events, self.sums[:], self.weights[:]
        return other

    def apply(self, values: list[float | None], decay: float) -> None:
        """Decay every earlier event's weight, then add this event's observed values."""
        sums, weights = self.sums, self.weights
        for i, value in enumerate(values):
            if value is None:
                sums[i] *= decay
                weights[i] *= decay
            else:
                sums[i] = sums[i] * decay + value
                weights[i] = weights[i] * decay + 1.0
        self.events += 1

    def values(self) -> list[float | None]:
        """The profile: the decayed mean of each value (None: never observed)."""
        return [s / w if w > 0.0 else None for s, w in zip(self.sums, self.weights, strict=True)]

    def __getstate__(self) -> tuple[int, bytes, bytes]:
        # Packed doubles: a third of a pickled list of floats' size, and copied, not walked.
        return self.events, array("d", self.sums).tobytes(), array("d", self.weights).tobytes()

    def __setstate__(self, state: tuple[int, bytes, bytes]) -> None:
        events, sums, weights = state
        self.events = events
        self.sums = array("d", sums).tolist()
        self.weights = array("d", weights).tolist()


class ProfileStore:
    """Decayed profiles keyed by customer, least recently seen evicted beyond a cap."""

    def __init__(self, profile: CustomerProfile) -> None:
        self.key_field = profile.key_field
        self.decay = profile.decay
        self.size = len(profile.features)
        self.max_customers = profile.max_customers
        self.customers: OrderedDict[str, CustomerState] = OrderedDict()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self.customers)

    def get(self, customer: str) -> CustomerState | None:
        return self.customers.get(customer)

    def update(self, customer: str, values: list[float | None]) -> CustomerState:
        """Apply one event's values to the customer's profile (created on first sight)."""
        customers = self.customers
        state = customers.get(customer)
        if state is None:
            state = customers[customer] = CustomerState(self.size)
            while len(customers) > self.max_customers:
                customers.popitem(last=False)
                self.evicted += 1
        else:
            customers.move_to_end(customer)
        state.apply(values, self.decay)
        return state

    def peek(self, customer: str, values: list[float | None]) -> CustomerState:
        """The customer's profile with one more event applied, leaving the store as it is."""
        state = self.customers.get(customer)
        state = CustomerState(self.size) if state is None else state.copy()
        state.apply(values, self.decay)
        return state


class ProfilePipeline:
    """Event -> the standardised profile of its customer after it (picklable, in the bundle).

    Same interface as `FeaturePipeline`: `learn_transform(event, categoricals)` (the learner)
    and `transform(event)` (serving, without mutating anything); `categoricals` receives the
    event's raw categorical values for the cluster analytics, as with `FeaturePipeline`.
    """

    numeric_only = True

    def __init__(self, spec: UseCaseSpec) -> None:
        if spec.profile is None:
            raise ValueError(f"use case {spec.key!r} declares no customer profile")
        self.use_case = spec.key
        self.store = ProfileStore(spec.profile)
        self.scaler = RunningScaler()
        self._bind(spec)

    def _bind(self, spec: UseCaseSpec) -> None:
        profile = spec.profile
        assert profile is not None
        self._key = profile.key_field
        self._extractors = [f.extract for f in profile.features]
        self._names = profile.feature_names
        self._categoricals = [(f.name, f.extract) for f in spec.features if f.kind == "categorical"]

    def __getstate__(self) -> dict[str, Any]:
        # Extractors are lambdas: rebuilt from the spec on load.
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        from coelho_pipelines.use_cases import get_spec

        self.__dict__.update(state)
        self._bind(get_spec(self.use_case))

    @property
    def output_names(self) -> list[str]:
        return list(self._names)

    def event_values(self, event: Mapping[str, Any]) -> list[float | None]:
        """The event's per-event profile values (None where it observes nothing)."""
        return [extract(event) for extract in self._extractors]

    def customer(self, event: Mapping[str, Any]) -> str:
        customer = event.get(self._key)
        if customer is None:
            raise KeyError(f"event has no {self._key}")
        return str(customer)

    def learn_transform(
        self, event: Mapping[str, Any], categoricals: dict[str, Any] | None = None
    ) -> dict[str, float]:
        """Apply `event` to its customer's profile, learn the scaling, return the profile."""
        if categoricals is not None:
            for name, extract in self._categoricals:
                categoricals[name] = extract(event)
        state = self.store.update(self.customer(event), self.event_values(event))
        return self._scaled(state.values(), learn=True)

    def transform(self, event: Mapping[str, Any]) -> dict[str, float]:
        """The customer's profile after `event`, scaled, without changing any state."""
        state = self.store.peek(self.customer(event), self.event_values(event))
        return self._scaled(state.values(), learn=False)

    def profile_of(self, customer: str) -> dict[str, float] | None:
        """The scaled current profile of a known customer (None if unknown)."""
        state = self.store.get(customer)
        return None if state is None else self._scaled(state.values(), learn=False)

    def _scaled(self, values: list[float | None], learn: bool) -> dict[str, float]:
        """z-scores against the running mean and variance (Welford) of each profile value
        over the profiles learned so far, clipped to +-Z_CLIP; a value never observed is 0
        (the mean). The clip matters for a value that barely varied so far (the hour of day
        within the first hour): its first change would otherwise be hundreds of deviations."""
        scaler = self.scaler
        counts, means, m2s = scaler.count, scaler.mean, scaler.m2
        out: dict[str, float] = {}
        for name, value in zip(self._names, values, strict=True):
            if value is None:
                out[name] = 0.0
                continue
            n = counts.get(name, 0)
            mean = means.get(name, 0.0)
            m2 = m2s.get(name, 0.0)
            if learn:  # RunningScaler.learn, inlined
                n += 1
                delta = value - mean
                mean += delta / n
                m2 += delta * (value - mean)
                counts[name], means[name], m2s[name] = n, mean, m2
            if n == 0:
                out[name] = 0.0
                continue
            variance = m2 / n
            z = (value - mean) / math.sqrt(variance) if variance > 0 else 0.0
            out[name] = min(Z_CLIP, max(-Z_CLIP, z))
        return out
