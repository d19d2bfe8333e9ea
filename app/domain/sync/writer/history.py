"""Stock history: a point per variant × warehouse only where a value changed, in the statement that changed it.

A point is a row the stock upsert (or the zeroing of absent rows) actually changed — its ``RETURNING``, never
a re-read — so an identical resync writes none. Points are unique per ``(sync_run, variant, warehouse)``:
a rerun of the same run (a retried job, a worker killed after its commit) adds nothing. (The key includes
``at``, the write's one time, because the table is partitioned by it.)
"""

from __future__ import annotations

HISTORY_VALUES = "quantity, in_way_to_client, in_way_from_client"


def points_from(changed: str, values: str = HISTORY_VALUES, *, none_held: bool = False) -> str:
    """The body of a CTE inserting one history point per row of the CTE ``changed`` (which yields
    ``variant_id, warehouse_id, product_id`` and the values) and returning one row per point written.

    ``none_held``: the caller knows no point of this run at this time exists (a connection's first snapshot,
    checked in the same transaction): a plain insert, without the speculative insertion of ``ON CONFLICT``
    (~17 % of the insert: 158 686 points 1 539 → 1 279 ms, median of 4 alternations).

    The enclosing statement binds ``$1`` = tenant, ``$3`` = sync run, ``$4`` = the snapshot's time.
    """
    conflict = "" if none_held else "ON CONFLICT (sync_run_id, variant_id, warehouse_id, at) DO NOTHING"
    return f"""
        INSERT INTO stock_history (tenant_id, variant_id, warehouse_id, product_id, sync_run_id, at, quantity,
                                   in_way_to_client, in_way_from_client)
        SELECT $1, variant_id, warehouse_id, product_id, $3, $4, {values}
        FROM {changed}
        {conflict}
        RETURNING 1"""
