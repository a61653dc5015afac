"""The database GeoIP provider against the GeoLite2-City file of maxminddb-geolite2 (2018), a
single-file MaxMind database (test_geo_dbip.py has the DB-IP pair the app ships)."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from flask_tracking.geo import GeoData
from flask_tracking.geo.providers import MMDBProvider, bundled_database_path

pytestmark = pytest.mark.integration

# The bundled file is GeoLite2-City built 2018-07-03. Most tests assert only what holds in
# any vintage (country, a plausible box around the coordinates); one pins the 2018 answers.

# ip, country code, country name, (min, max) latitude, (min, max) longitude
WELL_KNOWN = [
    pytest.param("8.8.8.8", "US", "United States", (24, 50), (-125, -66), id="google-dns-v4"),
    pytest.param(
        "81.2.69.142", "GB", "United Kingdom", (51, 52), (-1, 1), id="maxmind-london-test-ip"
    ),
    pytest.param(
        "128.101.101.101", "US", "United States", (43, 46), (-95, -92), id="umn-minneapolis"
    ),
    pytest.param("193.0.6.139", "NL", "Netherlands", (50, 54), (3, 8), id="ripe-ncc-v4"),
    pytest.param(
        "2001:4860:4860::8888", "US", "United States", (24, 50), (-125, -66), id="google-v6"
    ),
    pytest.param(
        "2001:67c:2e8:22::c100:68b", "NL", "Netherlands", (50, 54), (3, 8), id="ripe-ncc-v6"
    ),
    pytest.param("2a02:c7f:2003::1", "GB", "United Kingdom", (49, 61), (-9, 2), id="uk-isp-v6"),
]


@pytest.fixture
def provider() -> Iterator[MMDBProvider]:
    """A provider on maxminddb-geolite2's 2018 file; closed afterwards."""
    provider = MMDBProvider(bundled_database_path())
    yield provider
    provider.close()


@pytest.mark.parametrize(("ip", "code", "name", "lat", "lon"), WELL_KNOWN)
def test_well_known_addresses_are_in_the_right_country(
    provider: MMDBProvider,
    ip: str,
    code: str,
    name: str,
    lat: tuple[float, float],
    lon: tuple[float, float],
) -> None:
    data = provider.lookup(ip)
    assert data is not None
    assert (data.country_code, data.country_name) == (code, name)
    assert isinstance(data.latitude, float) and lat[0] < data.latitude < lat[1]
    assert isinstance(data.longitude, float) and lon[0] < data.longitude < lon[1]
    if data.city is not None:  # where the database knows the city, the location starts with it
        assert data.location.startswith(data.city)
    assert "None" not in data.location


def test_city_level_records(provider: MMDBProvider) -> None:
    london = provider.lookup("81.2.69.142")
    assert london is not None and london.region == "England" and london.city
    minneapolis = provider.lookup("128.101.101.101")
    assert minneapolis is not None
    assert (minneapolis.city, minneapolis.region) == ("Minneapolis", "Minnesota")


def test_the_bundled_2018_answers(provider: MMDBProvider) -> None:
    # Pinned to the bundled file, so a different maxminddb-geolite2 data release shows up here.
    assert provider.lookup("81.2.69.142") == GeoData(
        city="Willesden",
        postal_code="NW10",
        region="England",
        country_code="GB",
        country_name="United Kingdom",
        latitude=pytest.approx(51.5333),
        longitude=pytest.approx(-0.2333),
    )
    assert provider.lookup("128.101.101.101") == GeoData(
        city="Minneapolis",
        postal_code="55414",
        region="Minnesota",
        country_code="US",
        country_name="United States",
        latitude=pytest.approx(44.9759),
        longitude=pytest.approx(-93.2166),
    )
    mountain_view = provider.lookup("2001:4860:4860::8888")
    assert mountain_view is not None and mountain_view.location == "Mountain View, 94043"
    # 8.8.8.8 is known only to country level here: no city, so no location string.
    google = provider.lookup("8.8.8.8")
    assert google is not None and (google.city, google.location) == (None, "")


def test_an_ipv4_mapped_address_is_looked_up_as_ipv4(provider: MMDBProvider) -> None:
    assert provider.lookup("::ffff:81.2.69.142") == provider.lookup("81.2.69.142")


def test_a_public_address_the_database_does_not_know_gives_none(provider: MMDBProvider) -> None:
    assert provider.lookup("2c0f:ffff::1") is None


@pytest.mark.parametrize(
    "ip", ["10.0.0.1", "192.168.1.20", "172.16.5.4", "127.0.0.1", "::1", "fe80::1%eth0", "junk"]
)
def test_private_and_malformed_addresses_give_none(provider: MMDBProvider, ip: str) -> None:
    assert provider.lookup(ip) is None


# --- unusable database files -------------------------------------------------------------------


def test_a_missing_database_gives_none_and_warns_once(
    tmp_path: Path, geo_log: list[logging.LogRecord]
) -> None:
    missing = MMDBProvider(str(tmp_path / "nowhere" / "GeoLite2-City.mmdb"))
    assert missing.lookup("8.8.8.8") is None
    assert missing.lookup("81.2.69.142") is None  # does not try, or warn, again
    [record] = geo_log
    assert record.levelno == logging.WARNING
    assert "nowhere" in record.getMessage()
    missing.close()


@pytest.mark.parametrize(
    "content", [b"this is not a MaxMind database\n" * 100, b""], ids=["junk", "empty"]
)
def test_a_file_that_is_not_a_database_gives_none(
    tmp_path: Path, geo_log: list[logging.LogRecord], content: bytes
) -> None:
    corrupt = tmp_path / "GeoLite2-City.mmdb"
    corrupt.write_bytes(content)
    provider = MMDBProvider(str(corrupt))
    assert provider.lookup("8.8.8.8") is None
    assert provider.lookup("8.8.8.8") is None
    [record] = geo_log  # reported once, not at every lookup
    assert "valid MaxMind DB" in record.getMessage()
    assert str(corrupt) in record.getMessage()
    provider.close()


def test_a_corrupt_search_tree_gives_none_and_warns_once(
    tmp_path: Path, geo_log: list[logging.LogRecord]
) -> None:
    # Valid metadata (so the file opens) over a search tree of garbage (so lookups fail).
    damaged = tmp_path / "damaged.mmdb"
    shutil.copyfile(bundled_database_path(), damaged)
    with damaged.open("r+b") as file:
        file.write(b"\xff" * (1 << 20))
    provider = MMDBProvider(str(damaged))
    assert provider.lookup("8.8.8.8") is None
    assert provider.lookup("81.2.69.142") is None
    [record] = geo_log
    assert "corrupt" in record.getMessage()
    assert "8.8.8.8" not in record.getMessage()  # maxminddb's message names it; ours must not
    provider.close()
