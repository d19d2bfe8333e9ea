"""Set-up steps the CLI commands and the `dev` supervisor share: migrations and the demo organization."""

from __future__ import annotations

from app.config import Settings


def run_migrations(url: str, revision: str = "heads", *, downgrade: bool = False) -> None:
    """Apply (or roll back) migrations with the owner's connection URL."""
    from pathlib import Path

    from alembic import command
    from alembic.config import Config

    root = Path(__file__).resolve().parents[2]
    if not (root / "alembic.ini").exists():  # installed as a package: run from the project directory
        root = Path.cwd()
    cfg = Config(str(root / "alembic.ini"))
    cfg.set_main_option("script_location", str(root / "migrations"))
    cfg.attributes["database_url"] = url
    if downgrade:
        command.downgrade(cfg, revision)
    else:
        command.upgrade(cfg, revision)


async def create_demo(settings: Settings, email: str, password: str) -> tuple[str, bool]:
    """Create the demo organization and owner unless the email exists. Returns (email, created)."""
    from app.db.engine import create_engine, create_sessionmaker, session_scope
    from app.domain.accounts.services import AccountService, EmailTakenError
    from app.lib.security import PasswordHasherPool
    from app.lib.tokens import AccessTokenCodec

    engine = create_engine(settings, pool_size=1, max_overflow=0)
    try:
        codec = AccessTokenCodec(settings.jwt_secret, settings.jwt_issuer, settings.jwt_audience, 60)
        try:
            async with session_scope(create_sessionmaker(engine)) as session:
                # The operator's own command: hashed inline, whatever STOCK_TRACKER_SIGNUP says.
                service = AccountService(
                    session,
                    codec,
                    60,
                    PasswordHasherPool(0, 0),
                    "open",
                    billing_enabled=settings.billing_enabled,
                    trial_days=settings.billing_trial_days,
                )
                await service.register(email, password, "Demo Shop")
        except EmailTakenError:
            return email, False
        return email, True
    finally:
        await engine.dispose()


DEMO_CONNECTION = "Demo WB shop (sandbox)"


def seed_demo_connection(base: str, email: str, password: str) -> None:
    """Give the demo organization a sandbox seller to look at and start a sync.

    The sandbox keeps its sellers in memory, so each start creates the seller again from the same seed
    (the same catalogue and ids) and hands its fresh token to the existing demo connection.
    """
    import httpx

    try:
        with httpx.Client(base_url=base, timeout=30) as h:
            token = h.post("/api/v1/auth/login", json={"email": email, "password": password}).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            seller = h.post(
                "/sandbox/control/sellers",
                json={"marketplace": "wildberries", "products": 200, "warehouses": 3, "seed": 1},
            ).json()
            existing = [
                c for c in h.get("/api/v1/connections", headers=auth).json()["items"] if c["name"] == DEMO_CONNECTION
            ]
            if existing:
                conn = existing[0]
                h.put(
                    f"/api/v1/connections/{conn['id']}/credentials",
                    json={"credentials": seller["credentials"]},
                    headers=auth,
                )
            else:
                conn = h.post(
                    "/api/v1/connections",
                    json={"marketplace": "wildberries", "name": DEMO_CONNECTION, "credentials": seller["credentials"]},
                    headers=auth,
                ).json()
            h.post(f"/api/v1/connections/{conn['id']}/syncs", headers=auth)
        print("  demo data  a sandbox Wildberries seller is connected and a sync has started")
    except (httpx.HTTPError, KeyError) as exc:
        print(f"  demo data  could not be seeded ({type(exc).__name__}); connect a sandbox seller by hand")
