"""Names people read for the codes the store keeps (countries by ISO 3166-1 alpha-2 code), and
the logos that go with browsers and systems.

The names come from pycountry (the ISO 3166 data Debian and others ship), preferring the short
common name where ISO's is formal ("South Korea", not "Korea, Republic of"). A code ISO does not
list (Kosovo's XK, a provider's private code) is shown as it is. Flags are not images: a flag is
the code's two letters as Unicode regional indicator symbols, which systems draw as the flag.
"""

from __future__ import annotations

from functools import cache

import pycountry

_REGIONAL_A = 0x1F1E6  # REGIONAL INDICATOR SYMBOL LETTER A


@cache
def country_name(code: str) -> str:
    """Return the country's name for its alpha-2 code ("US" → "United States"), or the code
    itself when ISO does not list it."""
    found = pycountry.countries.get(alpha_2=code) if len(code) == 2 else None
    if found is None:
        return code
    return str(getattr(found, "common_name", None) or found.name)


def flag(code: str) -> str:
    """Return the flag emoji of an alpha-2 code, or "" for anything that is not two letters."""
    if len(code) != 2 or not code.isascii() or not code.isalpha():
        return ""
    return "".join(chr(_REGIONAL_A + ord(letter) - ord("A")) for letter in code.upper())


@cache
def country_code(text: str) -> str | None:
    """Return the alpha-2 code a person means by `text` — a code, or a name ISO knows in any
    of its forms ("Germany", "germany", "DEU") — or None."""
    try:
        found = pycountry.countries.lookup(text.strip())
    except LookupError:
        return None
    return str(found.alpha_2)


# Browser and system names (as ua-parser gives them) -> the simple-icons logo in the
# dashboard's sprite (tools/build_assets.py ICONS). Names without a free logo get none.
LOGOS = {
    "browser": {
        "Chrome": "googlechrome",
        "Chrome Mobile": "googlechrome",
        "Chrome Mobile iOS": "googlechrome",
        "Chrome Mobile WebView": "googlechrome",
        "Chromium": "googlechrome",
        "Firefox": "firefoxbrowser",
        "Firefox Mobile": "firefoxbrowser",
        "Firefox iOS": "firefoxbrowser",
        "Safari": "safari",
        "Mobile Safari": "safari",
        "Mobile Safari UI/WKWebView": "safari",
        "Opera": "opera",
        "Opera Mobile": "opera",
        "Opera Mini": "opera",
        "Samsung Internet": "samsung",
        "Brave": "brave",
        "Vivaldi": "vivaldi",
        "DuckDuckGo Mobile": "duckduckgo",
    },
    "os": {
        "Android": "android",
        "iOS": "apple",
        "iPadOS": "apple",
        "Mac OS X": "apple",
        "macOS": "apple",
        "Linux": "linux",
        "Ubuntu": "ubuntu",
        "Debian": "debian",
        "Fedora": "fedora",
    },
}


def logo(dimension: str, value: str) -> str:
    """Return the logo's id in the sprite for a browser or system name, or "" for none."""
    return LOGOS.get(dimension, {}).get(value, "")
