"""What a waiting run had already fetched, kept in Redis until its next job takes it up.

A run that must wait on a marketplace budget (``waiting``) stores its snapshot so far and its step records
here; the next job of the run loads them and fetches only the steps not yet done, so finished steps are
never fetched again. The entry lives a little longer than the wait; if it is gone (Redis restarted) the
run simply fetches everything again — correct, only slower.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from app.domain.sync.model import OrderLines, Snapshot
from app.domain.sync.order_lines import OrderLinesState
from app.domain.sync.records import StageLog

MARGIN_S = 3600


class _Stashed(msgspec.Struct):
    snapshot: Snapshot
    stages: dict[str, Any]
    calls: int


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, OrderLines):  # its compressed chunks as they are
        return obj.state()
    raise NotImplementedError(f"cannot stash {type(obj).__name__}")


def _dec_hook(kind: type, obj: Any) -> Any:
    if kind is OrderLines:
        return OrderLines.from_state(msgspec.convert(obj, OrderLinesState))
    raise NotImplementedError(f"cannot load {kind.__name__}")


_encoder = msgspec.msgpack.Encoder(enc_hook=_enc_hook)
_decoder = msgspec.msgpack.Decoder(_Stashed, dec_hook=_dec_hook)


def _key(run_id: uuid.UUID) -> str:
    return f"sync:stash:{run_id}"


class RunStash:
    def __init__(self, redis: Any) -> None:
        self.redis = redis

    async def save(self, run_id: uuid.UUID, snapshot: Snapshot, stages: StageLog, wait_s: float) -> None:
        blob = _encoder.encode(_Stashed(snapshot, stages.to_json(), stages.calls))
        await self.redis.set(_key(run_id), blob, ex=int(wait_s) + MARGIN_S)

    async def load(self, run_id: uuid.UUID, stages: StageLog) -> Snapshot | None:
        """The stored snapshot, with ``stages`` refilled from the stored records (None: start afresh)."""
        blob = await self.redis.get(_key(run_id))
        if blob is None:
            return None
        try:
            stashed = _decoder.decode(blob)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        stages.records.update(StageLog.from_json(stashed.stages).records)
        stages.calls = stashed.calls
        return stashed.snapshot

    async def drop(self, run_id: uuid.UUID) -> None:
        await self.redis.delete(_key(run_id))
