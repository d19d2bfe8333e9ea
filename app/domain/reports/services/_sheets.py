"""Google Sheets links: the stock report written to a tenant's spreadsheet after each successful sync and on
demand, with the tenant's own service account (its key file encrypted at rest like marketplace tokens).

A push is one ``values.batchUpdate`` of the whole grid plus one formatting ``batchUpdate`` (the client).
Sheets' 429 / 5xx are retried by the client; what no retry can fix — the key revoked or deleted, the sheet
not shared with the account, the spreadsheet gone — marks the link ``invalid`` and tells the owner
(``sheet_link.invalid``: webhooks and Telegram). A link comes back with a new key (PATCH) or a successful
push on demand. The report is read in one transaction and the network calls happen after it has ended.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
import structlog
from msgspec import UNSET
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db.engine import session_scope
from app.db.models.reports import SheetLink as SheetLinkModel
from app.db.outbox import JobQueue, add_job, unit_of_work
from app.domain.events.services import record_event
from app.domain.reports.repositories import ReportRepository, SheetLinkRepository
from app.domain.reports.schemas import SheetLink, SheetLinkCreate, SheetLinkList, SheetLinkUpdate, SheetPushAccepted
from app.domain.reports.services._settings import org_settings
from app.domain.reports.services._stock import ReportService, StockReportQuery
from app.integrations.sheets import (
    SheetsClient,
    SheetsCredentialsError,
    SheetsError,
    SheetsGrantRevoked,
    SheetsNotFound,
    SheetsPermissionDenied,
    SheetsUnavailable,
    TokenCache,
    parse_service_account,
)
from app.lib.clock import utcnow
from app.lib.crypto import CredentialCipher
from app.lib.errors import FieldError, NotFoundError, ValidationError
from app.lib.ids import uuid7
from app.lib.tabular import Grid

log = structlog.get_logger(__name__)
PUSH_JOB = "reports.sheets_push"
SHEET_LINK_INVALID = "sheet_link.invalid"
# Refusals no retry can fix: the link is invalid until its owner acts.
_PERMANENT = (SheetsGrantRevoked, SheetsCredentialsError, SheetsPermissionDenied, SheetsNotFound)


class InvalidServiceAccount(ValidationError):
    code = "invalid_service_account"
    title = "Not a usable service-account key file"


def _encode_key(service_account: dict[str, Any]) -> tuple[bytes, str]:
    """The key file as stored (JSON bytes) and its account's e-mail; 422 when it is not a usable key."""
    raw = msgspec.json.encode(service_account)
    try:
        account, _key = parse_service_account(raw)
    except SheetsCredentialsError as exc:
        message = str(exc)
        raise InvalidServiceAccount(
            message, errors=[FieldError(field="service_account", message=message, source="body")]
        ) from None
    return raw, account.client_email


def link_out(r: SheetLinkModel) -> SheetLink:
    return SheetLink(
        id=r.id,
        spreadsheet_id=r.spreadsheet_id,
        sheet_name=r.sheet_name,
        client_email=r.client_email,
        status=r.status,  # type: ignore[arg-type]
        status_reason=r.status_reason,
        lang=r.lang,
        window=r.window_days,
        per=r.per,
        connection_id=r.connection_id,
        last_push_at=r.last_push_at,
        last_push_status=r.last_push_status,
        last_push_rows=r.last_push_rows,
        last_error=r.last_error,
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


class SheetLinkService:
    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID, cipher: CredentialCipher) -> None:
        self.session = session
        self.tenant_id = tenant_id
        self.cipher = cipher
        self.links = SheetLinkRepository(session, tenant_id)

    async def _get(self, link_id: uuid.UUID) -> SheetLinkModel:
        row = await self.links.get(link_id)
        if row is None:
            raise NotFoundError("No such Google Sheets link.")
        return row

    async def _check_connection(self, connection_id: uuid.UUID | None) -> None:
        if (
            connection_id is not None
            and await ReportRepository(self.session, self.tenant_id).connection_marketplace(connection_id) is None
        ):
            raise NotFoundError("No such connection.")

    async def list(self) -> SheetLinkList:
        return SheetLinkList(items=[link_out(r) for r in await self.links.all()])

    async def get(self, link_id: uuid.UUID) -> SheetLink:
        return link_out(await self._get(link_id))

    async def create(self, data: SheetLinkCreate) -> SheetLink:
        raw, email = _encode_key(data.service_account)
        await self._check_connection(data.connection_id)
        row = self.links.add(
            SheetLinkModel(
                spreadsheet_id=data.spreadsheet_id,
                sheet_name=data.sheet_name,
                credentials_encrypted=self.cipher.encrypt(raw),
                client_email=email,
                status="active",
                lang=data.lang,
                window_days=data.window,
                per=data.per,
                connection_id=data.connection_id,
            )
        )
        await self.session.flush()
        await self.session.refresh(row)
        return link_out(row)

    async def update(self, link_id: uuid.UUID, data: SheetLinkUpdate) -> SheetLink:
        row = await self._get(link_id)
        if data.service_account is not UNSET:
            raw, email = _encode_key(data.service_account)
            row.credentials_encrypted, row.client_email = self.cipher.encrypt(raw), email
        if data.connection_id is not UNSET:
            await self._check_connection(data.connection_id)
            row.connection_id = data.connection_id
        for field, attr in (("spreadsheet_id", "spreadsheet_id"), ("sheet_name", "sheet_name"), ("lang", "lang"),
                            ("window", "window_days"), ("per", "per")):  # fmt: skip
            value = getattr(data, field)
            if value is not UNSET:
                setattr(row, attr, value)
        if data.service_account is not UNSET or data.spreadsheet_id is not UNSET:
            row.status, row.status_reason = "active", None  # something was fixed: try again
        await self.session.flush()
        await self.session.refresh(row)
        return link_out(row)

    async def delete(self, link_id: uuid.UUID) -> None:
        if not await self.links.delete(link_id):
            raise NotFoundError("No such Google Sheets link.")

    async def request_push(self, link_id: uuid.UUID) -> SheetPushAccepted:
        """Push now (in the worker, after this request commits); an invalid link is tried too."""
        await self._get(link_id)
        job_id = f"sheets:{link_id}:manual:{uuid7().hex}"
        add_job(self.session, PUSH_JOB, job_id, tenant_id=self.tenant_id, link_id=str(link_id))
        return SheetPushAccepted(sheet_link_id=link_id, job_id=job_id)


