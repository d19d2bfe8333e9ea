"""Order lines and simulated time: orders drain stock, some are cancelled and come back, restocks arrive.

One event loop serves both the 30 days of history generated with a seller (replayed without touching
stock, which already reflects them) and `advance` (live: every order takes a unit from a warehouse that
has one). Orders are stored column-wise; a change log ordered by `lastChangeDate` answers WB's
`flag=0` queries with a bisect instead of a scan.
"""

from __future__ import annotations

import heapq
import math
import random
from array import array
from bisect import bisect_left
from dataclasses import dataclass, field
from itertools import accumulate

from app.sandbox._catalog import NO_ROW, Catalog
from app.sandbox._timeutil import DAY, HOUR

HISTORY_DAYS = 30
HISTORY_CAP = 150_000  # big catalogues sell less per variant so that history stays cheap to build
MAX_ADVANCE_HOURS = 24 * 366
CANCEL_RATE = 0.08
BASKET_RATE = 0.15
MARKET_SHARE = 0.75
RESTOCK_CHANCE = 0.6

DELIVER, CANCEL, RETURN, RESTOCK = 0, 1, 2, 3


@dataclass(slots=True)
class OrderBook:
    ts: list[float] = field(default_factory=list)
    variant: array[int] = field(default_factory=lambda: array("i"))
    warehouse: array[int] = field(default_factory=lambda: array("h"))
    basket: list[int] = field(default_factory=list)
    deliver: list[float] = field(default_factory=list)
    cancel: list[float] = field(default_factory=list)  # 0.0 = never cancelled
    back: list[float] = field(default_factory=list)  # when a cancelled unit is back on stock
    log_ts: list[float] = field(default_factory=list)  # ascending lastChangeDate entries
    log_order: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ts)

    def cancelled(self, order: int, now: float) -> bool:
        return 0.0 < self.cancel[order] <= now

    def last_change(self, order: int, now: float) -> float:
        c = self.cancel[order]
        return c if 0.0 < c <= now else self.ts[order]

    def changed_since(self, since: float, now: float, limit: int) -> list[int]:
        """Orders whose current lastChangeDate >= since, oldest change first, at most `limit`."""
        out: list[int] = []
        i = bisect_left(self.log_ts, since)
        log_ts, log_order = self.log_ts, self.log_order
        while i < len(log_ts) and len(out) < limit:
            o = log_order[i]
            if self.last_change(o, now) == log_ts[i]:  # later entries supersede earlier ones
                out.append(o)
            i += 1
        return out

    def placed_between(self, start: float, end: float) -> range:
        return range(bisect_left(self.ts, start), bisect_left(self.ts, end))


@dataclass(slots=True)
class StockLog:
    """Every live change of a stock row (orders, returns, restocks, control edits), oldest first: enough to
    work out any past end-of-day stock backwards from the current one (the cabinet export's by-day sheet)."""

    ts: list[float] = field(default_factory=list)
    variant: array[int] = field(default_factory=lambda: array("i"))
    warehouse: array[int] = field(default_factory=lambda: array("h"))
    delta: array[int] = field(default_factory=lambda: array("i"))

    def note(self, t: float, v: int, w: int, delta: int) -> None:
        if delta:
            self.ts.append(t)
            self.variant.append(v)
            self.warehouse.append(w)
            self.delta.append(delta)


@dataclass(slots=True)
class AdvanceResult:
    orders: int = 0
    lost_sales: int = 0
    cancelled: int = 0
    delivered: int = 0
    returned: int = 0  # units back on stock after a cancellation
    restocks: int = 0
    restocked_units: int = 0


