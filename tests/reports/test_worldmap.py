"""The world map: tools/build_assets.py's TopoJSON decoding and projection on a hand-written
topology, and render_map's SVG (escaping, shading, ignored codes, no data file) on a world.json
built from that topology. No network, no npm."""

from __future__ import annotations

import importlib.util
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from markupsafe import Markup

from flask_tracking.reports import worldmap


def _load_script() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "tools" / "build_assets.py"
    spec = importlib.util.spec_from_file_location("_build_assets_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


build_assets = _load_script()

# Quantized and delta-encoded: x = 10 + 0.5 * sum(dx), y = 20 + 0.25 * sum(dy).
TOPOLOGY: dict[str, Any] = {
    "type": "Topology",
    "transform": {"scale": [0.5, 0.25], "translate": [10, 20]},
    "arcs": [
        [[0, 0], [4, 0], [0, 4]],  # (10,20) (12,20) (12,21)
        [[4, 4], [-4, 0], [0, -4]],  # (12,21) (10,21) (10,20)
        [[20, 0], [2, 0], [0, 2], [-2, -2]],  # a closed island: (20,20) (21,20) (21,20.5) (20,20)
    ],
    "objects": {
        "countries": {
            "type": "GeometryCollection",
            "geometries": [
                {
                    "type": "Polygon",
                    "arcs": [[0, 1]],
                    "id": "250",
                    "properties": {"name": "France"},
                },
                {
                    "type": "MultiPolygon",
                    "arcs": [[[~1, ~0]], [[2]]],
                    "id": "036",
                    "properties": {"name": "Australia"},
                },
                {
                    "type": "Polygon",
                    "arcs": [[2]],
                    "id": "010",
                    "properties": {"name": "Antarctica"},
                },
                {"type": "Polygon", "arcs": [[2]], "properties": {"name": "Kosovo"}},
                {"type": "Polygon", "arcs": [[2]], "id": "999", "properties": {"name": "Nowhere"}},
                {"type": None, "id": "276", "properties": {"name": "Germany"}},
            ],
        }
    },
}
CODES = [
    ["FR", "FRA", "250", "ISO 3166-2:FR"],
    ["AU", "AUS", "036", "ISO 3166-2:AU"],
    ["AQ", "ATA", "010", "ISO 3166-2:AQ"],
    ["DE", "DEU", "276", "ISO 3166-2:DE"],
]
# One degree to one unit, north up: x = lon + 180, y = 90 - lat.
DEGREES = build_assets.Projection(width=360, height=180, lat_top=90, lat_bottom=-90)


# --- build_assets: decoding ------------------------------------------------------------------


def test_decode_arcs_undoes_quantization_and_delta_encoding() -> None:
    arcs = build_assets.decode_arcs(TOPOLOGY)
    assert arcs[0] == [(10, 20), (12, 20), (12, 21)]
    assert arcs[1] == [(12, 21), (10, 21), (10, 20)]
    assert arcs[2] == [(20, 20), (21, 20), (21, 20.5), (20, 20)]


def test_decode_arcs_of_an_unquantized_topology_are_absolute() -> None:
    topology = {"type": "Topology", "arcs": [[[1.5, 2], [3, -4]]], "objects": {}}
    assert build_assets.decode_arcs(topology) == [[(1.5, 2.0), (3.0, -4.0)]]


def test_ring_stitches_arcs_and_reverses_negative_indexes() -> None:
    arcs = build_assets.decode_arcs(TOPOLOGY)
    square = [(10, 20), (12, 20), (12, 21), (10, 21), (10, 20)]
    assert build_assets.ring_points([0, 1], arcs) == square
    assert build_assets.ring_points([~1, ~0], arcs) == square[::-1]


def test_geometry_rings_flattens_polygons() -> None:
    assert build_assets.geometry_rings({"type": "Polygon", "arcs": [[0, 1], [2]]}) == [[0, 1], [2]]
    multi = {"type": "MultiPolygon", "arcs": [[[0, 1], [2]], [[3]]]}
    assert build_assets.geometry_rings(multi) == [[0, 1], [2], [3]]
    assert build_assets.geometry_rings({"type": None}) == []


def test_a_ring_across_the_antimeridian_is_cut_into_one_part_on_each_side() -> None:
    # Fiji-like: steps from 170 straight to -170 and back, as world-atlas stores it.
    ring = [(170.0, 10.0), (-170.0, 10.0), (-170.0, 20.0), (170.0, 20.0), (170.0, 10.0)]
    assert build_assets.split_antimeridian(ring) == [
        [(-180, 10), (-170, 10), (-170, 20), (-180, 20)],
        [(170, 10), (180, 10), (180, 20), (170, 20), (170, 10)],
    ]


def test_rings_that_need_no_cut_are_kept_as_they_are() -> None:
    inside = [(10.0, 10.0), (12.0, 10.0), (12.0, 12.0), (10.0, 10.0)]
    assert build_assets.split_antimeridian(inside) == [inside]
    # Around the south pole (Antarctica): unwrapping cannot close it, so it is left alone.
    polar = [(-180.0, -80.0), (0.0, -85.0), (180.0, -80.0), (-180.0, -80.0)]
    assert build_assets.split_antimeridian(polar) == [polar]


# --- build_assets: projection and path data ---------------------------------------------------


def test_default_projection_is_plate_carree_on_960_by_384() -> None:
    projection = build_assets.Projection()
    assert (projection.width, projection.height) == (960, 384)
    assert projection(-180, 84) == (0, 0)
    assert projection(180, -60) == (960, 384)
    assert projection(0, 0) == (480, 224)
    # Equal scale on both axes: a degree is as wide as it is tall.
    width = projection(1, 0)[0] - projection(0, 0)[0]
    assert width == pytest.approx(projection(0, 0)[1] - projection(0, 1)[1])


def test_path_data_rounds_to_tenths_and_uses_relative_moves() -> None:
    ring = [(0.0, 0.0), (0.5, -0.3), (1.04, -0.3), (1.0, -0.3), (-0.5, 0.0), (0.0, 0.0)]
    d = build_assets.path_data([ring], DEGREES)
    # (180,90) (180.5,90.3) (181,90.3): 1.04 and 1.0 round onto the same point, kept once;
    # (179.5,90), and the closing point, which Z stands for.
    assert d == "M180,90l.5,.3 .5,0-1.5-.3Z"


def test_path_data_drops_rings_that_round_to_a_speck() -> None:
    speck = [(0.0, 0.0), (0.01, 0.0), (0.01, 0.01), (0.0, 0.0)]
    triangle = [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)]
    assert build_assets.path_data([speck], DEGREES) == ""
    assert build_assets.path_data([speck, triangle], DEGREES) == "M180,90l1,0-1-1Z"


