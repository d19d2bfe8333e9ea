"""Simulated sellers and the per-app registry that holds them (all state is in memory)."""

from __future__ import annotations

import random
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import msgspec

from app.sandbox._auth import TokenType, WbToken, category_mask, issue_wb_token
from app.sandbox._catalog import Catalog, Marketplace, build_catalog
from app.sandbox._ratelimit import Limit, TokenBucket
from app.sandbox._simulation import Simulator


class Faults(msgspec.Struct, forbid_unknown_fields=True):
    """Injected trouble for one seller; `malformed_rate` truncates that fraction of 200 bodies."""

    error_rate: float = 0.0
    status: int = 500
    latency_ms: int = 0
    # Each request's latency is latency_ms plus a uniform draw in [0, latency_jitter_ms] (seeded per seller).
    latency_jitter_ms: int = 0
    rate_limits: Literal["real", "off"] = "real"
    malformed_rate: float = 0.0
    # Only requests whose endpoint key ("POST /wb/api/analytics/v1/stocks-report/wb-warehouses") contains
    # this text are faulted ("" = every endpoint).
    endpoint: str = ""
    # An injected 429's wait (WB's X-Ratelimit-Retry / X-Ratelimit-Reset), in seconds.
    retry_after: int = 1
    # Stop after this many injected faults (0 = never): a storm that passes.
    count: int = 0
    # Let this many matching requests through before faulting (a failure on the second page).
    after: int = 0


@dataclass(slots=True)
class Stats:
    requests: Counter[str] = field(default_factory=Counter)
    rate_limited: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)

    @property
    def violations(self) -> int:
        return sum(self.rate_limited.values())


@dataclass(slots=True)
class SellerSpec:
    marketplace: Marketplace
    products: int
    warehouses: int
    seed: int
    categories: list[str]
    token_type: TokenType
    token_expires_in_days: int


class Seller:
    """One marketplace account: catalogue, stock, orders, clock, credentials, faults and counters."""

    def __init__(self, spec: SellerSpec, *, seller_id: str, created_at: float) -> None:
        self.id = seller_id
        self.spec = spec
        self.marketplace: Marketplace = spec.marketplace
        rng = random.Random(f"catalog:{spec.seed}")
        self.catalog: Catalog = build_catalog(rng, spec.marketplace, spec.products, spec.warehouses)
        self.sim = Simulator(self.catalog, random.Random(f"orders:{spec.seed}"), created_at)
        self.faults = Faults()
        self.fault_rng = random.Random()
        self.latency_rng = random.Random()
        self.reseed_faults()
        self.stats = Stats()
        self.buckets: dict[str, TokenBucket] = {}
        self.sid = str(uuid.uuid4())
        self.wb_token: WbToken | None = None
        self.client_id = ""
        self.api_key = ""

    @property
    def now(self) -> float:
        return self.sim.now

    def bucket(self, name: str, limit: Limit, now: float) -> TokenBucket:
        bucket = self.buckets.get(name)
        if bucket is None or bucket.limit != limit:
            bucket = self.buckets[name] = TokenBucket(limit, now)
        return bucket

    def reseed_faults(self) -> None:
        self.fault_rng = random.Random(f"faults:{self.spec.seed}")
        # Its own sequence, so that jitter does not shift which requests fail.
        self.latency_rng = random.Random(f"latency:{self.spec.seed}")
        self.faults_injected = 0
        self.faults_passed = 0

    def latency_s(self) -> float:
        """This request's injected latency in seconds (0 when none is set)."""
        f = self.faults
        jitter = self.latency_rng.uniform(0, f.latency_jitter_ms) if f.latency_jitter_ms else 0.0
        return (f.latency_ms + jitter) / 1000

    def fault_due(self, endpoint_key: str) -> bool:
        """Whether this request gets the injected fault (and count it)."""
        f = self.faults
        if not f.error_rate or f.endpoint not in endpoint_key or (f.count and self.faults_injected >= f.count):
            return False
        if self.faults_passed < f.after:
            self.faults_passed += 1
            return False
        if self.fault_rng.random() >= f.error_rate:
            return False
        self.faults_injected += 1
        return True

    def credentials(self) -> dict[str, str]:
        if self.wb_token is not None:
            return {"token": self.wb_token.token}
        return {"client_id": self.client_id, "api_key": self.api_key}


class Sandbox:
    """The sandbox's whole state: sellers by id and credential indexes; one per app instance."""

    def __init__(self, *, rate_limits: bool = True, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate_limits = rate_limits
        self.clock = clock
        self.secret = secrets.token_bytes(32)
        self.sellers: dict[str, Seller] = {}
        self.wb_tokens: dict[str, str] = {}
        self.ozon_clients: dict[str, str] = {}

    def build_seller(self, spec: SellerSpec) -> Seller:
        """Generate a seller (CPU-bound, touches no shared state: safe to run in a worker thread)."""
        seller = Seller(spec, seller_id=uuid.uuid4().hex, created_at=time.time())
        if spec.marketplace == "wildberries":
            seller.wb_token = issue_wb_token(
                self.secret,
                seller_sid=seller.sid,
                mask=category_mask(spec.categories),
                token_type=spec.token_type,
                now=seller.now,
                expires_in_days=spec.token_expires_in_days,
            )
        else:
            seller.api_key = str(uuid.uuid4())
        return seller

    def register(self, seller: Seller) -> None:
        if seller.wb_token is not None:
            self.wb_tokens[seller.wb_token.token] = seller.id
        else:
            while not seller.client_id or seller.client_id in self.ozon_clients:
                seller.client_id = str(100_000 + secrets.randbelow(9_900_000))
            self.ozon_clients[seller.client_id] = seller.id
        self.sellers[seller.id] = seller

    def remove(self, seller_id: str) -> bool:
        seller = self.sellers.pop(seller_id, None)
        if seller is None:
            return False
        if seller.wb_token is not None:
            self.wb_tokens.pop(seller.wb_token.token, None)
        self.ozon_clients.pop(seller.client_id, None)
        return True