class Simulator:
    """Owns the seller's clock, order book and future events."""

    def __init__(self, catalog: Catalog, rng: random.Random, now: float) -> None:
        self.cat = catalog
        self.rng = rng
        self.orders = OrderBook()
        self.stock_log = StockLog()
        self._events: list[tuple[float, int, int, int, int, int]] = []
        self._seq = 0
        self._cum = list(accumulate(catalog.daily_rate))
        total = self._cum[-1] if self._cum else 0.0
        self.scale = min(1.0, HISTORY_CAP / (HISTORY_DAYS * total)) if total else 0.0
        self.daily_orders = total * self.scale
        self._market = [w.index for w in catalog.warehouses if w.kind in ("fbw", "fbo")]
        self._seller = [w.index for w in catalog.warehouses if w.kind == "fbs"]
        self._last_basket = -1
        self.now = float(int(now))
        start = self.now - HISTORY_DAYS * DAY
        count = int(HISTORY_DAYS * self.daily_orders)
        self._run(self._draw(start, self.now, count), self.now, replay=True, result=AdvanceResult())

    # ---- public ------------------------------------------------------------------------------------------

    def advance(self, hours: float) -> AdvanceResult:
        """Move the clock forward, placing orders and applying due events; returns what happened."""
        result = AdvanceResult()
        end = float(int(self.now + hours * HOUR))
        count = _poisson(self.rng, self.daily_orders * (end - self.now) / DAY)
        self._run(self._draw(self.now, end, count), end, replay=False, result=result)
        self.now = end
        return result

    # ---- internals ---------------------------------------------------------------------------------------

    def _draw(self, start: float, end: float, count: int) -> list[tuple[float, int]]:
        if count <= 0 or not self._cum:
            return []
        rng = self.rng
        variants = rng.choices(range(len(self._cum)), cum_weights=self._cum, k=count)
        span = end - start
        times = sorted(float(int(start + rng.random() * span)) for _ in range(count))
        for i in range(1, count):
            if rng.random() < BASKET_RATE:  # another line of the previous order's basket: same instant
                times[i] = times[i - 1]
        return list(zip(times, variants, strict=True))

    def _run(self, draws: list[tuple[float, int]], until: float, *, replay: bool, result: AdvanceResult) -> None:
        random_ = self.rng.random
        book = self.orders
        qty = self.cat.quantity
        last_t = -1.0
        for t, v in draws:
            self._apply_due(t, replay, result)
            w = self._pick_warehouse(v, replay)
            if w is None:
                result.lost_sales += 1
                continue
            if t == last_t:
                basket = book.basket[-1]
            else:
                self._last_basket += 1
                basket = self._last_basket
            if not replay:
                qty[w][v] -= 1
                self.stock_log.note(t, v, w, -1)
                if qty[w][v] == 0 and random_() < RESTOCK_CHANCE:
                    amount = 10 + int(random_() * 140)
                    self._push(t + DAY * (1 + 4 * random_()), RESTOCK, v, w, amount)
            self._place(t, v, w, basket)
            result.orders += 1
            last_t = t
        self._apply_due(until, replay, result)

    def _pick_warehouse(self, v: int, replay: bool) -> int | None:
        floor = NO_ROW if replay else 0  # history only needs a row; live orders need a unit
        qty = self.cat.quantity
        market = [w for w in self._market if qty[w][v] > floor]
        seller = [w for w in self._seller if qty[w][v] > floor]
        if market and (not seller or self.rng.random() < MARKET_SHARE):
            return market[int(self.rng.random() * len(market))]
        if seller:
            return seller[int(self.rng.random() * len(seller))]
        return None

    def _place(self, t: float, v: int, w: int, basket: int) -> None:
        random_ = self.rng.random
        book = self.orders
        o = len(book.ts)
        deliver = float(int(t + DAY * (1 + 2 * random_())))
        cancel = float(int(t + HOUR * (0.5 + 47.5 * random_()))) if random_() < CANCEL_RATE else 0.0
        slow_return = self.cat.returning[w] is not None
        back = float(int(cancel + DAY * (1 + 2 * random_()))) if cancel and slow_return else cancel
        book.ts.append(t)
        book.variant.append(v)
        book.warehouse.append(w)
        book.basket.append(basket)
        book.deliver.append(deliver)
        book.cancel.append(cancel)
        book.back.append(back)
        book.log_ts.append(t)
        book.log_order.append(o)
        pending = self.cat.pending[w]
        if pending is not None:
            pending[v] += 1
        if not cancel or cancel > deliver:
            self._push(deliver, DELIVER, o, 0, 0)
        if cancel:
            self._push(cancel, CANCEL, o, 0, 0)
            if back > cancel:
                self._push(back, RETURN, o, 0, 0)

    def _push(self, t: float, kind: int, a: int, b: int, c: int) -> None:
        self._seq += 1
        heapq.heappush(self._events, (t, self._seq, kind, a, b, c))

    def _apply_due(self, t: float, replay: bool, result: AdvanceResult) -> None:
        events = self._events
        book = self.orders
        cat = self.cat
        while events and events[0][0] <= t:
            when, _, kind, a, b, c = heapq.heappop(events)
            if kind == RESTOCK:
                if cat.quantity[b][a] != NO_ROW:
                    cat.quantity[b][a] += c
                    self.stock_log.note(when, a, b, c)
                    result.restocks += 1
                    result.restocked_units += c
                continue
            v, w = book.variant[a], book.warehouse[a]
            pending = cat.pending[w]
            returning = cat.returning[w]
            if kind == DELIVER:
                if pending is not None:
                    pending[v] -= 1
                result.delivered += 1
            elif kind == CANCEL:
                book.log_ts.append(when)
                book.log_order.append(a)
                result.cancelled += 1
                if pending is not None and book.deliver[a] > when:
                    pending[v] -= 1
                if returning is not None:
                    returning[v] += 1
                elif not replay and cat.quantity[w][v] != NO_ROW:
                    cat.quantity[w][v] += 1
                    self.stock_log.note(when, v, w, 1)
                    result.returned += 1
            elif kind == RETURN:
                if returning is not None:
                    returning[v] -= 1
                if not replay and cat.quantity[w][v] != NO_ROW:
                    cat.quantity[w][v] += 1
                    self.stock_log.note(when, v, w, 1)
                    result.returned += 1


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 50:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
