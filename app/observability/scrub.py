"""Take secrets out of anything about to leave the process for an error tracker: values under sensitive
keys, and secrets recognisable by their shape inside any string (messages, tracebacks, URLs)."""

from __future__ import annotations

import re
from typing import Any

FILTERED = "[Filtered]"
_SENSITIVE_KEY = re.compile(
    r"pass(word|wd)?|secret|token|authori[sz]ation|api[-_]?key|cookie|credential|dsn|signature|private|session",
    re.IGNORECASE,
)
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}"), rf"\1 {FILTERED}"),
    (re.compile(r"\bstk_[0-9A-Za-z]{20,}"), FILTERED),  # our API keys
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), FILTERED),  # JWTs (WB tokens too)
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=]{8,}"), FILTERED),  # webhook signing secrets
    (re.compile(r"\bgAAAAA[A-Za-z0-9_=-]{20,}"), FILTERED),  # Fernet ciphertexts
    (re.compile(r"\b(sk|rk|pk)_(live|test)_[A-Za-z0-9]{8,}"), FILTERED),  # Stripe keys
    (re.compile(r"\b\d{6,12}:[A-Za-z0-9_-]{30,}"), FILTERED),  # Telegram bot tokens
    (re.compile(r"([a-z][a-z0-9+.-]*://)[^\s/:@]+:[^\s/@]+@", re.IGNORECASE), rf"\1{FILTERED}@"),  # URL passwords
    (
        re.compile(
            r"(?i)\b(password|passwd|secret|token|api_key|apikey|client_secret)([\"']?\s*[=:]\s*[\"']?)[^\s&\"',;}]+"
        ),
        rf"\1\2{FILTERED}",
    ),
]


def scrub_text(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def scrub(value: Any, depth: int = 0) -> Any:
    """A copy of ``value`` (dicts, lists, strings) with secrets replaced by ``[Filtered]``."""
    if depth > 30:
        return FILTERED
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, bytes):
        return scrub_text(value.decode("utf-8", "replace"))
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and _SENSITIVE_KEY.search(key) and not isinstance(item, dict | list):
                out[key] = FILTERED if item not in (None, "") else item
            else:
                out[key] = scrub(item, depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [scrub(item, depth + 1) for item in value]
    return value
