"""A TLS front for the test Redis: real TLS handshakes (Python's ssl, OpenSSL) terminated in front of the
session's Redis, so rediss:// URLs are tested whether or not the Redis build speaks TLS itself."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from redis.asyncio.connection import parse_url


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(
    subject: str,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    dns: tuple[str, ...] = (),
    usage: x509.ObjectIdentifier | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    issuer_name, issuer_key = issuer if issuer is not None else (_name(subject), key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256()), key


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey | None = None) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.with_suffix(".key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return path


@dataclass(frozen=True)
class TlsRedis:
    """Two TLS ports in front of the test Redis: ``port`` (client certificate optional) and
    ``mtls_port`` (client certificate required). The server certificate names only ``localhost``."""

    port: int
    mtls_port: int
    db: int
    ca: Path
    client_cert: Path
    client_key: Path

    def url(self, host: str = "localhost", *, port: int | None = None, **options: str) -> str:
        query = f"?{urlencode(options, quote_via=quote)}" if options else ""
        return f"rediss://{host}:{port or self.port}/{self.db}{query}"


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


@pytest.fixture(scope="module")
async def tls_redis(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TlsRedis]:
    tmp = tmp_path_factory.mktemp("tls")
    ca_cert, ca_key = _issue("Test Redis CA", None, ca=True)
    issuer = (ca_cert.subject, ca_key)
    server_cert, server_key = _issue("localhost", issuer, dns=("localhost",), usage=ExtendedKeyUsageOID.SERVER_AUTH)
    client_cert, client_key = _issue("stock-tracker", issuer, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    ca = _write(tmp / "ca.pem", ca_cert)
    server = _write(tmp / "server.pem", server_cert, server_key)
    client = _write(tmp / "client.pem", client_cert, client_key)

    upstream = parse_url(redis_url)

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if "path" in upstream:
            up_reader, up_writer = await asyncio.open_unix_connection(upstream["path"])
        else:
            up_reader, up_writer = await asyncio.open_connection(
                upstream.get("host", "localhost"), upstream.get("port", 6379)
            )
        await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))

    def context(verify: ssl.VerifyMode) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(server, server.with_suffix(".key"))
        ctx.load_verify_locations(ca)
        ctx.verify_mode = verify
        return ctx

    open_tls = await asyncio.start_server(relay, "127.0.0.1", 0, ssl=context(ssl.CERT_OPTIONAL))
    mutual_tls = await asyncio.start_server(relay, "127.0.0.1", 0, ssl=context(ssl.CERT_REQUIRED))
    try:
        yield TlsRedis(
            port=open_tls.sockets[0].getsockname()[1],
            mtls_port=mutual_tls.sockets[0].getsockname()[1],
            db=int(upstream.get("db", 0) or 0),
            ca=ca,
            client_cert=client,
            client_key=client.with_suffix(".key"),
        )
    finally:
        for listener in (open_tls, mutual_tls):
            listener.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(listener.wait_closed(), 1)
