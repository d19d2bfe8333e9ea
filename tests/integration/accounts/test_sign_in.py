"""Sign-in hardening (issue 14 §2): e-mails normalised before lookup and uniqueness; login answers alike for
unknown and known addresses; a lockout with growing delays keyed by e-mail *and* client address, so a
stranger cannot lock the owner out; refresh and logout throttled like login."""

from __future__ import annotations

import uuid

import httpx
import pytest
from litestar.testing import AsyncTestClient

from app.lib.ratelimit import Policy, Window
from app.server.app import create_app
from app.server.throttle import AuthThrottle, Lockout
from tests.conftest import unique_email
from tests.contract.support import serve_api
from tests.helpers import PASSWORD, register


def _comparable(resp) -> dict:
    body = resp.json()
    body.pop("request_id", None)
    return body


# ---- e-mail normalisation ---------------------------------------------------------------------------------


async def test_emails_are_normalised_for_sign_up_login_and_uniqueness(client):
    tag = uuid.uuid4().hex[:8]
    typed = f"Ｏｗｎｅｒ{tag}@Bücher.DE"  # full-width letters, an IDN domain in mixed case
    resp = await client.post(
        "/api/v1/auth/register", json={"email": typed, "password": PASSWORD, "organization_name": "IDN"}
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["user"]["email"] == f"owner{tag}@xn--bcher-kva.de"
    for spelling in (f"owner{tag}@xn--bcher-kva.de", f"OWNER{tag}@BÜCHER.de", f" owner{tag}@bücher.de "):
        login = await client.post("/api/v1/auth/login", json={"email": spelling, "password": PASSWORD})
        assert login.status_code == 200, spelling
    dup = await client.post(
        "/api/v1/auth/register",
        json={"email": f"owner{tag}@xn--BCHER-kva.de", "password": PASSWORD, "organization_name": "Again"},
    )
    assert dup.status_code == 409 and dup.json()["code"] == "email_taken"


async def test_a_domain_idna_refuses_keeps_one_spelling(client):
    tag = uuid.uuid4().hex[:8]
    long_label = "ü" * 70  # longer than a DNS label may be: no IDNA form, but still one normal form
    resp = await client.post(
        "/api/v1/auth/register",
        json={"email": f"X{tag}@{long_label.upper()}.de", "password": PASSWORD, "organization_name": "X"},
    )
    assert resp.status_code == 201 and resp.json()["user"]["email"] == f"x{tag}@{long_label}.de"


# ---- login answers alike --------------------------------------------------------------------------------------


async def test_login_answers_alike_whether_or_not_the_address_exists(app, client):
    owner = await register(client)
    hasher = app.state.password_hasher
    answers = []
    for email, password in (
        (owner["email"], "wrong password"),  # known address, wrong password
        (unique_email(), "wrong password"),  # unknown address
        (unique_email(), PASSWORD),
        ("not even an address", PASSWORD),
    ):
        before = hasher.calls
        resp = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
        answers.append((resp.status_code, _comparable(resp), dict(resp.headers).get("www-authenticate")))
        assert hasher.calls == before + 1, email  # the same work (one argon2 verification) every time
    assert all(a == answers[0] for a in answers), answers
    assert answers[0][0] == 401


async def test_sign_up_with_a_taken_address_costs_a_hash_too(app, client):
    owner = await register(client)
    hasher = app.state.password_hasher
    before = hasher.calls
    dup = await client.post(
        "/api/v1/auth/register", json={"email": owner["email"], "password": PASSWORD, "organization_name": "X"}
    )
    assert dup.status_code == 409 and hasher.calls == before + 1


# ---- lockout -------------------------------------------------------------------------------------------------


def _throttle(**extra) -> AuthThrottle:
    return AuthThrottle(
        login_per_email=None,
        login_per_address=None,
        register_per_email=None,
        register_per_address=None,
        **extra,
    )


def test_lockout_delays_grow_and_are_capped() -> None:
    lockout = Lockout(after_failures=5, first_delay_seconds=1, max_delay_seconds=900)
    assert [lockout.delay(n) for n in range(1, 9)] == [0, 0, 0, 0, 1, 2, 4, 8]
    assert lockout.delay(40) == 900


def test_a_stranger_cannot_lock_the_owner_out(settings):
    """Two client addresses (X-Forwarded-For from the loopback proxy uvicorn trusts)."""
    throttle = _throttle(lockout=Lockout(after_failures=3, first_delay_seconds=30, max_delay_seconds=60))
    with (
        serve_api(settings, create_app(settings, auth_throttle=throttle)) as base,
        httpx.Client(base_url=base, timeout=30) as http,
    ):
        email = unique_email("locked")
        assert (
            http.post(
                "/api/v1/auth/register", json={"email": email, "password": PASSWORD, "organization_name": "L"}
            ).status_code
            == 201
        )
        stranger, owner = {"X-Forwarded-For": "198.51.100.7"}, {"X-Forwarded-For": "203.0.113.9"}
        bad = {"email": email, "password": "guess guess"}
        assert [http.post("/api/v1/auth/login", json=bad, headers=stranger).status_code for _ in range(3)] == [401] * 3
        locked = http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD}, headers=stranger)
        assert locked.status_code == 429 and locked.json()["code"] == "login_locked"
        assert 1 <= int(locked.headers["retry-after"]) <= 30
        # The owner, from their own address, is not locked out (and an unknown address locks the same way).
        assert (
            http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD}, headers=owner).status_code
            == 200
        )
        nobody = {"email": unique_email(), "password": "guess guess"}
        statuses = [http.post("/api/v1/auth/login", json=nobody, headers=stranger).status_code for _ in range(4)]
        assert statuses == [401, 401, 401, 429]


async def test_a_success_resets_the_failures(settings):
    throttle = _throttle(lockout=Lockout(after_failures=3, first_delay_seconds=30))
    async with AsyncTestClient(app=create_app(settings, auth_throttle=throttle)) as c:
        owner = await register(c)
        bad = {"email": owner["email"], "password": "guess guess"}
        good = {"email": owner["email"], "password": PASSWORD}
        for _ in range(2):
            assert (await c.post("/api/v1/auth/login", json=bad)).status_code == 401
        assert (await c.post("/api/v1/auth/login", json=good)).status_code == 200
        for _ in range(2):
            assert (await c.post("/api/v1/auth/login", json=bad)).status_code == 401
        assert (await c.post("/api/v1/auth/login", json=good)).status_code == 200


# ---- refresh and logout are throttled like login -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/auth/refresh", "/api/v1/auth/logout"])
async def test_refresh_and_logout_are_throttled(settings, path):
    run = uuid.uuid4().hex[:8]
    throttle = _throttle(
        session_per_token=Policy(f"session-token-{run}", (Window("minute", 3, 60),)),
        session_per_address=Policy(f"session-address-{run}", (Window("minute", 6, 60),)),
    )
    async with AsyncTestClient(app=create_app(settings, auth_throttle=throttle)) as c:
        owner = await register(c)
        token = owner["tokens"]["refresh_token"]
        guesses = [token[:-6] + f"{i:06d}" for i in range(4)]  # one token id, wrong secrets
        statuses = [(await c.post(path, json={"refresh_token": g})).status_code for g in guesses]
        assert statuses[:3] == [401 if path.endswith("refresh") else 204] * 3 and statuses[3] == 429
        # Per client address as well: other tokens from the same address run out too.
        other = await register(c)
        more = [
            (await c.post(path, json={"refresh_token": other["tokens"]["refresh_token"] + "x"})).status_code
            for _ in range(4)
        ]
        assert 429 in more
