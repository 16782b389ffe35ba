"""ecci: e-commerce sessions of returning customers with latent behavioural segments.

Customers (`customer_1000`..) keep a home location in the Houston box, one or two devices
and a latent segment (`SEGMENTS` of the ecci vocabulary) that shapes prices, categories, device,
referrer, time on page, session length and the hours they shop. The segment is never an
event field; read it with `segment_of(customer_id)` or `iter_with_truth()`.

Sessions interleave in event time (a discrete-event simulation). Within a session:
the first event is page_view (.8) or search (.2); afterwards, with a product in focus
(40% of steps) the next is add_to_cart .6 / page_view .35 / leave_review .05, where an
add_to_cart becomes a purchase with p=.3; otherwise page_view .6 / search .2 /
add_to_cart .2. A session ends with a purchase, when the customer goes idle (15 minutes
without an event: no later event of that session) or at `max_session_events`. A
session keeps one device. A customer starts a new session only after 15 idle minutes.
Search events have null product fields, price and quantity; quantity is set only for
add_to_cart and purchase; referrer_url only on the first event of a session.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from coelho_pipelines.use_cases.ecci.vocabulary import PRODUCT_CATEGORIES, REFERRERS, SEGMENTS
from coelho_pipelines.use_cases.generation import (
    BaseGenerator,
    Draws,
    EventClock,
    IsoFormatter,
    LocalTime,
    clip,
    fround,
    picker,
)
from coelho_pipelines.use_cases.geography import HOUSTON, HOUSTON_ZONE

SHOP_URL = "https://shop.coelho.example"
PRODUCT_IDS = tuple(f"prod_{n}" for n in range(1000, 1101))
IDLE_TIMEOUT_SECONDS = 15 * 60
# After `drift_at` (a redesign, and browsers that spoof their user agent): pages hold
# customers 3x longer and far less evenly, and the device info is any device at random.
DRIFT_TIME_ON_PAGE = 3.0
TIME_ON_PAGE_SIGMA = 0.55  # log-normal spread of the time on page
DRIFT_TIME_ON_PAGE_SIGMA = 1.5
MAX_TIME_ON_PAGE = 600.0  # shorter than the idle timeout: a longer stay ends the session
FOCUS_PROBABILITY = 0.4
PURCHASE_PROBABILITY = 0.3
FIRST_EVENT = (("page_view", "search"), (0.8, 0.2))
FOCUS_EVENT = (("add_to_cart", "page_view", "leave_review"), (0.6, 0.35, 0.05))
BROWSE_EVENT = (("page_view", "search", "add_to_cart"), (0.6, 0.2, 0.2))
TIME_ON_PAGE_FACTOR = {
    "page_view": 1.0, "search": 0.5, "add_to_cart": 0.6, "purchase": 1.6, "leave_review": 3.0,
}  # fmt: skip

# Price range of each category (log-uniform within it).
CATEGORY_PRICES = {
    "Electronics": (25, 2500), "Fashion & Apparel": (10, 400), "Home & Garden": (10, 900),
    "Beauty & Personal Care": (5, 150), "Sports & Outdoors": (10, 700), "Books": (5, 60),
    "Grocery & Gourmet Food": (5, 90), "Automotive": (10, 1500), "Toys & Games": (5, 250),
    "Computers": (150, 2500), "Pet Supplies": (5, 160), "Health & Household": (5, 120),
}  # fmt: skip

# Search vocabulary per category: (adjectives, nouns). Queries are built only from these
# words, the segment modifiers below and SEARCH_SUFFIXES.
CATEGORY_WORDS = {
    "Electronics": (("wireless", "bluetooth", "portable", "smart", "4k", "noise cancelling"),
                    ("headphones", "earbuds", "speaker", "tv", "camera", "charger", "smartwatch")),
    "Fashion & Apparel": (("cotton", "leather", "summer", "winter", "slim fit", "waterproof"),
                          ("jacket", "sneakers", "dress", "jeans", "hoodie", "boots", "t-shirt")),
    "Home & Garden": (("stainless steel", "ceramic", "outdoor", "led", "non-stick", "wooden"),
                      ("cookware set", "lamp", "planter", "rug", "garden hose", "bookshelf")),
    "Beauty & Personal Care": (("organic", "vegan", "hydrating", "fragrance free", "travel size"),
                               ("moisturizer", "shampoo", "sunscreen", "serum", "lipstick")),
    "Sports & Outdoors": (("lightweight", "adjustable", "insulated", "foldable", "camping"),
                          ("yoga mat", "dumbbells", "tent", "water bottle", "bike helmet")),
    "Books": (("bestselling", "illustrated", "paperback", "hardcover", "kids"),
              ("novel", "cookbook", "biography", "fantasy series", "science book")),
    "Grocery & Gourmet Food": (("organic", "gluten free", "dark roast", "spicy", "bulk"),
                               ("coffee beans", "olive oil", "green tea", "protein bars", "honey")),
    "Automotive": (("all weather", "heavy duty", "universal", "cordless", "led"),
                   ("floor mats", "jump starter", "dash cam", "car vacuum", "wiper blades")),
    "Toys & Games": (("educational", "wooden", "remote control", "magnetic", "family"),
                     ("board game", "puzzle", "building blocks", "drone", "plush toy")),
    "Computers": (("gaming", "mechanical", "ultrawide", "lightweight", "16gb"),
                  ("laptop", "keyboard", "monitor", "mouse", "ssd", "docking station")),
    "Pet Supplies": (("grain free", "orthopedic", "interactive", "self cleaning", "large"),
                     ("dog food", "cat litter", "dog bed", "cat tree", "chew toy")),
    "Health & Household": (("unscented", "rechargeable", "extra strength", "reusable"),
                           ("vitamins", "electric toothbrush", "paper towels", "thermometer")),
}  # fmt: skip
SEARCH_SUFFIXES = ("for men", "for women", "for kids", "set", "pack", "2 pack", "black", "white")


@dataclass(frozen=True)
class SegmentProfile:
    """How one latent segment behaves."""

    name: str
    share: float
    categories: dict[str, float]  # affinity; unlisted categories get 1
    price_median: float
    price_sigma: float  # log-space spread of the prices it looks at
    time_on_page: float  # median seconds on a page_view
    devices: tuple[float, float, float]  # Mobile, Desktop, Tablet
    referrers: dict[str, float]  # unlisted referrers get 1
    continue_probability: float  # after each event, chance the customer does not go idle
    quantities: tuple[float, float, float, float]  # weights of 1..4
    hours: tuple[tuple[float, float, float], ...]  # (local hour, width, height) bumps
    modifiers: tuple[str, ...]  # words it puts in search queries


PROFILES = {
    p.name: p
    for p in (
        SegmentProfile(
            "bargain_hunter", 0.25,
            {"Grocery & Gourmet Food": 4, "Home & Garden": 3, "Health & Household": 4,
             "Pet Supplies": 3, "Beauty & Personal Care": 3},
            18.0, 0.6, 35.0, (0.45, 0.45, 0.10),
            {"google.com": 6, "email_campaign": 8, "affiliate_link": 6, "bing.com": 3},
            0.90, (0.35, 0.3, 0.2, 0.15), ((10, 3, 1.0), (20, 3, 1.0)),
            ("cheap", "discount", "sale", "deal", "clearance", "under 20", "coupon"),
        ),
        SegmentProfile(
            "researcher", 0.20,
            {"Electronics": 5, "Computers": 6, "Books": 3, "Automotive": 2},
            250.0, 0.9, 150.0, (0.1, 0.8, 0.1),
            {"google.com": 10, "bing.com": 6, "direct": 2},
            0.95, (0.85, 0.1, 0.03, 0.02), ((11, 3, 1.0), (15, 3, 0.8)),
            ("best", "review", "top rated", "comparison", "specs", "vs"),
        ),
        SegmentProfile(
            "big_spender", 0.10,
            {"Electronics": 5, "Computers": 4, "Fashion & Apparel": 3, "Automotive": 3,
             "Home & Garden": 2},
            900.0, 0.5, 60.0, (0.25, 0.5, 0.25),
            {"direct": 10, "email_campaign": 4, "amazon.com": 3},
            0.88, (0.7, 0.2, 0.07, 0.03), ((13, 2, 0.6), (20, 3, 1.0)),
            ("premium", "luxury", "professional", "designer", "pro"),
        ),
        SegmentProfile(
            "window_shopper", 0.30,
            {"Fashion & Apparel": 5, "Home & Garden": 3, "Beauty & Personal Care": 3,
             "Toys & Games": 2},
            60.0, 0.8, 12.0, (0.55, 0.2, 0.25),
            {"instagram.com": 8, "facebook.com": 8, "direct": 2},
            0.70, (0.9, 0.07, 0.02, 0.01), ((21, 3, 1.0), (13, 2, 0.4)),
            ("new", "trending", "cute", "ideas", "inspiration"),
        ),
        SegmentProfile(
            "mobile_impulse_buyer", 0.15,
            {"Fashion & Apparel": 4, "Toys & Games": 3, "Beauty & Personal Care": 3,
             "Sports & Outdoors": 3, "Electronics": 2},
            45.0, 0.6, 7.0, (0.97, 0.01, 0.02),
            {"instagram.com": 10, "facebook.com": 6, "affiliate_link": 3},
            0.82, (0.6, 0.25, 0.1, 0.05), ((8, 1.5, 0.6), (18, 1.5, 0.7), (23, 2.5, 1.0)),
            ("gift", "trending", "fast shipping", "viral", "best seller"),
        ),
    )
}  # fmt: skip
assert tuple(PROFILES) == SEGMENTS, "segment profiles must follow the ecci vocabulary's SEGMENTS"

DEVICE_TYPES = ("Mobile", "Desktop", "Tablet")
DEVICE_SOFTWARE = {  # (os, browser, weight)
    "Mobile": (("iOS", "Safari", 45), ("iOS", "Chrome", 8), ("Android", "Chrome", 40),
               ("Android", "Samsung Internet", 7)),
    "Desktop": (("Windows", "Chrome", 40), ("Windows", "Edge", 15), ("Windows", "Firefox", 8),
                ("macOS", "Safari", 20), ("macOS", "Chrome", 12), ("Linux", "Firefox", 5)),
    "Tablet": (("iPadOS", "Safari", 60), ("Android", "Chrome", 35), ("Android", "Firefox", 5)),
}  # fmt: skip


def _hourly(bumps: tuple[tuple[float, float, float], ...]) -> tuple[float, ...]:
    """24 activity weights: a floor plus circular Gaussian bumps (local hour, width, height)."""
    weights = []
    for hour in range(24):
        value = 0.08
        for centre, width, height in bumps:
            distance = min(abs(hour - centre), 24 - abs(hour - centre))
            value += height * math.exp(-0.5 * (distance / width) ** 2)
        weights.append(value)
    return tuple(weights)


def expected_session_events(profile: SegmentProfile, cap: int) -> float:
    """Mean events per session of a segment under the state machine (cap ignored if large)."""
    c = profile.continue_probability
    q = FOCUS_PROBABILITY * FOCUS_EVENT[1][0] * PURCHASE_PROBABILITY  # purchase per later step
    return min(float(cap), 1.0 + c / (1.0 - c * (1.0 - q)))


@dataclass
class Customer:
    customer_id: str
    segment: str
    lat: float
    lon: float
    devices: tuple[dict[str, str], ...]
    available_at: float = -math.inf  # 15 idle minutes after the last event of a session


@dataclass
class Session:
    session_id: str
    customer: Customer
    profile: SegmentProfile
    device: dict[str, str]
    lat: float
    lon: float
    referrer: str
    sequence: int = 0
    focus: str | None = None  # product in focus
    search_category: str | None = None


class InteractionGenerator(BaseGenerator):
    """Seeded stream of ecci interaction events (JSON-ready dicts).

    Options: `n_customers` (2000), `max_session_events` (40), `start` (event-time start,
    default now floored to the hour), `events_per_second` (simulated event-time rate,
    approximate, default 1.0), `drift_at` (event index from which the time on page is
    `DRIFT_TIME_ON_PAGE` times longer and spread `DRIFT_TIME_ON_PAGE_SIGMA`, and the device
    info is a random device, or None).
    """

    def __init__(
        self,
        seed: int = 42,
        *,
        n_customers: int = 2000,
        max_session_events: int = 40,
        start: datetime | str | float | None = None,
        events_per_second: float = 1.0,
        drift_at: int | None = None,
    ) -> None:
        if max_session_events < 1:
            raise ValueError("max_session_events must be at least 1")
        self.draws = Draws(seed, "ecci")
        self.rng = rng = self.draws.rng
        self.max_session_events = max_session_events
        self.drift_at = drift_at
        self._iso = IsoFormatter()
        self._local = LocalTime(HOUSTON_ZONE)
        self.emitted = 0
        self.sessions_started = 0
        self._build_catalogue()
        self._build_customers(n_customers)
        mean_events = sum(
            p.share * expected_session_events(p, max_session_events) for p in PROFILES.values()
        )
        hourly = {name: _hourly(p.hours) for name, p in PROFILES.items()}
        profile = [sum(PROFILES[s].share * hourly[s][h] for s in SEGMENTS) for h in range(24)]
        self.arrivals = EventClock(
            rng, start, events_per_second / mean_events, profile, lambda ts: self._local(ts)[0]
        )
        self._customer_by_hour = [
            picker(rng, self.customers, [a * hourly[c.segment][h] for a, c in self._activity])
            for h in range(24)
        ]
        self._next_arrival = self.arrivals.tick()
        self._heap: list[tuple[float, int, Session]] = []
        self._counter = 0
        self._pick = {
            "first": picker(rng, *FIRST_EVENT),
            "focus": picker(rng, *FOCUS_EVENT),
            "browse": picker(rng, *BROWSE_EVENT),
        }

    # -- population -------------------------------------------------------------------------
    def _build_catalogue(self) -> None:
        rng = self.rng
        self.products: dict[str, tuple[str, float]] = {}
        for index, product_id in enumerate(PRODUCT_IDS):
            category = PRODUCT_CATEGORIES[index % len(PRODUCT_CATEGORIES)]
            low, high = CATEGORY_PRICES[category]
            price = math.exp(rng.uniform(math.log(low), math.log(high)))
            self.products[product_id] = (category, fround(clip(price, 5.0, 2500.0), 1e2))
        self._product_pickers: dict[tuple[str, str | None], Any] = {}
        for name, prof in PROFILES.items():
            for category in (None, *PRODUCT_CATEGORIES):
                ids = [p for p, (c, _) in self.products.items() if category in (None, c)]
                weights = [self._affinity(prof, p) for p in ids]
                self._product_pickers[name, category] = picker(rng, ids, weights)
        self._pick_category = {
            name: picker(rng, PRODUCT_CATEGORIES, [p.categories.get(c, 1.0) for c in
                                                   PRODUCT_CATEGORIES])
            for name, p in PROFILES.items()
        }  # fmt: skip
        self._pick_referrer = {
            name: picker(rng, REFERRERS, [p.referrers.get(r, 1.0) for r in REFERRERS])
            for name, p in PROFILES.items()
        }
        self._pick_quantity = {
            name: picker(rng, (1, 2, 3, 4), p.quantities) for name, p in PROFILES.items()
        }

    def _affinity(self, profile: SegmentProfile, product_id: str) -> float:
        category, price = self.products[product_id]
        z = (math.log(price) - math.log(profile.price_median)) / profile.price_sigma
        return profile.categories.get(category, 1.0) * (math.exp(-0.5 * z * z) + 1e-3)

    def _build_customers(self, n_customers: int) -> None:
        rng = self.rng
        pick_segment = picker(rng, SEGMENTS, [PROFILES[s].share for s in SEGMENTS])
        software = {
            kind: picker(rng, options, [w for _, _, w in options])
            for kind, options in DEVICE_SOFTWARE.items()
        }
        self.customers: list[Customer] = []
        self._activity: list[tuple[float, Customer]] = []
        self._segments: dict[str, str] = {}
        for number in range(1000, 1000 + n_customers):
            segment = pick_segment()
            pick_kind = picker(rng, DEVICE_TYPES, PROFILES[segment].devices)
            devices = []
            for _ in range(1 if rng.random() < 0.6 else 2):
                kind = pick_kind()
                os_name, browser, _ = software[kind]()
                devices.append({"device_type": kind, "browser": browser, "os": os_name})
            customer = Customer(
                customer_id=f"customer_{number}",
                segment=segment,
                lat=rng.uniform(HOUSTON.lat[0] + 0.01, HOUSTON.lat[1] - 0.01),
                lon=rng.uniform(HOUSTON.lon[0] + 0.01, HOUSTON.lon[1] - 0.01),
                devices=tuple(devices),
            )
            self.customers.append(customer)
            self._activity.append((rng.paretovariate(2.0), customer))
            self._segments[customer.customer_id] = segment

    def segment_of(self, customer_id: str) -> str:
        """The latent segment of a customer (ground truth for clustering; never a field)."""
        return self._segments[customer_id]

    @property
    def active_sessions(self) -> int:
        """Sessions started and not yet ended."""
        return len(self._heap)

    # -- sessions ---------------------------------------------------------------------------
    def _start_session(self, now: float) -> None:
        d = self.draws
        pick_customer = self._customer_by_hour[self._local(now)[0]]
        customer = pick_customer()
        for _ in range(20):  # a customer has one session at a time, 15 idle minutes apart
            if customer.available_at <= now:
                break
            customer = pick_customer()
        profile = PROFILES[customer.segment]
        device = d.choice(customer.devices)
        moving = 0.01 if device["device_type"] == "Mobile" else 0.001
        session = Session(
            session_id=d.uuid4(),
            customer=customer,
            profile=profile,
            device=device,
            lat=fround(clip(customer.lat + d.normal(0, moving), *HOUSTON.lat), 1e6),
            lon=fround(clip(customer.lon + d.normal(0, moving), *HOUSTON.lon), 1e6),
            referrer=self._pick_referrer[profile.name](),
        )
        customer.available_at = math.inf
        self.sessions_started += 1
        self._push(now, session)

    def _push(self, when: float, session: Session) -> None:
        self._counter += 1
        heapq.heappush(self._heap, (when, self._counter, session))

    def _next_type(self, session: Session) -> str:
        if session.sequence == 1:
            return self._pick["first"]()
        if self.draws.random() < FOCUS_PROBABILITY:
            event_type = self._pick["focus"]()
            if event_type == "add_to_cart" and self.draws.random() < PURCHASE_PROBABILITY:
                return "purchase"
            if session.focus is None:  # after a search: a product from its results
                session.focus = self._product(session)
            return event_type
        return self._pick["browse"]()

    def _product(self, session: Session) -> str:
        return self._product_pickers[session.profile.name, session.search_category]()

    def _query(self, session: Session) -> str:
        d = self.draws
        category = self._pick_category[session.profile.name]()
        session.search_category = category
        adjectives, nouns = CATEGORY_WORDS[category]
        words = [d.choice(nouns)]
        if d.random() < 0.6:
            words.insert(0, d.choice(adjectives))
        if d.random() < 0.45:
            words.insert(0, d.choice(session.profile.modifiers))
        if d.random() < 0.2:
            words.append(d.choice(SEARCH_SUFFIXES))
        return " ".join(words)

    @property
    def drifted(self) -> bool:
        """Whether the next event comes after the drift."""
        return self.drift_at is not None and self.emitted >= self.drift_at

    def _spoofed_device(self) -> dict[str, str]:
        """After the drift, any device at random (browsers now spoof their user agent)."""
        kind = self.draws.choice(DEVICE_TYPES)
        os_name, browser, _ = self.draws.choice(DEVICE_SOFTWARE[kind])
        return {"device_type": kind, "browser": browser, "os": os_name}

    # -- events -----------------------------------------------------------------------------
    def __next__(self) -> dict[str, Any]:
        return self._emit()[0]

    def iter_with_truth(self) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
        """Events with their ground truth: `{"segment": ..., "session_id": ...}`."""
        while True:
            event, session = self._emit()
            yield event, {"segment": session.profile.name, "session_id": session.session_id}

    def _emit(self) -> tuple[dict[str, Any], Session]:
        d = self.draws
        heap = self._heap
        while not heap or self._next_arrival <= heap[0][0]:
            self._start_session(self._next_arrival)
            self._next_arrival = self.arrivals.tick()
        now, _, session = heapq.heappop(heap)
        session.sequence += 1
        event_type = self._next_type(session)
        profile = session.profile
        product_id = category = price = quantity = query = None
        if event_type == "search":
            query = self._query(session)
            session.focus = None
            page = f"{SHOP_URL}/search?q={query.replace(' ', '+')}"
        else:
            if event_type == "page_view" or session.focus is None:
                session.focus = self._product(session)
            product_id = session.focus
            category, price = self.products[product_id]
            if event_type in ("add_to_cart", "purchase"):
                quantity = self._pick_quantity[profile.name]()
            page = _PAGES[event_type].format(product_id)
        drifted = self.drifted
        sigma = DRIFT_TIME_ON_PAGE_SIGMA if drifted else TIME_ON_PAGE_SIGMA
        seconds = math.exp(d.normal(0.0, sigma)) * profile.time_on_page
        if drifted:
            seconds *= DRIFT_TIME_ON_PAGE
        seconds = fround(
            clip(seconds * TIME_ON_PAGE_FACTOR[event_type], 1.0, MAX_TIME_ON_PAGE), 1e1
        )
        event = {
            "event_id": d.uuid4(),
            "customer_id": session.customer.customer_id,
            "session_id": session.session_id,
            "timestamp": self._iso(now),
            "event_type": event_type,
            "product_id": product_id,
            "product_category": category,
            "price": price,
            "quantity": quantity,
            "page_url": page,
            "referrer_url": session.referrer if session.sequence == 1 else None,
            "device_info": self._spoofed_device() if drifted else dict(session.device),
            "location": {"lat": session.lat, "lon": session.lon},
            "time_on_page_seconds": seconds,
            "search_query": query,
            "session_event_sequence": session.sequence,
        }
        next_time = now + seconds + d.uniform(0.5, 4.0)
        ends = (
            event_type == "purchase"
            or session.sequence >= self.max_session_events
            or d.random() >= profile.continue_probability
        )
        if ends:
            session.customer.available_at = next_time + IDLE_TIMEOUT_SECONDS
        else:
            self._push(next_time, session)
        self.emitted += 1
        return event, session


_PAGES = {
    "page_view": SHOP_URL + "/products/{}",
    "add_to_cart": SHOP_URL + "/cart?add={}",
    "purchase": SHOP_URL + "/checkout/confirmation?product={}",
    "leave_review": SHOP_URL + "/products/{}/reviews/new",
}
