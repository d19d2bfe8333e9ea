"""The SQL of the set-based evaluation: which rules apply, and one statement that judges every subject of a
sync and opens, escalates, resolves and closes alerts in place, returning the transitions.

A *subject* is a product's total over its warehouses (under the product's override, else the tenant
default, else the deployment default) or a product × warehouse under its own override; products that have
never had a stock row are no subject (archived cards would flood the first sync), nor are products the
marketplace no longer lists (``products.archived_at``): their open alerts close with resolution ``archived``.
The classification and the lifecycle are ``rules.classify`` and ``rules.decide`` written in SQL (the
unit tests hold both to the same cases). Open alerts are inserted ``ON CONFLICT DO NOTHING`` against the
partial unique index on ``(tenant, subject_key) WHERE status = 'open'``, so nothing is ever open twice for one subject.

Evaluated subjects: every product of the connection (``full``), or only the products this sync changed
(its history points) plus those with an open alert — enough when neither the rules nor days of cover can
have moved since the previous evaluation (the caller decides, with the rules' fingerprint).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

# An alert id made in SQL like ``app.lib.ids.uuid7``: 48 bits of Unix milliseconds, version 7, random rest.
_UUID7 = (
    "encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) placing "
    "substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3) FROM 1 FOR 6), 52, 1), "
    "53, 1), 'hex')::uuid"
)

# $1 tenant, $2 connection, $3 deployment default units. Each subject with its rule's columns.
_RULES = """
    dflt AS (
        SELECT r.id, r.enabled, r.units_below, r.days_of_cover_below, r.cover_window_days, r.hysteresis_units,
               r.hysteresis_days
        FROM alert_rules r WHERE r.tenant_id = $1 AND r.product_id IS NULL
        UNION ALL
        SELECT NULL::uuid, true, $3::int, NULL::float8, 14, 2, 1.0::float8
        WHERE NOT EXISTS (SELECT 1 FROM alert_rules r WHERE r.tenant_id = $1 AND r.product_id IS NULL)
    ),
    subjects AS (
        SELECT 'p:' || t.product_id AS key, t.product_id, NULL::uuid AS warehouse_id, t.qty,
               CASE WHEN o.id IS NULL THEN 'default' ELSE 'product' END AS scope,
               CASE WHEN o.id IS NULL THEN d.id ELSE o.id END AS rule_id,
               CASE WHEN o.id IS NULL THEN d.units_below ELSE o.units_below END AS units_below,
               CASE WHEN o.id IS NULL THEN d.days_of_cover_below ELSE o.days_of_cover_below END AS days_below,
               CASE WHEN o.id IS NULL THEN d.cover_window_days ELSE o.cover_window_days END AS window_days,
               CASE WHEN o.id IS NULL THEN d.hysteresis_units ELSE o.hysteresis_units END AS hyst_units,
               CASE WHEN o.id IS NULL THEN d.hysteresis_days ELSE o.hysteresis_days END AS hyst_days
        FROM totals t CROSS JOIN dflt d
        LEFT JOIN alert_rules o ON o.tenant_id = $1 AND o.product_id = t.product_id AND o.warehouse_id IS NULL
        WHERE CASE WHEN o.id IS NULL THEN d.enabled ELSE o.enabled END
        UNION ALL
        SELECT 'p:' || o.product_id || ':w:' || o.warehouse_id, o.product_id, o.warehouse_id,
               coalesce((SELECT sum(s.quantity) FROM stock_levels s
                          WHERE s.tenant_id = $1 AND s.product_id = o.product_id
                            AND s.warehouse_id = o.warehouse_id), 0)::int,
               'warehouse', o.id, o.units_below, o.days_of_cover_below, o.cover_window_days, o.hysteresis_units,
               o.hysteresis_days
        FROM alert_rules o JOIN totals t ON t.product_id = o.product_id
        WHERE o.tenant_id = $1 AND o.warehouse_id IS NOT NULL AND o.enabled
    )"""

_TOTALS_FULL = """
    totals AS (
        SELECT s.product_id, sum(s.quantity)::int AS qty FROM stock_levels s
        WHERE s.tenant_id = $1 AND s.connection_id = $2
          AND s.product_id NOT IN (SELECT p.id FROM products p
                                   WHERE p.connection_id = $2 AND p.archived_at IS NOT NULL)
        GROUP BY s.product_id
    )"""

# $7 the run, $8 a time no point of the run is older than (bounds the history scan to its partitions).
_TOTALS_CHANGED = """
    cand AS (
        SELECT h.product_id FROM stock_history h
        WHERE h.tenant_id = $1 AND h.sync_run_id = $7 AND h.at >= $8
        UNION
        SELECT a.product_id FROM alerts a
        WHERE a.tenant_id = $1 AND a.connection_id = $2 AND a.status = 'open'
    ),
    totals AS (
        SELECT s.product_id, sum(s.quantity)::int AS qty FROM stock_levels s
        JOIN cand c ON c.product_id = s.product_id
        WHERE s.tenant_id = $1 AND s.connection_id = $2
          AND s.product_id NOT IN (SELECT p.id FROM products p
                                   WHERE p.connection_id = $2 AND p.archived_at IS NOT NULL)
        GROUP BY s.product_id
    )"""

# ``rules.classify`` in SQL: a subject ``s`` (qty, units_below, days_below, hyst_units, hyst_days) and its
# days of cover ``c.cover`` (NULL: unbounded, never low by cover) → out | low | band | ok.
STATE = """CASE WHEN s.qty <= 0 THEN 'out'
        WHEN (s.units_below IS NOT NULL AND s.qty < s.units_below)
          OR (s.days_below IS NOT NULL AND c.cover IS NOT NULL AND c.cover < s.days_below) THEN 'low'
        WHEN (s.units_below IS NULL OR s.qty >= s.units_below + s.hyst_units)
         AND (s.days_below IS NULL OR c.cover IS NULL OR c.cover >= s.days_below + s.hyst_days) THEN 'ok'
        ELSE 'band' END"""

# ``rules.decide`` in SQL: ``j.alert_id`` / ``j.open_level`` of the open alert (NULL: none) and ``j.state``.
ACTION = """CASE WHEN j.alert_id IS NULL THEN CASE WHEN j.state IN ('low', 'out') THEN 'open' ELSE 'none' END
        WHEN j.state = 'out' AND j.open_level = 'low' THEN 'escalate'
        WHEN j.state = 'ok' THEN 'resolve'
        ELSE 'keep' END"""

# $4 now, $5 cover keys, $6 cover values (days of cover per subject key, where a rule asks for it),
# $7 the run.
_TRANSITIONS = f"""
    judged AS (
        SELECT s.*, c.cover, a.id AS alert_id, a.level AS open_level, a.opened_at AS alert_opened_at,
               a.last_quantity AS alert_last_quantity, a.last_days_of_cover AS alert_last_cover,
               {STATE} AS state,
               jsonb_build_object('scope', s.scope, 'rule_id', s.rule_id, 'units_below', s.units_below,
                                  'days_of_cover_below', s.days_below, 'cover_window_days', s.window_days,
                                  'hysteresis_units', s.hyst_units, 'hysteresis_days', s.hyst_days) AS threshold
        FROM subjects s
        LEFT JOIN unnest($5::text[], $6::float8[]) AS c(key, cover) ON c.key = s.key
        LEFT JOIN alerts a ON a.tenant_id = $1 AND a.subject_key = s.key AND a.status = 'open'
    ),
    acts AS (
        SELECT j.*,
               {ACTION} AS action
        FROM judged j
    ),
    opened AS (
        INSERT INTO alerts (id, tenant_id, connection_id, product_id, warehouse_id, subject_key, status, level,
                            rule_scope, threshold, opened_at, opened_run_id, quantity_at_open,
                            days_of_cover_at_open, last_quantity, last_days_of_cover, created_at, updated_at)
        SELECT {_UUID7}, $1, $2, a.product_id, a.warehouse_id, a.key, 'open', a.state, a.scope, a.threshold,
               $4, $7, a.qty, a.cover, a.qty, a.cover, $4, $4
        FROM acts a WHERE a.action = 'open'
        ORDER BY a.key
        ON CONFLICT (tenant_id, subject_key) WHERE status = 'open' DO NOTHING
        RETURNING id, subject_key, level, opened_at
    ),
    moved AS (
        UPDATE alerts al SET
            level = CASE WHEN a.action = 'escalate' THEN 'out' ELSE al.level END,
            status = CASE WHEN a.action = 'resolve' THEN 'resolved' ELSE al.status END,
            resolved_at = CASE WHEN a.action = 'resolve' THEN $4 ELSE al.resolved_at END,
            resolved_run_id = CASE WHEN a.action = 'resolve' THEN $7 ELSE al.resolved_run_id END,
            resolution = CASE WHEN a.action = 'resolve' THEN 'restored' ELSE al.resolution END,
            last_quantity = a.qty, last_days_of_cover = a.cover, updated_at = $4
        FROM acts a
        WHERE al.id = a.alert_id
          AND (a.action IN ('escalate', 'resolve')
               OR (a.action = 'keep'
                   AND (al.last_quantity, al.last_days_of_cover) IS DISTINCT FROM (a.qty, a.cover)))
        RETURNING al.id, al.subject_key, al.level, al.opened_at, a.action
    ),
    -- Open alerts nobody evaluates any more (the product was muted, an override removed, or the
    -- marketplace no longer lists it — archived): closed quietly, saying which.
    closed AS (
        UPDATE alerts al SET status = 'resolved', resolved_at = $4, resolved_run_id = $7,
                             resolution = CASE WHEN EXISTS (SELECT 1 FROM products p WHERE p.id = al.product_id
                                                                AND p.archived_at IS NOT NULL)
                                               THEN 'archived' ELSE 'rule_changed' END,
                             updated_at = $4
        WHERE al.tenant_id = $1 AND al.connection_id = $2 AND al.status = 'open'
          AND NOT EXISTS (SELECT 1 FROM subjects s WHERE s.key = al.subject_key)
        RETURNING al.id
    ),
    transitions AS (
        SELECT 'open' AS action, o.id, o.subject_key, o.level, o.opened_at FROM opened o
        UNION ALL
        SELECT m.action, m.id, m.subject_key, m.level, m.opened_at FROM moved m WHERE m.action <> 'keep'
    )
    SELECT t.action, t.id AS alert_id, t.level, t.opened_at, a.key, a.product_id, a.warehouse_id, a.qty,
           a.cover, a.threshold::text AS threshold, p.external_id, p.vendor_code, p.title,
           p.marketplace::text AS marketplace, w.name AS warehouse_name
    FROM transitions t
    JOIN acts a ON a.key = t.subject_key
    JOIN products p ON p.id = a.product_id
    LEFT JOIN warehouses w ON w.id = a.warehouse_id
    UNION ALL
    SELECT 'closed', c.id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
    FROM closed c
    UNION ALL
    SELECT 'subjects', NULL, NULL, NULL, NULL, NULL, NULL, (SELECT count(*) FROM subjects)::int, NULL, NULL,
           NULL, NULL, NULL, NULL, NULL
