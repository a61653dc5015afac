"""A site's Imports page: admins upload (a dry run says what would happen; Plausible's ZIP is
imported at once, row-level files by the writer's job), see every import and delete one;
readers may download the Plausible-format export; the dashboard says whether imported data
is in the numbers. Names and values from the files are escaped wherever they appear."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from flask_tracking.extensions import db
from flask_tracking.imports.models import Import, ImportedDay
from flask_tracking.tracking.models import Membership
from flask_tracking.users import accounts, audit
from tests.conftest import PASSWORD, stored_events
from tests.imports.test_imports import FIXTURES
from tests.imports.test_plausible import plausible_zip
from tests.tracking.test_erasure import login

OWNER = "owner@example.com"
HOSTILE_PAGE = '/<img src=x onerror="alert(1)">'


def upload(client: Any, site_id: int, source: str, path: Path, name: str = "", **extra: str) -> Any:
    data = {"source": source, "upload": (io.BytesIO(path.read_bytes()), name or path.name)}
    return client.post(
        f"/sites/{site_id}/imports",
        data={**data, **extra},
        content_type="multipart/form-data",
    )


def run_job(app: Flask) -> str:
    with app.app_context():
        writer = app.extensions["ingest"].writer
    return str(dict(writer.schedule.run_all("imports"))["imports"].summary)


def test_an_admin_dry_runs_then_imports_a_plausible_export_and_the_dashboard_says_so(
    site: tuple[Flask, int], tmp_path: Path
) -> None:
    app, site_id = site
    client = login(app, OWNER)
    assert client.get(f"/sites/{site_id}/imports").status_code == 200
    for linking in (f"/sites/{site_id}/edit", f"/sites/{site_id}"):  # settings, dashboard
        assert f'href="/sites/{site_id}/imports"' in client.get(linking).get_data(as_text=True)
    path = plausible_zip(tmp_path)
    dry = upload(client, site_id, "plausible", path, dry_run="y")
    assert dry.status_code == 200
    text = dry.get_data(as_text=True)
    assert "Dry run: nothing was imported" in text and "16 visitor(s) in total" in text
    with app.app_context():
        assert db.session.scalar(select(Import.id)) is None
    done = upload(client, site_id, "plausible", path, name="<script>alert(1)</script>.zip")
    assert done.status_code == 302
    listed = client.get(f"/sites/{site_id}/imports").get_data(as_text=True)
    assert "Plausible export (ZIP)" in listed and "2025-03-01 \u2013 2025-03-02" in listed
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.zip" in listed
    assert "<script>alert" not in listed
    with app.app_context():
        owner = accounts.find_user(OWNER)
        assert owner is not None and audit.events_of(owner.id)[0].kind == "data_imported"
    week = "period=custom&from=2025-03-01&to=2025-03-07"
    dashboard = client.get(f"/sites/{site_id}?{week}").get_data(as_text=True)
    assert "Includes imported data" in dashboard and "Leave it out" in dashboard
    assert "imported=0" in dashboard
    left_out = client.get(f"/sites/{site_id}?{week}&imported=0").get_data(as_text=True)
    assert "Imported data is left out." in left_out and "Include it" in left_out
    filtered = client.get(f"/sites/{site_id}?{week}&filter=country:is:DE").get_data(as_text=True)
    assert "a filter cannot apply to imported daily totals" in filtered
    bad = client.get(f"/sites/{site_id}?{week}&imported=yes")
    assert bad.status_code == 400


def test_imported_values_are_escaped_on_the_dashboard(
    site: tuple[Flask, int], tmp_path: Path
) -> None:
    app, site_id = site
    pages = (
        "date,hostname,page,visits,visitors,pageviews\n"
        f'2025-03-01,example.com,"{HOSTILE_PAGE.replace(chr(34), chr(34) * 2)}",1,9,9\n'
    )
    client = login(app, OWNER)
    assert (
        upload(client, site_id, "plausible", plausible_zip(tmp_path, pages=pages)).status_code
        == 302
    )
    page = client.get(f"/sites/{site_id}?period=custom&from=2025-03-01&to=2025-03-07")
    text = page.get_data(as_text=True)
    assert "&lt;img src=x onerror=" in text
    assert "<img src=x" not in text


def test_a_row_level_upload_waits_for_the_writer_and_can_be_deleted(
    site: tuple[Flask, int],
) -> None:
    app, site_id = site
    client = login(app, OWNER)
    done = upload(client, site_id, "goatcounter", FIXTURES / "goatcounter.csv")
    assert done.status_code == 302
    assert "waiting for the writer" in client.get(f"/sites/{site_id}/imports").get_data(
        as_text=True
    )
    assert stored_events(app) == []
    assert run_job(app) == "1 import(s) handled"
    assert len(stored_events(app)) == 4
    listed = client.get(f"/sites/{site_id}/imports").get_data(as_text=True)
    assert "4 events" in listed and "skipped 1: bots (GoatCounter marked them)" in listed
    with app.app_context():
        record = db.session.scalar(select(Import))
        assert record is not None and record.path == "" and record.status == "done"
        import_id = record.id
    again = upload(client, site_id, "goatcounter", FIXTURES / "goatcounter.csv")
    assert again.status_code == 400 and "imported into this site already" in again.get_data(
        as_text=True
    )
    deleted = client.post(f"/sites/{site_id}/imports/{import_id}/delete")
    assert deleted.status_code == 302
    assert "being deleted" in client.get(f"/sites/{site_id}/imports").get_data(as_text=True)
    assert run_job(app) == "1 import(s) handled"
    assert stored_events(app) == []
    assert "being deleted" not in client.get(f"/sites/{site_id}/imports").get_data(as_text=True)


def test_bad_uploads_are_refused_and_change_nothing(
    site: tuple[Flask, int], tmp_path: Path
) -> None:
    app, site_id = site
    client = login(app, OWNER)
    broken = tmp_path / "broken.log"
    broken.write_text("this is not a log line\n")
    cases = [
        (
            upload(client, site_id, "goatcounter", FIXTURES / "access.log"),
            "not a GoatCounter CSV export",
        ),
        (upload(client, site_id, "plausible", broken), "not a ZIP file"),
        (upload(client, site_id, "webalizer", broken), "Not a valid choice"),
        (client.post(f"/sites/{site_id}/imports", data={"source": "plausible"}), "Choose the file"),
    ]
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    cases.append((upload(client, site_id, "access-log", binary), "not UTF-8 text"))
    for answer, reason in cases:
        assert answer.status_code == 400, reason
        assert reason in answer.get_data(as_text=True), reason
    # The access log itself is accepted (by the writer, later): it is text.
    with app.app_context():
        assert db.session.scalar(select(Import.id)) is None
        assert db.session.scalar(select(ImportedDay.id)) is None
    assert run_job(app) == "0 import(s) handled"


def test_a_file_over_the_limit_is_a_413(app_factory: Any, tmp_path: Path) -> None:
    app = app_factory(IMPORT_MAX_BYTES=1024)
    with app.app_context():
        owner = accounts.register(OWNER, PASSWORD, verified=True)
        from flask_tracking.tracking.models import Site

        row = Site(owner_id=owner.id, base_url="https://example.com")
        db.session.add(row)
        db.session.commit()
        site_id = row.id
    big = tmp_path / "big.log"
    big.write_text("x" * 4096)
    answer = upload(login(app, OWNER), site_id, "access-log", big)
    assert answer.status_code == 413
    assert "over the upload limit (1,024 bytes)" in answer.get_data(as_text=True)


def test_who_may_do_what(site: tuple[Flask, int], tmp_path: Path) -> None:
    app, site_id = site
    with app.app_context():
        for email, role in (("viewer@example.com", "viewer"), ("editor@example.com", "editor")):
            user = accounts.register(email, PASSWORD, verified=True)
            db.session.add(Membership(site_id=site_id, user_id=user.id, role=role))
        accounts.register("stranger@example.com", PASSWORD, verified=True)
        db.session.commit()
    owner = login(app, OWNER)
    assert upload(owner, site_id, "plausible", plausible_zip(tmp_path)).status_code == 302
    with app.app_context():
        import_id = db.session.scalar(select(Import.id))
    for email in ("viewer@example.com", "editor@example.com"):
        member = login(app, email)
        assert member.get(f"/sites/{site_id}/imports").status_code == 403
        assert member.post(f"/sites/{site_id}/imports/{import_id}/delete").status_code == 403
        export = member.get(f"/sites/{site_id}/imports/plausible.zip")
        assert export.status_code == 200 and export.content_type == "application/zip"
        names = zipfile.ZipFile(io.BytesIO(export.data)).namelist()
        assert "imported_visitors_20250301_20250302.csv" in names
    stranger = login(app, "stranger@example.com")
    assert stranger.get(f"/sites/{site_id}/imports").status_code == 404
    assert stranger.get(f"/sites/{site_id}/imports/plausible.zip").status_code == 404
    assert owner.post(f"/sites/{site_id}/imports/{import_id + 1}/delete").status_code == 404
    with app.app_context():
        assert db.session.scalar(select(Import.id)) == import_id


@pytest.mark.parametrize("source", ["plausible", "goatcounter"])
def test_the_page_offers_every_source(site: tuple[Flask, int], source: str) -> None:
    app, site_id = site
    text = login(app, OWNER).get(f"/sites/{site_id}/imports").get_data(as_text=True)
    assert f'value="{source}"' in text
