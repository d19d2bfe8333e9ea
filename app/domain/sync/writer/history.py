"""Stock history: a point per variant × warehouse only where a value changed, in the statement that changed it.

A point is a row the stock upsert (or the zeroing of absent rows) actually changed — its ``RETURNING``, never
a re-read — so an identical resync writes none. Points are unique per ``(sync_run, variant, warehouse)``:
a rerun of the same run (a retried job, a worker killed after its commit) adds nothing. (The key includes
``at``, the write's one time, because the table is partitioned by it.)
"""

from __future__ import annotations

HISTORY_VALUES = "quantity, in_way_to_client, in_way_from_client"


def points_from(changed: str, values: str = HISTORY_VALUES) -> str:
    """The body of a CTE inserting one history point per row of the CTE ``changed`` (which yields
    ``variant_id, warehouse_id, product_id`` and the values) and returning one row per point written.

    The enclosing statement binds ``$1`` = tenant, ``$3`` = sync run, ``$4`` = the snapshot's time.
    """
    return f"""
        INSERT INTO stock_history (tenant_id, variant_id, warehouse_id, product_id, sync_run_id, at, quantity,
                                   in_way_to_client, in_way_from_client)
        SELECT $1, variant_id, warehouse_id, product_id, $3, $4, {values}
        FROM {changed}
        ON CONFLICT (sync_run_id, variant_id, warehouse_id, at) DO NOTHING
        RETURNING 1"""
