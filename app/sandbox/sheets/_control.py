"""Control API of the Google stand-in: service accounts and keys, spreadsheets, read-back, faults."""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal

import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar import Request, Response, get, post, put

from app.sandbox._gate import to_response
from app.sandbox._replies import Reply, json_reply, problem
from app.sandbox.sheets._state import Account, GoogleState, Key, external_url

PROJECT = "stock-tracker-sandbox"


class AccountCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")] = "stock-tracker"


class SpreadsheetCreate(msgspec.Struct, forbid_unknown_fields=True):
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] = "Stock report"
    sheets: Annotated[list[str], msgspec.Meta(min_length=1, max_length=50)] = msgspec.field(
        default_factory=lambda: ["Лист1"]
    )
    editors: list[str] = msgspec.field(default_factory=list)


class Faults(msgspec.Struct, forbid_unknown_fields=True):
    statuses: Annotated[list[Literal[429, 500, 502, 503, 504]], msgspec.Meta(max_length=100)]


def _decode(body: bytes, kind: type[Any]) -> Any:
    try:
        return msgspec.json.decode(body or b"{}", type=kind)
    except msgspec.ValidationError as exc:
        return problem(422, f"Invalid body: {exc}")
    except msgspec.DecodeError:
        return problem(400, "The body is not valid JSON")


def _token_uri(request: Request) -> str:
    url = external_url(request.scope, str(request.base_url))
    return url[: url.index("/control/google/")] + "/google/oauth2/token"


@post("/control/google/service-accounts", status_code=201)
async def create_account(request: Request, google: GoogleState) -> Response[bytes]:
    body = _decode(await request.body(), AccountCreate)
    if isinstance(body, Reply):
        return to_response(body)
    email = f"{body.name}-{secrets.token_hex(3)}@{PROJECT}.iam.gserviceaccount.com"
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_id = secrets.token_hex(20)
    account = Account(email=email, client_id=str(100_000_000_000_000_000_000 + secrets.randbelow(10**20)))
    account.keys[key_id] = Key(key_id, private.public_key())
    google.accounts[email] = account
    google.keys[key_id] = email
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return to_response(
        json_reply(
            {
                "type": "service_account",
                "project_id": PROJECT,
                "private_key_id": key_id,
                "private_key": pem,
                "client_email": email,
                "client_id": account.client_id,
                "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": _token_uri(request),
                "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
                "client_x509_cert_url": f"https://www.googleapis.com/robot/v1/metadata/x509/{email}",
                "universe_domain": "googleapis.com",
            },
            201,
        )
    )


@get("/control/google/service-accounts/{email:str}")
async def get_account(email: str, google: GoogleState) -> Response[bytes]:
    account = google.accounts.get(email)
    if account is None:
        return to_response(problem(404, f"No service account {email!r}"))
    keys = [{"id": k.id, "revoked": k.revoked} for k in account.keys.values()]
    live = sum(1 for t in google.tokens.values() if t.email == email)
    return to_response(
        json_reply({"email": email, "keys": keys, "tokens_issued": account.tokens_issued, "live_tokens": live})
    )


@post("/control/google/keys/{key_id:str}/revoke", status_code=200)
async def revoke_key(key_id: str, google: GoogleState) -> Response[bytes]:
    if not google.revoke_key(key_id):
        return to_response(problem(404, f"No key {key_id!r}"))
    return to_response(json_reply({"key_id": key_id, "revoked": True}))


@post("/control/google/service-accounts/{email:str}/expire-tokens", status_code=200)
async def expire_tokens(email: str, google: GoogleState) -> Response[bytes]:
    if email not in google.accounts:
        return to_response(problem(404, f"No service account {email!r}"))
    return to_response(json_reply({"expired": google.expire_tokens(email)}))


@post("/control/google/spreadsheets", status_code=201)
async def create_spreadsheet(request: Request, google: GoogleState) -> Response[bytes]:
    body = _decode(await request.body(), SpreadsheetCreate)
    if isinstance(body, Reply):
        return to_response(body)
    if len({s.casefold() for s in body.sheets}) != len(body.sheets):
        return to_response(problem(422, "sheet titles must be unique"))
    book = google.new_spreadsheet(body.title, body.sheets, set(body.editors))
    return to_response(json_reply({"spreadsheetId": book.id, "sheets": [s.title for s in book.sheets]}, 201))


@get("/control/google/spreadsheets/{spreadsheet_id:str}")
async def read_spreadsheet(spreadsheet_id: str, google: GoogleState) -> Response[bytes]:
    book = google.spreadsheets.get(spreadsheet_id)
    if book is None:
        return to_response(problem(404, f"No spreadsheet {spreadsheet_id!r}"))
    sheets = [
        {
            **s.properties(i),
            "values": s.values(),
            "merges": s.merges,
            "basicFilter": s.basic_filter,
        }
        for i, s in enumerate(book.sheets)
    ]
    return to_response(
        json_reply(
            {
                "spreadsheetId": book.id,
                "title": book.title,
                "editors": sorted(book.editors),
                "sheets": sheets,
                "requests": book.requests,
                "valueBatches": book.value_batches,
                "calls": book.calls,
            }
        )
    )


@put("/control/google/spreadsheets/{spreadsheet_id:str}/faults", status_code=200)
async def put_faults(spreadsheet_id: str, request: Request, google: GoogleState) -> Response[bytes]:
    """The next API calls on this spreadsheet answer these statuses, one each, in order."""
    book = google.spreadsheets.get(spreadsheet_id)
    if book is None:
        return to_response(problem(404, f"No spreadsheet {spreadsheet_id!r}"))
    body = _decode(await request.body(), Faults)
    if isinstance(body, Reply):
        return to_response(body)
    book.faults.clear()
    book.faults.extend(body.statuses)
    return to_response(json_reply({"statuses": list(book.faults)}))


ROUTES = [
    create_account, get_account, revoke_key, expire_tokens, create_spreadsheet, read_spreadsheet, put_faults,
]  # fmt: skip
