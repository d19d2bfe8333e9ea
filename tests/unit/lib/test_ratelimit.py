"""The outbound policies never overdraw the marketplaces' token buckets; token and error-body parsing."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime

import jwt
import pytest

from app.integrations.marketplace import error_detail
from app.integrations.ozon.client import POLICY as OZON_POLICY
from app.integrations.wildberries import limits as wb
from app.integrations.wildberries.token import REQUIRED_CATEGORIES, parse_token
from app.lib.ratelimit import Policy, Window, token_bucket_policy


class CounterModel:
    """The Lua script's arithmetic on an explicit clock (a reference; the Redis tests check the real one)."""

    def __init__(self, policy: Policy) -> None:
        self.windows = policy.windows
        self.counts: list[dict[int, int]] = [{} for _ in policy.windows]

    def _states(self, now: float) -> list[tuple[Window, int, float, int, int]]:
        out = []
        for w, counts in zip(self.windows, self.counts, strict=True):
            index = math.floor(now / w.seconds)
            out.append((w, index, now / w.seconds - index, counts.get(index - 1, 0), counts.get(index, 0)))
        return out

    def hit(self, now: float) -> bool:
        states = self._states(now)
        if any(p * (1 - f) + c + 1 > w.limit for w, _, f, p, c in states):
            return False
        for counts, (_, index, _, _, c) in zip(self.counts, states, strict=True):
            counts[index] = c + 1
        return True

    def wait(self, now: float) -> float:
        """Seconds until one more request fits every window."""
        longest = 0.0
        for w, _, f, p, c in self._states(now):
            if p * (1 - f) + c + 1 <= w.limit:
                continue
            if c + 1 <= w.limit:
                longest = max(longest, (1 - (w.limit - c - 1) / p - f) * w.seconds)
            else:
                longest = max(longest, (1 - f) * w.seconds + max(0.0, 1 - (w.limit - 1) / c) * w.seconds)
        return longest


class Bucket:
    """A true token bucket, starting full, as WB and the sandbox run it."""

    def __init__(self, requests: int, per: float, burst: int) -> None:
        self.rate, self.burst = requests / per, burst
        self.tokens, self.stamp = float(burst), 0.0

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens + 1e-9 >= 1:
            self.tokens -= 1
            return True
        return False


def _admitted(policy: Policy, arrivals: list[float]) -> list[float]:
    """When a client that retries exactly when told is admitted, one request per arrival."""
    model, out, now = CounterModel(policy), [], 0.0
    for arrival in arrivals:
        now = max(now, arrival)
        while not model.hit(now):
            now += model.wait(now) + 1e-9
        out.append(now)
    return out


BUCKETS = [
    (wb.CARDS, 100, 60, 5),
    (wb.STOCKS_REPORT_WB, 3, 60, 1),
    (wb.FBS_STOCKS, 300, 60, 20),
    (wb.BASE_FBS_STOCKS, 150, 60, 10),
    (wb.ORDERS, 1, 60, 10),
    (wb.PING, 3, 30, 3),
    (OZON_POLICY, 50, 1, 50),
]


def _delay_schemes(admitted: list[float], width: float, rng: random.Random) -> list[list[float]]:
    """Delivery delays in 0..JITTER: the adversarial ones (late in one window, early in the next) and random."""
    parity = [math.floor(t / width) % 2 for t in admitted]
    schemes = [[wb.JITTER * p for p in parity], [wb.JITTER * (1 - p) for p in parity]]
    schemes += [[rng.choice((0.0, wb.JITTER, rng.uniform(0, wb.JITTER))) for _ in admitted] for _ in range(10)]
    return schemes


@pytest.mark.parametrize(("policy", "requests", "per", "burst"), BUCKETS, ids=lambda v: getattr(v, "name", ""))
def test_policy_never_draws_a_429_from_the_bucket_even_with_jitter(
    policy: Policy, requests: int, per: float, burst: int
) -> None:
    rng = random.Random(7)
    interval = per / requests
    width = min(w.seconds for w in policy.windows)
    tightest = min(policy.windows, key=lambda w: w.limit / w.seconds)
    n = 1000
    poisson, total = [], 0.0
    for _ in range(n):
        total += rng.expovariate(1 / interval)
        poisson.append(total)
    patterns = {
        "poisson": poisson,
        # evenly paced at the policy's own long-run rate: exposes a rate above the bucket's
        "paced": [i * tightest.seconds / tightest.limit for i in range(n)],
        # a greedy client starting at various phases, notably just before a boundary where a sliding
        # counter is most generous to the next window
        **{f"greedy@{phase}": [phase * width] * n for phase in (0.0, 0.5, 0.9)},
        "greedy@edge": [width - 1e-3] * n,
    }
    for name, arrivals in patterns.items():
        admitted = _admitted(policy, arrivals)
        for i, delays in enumerate(_delay_schemes(admitted, width, rng)):
            delivered = sorted(t + d for t, d in zip(admitted, delays, strict=True))
            bucket = Bucket(requests, per, burst)
            refused = [t for t in delivered if not bucket.take(t)]
            assert refused == [], f"{policy.name} {name} delays #{i}: {len(refused)} requests would get a 429"


