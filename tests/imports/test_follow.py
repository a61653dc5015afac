"""Following a live access log: new page requests go through the spool to the writer (bots,
assets and garbage passed over), a half-written line waits for its end, a restart resumes
where the last spooled line ended, and a rotated log is followed from its start."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask

from flask_tracking.imports.follow import Follower
from flask_tracking.ingest import current_ingest
from tests.conftest import stored_events
from tests.imports.test_imports import run

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/125.0.0.0 Safari/537.36"
)
BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def _start() -> datetime:
    """An hour ago, or earlier when the test's minutes would cross UTC midnight: visitor ids
    rotate there, and the test counts two visitors."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    if (start + timedelta(minutes=10)).date() != start.date():
        start -= timedelta(minutes=30)
    return start


START = _start()


def line(minute: int, path: str, agent: str = FIREFOX, ip: str = "81.2.69.142") -> str:
    moment = (START + timedelta(minutes=minute)).strftime("%d/%b/%Y:%H:%M:%S +0000")
    return f'{ip} - - [{moment}] "GET {path} HTTP/1.1" 200 512 "-" "{agent}"'


class Running:
    """A follower in a thread, stopped on exit."""

    def __init__(self, app: Flask, site_id: int, log: Path, state: Path) -> None:
        with app.app_context():
            append = current_ingest().spool.append
        self.follower = Follower(
            str(log), site_id, host="example.com", append=append, state_dir=str(state)
        )
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.follower.run, args=(self.stop, 0.02))

    def __enter__(self) -> Follower:
        self.thread.start()
        assert self.follower.watching.wait(5)
        return self.follower

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join(5)


def wait_for(follower: Follower, spooled: int) -> None:
    deadline = time.monotonic() + 10
    while follower.spooled < spooled:
        assert time.monotonic() < deadline, f"spooled {follower.spooled}, not {spooled}"
        time.sleep(0.02)
    time.sleep(0.1)  # and no more than that
    assert follower.spooled == spooled


def write(log: Path, text: str) -> None:
    with log.open("a") as handle:
        handle.write(text)


def test_a_live_log_is_followed_through_the_spool(site: tuple[Flask, int], tmp_path: Path) -> None:
    app, site_id = site
    log, state = tmp_path / "access.log", tmp_path / "data"
    log.write_text(line(0, "/before") + "\n")  # there before: not imported
    with Running(app, site_id, log, state) as follower:
        write(log, "\n".join([
            line(1, "/one"),
            line(2, "/style.css"),
            "this is not a log line",
            line(3, "/two", agent=BOT),
            line(4, "/three", agent=CHROME, ip="81.2.69.160"),
        ]) + "\n")  # fmt: skip
        write(log, line(5, "/four")[:40])  # still being written
        wait_for(follower, 2)
        write(log, line(5, "/four")[40:] + "\n")
        wait_for(follower, 3)
        skipped = follower.summary.skipped
        assert skipped["lines that are not log lines"] == 1
        assert skipped["bots and crawlers (the collector drops them too)"] == 1
        assert skipped["assets (scripts, styles, images, feeds)"] == 1
    # Stopped; lines written meanwhile are read at the restart, the earlier ones not again.
    write(log, line(6, "/five") + "\n")
    with Running(app, site_id, log, state) as follower:
        wait_for(follower, 1)
        # The log is rotated: the rest of the old file, then the new one from its start.
        log.rename(tmp_path / "access.log.1")
        write(tmp_path / "access.log.1", line(7, "/six") + "\n")
        log.write_text(line(8, "/seven") + "\n")
        wait_for(follower, 3)
    events = stored_events(app)
    assert [e.pathname for e in events] == ["/one", "/three", "/four", "/five", "/six", "/seven"]
    assert {e.browser for e in events} == {"Firefox", "Chrome"}
    assert len({e.visitor_id for e in events}) == 2


def test_follow_is_for_access_logs(site: tuple[Flask, int], tmp_path: Path) -> None:
    app, site_id = site
    log = tmp_path / "x.csv"
    log.write_text("")
    for args in (["goatcounter", str(log)], ["access-log", str(log), "--dry-run"]):
        done: Any = run(app, *args, "--site", str(site_id), "--follow")
        assert done.exit_code != 0 and "--follow tails an access log" in done.output
