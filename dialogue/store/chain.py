"""The audit chain's hashes: SHA-256, or HMAC-SHA-256 under an audit key that is never stored,
and the head ("COUNT:HASH[:MAC]") that proves later that nothing was cut off."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from pathlib import Path

from ..errors import StoreError
from .records import sha256

__all__ = ["GENESIS", "KEY_ENV", "KEY_FILE_ENV", "read_key"]

GENESIS = "0" * 64  # the "previous hash" of audit row 1
KEY_ENV = "DIALOGUE_AUDIT_KEY"  # the audit key itself
KEY_FILE_ENV = "DIALOGUE_AUDIT_KEY_FILE"  # a file holding it


def read_key(key: bytes | str | os.PathLike | None = None) -> bytes | None:
    """The audit key: `key` (bytes or text, or a path to a key file), else $DIALOGUE_AUDIT_KEY_FILE,
    else $DIALOGUE_AUDIT_KEY, else None (no key: a plain SHA-256 chain)."""
    if key is None and os.environ.get(KEY_FILE_ENV):
        key = Path(os.environ[KEY_FILE_ENV])
    if key is None and os.environ.get(KEY_ENV):
        key = os.environ[KEY_ENV]
    if isinstance(key, os.PathLike):
        try:
            key = Path(key).read_bytes().strip()
        except OSError as exc:
            raise StoreError(f"{key}: the audit key file cannot be read ({exc.strerror or exc})") from exc
    if isinstance(key, str):
        key = key.encode("utf-8")
    if key is not None and not isinstance(key, bytes):
        raise TypeError(f"audit_key is bytes, text or a key file path, not {type(key).__name__}")
    if key is not None and len(key) < 16:
        raise StoreError("the audit key is shorter than 16 bytes; use a long random one "
                         "(for example `python -c 'import secrets; print(secrets.token_hex(32))'`)")
    return key


def derived(key: bytes, purpose: str) -> bytes:
    """One key per use of the audit key: the chain, the head, message digests."""
    return hmac.new(key, f"dialogue audit {purpose}".encode(), "sha256").digest()


def key_check(key: bytes) -> str:
    """What the store keeps to tell a wrong key from tampering (says nothing about the key)."""
    return hmac.new(derived(key, "check"), b"check", "sha256").hexdigest()[:16]


def link(key: bytes | None, keyed_from: int | None, seq: int, prev_hash: str, body: str) -> str | None:
    """Row `seq`'s hash; None when it is an HMAC and there is no key."""
    if keyed_from is None or seq < keyed_from:
        return sha256(prev_hash + body)
    if key is None:
        return None
    return hmac.new(derived(key, "chain"), (prev_hash + body).encode("utf-8"), "sha256").hexdigest()


def head_text(key: bytes | None, keyed: bool, seq: int, digest: str) -> str:
    """ "COUNT:HASH", with ":MAC" (the count and hash signed with the key) on a keyed chain."""
    head = f"{seq}:{digest}"
    if key is not None and keyed:
        head += ":" + hmac.new(derived(key, "head"), head.encode(), "sha256").hexdigest()
    return head


def message_hmac(key: bytes, message: str) -> str:
    return hmac.new(derived(key, "message"), message.encode("utf-8"), "sha256").hexdigest()


def parse_head(text: str, what: str) -> tuple[int, str, str | None]:
    """ "COUNT:HASH[:MAC]" as (count, hash, mac or None); a StoreError when it is not one."""
    parts = text.strip().split(":")
    if len(parts) not in (2, 3) or not parts[0].isdigit() or not re.fullmatch(r"[0-9a-f]{64}", parts[1]):
        raise StoreError(f"{what} is not a head of an audit chain (COUNT:HASH or COUNT:HASH:MAC, "
                         f"as `dialogue audit head` prints): {text.strip()[:80]!r}")
    return int(parts[0]), parts[1], parts[2] if len(parts) == 3 else None


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a, b)


def sha256_hex(text: str | None) -> str | None:
    """SHA-256 of a text, for the SQL function the SQLite store registers (PostgreSQL has its own)."""
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()
