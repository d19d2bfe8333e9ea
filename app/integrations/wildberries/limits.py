"""Outbound limiter policies for Wildberries, derived from its documented token buckets.

WB limits each seller account with token buckets (period, requests, burst; ``marketplaces.md`` §1.4). Every
policy here is one sliding-window counter built by ``token_bucket_policy`` so that a client passing it can
never draw a 429 from a bucket of those parameters starting full, even when requests reach WB up to
``JITTER`` seconds closer together than our limiter admitted them (queueing, connection set-up, loop lag).
The proof is in ``app/lib/ratelimit.py``; the resulting windows:

| endpoint (our bucket key)      | WB token bucket      | our window      | tolerated jitter |
|--------------------------------|----------------------|-----------------|------------------|
| cards/list                     | 100/min, burst 5     | 4 per 2.4 s     | 0.6 s            |
| stocks-report/wb-warehouses    | 3/min, burst 1       | 1 per 20.5 s    | 0.5 s            |
| stocks-report/seller-warehouses| 3/min, burst 1       | 1 per 20.5 s    | 0.5 s            |
| /api/v3/warehouses, /stocks/*  | 300/min, burst 20    | 15 per 3 s      | 1.0 s            |
| supplier/orders                | 1/min, burst 10      | 9 per 540 s     | 60 s             |
| /ping (per host)               | 3 per 30 s, burst 3  | 3 per 31.5 s    | 0.5 s            |

Base tokens get WB's smaller Base buckets where they are allowed at all. The limits hold only for calls
made through this limiter: a seller running their own scripts on the same token shares WB's bucket.
"""

from __future__ import annotations

from app.lib.ratelimit import Policy, token_bucket_policy

JITTER = 0.5


def _bucket(name: str, requests: int, per: float, burst: int) -> Policy:
    return token_bucket_policy(name, requests=requests, per=per, burst=burst, jitter=JITTER)


CARDS = _bucket("wb.cards", 100, 60, 5)
STOCKS_REPORT_WB = _bucket("wb.report_wb", 3, 60, 1)
STOCKS_REPORT_SELLER = _bucket("wb.report_seller", 3, 60, 1)
# WB groups limits per method family: "all seller-warehouse methods" and "all inventory methods".
WAREHOUSES = _bucket("wb.warehouses", 300, 60, 20)
FBS_STOCKS = _bucket("wb.fbs_stocks", 300, 60, 20)
ORDERS = _bucket("wb.orders", 1, 60, 10)
PING = _bucket("wb.ping", 3, 30, 3)

BASE_WAREHOUSES = _bucket("wb.warehouses.base", 150, 60, 10)
BASE_FBS_STOCKS = _bucket("wb.fbs_stocks.base", 150, 60, 10)
BASE_ORDERS = _bucket("wb.orders.base", 1, 3 * 3600, 1)

# A 4xx on Marketplace methods is billed as 10 requests.
MARKETPLACE_4XX_COST = 10
