"""The dashboard's world map: an inline SVG choropleth rendered on the server.

The country outlines come from static/vendor/world.json, which `make assets`
(tools/build_assets.py) derives from the pinned world-atlas package; it is not committed. Without
it, render_map returns empty markup and the dashboard simply shows no map.

The SVG needs no JavaScript: shading is a class (map.css), hovering shows a <title>, and with
filter_url each country that has visitors is a link that filters the dashboard.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from markupsafe import Markup, escape

from flask_tracking.reports.names import country_name

log = logging.getLogger(__name__)

# Read at call time (not bound as a default), so tests can point it elsewhere.
WORLD_PATH = Path(__file__).resolve().parent.parent / "static" / "vendor" / "world.json"

SHADES = 5  # shade-1 (fewest visitors) .. shade-5 (most); shade-0 is none
_CODE = re.compile(r"[A-Z]{2}")


@dataclass(frozen=True)
class _Country:
    code: str
    name: str
    d: Markup  # escaped once at load time: the path data is the bulk of every render


@dataclass(frozen=True)
class _World:
    width: int
    height: int
    countries: tuple[_Country, ...]


def _name(code: str, drawn: str) -> str:
    """The name the rest of the dashboard gives the country (reports/names.py); the map
    data's own name only for a code ISO does not list."""
    named = country_name(code)
    return drawn if named == code else named


@functools.cache
def _load(path: Path) -> _World | None:
    """world.json, parsed once per process (per path); None when it is missing or unreadable."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        countries = tuple(
            _Country(code, _name(code, str(entry["name"])), escape(str(entry["d"])))
            for code, entry in sorted(raw["countries"].items())
            if isinstance(code, str) and _CODE.fullmatch(code)
        )
        return _World(int(raw["width"]), int(raw["height"]), countries)
    except FileNotFoundError:
        log.info("no world map: %s is missing (run `make assets`)", path)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("no world map: %s is unreadable: %s", path, exc)
    return None


def available() -> bool:
    """Whether the map's data file is there, i.e. whether render_map draws anything."""
    return _load(WORLD_PATH) is not None


def _shade(value: int, top: int) -> int:
    """0 for no visitors, else 1..SHADES on a square-root scale of value/top.

    The square root keeps countries with a few visitors visible next to one with thousands.
    The smallest n with sqrt(value/top) <= n/SHADES is computed in integers, exactly.
    """
    if value <= 0 or top <= 0:
        return 0
    for n in range(1, SHADES):
        if value * SHADES * SHADES <= top * n * n:
            return n
    return SHADES


def render_map(
    values: Mapping[str, int],
    *,
    filter_url: Callable[[str], str] | None = None,
    label: str = "visitors",
    sprite_url: str | None = None,
) -> Markup:
    """An inline <svg> with one shaded <path> per country, for `values` {alpha-2 code: count}.

    Codes come from visitor data: only two capital letters are considered, and only those on
    the map are drawn (nothing from `values` is emitted except through escaping). The darkest
    shade is the largest count among the countries drawn. With `filter_url`, a country with
    visitors links to filter_url(code). Empty markup when the map's data file is missing.

    With `sprite_url` (static/vendor/world.svg, where `make assets` puts every outline as
    <path id="c-FR">), each country is a <use> of its outline there instead of the outline
    itself: the page carries only the shading (~3 KB gzipped instead of ~28), and the outlines
    are one file the browser keeps between pages (bench/page_weight.py measures both).
    """
    world = _load(WORLD_PATH)
    if world is None:
        return Markup("")
    counts: dict[str, int] = {}
    for code, value in values.items():
        if isinstance(code, str) and _CODE.fullmatch(code) and isinstance(value, int):
            counts[code] = max(int(value), 0)
    top = max((counts.get(c.code, 0) for c in world.countries), default=0)

    parts = [
        Markup(
            '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" class="world-map" '
            'role="{}" aria-label="{}">'
        ).format(
            world.width,
            world.height,
            # An image cannot hold links: with countries to follow it is a group of them.
            "group" if filter_url is not None else "img",
            f"World map of {label} by country",
        )
    ]
    for country in world.countries:
        value = counts.get(country.code, 0)
        shape = (
            Markup('<use href="{}#c-{}"').format(sprite_url, country.code)
            if sprite_url is not None
            else Markup('<path d="{}"').format(country.d)
        )
        tag = "use" if sprite_url is not None else "path"
        path = Markup(
            '{} class="shade-{}" data-code="{}" data-value="{}"><title>{}: {:,} {}</title></{}>'
        ).format(shape, _shade(value, top), country.code, value, country.name, value, label, tag)
        if filter_url is not None and value > 0:
            path = Markup('<a href="{}">{}</a>').format(filter_url(country.code), path)
        parts.append(path)
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)
