"""The store's privacy switches: a message kept as a digest (`store_messages=False`) and a
redaction hook (`redact=`), applied to every stored copy of user text in a turn."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..errors import StoreError
from .chain import message_hmac
from .records import sha256

__all__ = ["Private"]

PRIVATE_FIELDS = ("raw", "trace", "slots", "text", "fallback_reason")  # where user text can be repeated


class Private:
    """The part of the Store that hides user text; needs `store_messages`, `redact`, `_key`, `_salt`."""

    store_messages: bool
    redact: Callable[[str], str] | None
    _key: bytes | None
    _salt: str

    def message_digest(self, message: str) -> str:
        """What `store_messages=False` keeps of a message: "hmac-sha256:" + HMAC under the audit
        key, or without a key "sha256:" + hex(salt + message), which anyone holding the store
        can test guesses against (the salt is in it)."""
        if self._key is not None:
            return "hmac-sha256:" + message_hmac(self._key, message)
        return "sha256:" + sha256(self._salt + message)

    def _stored_message(self, message: str) -> str:
        if self.redact is not None:
            message = self._redacted(message)
        return message if self.store_messages else self.message_digest(message)

    def _redacted(self, message: str) -> str:
        try:
            redacted = self.redact(message)
        except Exception as exc:
            raise StoreError(f"the redaction hook raised {type(exc).__name__}: {exc}; the turn was not "
                             "stored") from exc
        if not isinstance(redacted, str):
            raise StoreError(f"the redaction hook returned {type(redacted).__name__}, not text; "
                             "the turn was not stored")
        return redacted

    def _private(self, doc: dict, messages: tuple[str, ...]) -> None:
        """Apply the privacy switches to every stored copy of user text in a turn's document:
        the raw model output, the trace, slot values, the text and the fallback reason.
        `messages` are this turn's message and the session's earlier ones."""
        if self.store_messages and self.redact is None:
            return
        digests = {}
        if not self.store_messages:
            for message in messages:
                redacted = self._redacted(message).strip() if self.redact else ""
                for variant in {message.strip(), redacted} - {""}:
                    digests.setdefault(variant.casefold(), self._stored_message(message))
        longest_first = sorted(digests, key=len, reverse=True)
        pattern = re.compile("|".join(rf"(?<!\w){re.escape(v)}(?!\w)" for v in longest_first),
                             re.IGNORECASE) if digests else None

        def digest_of(found: re.Match) -> str:
            text = found.group(0)
            return digests.get(text.casefold()) or next(
                digests[v] for v in longest_first if re.fullmatch(re.escape(v), text, re.IGNORECASE))

        def scrub(value: Any) -> Any:
            if isinstance(value, str):
                if self.redact is not None:
                    value = self._redacted(value)
                return pattern.sub(digest_of, value) if pattern else value
            if isinstance(value, list):
                return [scrub(v) for v in value]
            if isinstance(value, dict):
                return {k: scrub(v) for k, v in value.items()}
            return value

        for name in PRIVATE_FIELDS:
            doc[name] = scrub(doc[name])
