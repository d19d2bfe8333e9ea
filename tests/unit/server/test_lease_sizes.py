"""How big a token lease gets (app/server/lease.py): only with demand, never past the caps the over-admission
bound rests on, and never while the event subscription is down."""

from __future__ import annotations

import uuid

from app.domain.billing.plans import PLANS
from app.lib.ratelimit import Decision, WindowState
from app.server.gate import GateResult
from app.server.lease import WARM, LeaseTable
from app.server.ratelimit import plan_limits

TENANT = uuid.uuid4()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def answer(remaining: dict[str, int], used: int = -1) -> GateResult:
    windows = [WindowState(name, 10_000, left, 1.0, 1.0) for name, left in remaining.items()]
    return GateResult(
        caller=Decision(allowed=True, retry_after=0.0, windows=windows),
        used=used,
        over_quota=False,
        version=b"v" * 16,
        entry=None,
        stamp_us=1,
        window_keys=["a", "b"],
        widths_us=[1_000_000, 60_000_000],
    )


def drive(table: LeaseTable, clock: Clock, plan: str, requests: int, *, gap: float, left: int = 5000) -> list[int]:
    """``requests`` of one caller ``gap`` seconds apart; the size of each gate call made."""
    policy = plan_limits(PLANS[plan]).caller
    sizes = []
    for _ in range(requests):
        if table.take("k:1") is None:
            size, streak = table.size("k:1", policy, 10**9)
            sizes.append(size)
            table.grant("k:1", TENANT, size, streak, policy, answer({"burst": left, "minute": left}), None)
        clock.now += gap
    return sizes


def test_a_lease_grows_only_after_warm_exact_calls_and_doubles_up_to_the_cap():
    clock = Clock()
    table = LeaseTable(8, 1.0, clock)
    table.live = True
    sizes = drive(table, clock, "self_hosted", 60, gap=0.01)
    assert sizes[:WARM] == [1] * WARM
    assert sizes[WARM : WARM + 4] == [2, 4, 8, 8]
    assert max(sizes) == 8 and table.served == 60 - len(sizes)


def test_a_small_plan_is_capped_at_one_per_call():
    """size ≤ the smallest window's limit ÷ 8: a burst of 10 (starter) is never leased."""
    clock = Clock()
    table = LeaseTable(8, 1.0, clock)
    table.live = True
    assert set(drive(table, clock, "starter", 30, gap=0.01)) == {1}
    # burst 20 (pro): at most 2; burst 50 (enterprise): at most 6.
    assert max(drive(LeaseTable(8, 1.0, clock), clock, "pro", 1, gap=0.01)) == 1
    pro = LeaseTable(8, 1.0, clock)
    pro.live = True
    assert max(drive(pro, clock, "pro", 40, gap=0.01)) == 2
    enterprise = LeaseTable(8, 1.0, clock)
    enterprise.live = True
    assert max(drive(enterprise, clock, "enterprise", 40, gap=0.01)) == 6


def test_near_a_limit_the_lease_shrinks_to_one():
    """size ≤ what is left in any window ÷ 4 (and of the month's quota ÷ 4)."""
    clock = Clock()
    table = LeaseTable(8, 1.0, clock)
    table.live = True
    assert set(drive(table, clock, "self_hosted", 30, gap=0.01, left=7)) == {1}
    table = LeaseTable(8, 1.0, clock)
    table.live = True
    assert max(drive(table, clock, "self_hosted", 30, gap=0.01, left=12)) == 3
    # The month: 10 calls left of the quota → 10 // 4 = 2 at most.
    policy = plan_limits(PLANS["self_hosted"]).caller
    month = LeaseTable(8, 1.0, clock)
    month.live = True
    for _ in range(20):
        if month.take("k:2") is None:
            size, streak = month.size("k:2", policy, 1000)
            month.grant("k:2", TENANT, size, streak, policy, answer({"burst": 5000, "minute": 5000}, used=990), "usage")
            assert size <= 2
        clock.now += 0.01


def test_a_slow_caller_is_never_leased_and_an_unused_lease_halves():
    clock = Clock()
    table = LeaseTable(8, 1.0, clock)
    table.live = True
    assert set(drive(table, clock, "self_hosted", 10, gap=1.5)) == {1}  # each call more than a lease time apart
    fast = drive(table, clock, "self_hosted", 40, gap=0.01)
    assert max(fast) == 8
    clock.now += 5.0  # the last lease expires with tokens unused: they go back, the next grant is smaller
    table.sweep()
    assert table._returns, "unused tokens are queued to go back"
    size, _ = table.size("k:1", plan_limits(PLANS["self_hosted"]).caller, 10**9)
    assert size < 8


def test_no_lease_while_the_subscription_is_down_and_held_ones_end():
    clock = Clock()
    table = LeaseTable(8, 1.0, clock)
    assert set(drive(table, clock, "self_hosted", 30, gap=0.01)) == {1}  # never live: every call exact
    table.live = True
    drive(table, clock, "self_hosted", 30, gap=0.01)
    held = table._leases["k:1"].tokens
    table.set_live(False)
    assert table.take("k:1") is None
    assert sum(item[0] for item in table._returns) >= held


def test_an_event_ends_the_matching_leases():
    clock = Clock()
    table = LeaseTable(8, 1.0, clock)
    table.live = True
    drive(table, clock, "self_hosted", 30, gap=0.01)
    if table._leases["k:1"].tokens == 0:  # make sure one is held
        table.take("k:1")
        drive(table, clock, "self_hosted", 1, gap=0.0)
    assert table._leases["k:1"].tokens > 0
    table.on_event(b"t:" + str(uuid.uuid4()).encode())  # another tenant's new version: not this one
    assert table._leases["k:1"].tokens > 0
    table.on_event(b"t:" + str(TENANT).encode())
    assert table.take("k:1") is None and table.dropped == 1
    drive(table, clock, "self_hosted", 30, gap=0.01)
    table.on_event(b"r")  # any revocation: every lease
    assert table.take("k:1") is None


def test_a_leased_answer_counts_down_the_grants_resets_and_steps_remaining_by_one():
    """A request served from a lease reports what an exact call would: one fewer left than the request before,
    and each window's reset as many seconds nearer as have passed since the grant (never below 0)."""
    clock = Clock()
    table = LeaseTable(8, 1.0, clock)
    policy = plan_limits(PLANS["self_hosted"]).caller
    windows = [WindowState("burst", 200, 100, 0.5, 1.0), WindowState("minute", 3000, 2000, 30.0, 60.0)]
    grant = GateResult(
        caller=Decision(allowed=True, retry_after=0.0, windows=windows),
        used=500,
        over_quota=False,
        version=None,
        entry=None,
        stamp_us=1,
        window_keys=["a", "b"],
        widths_us=[1_000_000, 60_000_000],
    )
    table.live = True
    first = table.grant("k:1", TENANT, 4, WARM, policy, grant, None)
    assert [w.remaining for w in first.caller.windows] == [103, 2003] and first.used == 497
    clock.now += 0.2
    second = table.take("k:1")
    assert second is not None
    assert [w.remaining for w in second.caller.windows] == [102, 2002] and second.used == 498
    assert [round(w.reset_seconds, 6) for w in second.caller.windows] == [0.3, 29.8]
    clock.now += 0.4
    third = table.take("k:1")
    assert third is not None
    assert [round(w.reset_seconds, 6) for w in third.caller.windows] == [0.0, 29.4]
