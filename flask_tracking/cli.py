"""The flask-tracking command line: Flask's commands plus serve and demo."""

from __future__ import annotations

import os
import sys

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext


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
    app.cli.add_command(rollups)


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
@with_appcontext
def serve(host: str, port: int, workers: int) -> None:
    """Serve the app with Granian (the production server) and run the event writer."""
    from flask import current_app

    from flask_tracking.serving import serve as run_server

    click.echo(f"Serving Flask-Tracking on http://{host}:{port} with {workers} worker(s)")
    sys.stdout.flush()
    sys.exit(run_server(current_app._get_current_object(), host, port, workers))  # type: ignore[attr-defined]


@click.command()
@with_appcontext
def writer() -> None:
    """Store spooled events in the database until stopped (for servers run without `serve`)."""
    import signal
    import threading

    from flask import current_app

    from flask_tracking.ingest.collect import run_exclusive

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    click.echo("Writing spooled events to the database (Ctrl+C to stop)")
    run_exclusive(current_app.extensions["ingest"].writer, stop)


@click.command()
@click.option("--email", default="demo@example.com", show_default=True)
@click.option("--password", default="demo-password", show_default=True)
@click.option("--days", default=28, show_default=True, type=click.IntRange(1, 365))
@click.option("--visits", default=3000, show_default=True, type=click.IntRange(1, 1_000_000))
@with_appcontext
def demo(email: str, password: str, days: int, visits: int) -> None:
    """Create a demo user and site with generated visits, and say how to log in."""
    from flask_tracking.demo import create_demo

    result = create_demo(email, password, days=days, visits=visits)
    click.echo(f"Demo site {result.site_url} has {result.visits} visits over {days} days.")
    if result.password_works:
        click.echo(f"Log in at /login/ with email {email} and password {password}")
    else:
        click.echo(
            f"Log in at /login/ with email {email} and the password that account already had "
            "(an existing account's password is never changed)."
        )


@click.group()
def rollups() -> None:
    """Report rollups: the pre-aggregated tables unfiltered reports read."""


@rollups.command("rebuild")
@click.option("--site", "site_ids", type=int, multiple=True, help="Only this site (repeatable).")
@with_appcontext
def rebuild_rollups(site_ids: tuple[int, ...]) -> None:
    """Recompute rollups from raw events (all sites, or those given), in each site's zone."""
    import time

    from flask_tracking.reports import rollups as rollup_tables

    began = time.monotonic()
    days = rollup_tables.rebuild(site_ids or None)
    click.echo(f"Rebuilt {days} site-days of rollups in {time.monotonic() - began:.1f}s.")


@rollups.command("refresh")
@with_appcontext
def refresh_rollups() -> None:
    """Recompute the days that got events since the last refresh (the writer does this too)."""
    from flask_tracking.reports import rollups as rollup_tables

    result = rollup_tables.refresh()
    click.echo(
        f"Recomputed {result.days} site-days ({result.sites_rebuilt} sites rebuilt) "
        f"in {result.seconds:.1f}s."
    )
