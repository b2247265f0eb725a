"""Sessions, turns, state snapshots, versions, a hash-chained audit log and reviewers'
corrections of turns, in one SQLite file or one PostgreSQL database.

A turn is one transaction: its row, the state after it, the session's counters and its
audit row commit together or not at all. Audit rows form one chain across all sessions:
row N holds the turn's canonical JSON, the hash of row N-1 and SHA-256(prev_hash + body),
or with an audit key (never kept in the store) HMAC-SHA-256 under it, so that the chain
cannot be recomputed without the key. `meta.audit_head` holds the last row's number and
hash (signed with the key); a head kept elsewhere proves later that nothing was cut off.
Everything resuming a session relies on (state, node, ended, versions, lines said) is read
from its audit rows, never from the unaudited `sessions` row, and `verify` checks that row,
the policy source and catalog text (rehashed) and the salt against the chain.

Appends are serialized, so two writers never share a sequence number: SQLite takes the
file's write lock first (`BEGIN IMMEDIATE`; WAL mode and a 10 s busy timeout let several
processes on one host share the file); PostgreSQL locks the session's row, then takes an
advisory lock for the chain, so many processes on many hosts share one database. Turns,
states, audit rows and corrections are append-only (database triggers refuse UPDATE and
DELETE; on PostgreSQL also TRUNCATE, and a serving role can be granted no more than
SELECT and INSERT on them); a later correction of a turn supersedes an earlier one
without removing it.
"""

from __future__ import annotations

from .chain import GENESIS, KEY_ENV, KEY_FILE_ENV, read_key
from .copy import CopyResult, copy_store
from .core import SCHEMA_VERSION, Store
from .database import is_url
from .records import (CorrectionRecord, SessionRecord, TurnRecord, VerifyResult, canonical_json,
                      is_message_digest)

__all__ = ["GENESIS", "KEY_ENV", "KEY_FILE_ENV", "SCHEMA_VERSION", "CopyResult", "CorrectionRecord",
           "SessionRecord", "Store", "TurnRecord", "VerifyResult", "canonical_json", "copy_store",
           "is_message_digest", "is_url", "read_key"]
