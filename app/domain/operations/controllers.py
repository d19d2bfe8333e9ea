"""``/api/v1/admin/queue``: the operator's view of the job queue, and retry / cancel of one job.

Only ``Authorization: Bearer <STOCK_TRACKER_OPERATOR_TOKEN>`` opens it (compared in constant time); a
tenant's access token or API key is just a wrong token here. With no operator token configured the routes
answer 404, as if they did not exist. Not in the OpenAPI document: the SDK is for tenants.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.params import Parameter

from app.domain.operations.schemas import QueueJobAction, QueueView
from app.domain.operations.services import ADMIN_QUEUE_PATH, OperationsService
from app.lib.errors import AuthenticationError, NotFoundError

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="operator"'}


def operator_only(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    expected: str = connection.app.state.settings.operator_token
    if not expected:
        raise NotFoundError("No such resource.")
    scheme, _sep, token = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise AuthenticationError("Send `Authorization: Bearer <operator token>`.", headers=_CHALLENGE)


class AdminQueueController(Controller):
    path = ADMIN_QUEUE_PATH
    tags = ["operations"]
    guards = [operator_only]
    include_in_schema = False

    @get(operation_id="getAdminQueue", summary="The job queue: waiting, running, deferred, recent failures")
    async def queue(
        self, operations_service: OperationsService, limit: Annotated[int, Parameter(ge=1, le=500)] = 50
    ) -> QueueView:
        return await operations_service.queue(limit)

    @post("/jobs/{job_id:str}/retry", operation_id="retryAdminQueueJob", summary="Enqueue a failed job again")
    async def retry(self, operations_service: OperationsService, job_id: str) -> QueueJobAction:
        return await operations_service.retry(job_id)

    @post("/jobs/{job_id:str}/cancel", operation_id="cancelAdminQueueJob", summary="Drop or abort a job")
    async def cancel(self, operations_service: OperationsService, job_id: str) -> QueueJobAction:
        return await operations_service.cancel(job_id)
