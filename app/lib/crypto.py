"""Encryption at rest for marketplace credentials (MultiFernet: first key encrypts, all decrypt)."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class CredentialCipher:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is required")
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    def encrypt(self, plaintext: bytes) -> bytes:
        return self._fernet.encrypt(plaintext)

    def decrypt(self, token: bytes) -> bytes:
        return self._fernet.decrypt(token)

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt under the primary key (decrypting with any key)."""
        return self._fernet.rotate(token)


def new_fernet_key() -> str:
    return Fernet.generate_key().decode()


__all__ = ["CredentialCipher", "InvalidToken", "new_fernet_key"]
