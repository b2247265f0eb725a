"""Verifying a store: walk the audit chain and check every turn, state, session, version text
and the salt against it, and that the chain ends where its last commit (or a head kept
elsewhere) says."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..errors import SessionError, StoreError
from .chain import GENESIS, KEY_ENV, KEY_FILE_ENV, parse_head, same
from .records import VerifyResult, doc_from_row, first_difference, joined_turns, sha256

if TYPE_CHECKING:
    from .core import Store

__all__ = ["Verifying"]


class Verifying:
    """The part of the Store that reads turns back whole: export and verify."""

    def export(self, session_id: str) -> Iterator[dict]:
        """One JSON-able dict per turn, oldest first: the audited record (the row's body, which
        its hash covers, not the editable turns table) and its audit hash."""
        with self._reading(f"exporting session {session_id!r}"):
            if self._session_row(session_id) is None:
                raise SessionError(f"no session {session_id!r} in {self.path}")
            rows = self._rows("SELECT body, hash FROM audit WHERE session_id = ? ORDER BY seq", (session_id,))
        return iter([json.loads(row["body"]) | {"audit_hash": row["hash"]} for row in rows])

    def verify(self, head: str | None = None) -> VerifyResult:
        """Walk the audit chain and check every turn, state, session, version text and the salt
        against it. `head` ("COUNT:HASH[:MAC]", from `audit head` and kept elsewhere) must name
        a row of the chain as it is now: nothing was cut off or replaced since it was taken."""
        external = parse_head(head, "the head given") if head is not None else None
        if self.keyed_from is not None and self._key is None:
            raise StoreError(f"{self.path}: its audit chain is keyed (an HMAC from row {self.keyed_from} on); "
                             f"give the key to verify it (--key-file FILE, {KEY_FILE_ENV} or {KEY_ENV})")
        with self._reading("verifying the audit chain"):
            walk = _ChainWalk(self, external)
            cursor = self._execute("SELECT a.seq AS a_seq, a.body AS a_body, a.prev_hash AS a_prev, "
                                   "a.hash AS a_hash, a.session_id AS a_session, a.turn AS a_turn, j.* "
                                   "FROM audit a LEFT JOIN (" + joined_turns() + ") j ON j.seq = a.seq "
                                   "ORDER BY a.seq")
            names = [d[0] for d in cursor.description]
            for row in cursor:
                if not walk.step(dict(zip(names, row))):
                    break
            ends = self._head_problems(walk, self._meta("audit_head"))
            problems = walk.problems() + self._orphans() + self._version_problems() + ends
            if not ends:  # a cut or added tail explains session rows that disagree with it
                problems += self._session_problems(walk)
            if walk.bad is None and self._key is not None and self.keyed_from is None:
                problems.append((1, "the chain is not keyed, but a key was given: it was started without "
                                    "the key, or stripped of it and recomputed"))
        return walk.result(problems, self._head_text(walk.count, walk.prev))

    def _orphans(self) -> list[tuple[int | None, str]]:
        orphan = self._execute("SELECT min(t.seq) FROM turns t LEFT JOIN audit a ON a.seq = t.seq "
                               "WHERE a.seq IS NULL").fetchone()[0]
        return [(orphan, f"turn with seq {orphan} has no audit row (a row was inserted)")] if orphan else []

    def _session_problems(self, walk: _ChainWalk) -> list[tuple[int | None, str]]:
        """Each session row agrees with its audited turns: count, node, ended, versions, names."""
        if walk.bad is not None:
            return []  # the walk stopped: later turns were not read
        rows = {r["id"]: r for r in self._rows("SELECT * FROM sessions")}
        problems = [(None, f"session {id!r} has {row['turns']} turns in the sessions table, but the "
                                "chain has none of them") for id, row in rows.items()
                    if id not in walk.sessions and (row["turns"] or row["ended"])]
        for session_id, last in walk.sessions.items():
            row = rows.get(session_id)
            if row is None:
                problems.append((last["seq"], f"session {session_id!r} of audit row {last['seq']} is missing "
                                              "from the sessions table"))
                continue
            expected = {"turns": last["index"] + 1, "node": last["after"]["node"],
                        "ended": int(bool(last["after"]["ended"]))}
            if "salt_sha256" in last:  # written by a store that keeps the session's versions with its turns
                expected.update(policy_hash=last["policy_hash"], catalog_hash=last["catalog_hash"])
            start = walk.starts.get(session_id)
            if start is not None:
                expected.update({k: start[k] for k in ("policy_name", "locale", "mode")})
            for column, value in expected.items():
                if row[column] != value:
                    problems.append((last["seq"], f"session {session_id!r} has {column} {row[column]!r} in the "
                                                  f"sessions table, but its audited turns say {value!r}"))
                    break
        return problems

    def _version_problems(self) -> list[tuple[int | None, str]]:
        """Every policy source and catalog text still hashes to its digest (the texts are rehashed)."""
        problems = []
        for table, text, what in (("policies", "source", "policy"), ("catalogs", "text", "catalog")):
            column = "policy_hash" if what == "policy" else "catalog_hash"
            for row in self._rows(f"SELECT hash, {text} AS text, {text}_sha256 AS digest FROM {table}"):
                if sha256(row["text"]) == row["digest"]:
                    continue
                first = self._execute(f"SELECT min(seq) FROM turns WHERE {column} = ?", (row["hash"],)).fetchone()[0]
                problems.append((first, f"the stored {what} {text} of version {row['hash'][:8]} was edited: "
                                        "it no longer hashes to its digest"))
        return problems

    def _head_problems(self, walk: _ChainWalk, stored: str | None) -> list[tuple[int | None, str]]:
        """The chain ends where the last commit said (a signed head when keyed); and it holds the
        row that an external head names."""
        if walk.bad is not None:
            return []
        problems = []
        if self.keyed_from is not None and self._key is not None:
            if stored is None:
                return [(walk.count + 1, "the store's signed head is missing: rows (or the head) were deleted")]
            if not same(stored, _signed(self, stored)):
                return [(parse_head(stored, "the stored head")[0] or 1, "the store's head is not signed with "
                                                                          "this key (it was rewritten)")]
        problems += walk.head_problems(parse_head(stored or "0:" + GENESIS, "the stored head"), "the last commit")
        if walk.external is not None:
            problems += walk.head_problems(walk.external, "the head given", external=True)
            mac = walk.external[2]
            if mac is not None and self._key is not None and self.keyed_from is not None:
                text = f"{walk.external[0]}:{walk.external[1]}"
                if not same(self._head_text(walk.external[0], walk.external[1]), f"{text}:{mac}"):
                    problems.append((walk.external[0], "the head given is not signed with this key"))
        return problems


def _signed(store: Store, head: str) -> str:
    """`head` as this store signs it (compared with the stored one: a forged MAC differs)."""
    seq, digest, _ = parse_head(head, "the stored head")
    return store._head_text(seq, digest)


class _ChainWalk:
    """Walks audit rows in order, stopping at the first one that does not hold."""

    def __init__(self, store: Store, external: tuple[int, str, str | None] | None) -> None:
        self.store, self.external = store, external
        self.expected, self.prev, self.count = 1, GENESIS, 0
        self.bad: tuple[int, str] | None = None
        self.hashes: dict[int, str] = {}  # the hashes heads are checked against
        self.sessions: dict[str, dict] = {}  # each session's last audited turn
        self.starts: dict[str, dict] = {}  # each session's audited start

    def step(self, row: dict) -> bool:
        problem = self._problem(row)
        if problem is not None:
            self.bad = problem
            return False
        body = row["a_doc"]
        self.expected, self.prev, self.count = row["a_seq"] + 1, row["a_hash"], self.count + 1
        if self.external is not None and row["a_seq"] == self.external[0]:
            self.hashes[row["a_seq"]] = row["a_hash"]
        self.sessions[body["session_id"]] = body
        if "start" in body:
            self.starts[body["session_id"]] = body["start"]
        return True

    def _problem(self, row: dict) -> tuple[int, str] | None:
        seq = row["a_seq"]
        if seq > self.expected:
            return self.expected, f"audit row {self.expected} is missing"
        if seq < self.expected:
            return seq, f"audit row {seq} is out of sequence (expected {self.expected})"
        if row["a_prev"] != self.prev:
            return seq, f"audit row {seq} does not chain to row {seq - 1} (a row was removed or replaced)"
        if not same(self.store._link(seq, row["a_prev"], row["a_body"]), row["a_hash"]):
            return seq, f"audit row {seq} was edited: its hash does not match its content"
        if row["seq"] is None:
            return seq, f"the turn of audit row {seq} is missing from the turns table"
        audited = row["a_doc"] = json.loads(row["a_body"])
        if (row["a_session"], row["a_turn"]) != (audited.get("session_id"), audited.get("index")):
            return seq, f"audit row {seq} was moved to another session or turn"
        differs = first_difference(audited, self._rebuilt(row, audited))
        if differs:
            return seq, f"the stored turn differs from audit row {seq} in {differs!r}"
        return None

    def _rebuilt(self, row: dict, audited: dict) -> dict:
        """The audit document as the tables hold it now, with what this row's version audited."""
        doc = doc_from_row(row) | {"seq": row["a_seq"]}
        if "salt_sha256" in audited:
            doc["salt_sha256"] = sha256(self.store._salt or "")
        if "start" in audited:
            start = self.store._row("SELECT s.state, s.node, x.policy_name, x.locale, x.mode FROM states s "
                                    "LEFT JOIN sessions x ON x.id = s.session_id WHERE s.session_id = ? "
                                    "AND s.turn = 0", (row["session_id"],))
            doc["start"] = None if start is None else start | {"state": json.loads(start["state"])}
        return doc

    def problems(self) -> list[tuple[int | None, str]]:
        return [self.bad] if self.bad else []

    def head_problems(self, head: tuple[int, str, str | None], what: str,
                      external: bool = False) -> list[tuple[int, str]]:
        """The chain holds the row `head` names: it ends there (the last commit's head) or goes on
        from it (an external head: turns recorded since are fine)."""
        last = self.expected - 1
        seq, digest, _ = head
        if seq > last:
            missing = f"row {seq}" if seq == last + 1 else f"rows {last + 1} to {seq}"
            return [(last + 1, f"audit {missing} {'is' if seq == last + 1 else 'are'} missing: {what} names "
                               f"{seq} rows (the chain was cut)")]
        if seq < last and not external:
            return [(seq + 1, f"audit row {seq + 1} was added after {what}")]
        found = self.prev if seq == last else self.hashes.get(seq)
        if seq and found != digest:
            return [(seq, f"audit row {seq} is not the row {what} names (the chain was rewritten)")]
        if seq == 0 and digest != GENESIS:
            return [(1, f"{what} is not of this chain")]
        return []

    def result(self, problems: list[tuple[int | None, str]], signed: str | None) -> VerifyResult:
        keyed = self.store.keyed_from is not None
        if not problems:
            return VerifyResult(True, self.count, head=self.prev if self.count else None,
                                signed_head=signed, keyed=keyed)
        seq, reason = min(problems, key=lambda p: (p[0] is None, p[0] or 0))
        return VerifyResult(False, self.count, first_bad=seq, reason=reason, keyed=keyed)
