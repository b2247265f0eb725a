"""Reviewers' corrections of stored turns: the reply a turn should have had, append-only."""

from __future__ import annotations

import difflib

from ..catalog import Catalog
from ..errors import CatalogError, SessionError, StoreError
from .records import CorrectionRecord, correction_record, now

__all__ = ["Correcting"]


class Correcting:
    """The part of the Store that records and reads corrections."""

    def correct(self, session_id: str, turn_index: int, reply_id: str, *, by: str,
                note: str = "") -> CorrectionRecord:
        """Record that turn `turn_index` of a session should have had `reply_id`; returns it.

        The id is checked against the catalog version the turn ran with (kept in this file);
        a later correction of the same turn supersedes this one.
        """
        if not isinstance(by, str) or not by.strip():
            raise ValueError("a correction names its reviewer: by=\"j.doe\"")
        with self._writing(f"correcting turn {turn_index} of session {session_id!r}"):
            turn = self._corrected_turn(session_id, turn_index)
            self._check_reply_id(reply_id, turn)
            self._execute("INSERT INTO corrections (session_id, turn, seq, reply_id, reviewer, note, created_at) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?)",
                          (session_id, turn_index, turn["seq"], reply_id, by.strip(), note, now()))
            rows = self._correction_rows("WHERE c.session_id = ? AND c.turn = ?", (session_id, turn_index))
        return rows[-1]

    def corrections(self, policy_name: str | None = None) -> list[CorrectionRecord]:
        """The standing correction of every corrected turn (of sessions of `policy_name`), by session and turn."""
        if self.schema_version < 3:  # an older file open read-only: it has no corrections table yet
            return []
        where, params = ("WHERE s.policy_name = ?", (policy_name,)) if policy_name is not None else ("", ())
        with self._reading("reading corrections"):
            rows = self._correction_rows(where, params)
        latest = {(r.session_id, r.turn): r for r in rows}  # rows come oldest first: the last one stands
        return sorted(latest.values(), key=lambda r: (r.session_id, r.turn))

    def _corrected_turn(self, session_id: str, turn_index: int) -> dict:
        session = self._session_row(session_id)
        if session is None:
            raise SessionError(f"no session {session_id!r} in {self.path}; see `dialogue sessions`")
        turn = self._row("SELECT seq, reply_id, catalog_hash FROM turns WHERE session_id = ? AND turn = ?",
                         (session_id, turn_index))
        if turn is None:
            count = session["turns"]
            have = f"turns 0 to {count - 1}" if count > 1 else "only turn 0" if count else "no turns yet"
            raise SessionError(f"session {session_id!r} has no turn {turn_index}: it has {have} "
                               f"(see `dialogue log {session_id}`)")
        return turn

    def _check_reply_id(self, reply_id: str, turn: dict) -> None:
        """The id names a line, not retired, of the catalog version the turn ran with."""
        text = self._execute("SELECT text FROM catalogs WHERE hash = ?", (turn["catalog_hash"],)).fetchone()[0]
        try:
            # A name in <>: the text has no folder, so audio paths are not looked up.
            catalog = Catalog.from_text(text, path=f"<catalog {turn['catalog_hash'][:8]} in {self.path}>")
        except CatalogError as exc:
            raise StoreError(f"{self.path}: the catalog version {turn['catalog_hash'][:8]} kept for this turn "
                             f"cannot be read, so {reply_id} cannot be checked: {exc}") from exc
        if reply_id not in catalog:
            ids = [r.id for r in catalog if r.status != "retired"]
            close = difflib.get_close_matches(reply_id.upper(), ids, n=1, cutoff=0.6)  # "repaird" too
            raise CatalogError(f"{reply_id} is not a reply of catalog {catalog.id!r} (the version "
                               f"{turn['catalog_hash'][:8]} this turn ran with)", entry=reply_id,
                               hint=f"did you mean {close[0]!r}?" if close else f"its ids: {', '.join(ids)}")
        response = catalog[reply_id]
        if response.status == "retired":
            raise CatalogError(f"{reply_id} is retired in catalog {catalog.id!r}: the engine can no longer "
                               "say it", entry=reply_id, hint="correct the turn to a line the engine may say")

    def _correction_rows(self, where: str, params: tuple) -> list[CorrectionRecord]:
        rows = self._rows("SELECT c.*, t.message, t.node, t.reply_id AS chosen, s.policy_name, "
                          "b.state AS state_before FROM corrections c JOIN turns t ON t.seq = c.seq "
                          "JOIN sessions s ON s.id = c.session_id LEFT JOIN states b "
                          f"ON b.session_id = c.session_id AND b.turn = c.turn {where} ORDER BY c.id", params)
        records, earlier = [], {}
        for row in rows:
            key = (row["session_id"], row["turn"])
            records.append(correction_record(row, earlier.get(key)))
            earlier[key] = row["reply_id"]
        return records
