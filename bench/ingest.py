"""`make bench-ingest`: load the production collector with wrk and check every event is stored.

One run, in a fresh temporary directory:

1. `flask-tracking db upgrade` on a new SQLite database (or --database-url), one user, one site;
   the realistic request mix (bench/traffic.py) written for wrk, unless --mix simple;
2. `flask-tracking serve` (Granian workers + the supervising writer) on 127.0.0.1, with
   PROXY_COUNT=1 so the X-Forwarded-For the script sends is the client address, and real GeoIP
   enrichment (mmdb) in the writer;
3. a short warm-up, then wrk + bench/events.lua at full speed: accepted events/s, p50, p99;
4. wait for the writer to drain, count the stored rows: stored / accepted must be exactly 1;
5. wrk paced at half the measured rate (events.lua's BENCH_RATE): p50 and p99 at half load;
5b. wrk paced at --sustained-rate (15,000/s) for --sustained-seconds (60): the events accepted
   but not yet stored when it ends are the backlog, in seconds of that load;
6. SIGTERM the server (it stops Granian, then drains) and count again;
7. Granian with the same worker count and flags on bench.bare_wsgi:app, the same wrk command:
   the bare requests/s, and the ratio of the two.

Peak memory is the largest sum of VmRSS over the server's process tree (supervisor and
workers), sampled every 0.5 s. --runs N repeats everything N times and prints the medians.
The last line printed is the whole result as JSON. Exit status 1 when stored != accepted or an
event got another answer than 202 (a correctness failure); missed speed targets only print.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.client
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
LUA_SCRIPT = REPO / "bench" / "events.lua"
HOST = "127.0.0.1"
WRK_MARGIN_S = 4  # wrk's -d beyond the load window: time for the last answers to arrive
DRAIN_STALL_S = 30.0  # give up waiting for the writer when the count is stuck this long
DRAIN_CAP_S = 900.0
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 120.0
CLK_TCK = os.sysconf("SC_CLK_TCK")

TARGET_RATE = 20_000
TARGET_SUSTAINED_RATE = 15_000
TARGET_BACKLOG_S = 1.0
TARGET_WRITER_US = 40.0
REQUESTS_PER_THREAD = 50_000  # of the realistic mix, written for each wrk thread
TARGET_HALF_P99_MS = 10.0
TARGET_BARE_RATIO = 0.5

SITE_SNIPPET = """
import secrets
from flask_tracking import create_app
from flask_tracking.extensions import db
from flask_tracking.tracking.models import Site
from flask_tracking.users import accounts

app = create_app()
with app.app_context():
    user = accounts.register(
        f"bench-{secrets.token_hex(4)}@example.com", secrets.token_urlsafe(16), "Bench"
    )
    site = Site(owner=user, base_url="https://shop.example.com", name="Bench shop")
    db.session.add(site)
    db.session.commit()
    print(site.id)
"""


# -- processes ------------------------------------------------------------------------------


def process_table() -> dict[int, int]:
    """Return {pid: ppid} for every process visible in /proc."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                data = stat.read()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces: split after the last ")".
        fields = data[data.rfind(b")") + 2 :].split()
        table[int(entry.name)] = int(fields[1])
    return table


def process_tree(root: int) -> set[int]:
    """Return root and all its descendants."""
    children: dict[int, list[int]] = {}
    for pid, ppid in process_table().items():
        children.setdefault(ppid, []).append(pid)
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in tree:
            tree.add(pid)
            todo.extend(children.get(pid, ()))
    return tree


