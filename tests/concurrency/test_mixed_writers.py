"""Every kind of write at once, against a real `flask-tracking serve`: no 5xx, nothing lost.

Threads act as busy users (registering, logging in, adding and editing sites through the web
forms, making API keys and using each one at once, creating and patching sites through the
API, making shared links) while the collector takes events and the writer stores them, and a
separate process after another runs `flask-tracking demo` (a user, a site, and visits it
spools for the server's writer to store). On SQLite that is many writers on
one file; on PostgreSQL (the PostgreSQL leg) many connections. Afterwards every answer was
below 500, every acknowledged event is stored exactly once, and every site a write reported
as made is there with its last change.

CONCURRENCY_SECONDS (default 15) sets how long the mixed load runs; `make test-concurrency`
runs it longer.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.servers import BIN, Load, Server, assert_exactly_once, leg_database

pytestmark = [
    pytest.mark.integration,
    pytest.mark.concurrency,
    pytest.mark.slow,
    pytest.mark.timeout(300),
]

SECONDS = float(os.environ.get("CONCURRENCY_SECONDS", "15"))
USERS = 10
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
SECRET = re.compile(r"ftk_[A-Za-z0-9_-]{43}")
PASSWORD = "correct horse battery staple"


@dataclass
class Tally:
    """What the actors saw: answers by status, failures with their request, sites made."""

    statuses: Counter[int] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    sites: dict[int, str] = field(default_factory=dict)  # id -> the last name given to it
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, what: str, response: requests.Response) -> requests.Response:
        with self.lock:
            self.statuses[response.status_code] += 1
            if response.status_code >= 500:
                self.errors.append(f"{what}: {response.status_code} {response.text[:200]!r}")
        return response


class Actor:
    """One user doing every kind of write in turn, through the forms and the API."""

    def __init__(self, base: str, tally: Tally, number: int) -> None:
        self.base, self.tally = base, tally
        self.email = f"busy-{number}-{secrets.token_hex(3)}@example.com"
        self.web = requests.Session()
        self.api = requests.Session()
        self.site_ids: list[int] = []
        self.rounds = 0

    def url(self, path: str) -> str:
        return self.base + path

    def token(self, path: str) -> str:
        page = self.tally.record(f"GET {path}", self.web.get(self.url(path), timeout=60))
        match = CSRF.search(page.text)
        assert match, f"no CSRF token on {path}: {page.status_code}"
        return match.group(1)

    def post_form(self, path: str, data: dict[str, str], page: str | None = None) -> int:
        data = {**data, "csrf_token": self.token(page or path)}
        response = self.web.post(self.url(path), data=data, timeout=60, allow_redirects=False)
        return self.tally.record(f"POST {path}", response).status_code

    def register(self) -> None:
        status = self.post_form("/register/", {"email": self.email, "password": PASSWORD})
        assert status == 302, f"registration answered {status}"

    def add_site_by_form(self) -> None:
        name = f"form-{secrets.token_hex(3)}"
        response = self.web.post(
            self.url("/sites/"),
            data={
                "base_url": f"https://{name}.example",
                "name": name,
                "csrf_token": self.token("/sites/"),
            },
            timeout=60,
            allow_redirects=False,
        )
        self.tally.record("POST /sites/", response)
        if response.status_code == 302:
            # Adding a site leads to its setup page: /sites/<id>/setup.
            site_id = int(response.headers["Location"].split("/sites/", 1)[1].split("/")[0])
            self.remember(site_id, name)

    def edit_site(self, site_id: int) -> None:
        name = f"edited-{secrets.token_hex(3)}"
        status = self.post_form(
            f"/sites/{site_id}/edit",
            {
                "base_url": f"https://{name}.example",
                "name": name,
                "timezone": "Europe/Paris",
                "excluded_ips": "",
                "excluded_paths": "",
            },
        )
        if status == 302:
            self.remember(site_id, name)

    def share(self, site_id: int) -> None:
        self.post_form(f"/sites/{site_id}/shares", {"name": "team", "password": ""})

    def make_key_and_use_it(self) -> None:
        response = self.web.post(
            self.url("/settings/api-keys/"),
            data={
                "name": f"key {self.rounds}",
                "scope": "read-write",
                "site": "",
                "csrf_token": self.token("/settings/"),
            },
            timeout=60,
        )
        self.tally.record("POST /settings/api-keys/", response)
        match = SECRET.search(response.text)
        if match is None:
            return
        self.api.headers["Authorization"] = f"Bearer {match.group(0)}"
        # A fresh key's first read records its last use: a write on a GET.
        self.tally.record("GET /api/v1/sites", self.api.get(self.url("/api/v1/sites"), timeout=60))

    def api_create_and_patch(self) -> None:
        if "Authorization" not in self.api.headers:
            return
        name = f"api-{secrets.token_hex(3)}"
        created = self.tally.record(
            "POST /api/v1/sites",
            self.api.post(
                self.url("/api/v1/sites"),
                json={"base_url": f"https://{name}.example", "name": name},
                timeout=60,
            ),
        )
        if created.status_code != 201:
            return
        site_id = int(created.json()["id"])
        self.remember(site_id, name)
        renamed = f"patched-{secrets.token_hex(3)}"
        patched = self.tally.record(
            f"PATCH /api/v1/sites/{site_id}",
            self.api.patch(
                self.url(f"/api/v1/sites/{site_id}"),
                json={"name": renamed, "timezone": "Asia/Kolkata"},
                timeout=60,
            ),
        )
        if patched.status_code == 200:
            self.remember(site_id, renamed)

    def remember(self, site_id: int, name: str) -> None:
        if site_id not in self.site_ids:
            self.site_ids.append(site_id)
        with self.tally.lock:
            self.tally.sites[site_id] = name

    def run(self, stop: threading.Event) -> None:
        try:
            self.register()
            while not stop.is_set():
                self.rounds += 1
                self.add_site_by_form()
                self.make_key_and_use_it()
                self.api_create_and_patch()
                if self.site_ids:
                    self.edit_site(self.site_ids[self.rounds % len(self.site_ids)])
                    self.share(self.site_ids[-1])
                # Log out and in again: sessions are written too.
                self.post_form("/logout/", {}, page="/settings/")
                self.post_form("/login/", {"email": self.email, "password": PASSWORD})
        except Exception as error:  # an actor that stops must say why
            with self.tally.lock:
                self.tally.errors.append(f"{self.email}: {type(error).__name__}: {error}")


DEMO_EVENTS = re.compile(r"\(([\d,]+) pageviews, ([\d,]+) custom events\)")


@dataclass
class DemoRuns:
    """The exit codes of the demo runs, and how many events they said they made."""

    codes: list[int] = field(default_factory=list)
    events: int = 0


@contextlib.contextmanager
def demo_runs(server: Server) -> Iterator[DemoRuns]:
    """Run `flask-tracking demo` in a loop, each time a new process; yield what they did."""
    runs = DemoRuns()
    codes = runs.codes
    stop = threading.Event()

    def loop() -> None:
        for number in range(10**6):
            if stop.is_set():
                return
            done = subprocess.run(
                [str(BIN / "flask-tracking"), "demo", "--visits", "20", "--days", "2",
                 "--email", f"demo-{number}@example.com"],
                env=server.env, capture_output=True, timeout=120, check=False,
            )  # fmt: skip
            codes.append(done.returncode)
            if done.returncode:
                print(done.stderr.decode()[-2000:])
            said = DEMO_EVENTS.search(done.stdout.decode())
            if said:
                runs.events += sum(int(n.replace(",", "")) for n in said.groups())

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        yield runs
    finally:
        stop.set()
        thread.join(150)


def run_mixed_load(server: Server) -> None:
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    tally = Tally()
    stop = threading.Event()
    actors = [Actor(base, tally, number) for number in range(USERS)]
    threads = [threading.Thread(target=actor.run, args=(stop,)) for actor in actors]
    with Load(server.port, threads=2) as load, demo_runs(server) as demos:
        for thread in threads:
            thread.start()
        time.sleep(SECONDS)
        stop.set()
        for thread in threads:
            thread.join(120)
    server.stop()

    print(f"answers: {dict(tally.statuses)}; events acknowledged: {len(load.acknowledged)}")
    assert not tally.errors, "\n".join(tally.errors[:20])
    assert load.failures == 0, f"{load.failures} events were not acknowledged"
    assert sum(actor.rounds for actor in actors) >= USERS, "the actors barely ran"
    assert demos.codes and all(code == 0 for code in demos.codes), f"demo exits: {demos.codes}"
    demo_sites = ", ".join(
        str(site_id)
        for (site_id,) in server.sql(
            "SELECT sites.id FROM sites JOIN users ON users.id = sites.owner_id "
            "WHERE users.email LIKE 'demo-%'"
        )
    )
    (stored,) = server.store(
        "SELECT count(*) FROM (SELECT site_id FROM recent UNION ALL "  # noqa: S608
        f"SELECT site_id FROM events) WHERE site_id IN ({demo_sites})"
    )[0]
    # 20 visits each, of one or more events: every event a demo made is stored.
    assert stored == demos.events >= 20 * len(demos.codes), "every demo's events are stored"
    assert_exactly_once(server, load)
    # Billable usage (counted by the writer per account and month, in the transaction that
    # stores the events) equals the stored events of each account's sites, exactly.
    owners = dict(server.sql("SELECT id, owner_id FROM sites"))
    expected: Counter[int] = Counter()
    for site_id, count in server.store(
        "SELECT site_id, count(*) FROM (SELECT site_id FROM recent UNION ALL "
        "SELECT site_id FROM events) GROUP BY site_id"
    ):
        expected[int(str(owners[site_id]))] += int(str(count))
    usage = server.store("SELECT account_id, sum(events) FROM usage GROUP BY account_id")
    assert {int(str(a)): int(str(n)) for a, n in usage} == dict(expected)
    # Every site a write reported is there, with the last name it was given.
    names = dict(server.sql("SELECT id, name FROM sites"))
    wrong = {site_id: (name, names.get(site_id)) for site_id, name in tally.sites.items()}
    assert {k: v for k, v in wrong.items() if v[0] != v[1]} == {}


def test_mixed_writers_store_everything_and_never_answer_500(tmp_path: Path) -> None:
    """On this leg's database: SQLite, or PostgreSQL when TEST_DATABASE_URL is set."""
    with leg_database() as url:
        server = Server(
            tmp_path,
            database_url=url,
            SESSION_COOKIE_SECURE="false",
            REGISTER_RATE_LIMIT_IP='"1000 per hour"',  # every actor registers from 127.0.0.1
        )
        try:
            server.prepare()
            run_mixed_load(server)
        finally:
            server.kill_everything()
