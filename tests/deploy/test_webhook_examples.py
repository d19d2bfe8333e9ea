"""The receiver examples in docs/webhooks.md, run against the signer the worker uses to send webhooks."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from app.domain.webhooks import signing

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "webhooks.md"
BODY = json.dumps(
    {"id": "evt", "type": "stock.low", "created_at": "2026-12-01T10:00:00Z", "data": {"quantity": 3, "name": "Тапки"}},
    ensure_ascii=False,
).encode()


def example(filename: str) -> str:
    """The fenced block whose info string names ``filename``."""
    m = re.search(rf"```\w+ {re.escape(filename)}\n(.*?)```", DOC.read_text(), re.S)
    assert m, f"docs/webhooks.md has no block for {filename}"
    return m.group(1)


def cases() -> list[tuple[str, str, dict[str, str], bytes, float, bool]]:
    """(name, secret, headers, body, now, should verify) — headers made by our real signer."""
    secret, old, other = signing.new_secret(), signing.new_secret(), signing.new_secret()
    now = int(time.time())
    good = signing.headers([secret], "msg_1", now, BODY)
    rotated = signing.headers([secret, old], "msg_2", now, BODY)
    return [
        ("valid", secret, good, BODY, now, True),
        ("valid within the window", secret, good, BODY, now + 299, True),
        ("rotation: new secret", secret, rotated, BODY, now, True),
        ("rotation: old secret", old, rotated, BODY, now, True),
        ("wrong secret", other, good, BODY, now, False),
        ("tampered body", secret, good, BODY.replace(b"3", b"4"), now, False),
        ("another id", secret, {**good, "webhook-id": "msg_9"}, BODY, now, False),
        ("replayed after the window", secret, good, BODY, now + 301, False),
        ("timestamp from the future", secret, good, BODY, now - 301, False),
        ("not a number", secret, {**good, "webhook-timestamp": "12ab"}, BODY, now, False),
        ("missing signature", secret, {k: v for k, v in good.items() if k != "webhook-signature"}, BODY, now, False),
        ("unknown version", secret, {**good, "webhook-signature": good["webhook-signature"].replace("v1,", "v2,")},
         BODY, now, False),
        ("non-ASCII signature", secret, {**good, "webhook-signature": "v1,пароль"}, BODY, now, False),
    ]  # fmt: skip


def test_our_own_verifier_agrees_with_the_cases() -> None:
    for name, secret, headers, body, now, ok in cases():
        if "webhook-signature" not in headers or not headers["webhook-timestamp"].isdigit():
            continue
        try:
            signing.verify(secret, headers["webhook-id"], headers["webhook-timestamp"], headers["webhook-signature"],
                           body, now=int(now))  # fmt: skip
            verified = True
        except signing.SignatureError:
            verified = False
        assert verified is ok, name


def test_python_example_verifies_our_signatures() -> None:
    namespace: dict[str, Any] = {}
    exec(compile(example("webhook_verify.py"), "docs/webhooks.md:webhook_verify.py", "exec"), namespace)
    verify, invalid = namespace["verify_webhook"], namespace["InvalidWebhook"]
    for name, secret, headers, body, now, ok in cases():
        try:
            verify(secret, headers, body, now=now)
            verified = True
        except invalid:
            verified = False
        assert verified is ok, name
    # without `now`, the example reads the clock itself
    secret = signing.new_secret()
    verify(secret, signing.headers([secret], "msg_now", int(time.time()), BODY), BODY)


@pytest.mark.skipif(not shutil.which("node"), reason="node is not installed")
def test_node_example_verifies_our_signatures(tmp_path: Path) -> None:
    (tmp_path / "webhook_verify.js").write_text(example("webhook_verify.js"))
    harness = """
const { verifyWebhook } = require("./webhook_verify.js");
const cases = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
const out = cases.map((c) => {
  try { verifyWebhook(c.secret, c.headers, Buffer.from(c.body, "base64"), c.now); return true; }
  catch (err) { return false; }
});
process.stdout.write(JSON.stringify(out));
"""
    (tmp_path / "harness.js").write_text(harness)
    every = cases()
    data = [
        {"secret": s, "headers": h, "body": base64.b64encode(b).decode(), "now": now} for _, s, h, b, now, _ in every
    ]
    run = subprocess.run(
        ["node", "harness.js"], input=json.dumps(data), cwd=tmp_path, capture_output=True, text=True, check=True
    )
    results = json.loads(run.stdout)
    for (name, *_, ok), verified in zip(every, results, strict=True):
        assert verified is ok, name
