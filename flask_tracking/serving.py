"""`flask-tracking serve`: Granian workers answer requests; this process writes the spool.

The workers only append accepted events to the spool. This supervising process runs the one
batch writer, owns the embedded event store (and answers the workers' queries on a Unix
socket, events/remote.py), restarts nothing it does not own (Granian respawns its own
workers), and on SIGTERM stops Granian first — so no request is still being accepted — then
drains the spool into the store before it exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from types import FrameType

from flask import Flask

from flask_tracking.events import close_store, owned_store, socket_path
from flask_tracking.events.remote import StoreServer
from flask_tracking.ingest.collect import Ingest, run_exclusive
from flask_tracking.ops import backup, metrics

logger = logging.getLogger("flask_tracking.serving")
SUPERVISOR_VARIABLE = "FLASK_TRACKING_SUPERVISOR_PID"
ORPHAN_GRACE = 20.0  # seconds Granian has to stop by itself once its supervisor is gone
WORKERS_KILL_TIMEOUT = 10.0  # a worker that will not stop gracefully is killed after this
GRANIAN_STOP_TIMEOUT = 20.0


def granian_command(host: str, port: int, workers: int, threads: int) -> list[str]:
    """Return the Granian command line serving flask_tracking.wsgi:app."""
    return [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "wsgi",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--blocking-threads",
        str(threads),
        "--no-ws",
        "--respawn-failed-workers",
        "--respawn-interval",
        "0.5",
        "--workers-kill-timeout",
        str(int(WORKERS_KILL_TIMEOUT)),
        "flask_tracking.wsgi:app",
    ]


def store_server(app: Flask) -> StoreServer | None:
    """Open the embedded store in this process and serve it to the workers (None: not DuckDB)."""
    if not str(app.config["EVENTS_DATABASE_URL"]).startswith("duckdb:///"):
        return None
    path = socket_path(app.config)
    app.config["EVENTS_SOCKET"] = None  # this process owns the store; only the workers connect
    return StoreServer(
        owned_store(app), path, backup=lambda directory: backup.snapshot(app, directory)
    ).start()


def serve(app: Flask, host: str, port: int, workers: int, threads: int) -> int:
    """Run Granian and the spool writer until SIGTERM/SIGINT; return Granian's exit code."""
    ingest: Ingest = app.extensions["ingest"]
    server_of_store = store_server(app)
    # Every process (this one, the writer, and the workers, which inherit the variable) keeps
    # its metrics in files of one directory, which /metrics adds up.
    metrics.use_directory(app, metrics.directory_of(app.config))
    # The workers must not start writers of their own: this process is the writer.
    env = dict(os.environ, FLASK_TRACKING_INGEST_WRITER="off")
    env[SUPERVISOR_VARIABLE] = str(os.getpid())
    if server_of_store is not None:
        env["FLASK_TRACKING_EVENTS_SOCKET"] = server_of_store.path
    # Its own process group, so that a Granian that will not stop can be killed with its workers.
    server = subprocess.Popen(  # noqa: S603
        granian_command(host, port, workers, threads),
        env=env,
        start_new_session=True,
        preexec_fn=_stop_when_parent_dies,  # noqa: PLW1509 - only async-signal-safe calls
    )
    shutdown = threading.Event()

    def request_shutdown(signum: int, _frame: FrameType | None) -> None:
        logger.info("received signal %d: stopping", signum)
        shutdown.set()

    previous = {
        sig: signal.signal(sig, request_shutdown) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    writer_stop = threading.Event()
    writer = threading.Thread(
        target=run_exclusive, args=(ingest.writer, writer_stop), name="flask-tracking-writer"
    )
    writer.start()
    try:
        while not shutdown.wait(0.5):
            if server.poll() is not None:
                logger.error("granian exited with code %s", server.returncode)
                break
    finally:
        _stop_server(server)
        writer_stop.set()  # the writer drains whatever the workers spooled, then returns
        writer.join()
        if server_of_store is not None:
            server_of_store.stop()
        close_store(app)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return server.returncode or 0


def watch_supervisor() -> None:
    """In a Granian worker: if the supervisor dies and Granian does not stop, stop it.

    Granian gets SIGTERM when its supervisor dies (PR_SET_PDEATHSIG), but its main process can
    miss it: a signal that lands while its main thread holds the lock of the event it waits
    on deadlocks it (seen in the fault tests, rarely). An orphaned server would keep the port
    and accept events no writer stores until the next start. So each worker watches the
    supervisor, and ORPHAN_GRACE seconds after it is gone, kills Granian's process group:
    whatever was accepted is in the spool already.
    """
    supervisor = int(os.environ.get(SUPERVISOR_VARIABLE) or 0)
    if not supervisor:
        return

    def watch() -> None:
        while _alive(supervisor):
            time.sleep(1.0)
        time.sleep(ORPHAN_GRACE)
        logger.error("the supervisor (%d) is gone and Granian did not stop: killing it", supervisor)
        with contextlib.suppress(OSError):
            os.killpg(os.getpgid(0), signal.SIGKILL)

    threading.Thread(target=watch, name="flask-tracking-supervisor-watch", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_when_parent_dies() -> None:
    """Ask Linux to SIGTERM Granian if this supervisor dies, so no orphan keeps accepting."""
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(GRANIAN_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            logger.error("granian did not stop in %.0fs: killing it", GRANIAN_STOP_TIMEOUT)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            server.wait()