"""

TRANSITIONS_FULL = f"WITH {_TOTALS_FULL},{_RULES},{_TRANSITIONS}"
TRANSITIONS_CHANGED = f"WITH {_TOTALS_CHANGED},{_RULES},{_TRANSITIONS}"

# The subjects whose rule asks for days of cover (their velocities are the reports' business).
COVER_SUBJECTS = f"""WITH {_TOTALS_FULL},{_RULES}
    SELECT s.key, s.product_id, s.warehouse_id, s.qty, s.window_days FROM subjects s
    WHERE s.days_below IS NOT NULL"""

# $1 tenant, $2 connection, $3 deployment default units: the rules that can judge this connection's products
# (their fingerprint), whether any of them needs days of cover, and the organization's flood cap.
RULES_STATE = """
    SELECT md5(coalesce(string_agg(concat_ws(',', r.id, r.product_id, r.warehouse_id, r.enabled, r.units_below,
                                             r.days_of_cover_below, r.cover_window_days, r.hysteresis_units,
                                             r.hysteresis_days), ';' ORDER BY r.id), '') || '/' || $3::int::text),
           coalesce(bool_or(r.enabled AND r.days_of_cover_below IS NOT NULL), false),
           max(r.max_alerts_per_sync) FILTER (WHERE r.product_id IS NULL)
    FROM alert_rules r
    WHERE r.tenant_id = $1
      AND (r.product_id IS NULL
           OR EXISTS (SELECT 1 FROM products p WHERE p.id = r.product_id AND p.connection_id = $2))"""

# $1 tenant, $2 connection, $3 this run: the connection's evaluation before this one.
PREVIOUS = """
    SELECT evaluated_at, rules_fingerprint FROM alert_evaluations
    WHERE tenant_id = $1 AND connection_id = $2 AND run_id <> $3
    ORDER BY evaluated_at DESC LIMIT 1"""

# $1 tenant, $2 connection: what is open for the connection now, by level.
OPEN_NOW = """
    SELECT level, count(*)::int FROM alerts
    WHERE tenant_id = $1 AND connection_id = $2 AND status = 'open' GROUP BY level"""


async def fetch_judged(raw: Any, statement: str, *args: Any) -> list[Any]:
    """Run the evaluation's statement (``TRANSITIONS_FULL`` / ``_CHANGED``) inside the caller's transaction.

    Its CTEs are opaque to the planner, which takes each for a row or two (the stock it reads was mostly
    written moments ago, before any ``ANALYZE``), so left alone it joins them — the judged subjects to their
    products, then to the transitions; the subjects to their covers — by nested loops that compare every row
    with every row: 553 656 comparisons for a 590-product first sync, ~0.9 s of the statement for 6 000
    products (quadratic in the catalogue; docs/scaling.md, seventh stop). Hash joins are linear whatever the
    estimates. The planner's penalty on the nested loop it still needs (the deployment default's cross join)
    can lift the statement's cost past ``jit_above_cost``, and JIT then compiled it for ~1.2 s to run it in
    ~10 ms: off too. Both for this statement only (``SET LOCAL``, reset after it)."""
    await raw.execute("SET LOCAL enable_nestloop = off; SET LOCAL jit = off")
    rows: list[Any] = await raw.fetch(statement, *args)
    await raw.execute("SET LOCAL enable_nestloop TO DEFAULT; SET LOCAL jit TO DEFAULT")
    return rows


@dataclass(frozen=True, slots=True)
class Transition:
    """One alert that opened, escalated or resolved, with what its event says."""

    action: str  # open | escalate | resolve
    alert_id: uuid.UUID
    level: str
    opened_at: datetime
    key: str
    product_id: uuid.UUID
    warehouse_id: uuid.UUID | None
    quantity: int
    cover: float | None
    threshold: str  # the rule's snapshot, JSON
    external_id: str
    vendor_code: str | None
    title: str | None
    marketplace: str
    warehouse_name: str | None


@dataclass(frozen=True, slots=True)
class Applied:
    transitions: list[Transition]
    closed: int
    subjects: int


@dataclass(frozen=True, slots=True)
class RulesState:
    fingerprint: str
    uses_cover: bool
    max_alerts_per_sync: int | None  # None: no default rule saved (the deployment's cap applies)


async def raw_connection(session: AsyncSession) -> Any:
    """asyncpg's connection under the session's transaction (``$n`` statements, no ORM work per row)."""
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    return raw.driver_connection


class TransitionRepository:
    """The evaluation's statements, on the session's own connection (asyncpg, no ORM round trips)."""

    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def rules_state(self, connection_id: uuid.UUID, default_units: int) -> RulesState:
        raw = await raw_connection(self.session)
        row = await raw.fetchrow(RULES_STATE, self.tenant_id, connection_id, default_units)
        assert row is not None
        return RulesState(row[0], bool(row[1]), row[2])

    async def previous(self, connection_id: uuid.UUID, run_id: uuid.UUID) -> tuple[datetime, str | None] | None:
        raw = await raw_connection(self.session)
        row = await raw.fetchrow(PREVIOUS, self.tenant_id, connection_id, run_id)
        return None if row is None else (row[0], row[1])

    async def cover_subjects(self, connection_id: uuid.UUID, default_units: int) -> list[Any]:
        raw = await raw_connection(self.session)
        return list(await raw.fetch(COVER_SUBJECTS, self.tenant_id, connection_id, default_units))

    async def apply(
        self,
        connection_id: uuid.UUID,
        run_id: uuid.UUID,
        now: datetime,
        default_units: int,
        cover: dict[str, float],
        *,
        changed_since: datetime | None,
    ) -> Applied:
        """Judge the subjects and move their alerts in one statement; ``changed_since`` None judges every
        product, else only the run's changed products (history points at or after it) and open alerts."""
        raw = await raw_connection(self.session)
        args: list[Any] = [self.tenant_id, connection_id, default_units, now, list(cover), list(cover.values())]
        args.append(run_id)
        if changed_since is None:
            rows = await fetch_judged(raw, TRANSITIONS_FULL, *args)
        else:
            rows = await fetch_judged(raw, TRANSITIONS_CHANGED, *args, changed_since)
        transitions: list[Transition] = []
        closed = subjects = 0
        for r in rows:
            if r["action"] == "subjects":
                subjects = int(r["qty"])
            elif r["action"] == "closed":
                closed += 1
            else:
                transitions.append(
                    Transition(
                        r["action"],
                        r["alert_id"],
                        r["level"],
                        r["opened_at"],
                        r["key"],
                        r["product_id"],
                        r["warehouse_id"],
                        int(r["qty"]),
                        r["cover"],
                        r["threshold"],
                        r["external_id"],
                        r["vendor_code"],
                        r["title"],
                        r["marketplace"],
                        r["warehouse_name"],
                    )
                )
        transitions.sort(key=lambda t: (t.action, t.key))
        return Applied(transitions, closed, subjects)

    async def open_now(self, connection_id: uuid.UUID) -> dict[str, int]:
        raw = await raw_connection(self.session)
        return {r[0]: int(r[1]) for r in await raw.fetch(OPEN_NOW, self.tenant_id, connection_id)}
