"""The spool's record format: one JSON object a line, short keys to keep lines small.

Written and read with orjson (several times faster than the stdlib on these small objects);
the stdlib takes over for what orjson cannot do exactly: integers beyond 64 bits, which
orjson refuses to write and reads as floats.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import orjson

EVENT = "e"
DROP = "d"
# orjson reads an integer beyond 64 bits as a float: past this, a float may be one of those.
_FLOAT_EXACT = 2.0**63


def dump_line(data: dict[str, Any]) -> bytes:
    """Serialise a record as one newline-terminated line of compact JSON (UTF-8, unescaped)."""
    try:
        return orjson.dumps(data, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:  # an integer beyond 64 bits in the props
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def load_line(line: bytes) -> Any:
    """Parse one spool line's JSON."""
    data = orjson.loads(line)
    # Only the props can hold a number the collector did not check the size of.
    props = data.get("p") if type(data) is dict else None
    if props and type(props) is dict and any(huge(value) for value in props.values()):
        return json.loads(line)  # the stdlib keeps big integers exact
    return data


def huge(value: Any) -> bool:
    """Tell whether a value orjson read may have been an integer too large for it."""
    return type(value) is float and abs(value) >= _FLOAT_EXACT


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs twice as much
class EventRecord:
    """An accepted event, as spooled: raw request facts, enriched later by the writer."""

    event_id: str
    site_id: int
    timestamp_ms: int
    name: str
    url: str
    referrer: str | None = None
    width: int | None = None
    props: dict[str, Any] = field(default_factory=dict)
    ip: str | None = None
    user_agent: str = ""

    def to_line(self) -> bytes:
        """Serialise as one spool line."""
        data = {
            "k": EVENT,
            "id": self.event_id,
            "s": self.site_id,
            "t": self.timestamp_ms,
            "n": self.name,
            "u": self.url,
            "r": self.referrer,
            "w": self.width,
            "p": self.props,
            "ip": self.ip,
            "ua": self.user_agent,
        }
        return dump_line(data)


@dataclass(frozen=True, slots=True)
class DropRecord:
    """An event dropped on arrival, kept only as a count per site, day and reason."""

    site_id: int
    timestamp_ms: int
    reason: str

    def to_line(self) -> bytes:
        """Serialise as one spool line."""
        return dump_line({"k": DROP, "s": self.site_id, "t": self.timestamp_ms, "why": self.reason})


def parse_line(line: bytes) -> EventRecord | DropRecord:
    """Parse a spool line; raise ValueError for anything malformed."""
    data = load_line(line)
    if not isinstance(data, dict):
        raise ValueError("a spool record must be a JSON object")
    try:
        if data["k"] == EVENT:
            return EventRecord(
                event_id=str(data["id"]),
                site_id=int(data["s"]),
                timestamp_ms=int(data["t"]),
                name=str(data["n"]),
                url=str(data["u"]),
                referrer=data.get("r"),
                width=data.get("w"),
                props=dict(data.get("p") or {}),
                ip=data.get("ip"),
                user_agent=str(data.get("ua") or ""),
            )
        if data["k"] == DROP:
            return DropRecord(int(data["s"]), int(data["t"]), str(data["why"]))
    except (KeyError, TypeError) as error:
        raise ValueError(f"incomplete spool record: {error}") from None
    raise ValueError(f"unknown spool record kind {data.get('k')!r}")