def test_without_head_room_jitter_draws_a_429() -> None:
    """5 per 3 s is 100/min burst 5 on paper, yet late delivery of a full window overdraws the bucket."""
    arrivals = [2.99] * 5 + [3.0]
    naive = _admitted(Policy("naive", (Window("w", 5, 3.0),)), arrivals)
    assert naive[-1] == pytest.approx(3.6, abs=0.01)
    bucket = Bucket(100, 60, 5)
    assert [bucket.take(t) for t in sorted([t + wb.JITTER for t in naive[:5]] + naive[5:])] == [True] * 5 + [False]
    safe = _admitted(wb.CARDS, arrivals)  # the derived policy spaces the same arrivals enough
    bucket = Bucket(100, 60, 5)
    assert all(bucket.take(t) for t in sorted([t + wb.JITTER for t in safe[:4]] + safe[4:]))


def test_documented_windows() -> None:
    def shape(p: Policy) -> list[tuple[int, float]]:
        return [(w.limit, w.seconds) for w in p.windows]

    assert shape(wb.CARDS) == [(4, 2.4)]
    assert shape(wb.STOCKS_REPORT_WB) == shape(wb.STOCKS_REPORT_SELLER) == [(1, 20.5)]
    assert shape(wb.WAREHOUSES) == shape(wb.FBS_STOCKS) == [(15, 3.0)]
    assert shape(wb.ORDERS) == [(9, 540.0)]
    assert shape(wb.PING) == [(3, 31.5)]
    assert shape(token_bucket_policy("x", requests=1, per=10, burst=1, jitter=0)) == [(1, 10.0)]


def test_model_weights_the_previous_window() -> None:
    model = CounterModel(Policy("p", (Window("w", 10, 1.0),)))
    assert sum(model.hit(0.01) for _ in range(12)) == 10
    # halfway through the next window the previous 10 weigh 5: five more fit
    assert sum(model.hit(1.5) for _ in range(8)) == 5


# ---- WB token ----------------------------------------------------------------------------------------------


def _token(**claims: object) -> str:
    return jwt.encode(claims, "not-wb's-key-" + "x" * 32, algorithm="HS256")


def test_parse_token_reads_type_categories_expiry_without_the_key() -> None:
    mask = (1 << 1) | (1 << 2) | (1 << 4) | (1 << 5) | (1 << 30)
    token = _token(
        id="t-1", sid="seller-1", exp=1_900_000_000, iat=1_800_000_000, acc=4, **{"for": "asid:svc-9"}, s=mask
    )
    info = parse_token("Bearer " + token)
    assert info.decoded
    assert info.type == "service"
    assert info.categories == REQUIRED_CATEGORIES
    assert info.missing_categories == frozenset()
    assert info.read_only is True
    assert info.expires_at == datetime.fromtimestamp(1_900_000_000, UTC)
    assert info.seller_id == "seller-1"
    assert info.service_id == "svc-9"


def test_parse_token_lists_missing_categories() -> None:
    info = parse_token(_token(acc=1, s=(1 << 1) | (1 << 3), exp=1_900_000_000))
    assert info.type == "base"
    assert info.categories == {"content", "prices"}
    assert info.missing_categories == {"analytics", "marketplace", "statistics"}
    assert info.read_only is False


@pytest.mark.parametrize("raw", ["", "not-a-token", "a.b.c", "eyJhbGciOiJub25lIn0.bm90IGpzb24.", "Bearer "])
def test_parse_token_of_a_non_jwt_is_unknown_not_an_error(raw: str) -> None:
    info = parse_token(raw)
    assert not info.decoded
    assert info.type is None and info.expires_at is None and info.seller_id is None and info.read_only is None
    assert info.categories == frozenset()
    assert info.missing_categories == frozenset()  # unknown, not "all missing"


# ---- error bodies ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"title":"unauthorized","detail":"token problem; token is expired","status":401}', "token problem"),
        (b'{"code":"NotFound","message":"no such warehouse","data":null}', "no such warehouse"),
        (b'{"data":null,"error":true,"errorText":"Invalid limit","additionalErrors":null}', "Invalid limit"),
        (b'{"code":16,"message":"Invalid Api-Key, please check the key","details":[]}', "Invalid Api-Key"),
        (b'{"errors":["dateFrom: field required"]}', "dateFrom"),
        (b"Request body can not be decoded", "Request body can not be decoded"),
        (b"", ""),
    ],
)
def test_error_detail_reads_every_marketplace_shape(body: bytes, expected: str) -> None:
    assert expected in error_detail(body)