def rss_kib(pid: int) -> int:
    """Return a process's resident memory (VmRSS) in KiB, 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """Return a process's user + system CPU time in seconds, 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            data = stat.read()
    except OSError:
        return 0.0
    fields = data[data.rfind(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def machine_busy_seconds() -> float:
    """Return the CPU time all processes of the machine have used (from /proc/stat)."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / CLK_TCK  # without guest times, already in user


class TreeSampler(threading.Thread):
    """Samples the server tree's total VmRSS every `interval` s and keeps the peak."""

    def __init__(self, root: int, interval: float = 0.5) -> None:
        super().__init__(name="bench-rss-sampler", daemon=True)
        self.root = root
        self.interval = interval
        self.peak_kib = 0
        self.samples = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while True:
            self.sample()
            if self._halt.wait(self.interval):
                return

    def sample(self) -> None:
        total = sum(rss_kib(pid) for pid in process_tree(self.root))
        self.peak_kib = max(self.peak_kib, total)
        self.samples += 1

    def stop(self) -> None:
        self._halt.set()
        self.join(5)
        self.sample()


@dataclass
class CpuSnapshot:
    """CPU seconds used so far by the server's supervisor, its workers, and the machine."""

    supervisor: float
    workers: float
    machine: float
    children: float  # this driver's reaped children: wrk, once it has exited

    @classmethod
    def take(cls, root: int) -> CpuSnapshot:
        tree = process_tree(root) - {root}
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return cls(
            supervisor=cpu_seconds(root),
            workers=sum(cpu_seconds(pid) for pid in tree),
            machine=machine_busy_seconds(),
            children=usage.ru_utime + usage.ru_stime,
        )

    def since(self, start: CpuSnapshot, window: float, requests: int) -> dict[str, float]:
        """Return the cores each part used over the load window, and its CPU µs per request."""
        used = {
            "granian": self.workers - start.workers,
            "writer": self.supervisor - start.supervisor,
            "wrk": self.children - start.children,
        }
        used["other"] = max(self.machine - start.machine - sum(used.values()), 0.0)
        window = window or 1.0
        cores = {f"{k}_cores": round(v / window, 2) for k, v in used.items()}
        per_request = {
            f"{k}_us_per_request": round(v * 1e6 / max(requests, 1), 1)
            for k, v in used.items()
            if k != "other"
        }
        return cores | per_request


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running(
    command: list[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server in its own process group; on leaving, make sure the whole group is gone."""
    with open(log, "ab") as log_file:
        process = subprocess.Popen(
            command, env=env, cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(STOP_TIMEOUT_S)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # leftovers of the group, if any
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)


def wait_until_up(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until the server answers HTTP (any status) on the port."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}; see {log}")
        connection = http.client.HTTPConnection(HOST, port, timeout=2)
        try:
            connection.request("GET", "/api/event")
            connection.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
        finally:
            connection.close()
    raise RuntimeError(f"the server did not answer within {START_TIMEOUT_S:.0f}s; see {log}")


def stop_gracefully(process: subprocess.Popen[bytes]) -> tuple[int | None, float]:
    """SIGTERM the process (the serve supervisor drains first); return its code and the time."""
    start = time.monotonic()
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
    try:
        code: int | None = process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        code = None
    return code, time.monotonic() - start


# -- wrk ------------------------------------------------------------------------------------


@dataclass
class WrkOptions:
    threads: int
    connections: int
    seconds: int
    timeout: str = "10s"


@dataclass
class LoadResult:
    """One wrk run, as bench/events.lua and wrk report it."""

    seconds: float
    rate: float  # expected answers per second over the window
    accepted: int
    dropped: int
    events_sent: int
    events_answered: int
    other_statuses: dict[str, int]
    errors: dict[str, int]
    latency_ms: dict[str, float]
    target_rate: float | None = None
    cpu: dict[str, float] = field(default_factory=dict)
    command: str = ""

    @property
    def unanswered(self) -> int:
        return self.events_sent - self.events_answered

    @property
    def socket_errors(self) -> int:
        return sum(v for k, v in self.errors.items() if k != "status")


def wrk_command(options: WrkOptions, url: str, seconds: int) -> list[str]:
    return [
        "wrk",
        f"-t{options.threads}",
        f"-c{options.connections}",
        f"-d{seconds + WRK_MARGIN_S}s",
        "--latency",
        "--timeout",
        options.timeout,
        "-s",
        str(LUA_SCRIPT),
        url,
    ]


def run_wrk(
    options: WrkOptions,
    url: str,
    workdir: Path,
    name: str,
    *,
    seconds: int | None = None,
    expect: int = 202,
    site: int = 1,
    rate: float | None = None,
    cpu_root: int | None = None,
    requests: Path | None = None,
) -> LoadResult:
    """Run wrk with events.lua for `seconds` of load; return what the script counted."""
    seconds = seconds or options.seconds
    result_path = workdir / f"wrk-{name}.json"
    env = dict(
        os.environ,
        BENCH_SECONDS=str(seconds),
        BENCH_THREADS=str(options.threads),
        BENCH_EXPECT=str(expect),
        BENCH_SITE=str(site),
        BENCH_RESULT=str(result_path),
        BENCH_RATE=str(int(rate)) if rate else "",
        BENCH_REQUESTS=str(requests) if requests else "",
    )
    command = wrk_command(options, url, seconds)
    before = CpuSnapshot.take(cpu_root) if cpu_root else None
    finished = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=seconds + WRK_MARGIN_S + 60,
        check=False,
    )  # fmt: skip
    (workdir / f"wrk-{name}.txt").write_text(finished.stdout + finished.stderr)
    if finished.returncode != 0 or not result_path.exists():
        raise RuntimeError(f"wrk failed ({finished.returncode}): {finished.stderr.strip()}")
    data = json.loads(result_path.read_text())
    window = float(data["window_s"]) or 1.0
    answered = int(data["accepted"]) + int(data["dropped"])
    result = LoadResult(
        seconds=round(window, 2),
        rate=answered / window,
        accepted=int(data["accepted"]),
        dropped=int(data["dropped"]),
        events_sent=int(data["events_sent"]),
        events_answered=int(data["events_answered"]),
        other_statuses={k: int(v) for k, v in data["other_statuses"].items()},
        errors={k: int(v) for k, v in data["errors"].items()},
        latency_ms={k: round(float(v) / 1000, 3) for k, v in data["latency_us"].items()},
        target_rate=rate,
        command=(f"BENCH_RATE={int(rate)} " if rate else "")
        + (f"BENCH_REQUESTS={requests.name} " if requests else "")
        + " ".join(command),
    )
    if cpu_root and before:
        # Over the load window: wrk idles out its -d margin, the server is idle meanwhile.
        requests = result.events_answered + int(data.get("tails_sent", 0))
        result.cpu = CpuSnapshot.take(cpu_root).since(before, window, requests)
    return result


# -- the database ---------------------------------------------------------------------------


class Counter:
    """Counts what the writer stored for the bench site: events and drops in the event store
    (through the running server's socket, or in its file once it stopped), rejected lines in
    the SQL database."""

    def __init__(self, url: str, site: int, data_dir: Path) -> None:
        from sqlalchemy import create_engine

        if url.startswith(("postgres://", "postgresql://")):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        self.engine = create_engine(url)
        self.site = site
        self.data_dir = data_dir

    def _store(self, statement: Any) -> int:
        from flask_tracking.events.remote import RemoteStore, StoreUnavailable

        socket_path = self.data_dir / "events.sock"
        if socket_path.exists():
            remote = RemoteStore(str(socket_path))
            try:
                return int(remote.fetch(statement)[0][0] or 0)
            except StoreUnavailable:
                pass  # stopping: read the file below
            finally:
                remote.close()
        import duckdb

        from flask_tracking.events.sql import DuckDBDialect, compile_for

        con = duckdb.connect(str(self.data_dir / "events.duckdb"), read_only=True)
        try:
            sql, params = compile_for(statement, DuckDBDialect())
            found = con.execute(sql, params).fetchone()
            return int(found[0] or 0) if found else 0
        finally:
            con.close()

    def stored(self) -> int:
        from sqlalchemy import func, select

        from flask_tracking.events.tables import tables

        t = tables("duckdb")
        return sum(
            self._store(select(func.count()).where(table.c.site_id == self.site))
            for table in (t.recent, t.events)
        )

    def dropped(self) -> int:
        from sqlalchemy import func, select

        from flask_tracking.events.tables import tables

        d = tables("duckdb").drops
        return self._store(select(func.sum(d.c.count)).where(d.c.site_id == self.site))

    def rejected(self) -> int:
        from sqlalchemy import text

        with self.engine.connect() as connection:
            return int(
                connection.execute(text("SELECT count(*) FROM rejected_events")).scalar() or 0
            )

    def close(self) -> None:
        self.engine.dispose()


def wait_for_drain(count: Callable[[], int], expected: int) -> tuple[int, float]:
    """Poll until count() reaches `expected` or stalls DRAIN_STALL_S; return it and the time."""
    start = time.monotonic()
    last, changed = -1, start
    while True:
        now = time.monotonic()
        value = count()
        if value >= expected:
            return value, now - start
        if value != last:
            last, changed = value, now
        elif now - changed > DRAIN_STALL_S or now - start > DRAIN_CAP_S:
            return value, now - start
        time.sleep(0.25)


# -- one run --------------------------------------------------------------------------------


def bench_env(workdir: Path, database_url: str | None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("FLASK_TRACKING_") and k not in ("DATABASE_URL", "SECRET_KEY")
    }
    env.update(
        FLASK_TRACKING_CONFIG="production",
        FLASK_TRACKING_SECRET_KEY=secrets.token_hex(32),
        FLASK_TRACKING_SQLALCHEMY_DATABASE_URI=database_url or f"sqlite:///{workdir}/bench.db",
        FLASK_TRACKING_SPOOL_DIR=str(workdir / "spool"),
        FLASK_TRACKING_DATA_DIR=str(workdir),  # the event store and its socket
        # One site takes the whole load: the abuse limits stay on (their cost is measured)
        # but far above it, or they would drop most of it as rate_limited.
        FLASK_TRACKING_COLLECTOR_IP_RATE="1000000",
        FLASK_TRACKING_COLLECTOR_SITE_RATE="1000000",
        FLASK_TRACKING_COLLECTOR_SITE_BURST="1000000",
        # wrk stands for a reverse proxy: trust one X-Forwarded-For hop, the script's client IP.
        FLASK_TRACKING_PROXY_COUNT="1",
        FLASK_TRACKING_GEOIP_PROVIDER="mmdb",
        PYTHONPATH=str(REPO),
    )
    return env


def venv_tool(name: str) -> str:
    tool = Path(sys.executable).parent / name
    return str(tool) if tool.exists() else (shutil.which(name) or name)


def prepare_database(env: dict[str, str], workdir: Path) -> int:
    """Migrate the database and create the bench user and site; return the site id."""
    log = workdir / "setup.log"
    with open(log, "ab") as log_file:
        subprocess.run(
            [venv_tool("flask-tracking"), "db", "upgrade"], env=env, cwd=REPO, check=True,
            stdout=log_file, stderr=subprocess.STDOUT, timeout=300,
        )  # fmt: skip
    made = subprocess.run(
        [sys.executable, "-c", SITE_SNIPPET], env=env, cwd=REPO, check=True,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return int(made.stdout.strip().splitlines()[-1])


@dataclass
class RunResult:
    """Everything one run measured."""

    full: LoadResult
    half: LoadResult | None
    bare: LoadResult | None
    warmup_accepted: int
    accepted_total: int
    stored_after_full: int
    stored_total: int
    dropped_stored: int
    rejected: int
    drain_after_full_s: float
    stop_seconds: float
    stop_code: int | None
    peak_rss_mib: float
    workdir: str
    sustained: LoadResult | None = None
    backlog_s: float | None = None

    @property
    def stored_ratio(self) -> float:
        return self.stored_total / self.accepted_total if self.accepted_total else 0.0

    @property
    def bare_ratio(self) -> float | None:
        return self.full.rate / self.bare.rate if self.bare and self.bare.rate else None

    def problems(self) -> list[str]:
        found = []
        for name, load in (("full", self.full), ("half", self.half), ("sustained", self.sustained)):
            if load is None:
                continue
            if load.other_statuses:
                found.append(f"{name}: answers other than 202: {load.other_statuses}")
            if load.dropped:
                found.append(f"{name}: {load.dropped} events dropped as automated traffic")
            if load.unanswered or load.socket_errors:
                found.append(f"{name}: {load.unanswered} unanswered, errors {load.errors}")
        if self.stored_total != self.accepted_total:
            found.append(f"stored {self.stored_total} != accepted {self.accepted_total}")
        if self.rejected:
            found.append(f"{self.rejected} spooled records set aside as rejected")
        if self.stop_code != 0:
            found.append(f"flask-tracking serve exited with {self.stop_code} on SIGTERM")
        return found


def run_once(args: argparse.Namespace, number: int) -> RunResult:
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-ingest-{number}-"))
    log(f"run {number}: working in {workdir}")
    try:
        return measure(args, workdir)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class Phases:
    """What the load phases against `flask-tracking serve` measured."""

    warmup_accepted: int
    full: LoadResult
    stored_after_full: int
    drain_after_full_s: float
    half: LoadResult | None
    sustained: LoadResult | None = None
    backlog_events: int = 0  # accepted but not yet stored when the sustained phase ended

    @property
    def accepted(self) -> int:
        return self.warmup_accepted + sum(
            load.accepted for load in (self.full, self.half, self.sustained) if load
        )

    @property
    def backlog_s(self) -> float | None:
        """The backlog at the end of the sustained phase, in seconds of its load."""
        if not self.sustained or not self.sustained.rate:
            return None
        return self.backlog_events / self.sustained.rate


def load_phases(
    args: argparse.Namespace, options: WrkOptions, url: str, workdir: Path, *, site: int,
    server: subprocess.Popen[bytes], counter: Counter, requests: Path | None,
) -> Phases:  # fmt: skip
    """Warm up, full load (the burst), wait for the writer, half load, sustained load."""
    load = functools.partial(run_wrk, options, url, workdir, site=site, requests=requests)
    warm = 0
    if args.warmup:
        log(f"  warm-up {args.warmup}s")
        warm = load("warmup", seconds=args.warmup).accepted
    log(f"  full load: {' '.join(wrk_command(options, url, args.duration))}")
    full = load("full", cpu_root=server.pid)
    log(f"  {full.rate:,.0f} events/s, p99 {full.latency_ms['p99']} ms; waiting for the writer")
    stored, drain_s = wait_for_drain(counter.stored, warm + full.accepted)
    log(f"  stored {stored:,} of {warm + full.accepted:,} after {drain_s:.1f}s")
    phases = Phases(warm, full, stored, round(drain_s, 2), None)
    if not args.skip_half and full.rate > 0:
        rate = full.rate / 2
        log(f"  half load {args.duration}s paced at {rate:,.0f}/s")
        phases.half = load("half", rate=rate, cpu_root=server.pid)
        log(f"  {phases.half.rate:,.0f} events/s, p99 {phases.half.latency_ms['p99']} ms")
    if args.sustained_rate:
        wait_for_drain(counter.stored, phases.accepted)  # start with an empty spool
        seconds = args.sustained_seconds
        log(f"  sustained load {seconds}s paced at {args.sustained_rate:,.0f}/s")
        phases.sustained = load(
            "sustained", seconds=seconds, rate=args.sustained_rate, cpu_root=server.pid
        )
        phases.backlog_events = max(phases.accepted - counter.stored(), 0)
        log(
            f"  {phases.sustained.rate:,.0f} events/s, p99 "
            f"{phases.sustained.latency_ms['p99']} ms; backlog {phases.backlog_events:,} events "
            f"({phases.backlog_s or 0:.2f} s of load)"
        )
    return phases


def measure(args: argparse.Namespace, workdir: Path) -> RunResult:
    env = bench_env(workdir, args.database_url)
    if args.writer_nice is not None:
        env["FLASK_TRACKING_WRITER_NICE"] = str(args.writer_nice)
    site = prepare_database(env, workdir)
    requests = None
    if args.mix == "realistic":
        sys.path.insert(0, str(REPO))
        from bench import traffic

        requests = workdir / "requests"
        traffic.write_files(requests, site, args.threads, REQUESTS_PER_THREAD)
    options = WrkOptions(args.threads, args.connections, args.duration, args.wrk_timeout)
    port = free_port()
    serve = [
        venv_tool("flask-tracking"), "serve", "--host", HOST, "--port", str(port),
        "--workers", str(args.workers), "--threads", str(args.server_threads),
    ]  # fmt: skip
    counter = Counter(env["FLASK_TRACKING_SQLALCHEMY_DATABASE_URI"], site, workdir)
    try:
        with running(serve, env, workdir / "serve.log") as server:
            wait_until_up(port, server, workdir / "serve.log")
            sampler = TreeSampler(server.pid)
            sampler.start()
            try:
                url = f"http://{HOST}:{port}"
                phases = load_phases(
                    args, options, url, workdir, site=site, server=server, counter=counter,
                    requests=requests,
                )  # fmt: skip
            finally:
                sampler.stop()
            stop_code, stop_s = stop_gracefully(server)
        stored_total, _ = wait_for_drain(counter.stored, phases.accepted)
        dropped_stored, rejected = counter.dropped(), counter.rejected()
    finally:
        counter.close()
    bare = None if args.skip_bare else measure_bare(args, options, env, workdir, requests)
    return RunResult(
        full=phases.full,
        half=phases.half,
        bare=bare,
        warmup_accepted=phases.warmup_accepted,
        accepted_total=phases.accepted,
        stored_after_full=phases.stored_after_full,
        stored_total=stored_total,
        dropped_stored=dropped_stored,
        rejected=rejected,
        drain_after_full_s=phases.drain_after_full_s,
        stop_seconds=round(stop_s, 2),
        stop_code=stop_code,
        peak_rss_mib=round(sampler.peak_kib / 1024, 1),
        workdir=str(workdir),
        sustained=phases.sustained,
        backlog_s=phases.backlog_s,
    )


def measure_bare(
    args: argparse.Namespace,
    options: WrkOptions,
    env: dict[str, str],
    workdir: Path,
    requests: Path | None,
) -> LoadResult:
    """The same Granian command line, workers and wrk command on the bare 204 app."""
    from flask_tracking.serving import granian_command

    port = free_port()
    command = granian_command(HOST, port, args.workers, args.server_threads)
    command[-1] = "bench.bare_wsgi:app"
    url = f"http://{HOST}:{port}"
    with running(command, env, workdir / "bare.log") as server:
        wait_until_up(port, server, workdir / "bare.log")
        if args.warmup:
            run_wrk(
                options, url, workdir, "bare-warmup", seconds=args.warmup, expect=204,
                requests=requests,
            )  # fmt: skip
        log(f"  bare WSGI {args.duration}s: {' '.join(command[1:])}")
        bare = run_wrk(
            options, url, workdir, "bare", expect=204, cpu_root=server.pid, requests=requests
        )
        log(f"  bare {bare.rate:,.0f} requests/s")
        stop_gracefully(server)
    return bare


# -- report ---------------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_kib = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as meminfo:
        memory_kib = int(meminfo.readline().split()[1])
    version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    import granian

    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(memory_kib / 1024**2, 1),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "granian": granian.__version__,
        "wrk": (version.stdout or version.stderr).split(" Copyright")[0].strip(),
        "loadavg_before": Path("/proc/loadavg").read_text().split()[:3],
    }


def run_summary(run: RunResult) -> dict[str, Any]:
    return {
        "events_per_s": round(run.full.rate),
        "p50_ms": run.full.latency_ms["p50"],
        "p99_ms": run.full.latency_ms["p99"],
        "half_target_per_s": round(run.half.target_rate or 0) if run.half else None,
        "half_events_per_s": round(run.half.rate) if run.half else None,
        "half_p50_ms": run.half.latency_ms["p50"] if run.half else None,
        "half_p99_ms": run.half.latency_ms["p99"] if run.half else None,
        "bare_requests_per_s": round(run.bare.rate) if run.bare else None,
        "ratio_to_bare": round(run.bare_ratio, 3) if run.bare_ratio else None,
        "accepted": run.accepted_total,
        "stored": run.stored_total,
        "stored_per_accepted": round(run.stored_ratio, 6),
        "drain_after_full_s": run.drain_after_full_s,
        "peak_rss_mib": run.peak_rss_mib,
        "granian_us_per_event": run.full.cpu.get("granian_us_per_request"),
        "writer_us_per_event": run.full.cpu.get("writer_us_per_request"),
        "wrk_us_per_event": run.full.cpu.get("wrk_us_per_request"),
        "other_cores_full": run.full.cpu.get("other_cores"),
        "other_cores_half": run.half.cpu.get("other_cores") if run.half else None,
        "other_cores_bare": run.bare.cpu.get("other_cores") if run.bare else None,
        "writer_us_per_event_half": run.half.cpu.get("writer_us_per_request") if run.half else None,
        "sustained_target_per_s": round(run.sustained.target_rate or 0) if run.sustained else None,
        "sustained_events_per_s": round(run.sustained.rate) if run.sustained else None,
        "sustained_p99_ms": run.sustained.latency_ms["p99"] if run.sustained else None,
        "sustained_backlog_s": round(run.backlog_s, 3) if run.backlog_s is not None else None,
        "writer_us_per_event_sustained": run.sustained.cpu.get("writer_us_per_request")
        if run.sustained
        else None,
        "granian_us_per_event_sustained": run.sustained.cpu.get("granian_us_per_request")
        if run.sustained
        else None,
        "granian_us_per_bare_request": run.bare.cpu.get("granian_us_per_request")
        if run.bare
        else None,
        "cpu_full": run.full.cpu,
        "cpu_half": run.half.cpu if run.half else {},
        "cpu_sustained": run.sustained.cpu if run.sustained else {},
        "cpu_bare": run.bare.cpu if run.bare else {},
        "problems": run.problems(),
    }


ROWS = (
    ("accepted events/s (full load)", "events_per_s", "{:,.0f}"),
    ("p50 latency, full load (ms)", "p50_ms", "{:.2f}"),
    ("p99 latency, full load (ms)", "p99_ms", "{:.2f}"),
    ("half load: paced at (events/s)", "half_target_per_s", "{:,.0f}"),
    ("half load: achieved (events/s)", "half_events_per_s", "{:,.0f}"),
    ("p50 latency, half load (ms)", "half_p50_ms", "{:.2f}"),
    ("p99 latency, half load (ms)", "half_p99_ms", "{:.2f}"),
    ("bare WSGI 204 (requests/s)", "bare_requests_per_s", "{:,.0f}"),
    ("ratio to bare WSGI", "ratio_to_bare", "{:.3f}"),
    ("events accepted (202)", "accepted", "{:,}"),
    ("events stored", "stored", "{:,}"),
    ("stored / accepted", "stored_per_accepted", "{:.6f}"),
    ("writer drain after full load (s)", "drain_after_full_s", "{:.1f}"),
    ("peak RSS, server tree (MiB)", "peak_rss_mib", "{:.1f}"),
    ("Granian CPU per event (µs)", "granian_us_per_event", "{:,.0f}"),
    ("writer CPU per event (µs)", "writer_us_per_event", "{:,.0f}"),
    ("wrk CPU per event (µs)", "wrk_us_per_event", "{:,.1f}"),
    ("Granian CPU per bare request (µs)", "granian_us_per_bare_request", "{:,.0f}"),
    ("writer CPU per event, half load (µs)", "writer_us_per_event_half", "{:,.0f}"),
    ("sustained: paced at (events/s)", "sustained_target_per_s", "{:,.0f}"),
    ("sustained: achieved (events/s)", "sustained_events_per_s", "{:,.0f}"),
    ("p99 latency, sustained (ms)", "sustained_p99_ms", "{:.2f}"),
    ("backlog at the end, sustained (s of load)", "sustained_backlog_s", "{:.2f}"),
    ("Granian CPU per event, sustained (µs)", "granian_us_per_event_sustained", "{:,.0f}"),
    ("writer CPU per event, sustained (µs)", "writer_us_per_event_sustained", "{:,.0f}"),
    ("other processes, full load (cores)", "other_cores_full", "{:.2f}"),
    ("other processes, half load (cores)", "other_cores_half", "{:.2f}"),
    ("other processes, bare run (cores)", "other_cores_bare", "{:.2f}"),
)


def median_of(summaries: list[dict[str, Any]], key: str) -> float | None:
    values = [s[key] for s in summaries if s[key] is not None]
    return statistics.median(values) if values else None


def table(summaries: list[dict[str, Any]], medians: dict[str, Any]) -> str:
    def cell(value: Any, pattern: str) -> str:
        return "-" if value is None else pattern.format(value)

    header = ["", *(f"run {i}" for i in range(1, len(summaries) + 1)), "median"]
    lines = [header]
    for label, key, pattern in ROWS:
        values = [cell(s[key], pattern) for s in summaries]
        lines.append([label, *values, cell(medians[key], pattern)])
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in lines
    )


def targets(medians: dict[str, Any], summaries: list[dict[str, Any]]) -> dict[str, bool]:
    def at_least(key: str, bound: float) -> bool:
        return medians[key] is not None and medians[key] >= bound

    return {
        f"events/s >= {TARGET_RATE:,}": at_least("events_per_s", TARGET_RATE),
        "stored/accepted == 1 (every run)": all(s["stored"] == s["accepted"] for s in summaries),
        f"p99 at half load < {TARGET_HALF_P99_MS:g} ms": medians["half_p99_ms"] is not None
        and medians["half_p99_ms"] < TARGET_HALF_P99_MS,
        f"ratio to bare WSGI >= {TARGET_BARE_RATIO}": at_least("ratio_to_bare", TARGET_BARE_RATIO),
        f"sustained >= {TARGET_SUSTAINED_RATE:,}/s with backlog < {TARGET_BACKLOG_S:g} s": at_least(
            "sustained_events_per_s", TARGET_SUSTAINED_RATE * 0.99
        )
        and medians["sustained_backlog_s"] is not None
        and medians["sustained_backlog_s"] < TARGET_BACKLOG_S,
        f"writer CPU per event <= {TARGET_WRITER_US:g} µs (sustained)": medians[
            "writer_us_per_event_sustained"
        ]
        is not None
        and medians["writer_us_per_event_sustained"] <= TARGET_WRITER_US,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from flask_tracking.config import BaseConfiguration

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1, help="repeat the whole run (default 1)")
    parser.add_argument("--workers", type=int, default=2, help="Granian workers (default 2)")
    parser.add_argument(
        "--server-threads",
        type=int,
        default=BaseConfiguration.SERVE_THREADS,
        help="threads per Granian worker, the bare app's too (default: SERVE_THREADS)",
    )
    parser.add_argument("--duration", type=int, default=30, help="seconds of load per phase (30)")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up seconds (3; 0 for none)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    parser.add_argument("--wrk-timeout", default="10s", help="wrk's per-request timeout (10s)")
    parser.add_argument(
        "--database-url", help="use this (empty, disposable) database, e.g. PostgreSQL"
    )
    parser.add_argument(
        "--mix",
        choices=("realistic", "simple"),
        default="realistic",
        help="realistic: bench/traffic.py (Zipf over ~3,000 User-Agents and ~30,000 addresses); "
        "simple: events.lua's own 21 User-Agents and 50 addresses (default realistic)",
    )
    parser.add_argument(
        "--sustained-rate",
        type=float,
        default=TARGET_SUSTAINED_RATE,
        help=f"events/s of the sustained phase ({TARGET_SUSTAINED_RATE:,}; 0 for none)",
    )
    parser.add_argument(
        "--sustained-seconds", type=int, default=60, help="length of the sustained phase (60)"
    )
    parser.add_argument(
        "--writer-nice", type=int, help="the server's WRITER_NICE (default: the app's, 10)"
    )
    parser.add_argument("--skip-half", action="store_true", help="no half-load run")
    parser.add_argument("--skip-bare", action="store_true", help="no bare WSGI run")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temp dirs (logs, DB, wrk output)"
    )
    parser.add_argument("--json", type=Path, help="also write the JSON result to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        log("wrk is not installed: `apt-get install -y wrk` (Debian/Ubuntu) or `brew install wrk`.")
        return 2
    info = machine()
    log(f"machine: {info}")
    runs = [run_once(args, number) for number in range(1, args.runs + 1)]
    summaries = [run_summary(run) for run in runs]
    medians = {key: median_of(summaries, key) for _, key, _ in ROWS}
    met = targets(medians, summaries)
    print(table(summaries, medians))
    print()
    for name, ok in met.items():
        print(f"{'MET   ' if ok else 'MISSED'}  {name}")
    problems = [f"run {i}: {p}" for i, s in enumerate(summaries, 1) for p in s["problems"]]
    for problem in problems:
        print(f"PROBLEM  {problem}")
    result = {
        "machine": info | {"loadavg_after": Path("/proc/loadavg").read_text().split()[:3]},
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "wrk_full_command": runs[0].full.command,
        "runs": summaries,
        "median": medians,
        "targets": met,
    }
    text = json.dumps(result)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
