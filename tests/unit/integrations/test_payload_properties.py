"""Property tests for the marketplace payload parsers (issue 14 §4): whatever a marketplace answers, a
response decoder either yields its Struct or raises ``MarketplaceBadResponse`` (which the API answers 502
and the sync records as a failed stage) — never another exception; whatever decodes, re-encodes to the same
value; and the Wildberries token parser never raises, whatever text it is handed.

Payloads are drawn from each response type's own shape (its field names, nested Structs, lists), with any
JSON value allowed in any place, so most examples reach deep into the decoder before something is wrong.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.integrations.marketplace import MarketplaceBadResponse, Retry, Transport
from app.integrations.ozon import schemas as oz
from app.integrations.wildberries import schemas as wb
from app.integrations.wildberries.token import CATEGORY_BITS, parse_token

RESPONSES: list[Any] = [
    wb.Ping,
    wb.CardsListResponse,
    wb.StocksReportResponse,
    wb.StocksResponse,
    list[wb.SellerWarehouse],
    list[wb.OrderLine],
    oz.ProductListResponse,
    oz.ProductInfoResponse,
    oz.StocksResponse,
    oz.FbsStocksResponse,
    oz.FboStocksResponse,
    oz.WarehouseListResponse,
    oz.AnalyticsStocksResponse,
    oz.FboPostingListResponse,
    oz.FbsPostingListResponse,
]

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
ANY_JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def _shaped(t: mi.Type, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values of type ``t`` — or, now and then, any JSON value in its place."""
    if depth > 4:
        return ANY_JSON
    if isinstance(t, mi.StructType):
        fields = {f.encode_name: _shaped(f.type, depth + 1) for f in t.fields}
        shaped: st.SearchStrategy[Any] = st.fixed_dictionaries({}, optional=fields)
    elif isinstance(t, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
        shaped = st.lists(_shaped(t.item_type, depth + 1), max_size=3)
    elif isinstance(t, mi.DictType):
        shaped = st.dictionaries(st.text(max_size=8), _shaped(t.value_type, depth + 1), max_size=3)
    elif isinstance(t, mi.UnionType):
        shaped = st.one_of([_shaped(x, depth + 1) for x in t.types])
    elif isinstance(t, mi.IntType):
        shaped = st.integers(min_value=-(2**63), max_value=2**63 - 1)
    elif isinstance(t, mi.FloatType):
        shaped = st.floats(allow_nan=False, allow_infinity=False)
    elif isinstance(t, mi.StrType):
        shaped = st.text(max_size=20)
    elif isinstance(t, mi.BoolType):
        shaped = st.booleans()
    elif isinstance(t, mi.NoneType):
        shaped = st.none()
    elif isinstance(t, mi.DateTimeType):
        shaped = st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat())
    elif isinstance(t, mi.DateType):
        shaped = st.dates().map(lambda d: d.isoformat())
    elif isinstance(t, mi.LiteralType):
        shaped = st.sampled_from(list(t.values))
    else:
        shaped = ANY_JSON
    return st.one_of(shaped, shaped, shaped, ANY_JSON)  # mostly well-shaped, sometimes anything


def _transport() -> Transport:
    return Transport(
        marketplace="test",
        http=httpx.AsyncClient(),
        headers={},
        limiter=None,
        limiter_key="test",
        max_wait=0,
        retry=Retry(),
    )


TRANSPORT = _transport()
PROPERTY = settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))


def _check(kind: Any, body: bytes) -> None:
    try:
        value = TRANSPORT.decode("endpoint", httpx.Response(200, content=body), kind)
    except MarketplaceBadResponse:
        return
    # What decodes re-encodes to a value that decodes to the same thing.
    assert msgspec.json.decode(msgspec.json.encode(value), type=kind) == value


@pytest.mark.parametrize("kind", RESPONSES, ids=lambda k: getattr(k, "__name__", str(k)))
def test_shaped_payloads_decode_or_are_bad_responses(kind: Any) -> None:
    @PROPERTY
    @given(payload=_shaped(mi.type_info(kind)))
    def run(payload: Any) -> None:
        _check(kind, msgspec.json.encode(payload))

    run()


@pytest.mark.parametrize("kind", RESPONSES, ids=lambda k: getattr(k, "__name__", str(k)))
def test_arbitrary_bytes_are_bad_responses(kind: Any) -> None:
    @PROPERTY
    @given(body=st.binary(max_size=200) | st.text(max_size=100).map(str.encode))
    def run(body: bytes) -> None:
        _check(kind, body)

    run()


@PROPERTY
@given(token=st.text(max_size=300))
def test_the_wb_token_parser_never_raises_on_text(token: str) -> None:
    info = parse_token(token)
    assert info.categories <= set(CATEGORY_BITS)


@PROPERTY
@given(
    claims=st.dictionaries(
        st.sampled_from(["s", "exp", "iat", "acc", "for", "t", "sid", "id", "x"]), ANY_JSON, max_size=9
    ),
    prefix=st.sampled_from(["", "Bearer ", "  bearer "]),
)
def test_the_wb_token_parser_reads_any_claims(claims: dict[str, Any], prefix: str) -> None:
    token = jwt.encode(claims, "not-verified-anyway-" + "k" * 32, algorithm="HS256")
    info = parse_token(prefix + token)
    assert info.decoded
    assert info.categories <= set(CATEGORY_BITS)
    exp = claims.get("exp")
    if info.expires_at is not None:
        assert isinstance(exp, int | float) and not isinstance(exp, bool)
        assert info.expires_at == datetime.fromtimestamp(exp, UTC)