async def request_sheets_refresh(
    session: AsyncSession, tenant_id: uuid.UUID, connection_id: uuid.UUID, run_id: uuid.UUID
) -> bool:
    """After a successful sync: push the report to the tenant's active links that concern this connection
    (a job through the outbox, in the sync's transaction). False when there is nothing to push."""
    if not await SheetLinkRepository(session, tenant_id).has_active(connection_id):
        return False
    add_job(
        session,
        PUSH_JOB,
        f"sheets:{run_id}:{uuid7().hex[:12]}",
        tenant_id=tenant_id,
        connection_id=str(connection_id),
        run_id=str(run_id),
    )
    return True


@dataclass(frozen=True, slots=True)
class PushOutcome:
    link_id: uuid.UUID
    status: str  # pushed | invalid | failed
    rows: int = 0
    error: str | None = None


class SheetsPusher:
    """Pushes a tenant's links (the worker's job): read the report, write it, record how it went."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        cipher: CredentialCipher,
        settings: Settings,
        http: httpx.AsyncClient,
        tokens: TokenCache,
        queue: JobQueue | None = None,
    ) -> None:
        self.queue = queue
        self.sessionmaker = sessionmaker
        self.cipher = cipher
        self.settings = settings
        self.http = http
        self.tokens = tokens

    async def push(
        self, tenant_id: uuid.UUID, *, link_id: uuid.UUID | None = None, connection_id: uuid.UUID | None = None
    ) -> list[PushOutcome]:
        """One link (on demand, even an invalid one), or every active link a refresh of ``connection_id``
        concerns."""
        async with session_scope(self.sessionmaker, tenant_id) as s:
            links = SheetLinkRepository(s, tenant_id)
            if link_id is not None:
                one = await links.get(link_id)
                targets = [one] if one is not None else []
            else:
                targets = await links.active_for(connection_id)
            plans = [(r.id, r.spreadsheet_id, r.sheet_name, r.credentials_encrypted, r.status) for r in targets]
        outcomes = []
        for lid, spreadsheet, sheet_name, blob, status in plans:
            outcomes.append(await self._push_one(tenant_id, lid, spreadsheet, sheet_name, blob, status))
        return outcomes

    async def _grid(self, tenant_id: uuid.UUID, link_id: uuid.UUID) -> Grid | None:
        async with session_scope(self.sessionmaker, tenant_id) as s:
            link = await SheetLinkRepository(s, tenant_id).get(link_id)
            if link is None:
                return None
            org = await org_settings(s, tenant_id)
            query = StockReportQuery(
                window=link.window_days or org.report_window_days, connection_id=link.connection_id, per=link.per
            )
            service = ReportService(s, tenant_id, default_low_units=self.settings.low_stock_units)
            return await service.stock_report_grid(query, link.lang)

    async def _push_one(
        self, tenant_id: uuid.UUID, link_id: uuid.UUID, spreadsheet: str, sheet_name: str, blob: bytes, status: str
    ) -> PushOutcome:
        grid = await self._grid(tenant_id, link_id)
        if grid is None:
            return PushOutcome(link_id, "gone")
        try:
            client = SheetsClient(
                self.cipher.decrypt(blob),
                http=self.http,
                api_base=self.settings.sheets_api_base,
                token_url=self.settings.sheets_token_url,
                tokens=self.tokens,
            )
            result = await client.push(spreadsheet, grid, sheet_title=sheet_name)
        except _PERMANENT as exc:
            outcome = PushOutcome(link_id, "invalid", error=str(exc)[:500])
        except (SheetsUnavailable, SheetsError) as exc:
            outcome = PushOutcome(link_id, "failed", error=str(exc)[:500])
        else:
            outcome = PushOutcome(link_id, "pushed", rows=result.rows)
        await self._record(tenant_id, outcome, was_active=status == "active")
        log.info("reports.sheets_push", link_id=str(link_id), outcome=outcome.status, rows=outcome.rows)
        return outcome

    async def _record(self, tenant_id: uuid.UUID, outcome: PushOutcome, *, was_active: bool) -> None:
        now = utcnow()
        async with unit_of_work(self.sessionmaker, self.queue, tenant_id) as s:
            link = await SheetLinkRepository(s, tenant_id).locked(outcome.link_id)
            if link is None:
                return
            SheetLinkRepository.record_push(link, now, outcome.status, outcome.rows or None, outcome.error)
            if outcome.status == "pushed":
                link.status, link.status_reason = "active", None
            elif outcome.status == "invalid":
                link.status, link.status_reason = "invalid", outcome.error
                if was_active:  # tell the owner once, when it turns invalid
                    record_event(
                        s,
                        tenant_id,
                        SHEET_LINK_INVALID,
                        {
                            "sheet_link_id": str(link.id),
                            "spreadsheet_id": link.spreadsheet_id,
                            "sheet_name": link.sheet_name,
                            "client_email": link.client_email,
                            "reason": outcome.error,
                        },
                        key=f"{SHEET_LINK_INVALID}:{link.id}:{now.isoformat()}",
                    )