def test_build_world_maps_numeric_ids_to_alpha2() -> None:
    world = build_assets.build_world(TOPOLOGY, CODES, DEGREES)
    assert world["width"] == 360
    assert world["height"] == 180
    # Antarctica is dropped; no id (Kosovo), an unknown id and a null geometry are skipped.
    assert world["countries"] == {
        "AU": {"name": "Australia", "d": "M190,70l0-1 2,0 0,1ZM200,70l1,0 0-.5Z"},
        "FR": {"name": "France", "d": "M190,70l2,0 0-1-2,0Z"},
    }


def test_alpha2_table_reads_i18n_iso_countries_rows() -> None:
    assert build_assets.alpha2_by_numeric(CODES)["036"] == "AU"


def test_write_atomic_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "vendor" / "world.json"
    build_assets.write_atomic(target, b"old")
    build_assets.write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in target.parent.iterdir()] == ["world.json"]
    assert target.stat().st_mode & 0o777 == 0o644


# --- render_map ------------------------------------------------------------------------------


@pytest.fixture
def world_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A world.json built by tools/build_assets.py from TOPOLOGY, in place of the real one."""
    path = tmp_path / "world.json"
    path.write_text(json.dumps(build_assets.build_world(TOPOLOGY, CODES, DEGREES)))
    monkeypatch.setattr(worldmap, "WORLD_PATH", path)
    return path


def parse(svg: Markup) -> ET.Element:
    return ET.fromstring(str(svg))  # noqa: S314 - our own output


NS = "{http://www.w3.org/2000/svg}"


def paths(svg: Markup) -> dict[str, ET.Element]:
    return {p.attrib["data-code"]: p for p in parse(svg).iter(f"{NS}path")}


@pytest.mark.usefixtures("world_file")
def test_render_map_draws_every_country_with_value_shade_and_title() -> None:
    svg = worldmap.render_map({"FR": 1234, "AU": 0})
    assert isinstance(svg, Markup)
    root = parse(svg)
    assert root.tag == f"{NS}svg"
    assert root.attrib["viewBox"] == "0 0 360 180"
    assert root.attrib["class"] == "world-map"
    assert root.attrib["role"] == "img"
    assert root.attrib["aria-label"] == "World map of visitors by country"
    drawn = paths(svg)
    assert list(drawn) == ["AU", "FR"]
    france = drawn["FR"]
    assert france.attrib["d"] == "M190,70l2,0 0-1-2,0Z"
    assert france.attrib["data-value"] == "1234"
    assert france.attrib["class"] == "shade-5"
    assert france.findtext(f"{NS}title") == "France: 1,234 visitors"
    assert drawn["AU"].attrib["class"] == "shade-0"
    assert drawn["AU"].findtext(f"{NS}title") == "Australia: 0 visitors"
    assert worldmap.available()


@pytest.mark.parametrize(
    ("value", "shade"),
    [(0, 0), (-3, 0), (1, 1), (4, 1), (5, 2), (16, 2), (17, 3), (36, 3), (37, 4), (64, 4),
     (65, 5), (100, 5)],
)  # fmt: skip
def test_shades_are_fifths_of_the_square_root_of_value_over_max(value: int, shade: int) -> None:
    assert worldmap._shade(value, 100) == shade


@pytest.mark.usefixtures("world_file")
def test_render_map_shades_relative_to_the_largest_country_drawn() -> None:
    # ZZ is not on the map, so it does not wash out the countries that are.
    drawn = paths(worldmap.render_map({"FR": 100, "AU": 25, "ZZ": 1_000_000}))
    assert drawn["FR"].attrib["class"] == "shade-5"
    assert drawn["AU"].attrib["class"] == "shade-3"  # sqrt(1/4) = 2.5 fifths


@pytest.mark.usefixtures("world_file")
def test_render_map_ignores_codes_that_are_not_two_capital_letters() -> None:
    hostile = '"><script>alert(1)</script>'
    svg = worldmap.render_map({"fr": 5, "FRA": 6, "F": 7, "FR\n": 8, hostile: 9})
    assert "<script" not in svg
    assert "alert" not in svg
    drawn = paths(svg)
    assert list(drawn) == ["AU", "FR"]
    assert {p.attrib["data-value"] for p in drawn.values()} == {"0"}


@pytest.mark.usefixtures("world_file")
def test_render_map_escapes_a_hostile_label_and_filter_url() -> None:
    label = '<img src=x onerror="alert(1)">'
    svg = worldmap.render_map(
        {"FR": 3},
        filter_url=lambda code: f'/sites/1?country={code}&x="><script>alert(2)</script>',
        label=label,
    )
    assert "<img" not in svg
    assert "<script" not in svg
    root = parse(svg)  # still well-formed
    assert root.attrib["aria-label"] == f"World map of {label} by country"
    links = list(root.iter(f"{NS}a"))
    # Only countries with visitors link; AU has none.
    assert [[p.attrib["data-code"] for p in a] for a in links] == [["FR"]]
    assert links[0].attrib["href"] == '/sites/1?country=FR&x="><script>alert(2)</script>'
    assert paths(svg)["FR"].findtext(f"{NS}title") == f"France: 3 {label}"


@pytest.mark.usefixtures("world_file")
def test_render_map_without_filter_url_has_no_links() -> None:
    assert not list(parse(worldmap.render_map({"FR": 3})).iter(f"{NS}a"))


def test_render_map_is_empty_when_the_data_file_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worldmap, "WORLD_PATH", tmp_path / "vendor" / "world.json")
    assert worldmap.render_map({"FR": 3}) == Markup("")
    assert not worldmap.available()


def test_render_map_is_empty_when_the_data_file_is_corrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "world.json"
    path.write_text('{"width": 960, "countr')
    monkeypatch.setattr(worldmap, "WORLD_PATH", path)
    assert worldmap.render_map({"FR": 3}) == Markup("")
    assert not worldmap.available()


@pytest.mark.usefixtures("world_file")
def test_with_a_sprite_each_country_uses_its_outline_there() -> None:
    svg = worldmap.render_map(
        {"FR": 3}, filter_url=lambda code: f"/f?c={code}", sprite_url="/static/w.svg?v=<1>"
    )
    root = parse(svg)
    uses = {u.attrib["data-code"]: u for u in root.iter(f"{NS}use")}
    assert list(uses) == ["AU", "FR"] and not list(root.iter(f"{NS}path"))
    assert uses["FR"].attrib["href"] == "/static/w.svg?v=<1>#c-FR"  # escaped in the markup
    assert uses["FR"].attrib["class"] == "shade-5"
    assert uses["FR"].findtext(f"{NS}title") == "France: 3 visitors"
    assert [[u.attrib["data-code"] for u in a] for a in root.iter(f"{NS}a")] == [["FR"]]
    world = build_assets.build_world(TOPOLOGY, CODES, DEGREES)
    sprite = ET.fromstring(build_assets.build_world_sprite(world))  # noqa: S314 - our own output
    assert {p.attrib["id"]: p.attrib["d"] for p in sprite.iter(f"{NS}path")}["c-FR"] == (
        "M190,70l2,0 0-1-2,0Z"
    )


def test_map_data_is_read_once(world_file: Path) -> None:
    first = worldmap.render_map({"FR": 1})
    world_file.unlink()
    assert worldmap.render_map({"FR": 1}) == first


def test_the_logo_sprite_is_built_from_simple_icons(tmp_path: Path) -> None:
    """tools/build_assets.py turns simple-icons' files into one sprite in currentColor."""
    (tmp_path / "a.svg").write_text(
        '<svg role="img" viewBox="0 0 24 24" xmlns="http://www.w3.org/2000/svg">'
        '<title>A</title><path d="M0 0h24v24H0z"/></svg>'
    )
    sprite = build_assets.build_icons(tmp_path, ["a"]).decode()
    assert sprite == (
        '<svg xmlns="http://www.w3.org/2000/svg"><symbol id="si-a" viewBox="0 0 24 24">'
        '<path fill="currentColor" d="M0 0h24v24H0z"/></symbol></svg>'
    )
    (tmp_path / "b.svg").write_text("<svg><g/></svg>")
    with pytest.raises(ValueError, match="no single path"):
        build_assets.build_icons(tmp_path, ["b"])
