"""Rows the marketplaces' stock reports carry that are not warehouses (SPEC §5 rule 2).

Both the sync (which never stores them) and the cabinet-export parser (which skips them) read this list:
it is a fact about the marketplaces' reports, not about either use.
"""

from __future__ import annotations

# Rule 2: report rows that are not warehouses. Their figures are exposed under their own names
# (in_way_to_client / in_way_from_client), never as a warehouse or inside a total.
PSEUDO_WAREHOUSES = frozenset(
    name.casefold()
    for name in (
        "В пути до получателей",
        "В пути возвраты на склад WB",
        "Всего находится на складах",
        "Остальные",
        "Итого",
    )
)


def is_pseudo_warehouse(name: str | None) -> bool:
    return name is not None and name.strip().casefold() in PSEUDO_WAREHOUSES


# Marketplace-operated stock a marketplace reports only as one aggregate "warehouse" while its order lines
# still name the real warehouse: WB's wb-warehouses report has returned warehouseId -999999 ("Склад WB")
# for every Russian WB warehouse since 15.08.2026. Reports count those orders at the aggregate.
AGGREGATED_FBO_WAREHOUSE_IDS = frozenset({"-999999"})
