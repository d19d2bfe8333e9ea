"""Use-cases of the webhooks API: endpoints (with the SSRF check), secrets, test events, retry, recover."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from msgspec import UNSET
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db.engine import session_scope
from app.db.models.notifications import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.db.outbox import add_job
from app.domain.billing.services import ensure_within_limit
from app.domain.connections.services import all_tenant_ids
from app.domain.events.services import DELIVER_JOB, ENDPOINT_TEST, publish_event
from app.domain.webhooks import signing
from app.domain.webhooks.dispatch import Deliverer as Deliverer
from app.domain.webhooks.dispatch import allowed_networks
from app.domain.webhooks.repositories import AttemptRepository, DeliveryRepository, EndpointRepository
from app.domain.webhooks.schemas import WebhookEndpointCreate, WebhookEndpointUpdate
from app.integrations.webhook_sender import Resolver
from app.lib.clock import utcnow
from app.lib.crypto import CredentialCipher, InvalidToken
from app.lib.errors import ConflictError, FieldError, NotFoundError, ValidationError
from app.lib.ids import uuid7
from app.lib.pagination import Page, paginate
from app.lib.ssrf import UnsafeTargetError, check_addresses, parse_target

ROTATION_OVERLAP = timedelta(hours=24)
RECOVER_LIMIT = 10_000


class UnsafeWebhookUrlError(ValidationError):
    code = "unsafe_webhook_url"
    title = "This URL cannot receive webhooks"


class WebhookService:
    def __init__(
        self,
        session: AsyncSession,
        tenant_id: uuid.UUID,
        cipher: CredentialCipher,
        settings: Settings,
        resolver: Resolver,
    ) -> None:
        self.session = session
        self.tenant_id = tenant_id
        self.cipher = cipher
        self.settings = settings
        self.resolver = resolver
        self.endpoints = EndpointRepository(session, tenant_id)
        self.deliveries = DeliveryRepository(session, tenant_id)

    async def check_url(self, url: str) -> str:
        """Refuse URLs whose host is (or resolves to) loopback, private, link-local or metadata addresses."""
        try:
            target = parse_target(url, require_https=self.settings.is_production)
            addresses = await self.resolver.resolve(target.host, target.port)
            # A name that does not resolve yet is accepted (its DNS may come later); every send checks again.
            if addresses:
                check_addresses(target.host, addresses, allowed_networks(self.settings))
        except UnsafeTargetError as exc:
            raise UnsafeWebhookUrlError(
                exc.detail, errors=[FieldError(field="url", message=exc.detail)], reason=exc.reason
            ) from exc
        return url.strip()

    async def get(self, endpoint_id: uuid.UUID) -> WebhookEndpoint:
        endpoint = await self.endpoints.get(endpoint_id)
        if endpoint is None:
            raise NotFoundError("No such webhook endpoint.")
        return endpoint

    async def page(self, cursor: str | None, limit: int) -> Page[WebhookEndpoint]:
        """Endpoints by id."""
        return await paginate(
            lambda after, n: self.endpoints.page(after[0] if after else None, n),
            cursor=cursor,
            limit=limit,
            key=lambda endpoint: (endpoint.id,),
            types=(uuid.UUID,),
        )

    async def create(self, data: WebhookEndpointCreate) -> tuple[WebhookEndpoint, str]:
        await self._check_plan()
        url = await self.check_url(data.url)
        secret = signing.new_secret()
        endpoint = self.endpoints.add(
            WebhookEndpoint(
                id=uuid7(),
                url=url,
                description=data.description.strip(),
                event_types=sorted(set(data.event_types)),
                enabled=True,
                secret_encrypted=self.cipher.encrypt(secret.encode()),
            )
        )
        await self.session.flush()
        await self.session.refresh(endpoint)
        return endpoint, secret

    async def update(self, endpoint_id: uuid.UUID, data: WebhookEndpointUpdate) -> WebhookEndpoint:
        endpoint = await self.get(endpoint_id)
        if data.url is not UNSET:
            endpoint.url = await self.check_url(data.url)
        if data.event_types is not UNSET:
            endpoint.event_types = sorted(set(data.event_types))
        if data.description is not UNSET:
            endpoint.description = data.description.strip()
        if data.enabled is not UNSET:
            self._set_enabled(endpoint, data.enabled)
        await self.session.flush()
        await self.session.refresh(endpoint)
        return endpoint

    async def set_enabled(self, endpoint_id: uuid.UUID, enabled: bool) -> WebhookEndpoint:
        endpoint = await self.get(endpoint_id)
        self._set_enabled(endpoint, enabled)
        await self.session.flush()
        await self.session.refresh(endpoint)
        return endpoint

    def _set_enabled(self, endpoint: WebhookEndpoint, enabled: bool) -> None:
        if enabled == endpoint.enabled:
            return
        endpoint.enabled = enabled
        if enabled:
            endpoint.disabled_at = None
            endpoint.disabled_reason = None
            endpoint.failing_since = None  # a fresh start: the failure clock restarts
        else:
            endpoint.disabled_at = utcnow()
            endpoint.disabled_reason = "Disabled by a user."

    async def delete(self, endpoint_id: uuid.UUID) -> None:
        if not await self.endpoints.delete(endpoint_id):
            raise NotFoundError("No such webhook endpoint.")

    async def rotate_secret(self, endpoint_id: uuid.UUID) -> tuple[str, datetime]:
        """A new secret signs from now on; the old one keeps signing beside it for 24 hours."""
        endpoint = await self.get(endpoint_id)
        secret = signing.new_secret()
        expires = utcnow() + ROTATION_OVERLAP
        endpoint.previous_secret_encrypted = endpoint.secret_encrypted
        endpoint.previous_secret_expires_at = expires
        endpoint.secret_encrypted = self.cipher.encrypt(secret.encode())
        await self.session.flush()
        return secret, expires

    async def send_test(self, endpoint_id: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
        endpoint = await self.get(endpoint_id)
        if not endpoint.enabled:
            raise ConflictError("The endpoint is disabled; enable it first.")
        published = await publish_event(
            self.session,
            self.tenant_id,
            ENDPOINT_TEST,
            {"endpoint_id": str(endpoint.id), "message": "A test event from Stock Tracker."},
            key=f"{ENDPOINT_TEST}:{endpoint.id}:{uuid7()}",
            only_endpoint=endpoint.id,
        )
        assert published is not None and published.deliveries
        return published.id, published.deliveries[0]

    async def deliveries_page(
        self, endpoint_id: uuid.UUID, status: str | None, cursor: str | None, limit: int
    ) -> Page[tuple[WebhookDelivery, list[WebhookAttempt]]]:
        """Deliveries to an endpoint, newest first, each with its latest attempts."""
        await self.get(endpoint_id)
        page = await paginate(
            lambda after, n: self.deliveries.page_for_endpoint(endpoint_id, status=status, after=after, limit=n),
            cursor=cursor,
            limit=limit,
            key=lambda delivery: (delivery.created_at, delivery.id),
            types=(datetime, uuid.UUID),
        )
        attempts = await AttemptRepository(self.session, self.tenant_id).for_deliveries(
            [d.id for d in page.items], per_delivery=20
        )
        return Page(items=[(d, attempts.get(d.id, [])) for d in page.items], next_cursor=page.next_cursor)

    async def retry(self, delivery_id: uuid.UUID) -> uuid.UUID:
        """One more attempt now (whatever the delivery's state), signed afresh."""
        if await self.deliveries.get(delivery_id) is None:
            raise NotFoundError("No such webhook delivery.")
        self._enqueue(await self.deliveries.requeue([delivery_id], utcnow()))
        return delivery_id

    async def recover(self, endpoint_id: uuid.UUID, since: datetime) -> int:
        """Re-send every delivery to this endpoint that failed and was created at or after ``since``."""
        endpoint = await self.get(endpoint_id)
        if not endpoint.enabled:
            raise ConflictError("The endpoint is disabled; enable it first.")
        if since.tzinfo is None:
            raise ValidationError(
                "`since` needs a time zone (e.g. 2026-01-01T00:00:00Z).",
                errors=[FieldError(field="since", message="a time zone is required")],
            )
        ids = await self.deliveries.failed_since(endpoint_id, since, RECOVER_LIMIT)
        requeued = await self.deliveries.requeue(ids, utcnow())
        self._enqueue(requeued)
        return len(requeued)

    def _enqueue(self, requeued: list[tuple[uuid.UUID, int]]) -> None:
        for delivery_id, _attempts in requeued:
            # A unique job id per request: two quick retries must not collide in the outbox; the claim on
            # the delivery row still lets only one of them send.
            add_job(
                self.session,
                DELIVER_JOB,
                f"whd:{delivery_id}:r{uuid7().hex}",
                tenant_id=self.tenant_id,
                delivery_id=str(delivery_id),
            )

    async def _check_plan(self) -> None:
        await ensure_within_limit(
            self.session,
            self.tenant_id,
            "webhook_endpoints",
            await self.endpoints.count(),
            billing_enabled=self.settings.billing_enabled,
        )


async def rotate_all_secrets(
    sessionmaker: async_sessionmaker[AsyncSession], cipher: CredentialCipher
) -> tuple[int, list[uuid.UUID]]:
    """Re-encrypt every endpoint's signing secrets under the primary key (`stock-tracker secrets rotate`);
    returns how many endpoints were rewritten and which no configured key could open (left as they are).
    Per tenant, so row-level security applies; the tenant list comes from ``st_tenant_ids()``."""
    async with session_scope(sessionmaker) as s:
        tenants = await all_tenant_ids(s)
    total = 0
    failed: list[uuid.UUID] = []
    for tenant_id in tenants:
        async with session_scope(sessionmaker, tenant_id) as s:
            endpoints = EndpointRepository(s, tenant_id)
            for endpoint_id, secret, previous in await endpoints.encrypted_secrets():
                try:
                    rotated = cipher.rotate(secret)
                    rotated_previous = cipher.rotate(previous) if previous is not None else None
                except InvalidToken:
                    failed.append(endpoint_id)
                    continue
                await endpoints.set_encrypted_secrets(endpoint_id, rotated, rotated_previous)
                total += 1
    return total, failed
