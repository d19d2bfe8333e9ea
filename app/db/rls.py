"""Row-level security and role DDL used by migrations (one place, so every tenant table gets the same wall)."""

from __future__ import annotations

APP_ROLE = "stock_tracker_app"
SYSTEM_ROLE = "stock_tracker_system"
TENANT_EXPR = "NULLIF(current_setting('app.tenant_id', true), '')::uuid"


def enable_tenant_rls(table: str, column: str = "tenant_id") -> list[str]:
    """Statements that put one table behind the tenant policy (FORCE: the owner is bound too)."""
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY tenant_isolation ON {table} USING ({column} = {TENANT_EXPR}) "
        f"WITH CHECK ({column} = {TENANT_EXPR})",
    ]


def disable_tenant_rls(table: str) -> list[str]:
    return [
        f"DROP POLICY IF EXISTS tenant_isolation ON {table}",
        f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY",
    ]


def create_roles(app_password: str | None) -> list[str]:
    """The application role (no ownership, no BYPASSRLS) and the NOLOGIN system role."""
    login = "LOGIN"
    if app_password:
        escaped = app_password.replace("'", "''")
        login = f"LOGIN PASSWORD '{escaped}'"
    return [
        f"""DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                CREATE ROLE {APP_ROLE} {login} NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
            ELSE
                ALTER ROLE {APP_ROLE} {login} NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
            END IF;
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{SYSTEM_ROLE}') THEN
                CREATE ROLE {SYSTEM_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS;
            END IF;
        END $$""",
        f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}, {SYSTEM_ROLE}",
    ]


def grant_app(tables: list[str]) -> list[str]:
    return [f"GRANT SELECT, INSERT, UPDATE, DELETE ON {t} TO {APP_ROLE}" for t in tables]


def revoke_app(tables: list[str]) -> list[str]:
    return [f"REVOKE ALL ON {t} FROM {APP_ROLE}, {SYSTEM_ROLE}" for t in tables]


def system_read_policy(table: str) -> list[str]:
    """Let the system role (owner of the audited SECURITY DEFINER functions) read a tenant table."""
    return [
        f"GRANT SELECT ON {table} TO {SYSTEM_ROLE}",
        f"CREATE POLICY system_read ON {table} FOR SELECT TO {SYSTEM_ROLE} USING (true)",
    ]
