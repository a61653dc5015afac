"""User-Agent parsing with ua-parser, reduced to what reports show."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import ua_parser

MAX_USER_AGENT_LENGTH = 1024
_TABLET_FAMILIES = ("ipad", "kindle", "galaxy tab", "nexus 7", "nexus 9", "nexus 10")


@dataclass(frozen=True, slots=True)
class UserAgentInfo:
    """Browser, OS and device type of a User-Agent string."""

    browser: str | None
    browser_version: str | None
    os: str | None
    os_version: str | None
    device: str  # desktop, mobile, tablet or bot
    is_bot: bool


def _version(major: str | None, minor: str | None) -> str | None:
    if not major:
        return None
    return f"{major}.{minor}" if minor else major


def _device_type(ua: str, device_family: str, os_family: str | None) -> str:
    lowered = ua.lower()
    family = device_family.lower()
    if family == "spider":
        return "bot"
    if any(name in family for name in _TABLET_FAMILIES) or "tablet" in lowered:
        return "tablet"
    if os_family == "Android" and "mobile" not in lowered:
        return "tablet"  # Android tablets omit "Mobile" from their User-Agent by convention
    if "mobi" in lowered or os_family in ("iOS", "Android", "Windows Phone", "KaiOS"):
        return "mobile"
    return "desktop"


@lru_cache(maxsize=4096)
def parse_user_agent(ua: str) -> UserAgentInfo:
    """Parse a User-Agent; unknown parts are None, never 'Other'."""
    ua = ua[:MAX_USER_AGENT_LENGTH]
    result = ua_parser.parse(ua)
    agent, os_, device = result.user_agent, result.os, result.device
    browser = agent.family if agent and agent.family != "Other" else None
    os_family = os_.family if os_ and os_.family != "Other" else None
    device_type = _device_type(ua, device.family if device else "Other", os_family)
    return UserAgentInfo(
        browser=browser,
        browser_version=_version(agent.major, agent.minor) if agent and browser else None,
        os=os_family,
        os_version=_version(os_.major, os_.minor) if os_ and os_family else None,
        device=device_type,
        is_bot=device_type == "bot",
    )
