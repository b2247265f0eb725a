"""The JSON the API reads and writes, as pydantic models (they are the OpenAPI schema too)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ErrorBody", "ErrorOut", "Health", "HistoryItem", "Line", "PolicyList", "PolicyOut", "Ready",
           "SessionCreate", "SessionOut", "TurnList", "TurnOut", "TurnRequest"]

SESSION_ID = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SessionCreate(_Strict):
    """A new session of a policy (or, with the id of one of its sessions and nothing else, that one)."""

    id: str | None = Field(None, pattern=SESSION_ID, description="default: a new random id")
    state: dict[str, Any] | None = Field(None, description="the initial state (default: the policy's)")
    node: str | None = Field(None, description="start in this node instead of the policy's start node")
    locale: str | None = Field(None, description="render replies in this catalog locale")


class TurnRequest(_Strict):
    message: str = Field(description="what the person typed")


class Line(BaseModel):
    """One line of a reply: a catalog id, its slot values, the rendered text and its voice asset."""

    id: str
    slots: dict[str, Any]
    text: str
    audio: str | None = None


class TurnOut(BaseModel):
    """A turn: the reply, every line rendered, the state and node after it."""

    session_id: str
    index: int = Field(description="the turn's number in its session, from 0")
    reply_id: str = Field(description="the last line's id")
    slots: dict[str, Any] = Field(description="the last line's slot values")
    lines: list[Line]
    text: str = Field(description="every line's text, joined by newlines")
    audio: list[str | None] = Field(description="each line's voice asset id")
    locale: str
    state: dict[str, Any] = Field(description="the session's state after the turn")
    node: str = Field(description="the node the next turn runs in")
    ended: bool
    fallback: bool = Field(description="the catalog's fallback line was sent because the turn failed")
    trace: dict[str, Any] | None = Field(None, description="with ?trace=1: how the reply was chosen "
                                                           "(can hold model text: for operators)")


class HistoryItem(BaseModel):
    index: int
    message: str
    reply_id: str
    text: str


class SessionOut(BaseModel):
    id: str
    policy: str
    state: dict[str, Any]
    node: str
    locale: str
    ended: bool
    turns: int = Field(description="how many turns the session has had")
    history: list[HistoryItem]


class TurnList(BaseModel):
    session_id: str
    turns: list[TurnOut]


class PolicyOut(BaseModel):
    name: str
    hash: str
    start: str = Field(description="the node new sessions start in")
    nodes: list[str]
    mode: str
    understanding: str
    catalog: dict[str, Any] = Field(description="id, version, hash, locale and locales")


class PolicyList(BaseModel):
    policies: list[PolicyOut]


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    ready: bool
    policies: dict[str, str] = Field(description="per policy: ready, loading, or what failed")


class ErrorBody(BaseModel):
    code: str = Field(description="stable: message_rejected, unknown_session, session_ended, ...")
    message: str
    status: int


class ErrorOut(BaseModel):
    error: ErrorBody
