"""The service-account key file a tenant uploads (Google's JSON), parsed and checked before use."""

from __future__ import annotations

import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from app.integrations.sheets._errors import SheetsCredentialsError


class ServiceAccount(msgspec.Struct, frozen=True):
    """The fields of a Google service-account key file that signing a token needs."""

    client_email: str
    private_key_id: str
    private_key: str
    type: str = "service_account"
    token_uri: str = ""
    project_id: str = ""

    def __repr__(self) -> str:  # the private key never reaches a log line or a traceback
        return f"ServiceAccount(client_email={self.client_email!r}, private_key_id={self.private_key_id[:8]}…)"

    __str__ = __repr__


def parse_service_account(raw: bytes | str) -> tuple[ServiceAccount, RSAPrivateKey]:
    """The account and its loaded private key; any problem is a ``SheetsCredentialsError`` (no secrets in it)."""
    try:
        account = msgspec.json.decode(raw, type=ServiceAccount)
    except msgspec.ValidationError as exc:
        raise SheetsCredentialsError(f"not a service-account key file: {exc}") from None
    except msgspec.DecodeError:
        raise SheetsCredentialsError("not a service-account key file: the content is not JSON") from None
    if account.type != "service_account":
        raise SheetsCredentialsError(f"not a service-account key file: type is {account.type!r}")
    if "@" not in account.client_email or not account.private_key_id:
        raise SheetsCredentialsError("not a service-account key file: client_email or private_key_id is empty")
    try:
        key = serialization.load_pem_private_key(account.private_key.encode(), password=None)
    except (ValueError, TypeError):
        raise SheetsCredentialsError("the private_key of the key file cannot be read") from None
    if not isinstance(key, RSAPrivateKey):
        raise SheetsCredentialsError("the private_key of the key file is not an RSA key")
    return account, key
