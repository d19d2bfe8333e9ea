"""One spelling per e-mail address, used for lookup, uniqueness and the login throttle's keys.

NFKC first (a full-width ``ｏｗｎｅｒ＠ｅｘａｍｐｌｅ．ｃｏｍ`` or a ligature is the address it looks like),
then the domain in its ASCII (IDNA) form, lower-cased (``bücher.de`` and ``xn--bcher-kva.de`` are one
domain); a label IDNA cannot encode (too long, a code point it refuses) stays in its NFKC lower-case form,
which is still one spelling per address — refusing it would refuse addresses the API schema accepts.
The local part is lower-cased too, as it always was here (``users.email = lower(email)``):
providers that distinguish case in local parts are vanishingly rare, and two accounts differing only in
case are a support problem, not a feature.
"""

from __future__ import annotations

import unicodedata


class InvalidEmail(ValueError):
    """No address normalises from this text (no ``@``, an empty part, a domain IDNA refuses)."""


def normalize_email(raw: str) -> str:
    text = unicodedata.normalize("NFKC", raw).strip()
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        raise InvalidEmail("an e-mail address is local-part@domain")
    return f"{local.lower()}@{'.'.join(_ascii_label(label) for label in domain.split('.')).lower()}"


def _ascii_label(label: str) -> str:
    if label.isascii():
        return label
    try:
        return label.encode("idna").decode("ascii")
    except UnicodeError:
        return label.lower()


def normalize_or_none(raw: str) -> str | None:
    try:
        return normalize_email(raw)
    except InvalidEmail:
        return None
