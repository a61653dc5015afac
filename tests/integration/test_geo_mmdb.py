"""The database GeoIP provider against the GeoLite2-City file bundled in maxminddb-geolite2."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import maxminddb
import pytest
from flask import Flask

from flask_tracking.geo import GeoData, get_geodata, init_app
from flask_tracking.geo.providers import MMDBProvider

pytestmark = pytest.mark.integration

# The bundled file is GeoLite2-City built 2018-07-03 and never changes, so its answers are
# fixed; still, only assert what is stable across GeoIP vintages where a newer file is used.


@pytest.fixture
def provider() -> Iterator[MMDBProvider]:
    """The default provider: the bundled database, closed afterwards."""
    provider = MMDBProvider()
    yield provider
    provider.close()


def test_ipv4_country_level_record(provider: MMDBProvider) -> None:
    data = provider.lookup("8.8.8.8")
    assert data is not None
    assert data.country_code == "US"
    assert data.country_name == "United States"
    # This vintage only knows 8.8.8.8 to country level: no city, US centroid coordinates.
    assert data.city is None
    assert data.location == ""
    assert data.latitude is not None and data.longitude is not None


def test_ipv4_city_level_record(provider: MMDBProvider) -> None:
    # MaxMind's documented test address: London-area in every vintage (Willesden NW10 here).
    data = provider.lookup("81.2.69.142")
    assert data is not None
    assert data.country_code == "GB"
    assert data.region == "England"
    assert data.city
    assert data.latitude is not None and 51 < data.latitude < 52
    assert data.longitude is not None and -1 < data.longitude < 1


def test_ipv6_record(provider: MMDBProvider) -> None:
    data = provider.lookup("2001:4860:4860::8888")
    assert data is not None
    assert data.country_code == "US"
    assert data.latitude is not None and data.longitude is not None


def test_ipv4_mapped_ipv6_is_looked_up_as_ipv4(provider: MMDBProvider) -> None:
    assert provider.lookup("::ffff:81.2.69.142") == provider.lookup("81.2.69.142")


def test_the_2018_vintage_answers(provider: MMDBProvider) -> None:
    # Pinned to the bundled file: fails loudly if the package ever ships different data.
    data = provider.lookup("2001:4860:4860::8888")
    assert data is not None
    assert replace(data, latitude=None, longitude=None) == GeoData(
        city="Mountain View",
        postal_code="94043",
        region="California",
        country_code="US",
        country_name="United States",
    )
    assert (data.latitude, data.longitude) == pytest.approx((37.4192, -122.0574))
    data = provider.lookup("81.2.69.142")
    assert data is not None
    assert data.location == "Willesden, NW10"


@pytest.mark.parametrize("ip", ["10.0.0.1", "192.168.1.20", "127.0.0.1", "::1", "fe80::1"])
def test_private_addresses_give_none(provider: MMDBProvider, ip: str) -> None:
    assert provider.lookup(ip) is None


def test_a_public_address_missing_from_the_database_gives_none(provider: MMDBProvider) -> None:
    assert provider.lookup("2c0f:ffff::1") is None


def test_a_missing_database_gives_none_and_warns_once(
    tmp_path: Path, geo_log: list[logging.LogRecord]
) -> None:
    missing = MMDBProvider(str(tmp_path / "nowhere" / "GeoLite2-City.mmdb"))
    assert missing.lookup("8.8.8.8") is None
    assert missing.lookup("81.2.69.142") is None
    assert len(geo_log) == 1
    assert "nowhere" in geo_log[0].getMessage()
    missing.close()


def test_concurrent_first_lookups_open_the_database_once(
    provider: MMDBProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[object] = []
    real_open = maxminddb.open_database

    def counting_open(*args: Any) -> Any:
        opened.append(args)
        time.sleep(0.05)  # widen the window in which a second opener could slip in
        return real_open(*args)

    monkeypatch.setattr(maxminddb, "open_database", counting_open)
    barrier = threading.Barrier(8)
    results: list[GeoData | None] = []

    def look() -> None:
        barrier.wait()
        results.append(provider.lookup("81.2.69.142"))

    threads = [threading.Thread(target=look) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(opened) == 1
    assert len(results) == 8
    assert len(set(results)) == 1 and results[0] is not None


def test_get_geodata_with_the_default_configuration() -> None:
    app = Flask("geo_mmdb_integration")
    init_app(app)  # no GEOIP_* settings: the bundled database
    provider = app.extensions["geoip"]
    try:
        with app.app_context():
            data = get_geodata("8.8.8.8")
            assert data is not None and data.country_code == "US"
            assert get_geodata("10.0.0.1") is None
    finally:
        provider.close()
