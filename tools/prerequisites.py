#!/usr/bin/env python3
"""What `make run` and `make test` need beyond Python and make, checked before anything runs.

    python3 tools/prerequisites.py run    # a Python that can make a venv (with pip)
    python3 tools/prerequisites.py test   # that, Chromium for the browser tests, nginx and
                                          # Caddy to check deploy/'s examples, and Node.js
                                          # to run Umami's client against the server

Whatever is missing is installed with apt-get when this runs as root on Debian or Ubuntu;
otherwise one line says what to install, and the exit status is 1. Standard library only: it
runs with the system Python, before the venv exists. PostgreSQL is not needed here: `make test`
runs its PostgreSQL leg only when TEST_DATABASE_URL names a server (as .ci/run does).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# Names a Chromium goes by on PATH (Debian's package installs /usr/bin/chromium).
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium(environ: dict[str, str] | None = None) -> str | None:
    """The Chromium the browser tests drive: $CHROMIUM when set, else the first on PATH."""
    environ = dict(os.environ) if environ is None else environ
    chosen = environ.get("CHROMIUM", "")
    if chosen:
        return shutil.which(chosen)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def on_path(name: str) -> bool:
    """Whether a program is on PATH or in the sbin directories Debian puts servers in."""
    return any(shutil.which(name, path=path) for path in (None, "/usr/sbin:/usr/local/sbin:/sbin"))


def can_make_venvs() -> bool:
    """Whether this Python has venv and ensurepip (Debian splits them into python3-venv)."""
    try:
        import ensurepip  # noqa: F401
        import venv  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class Need:
    what: str  # as a person says it
    debian: str  # the Debian/Ubuntu package that provides it
    present: Callable[[], bool]


def venv_package() -> str:
    return f"python3.{sys.version_info.minor}-venv"


NEEDS = {
    "run": [Need("Python's venv module", venv_package(), can_make_venvs)],
    "test": [
        Need("Python's venv module", venv_package(), can_make_venvs),
        Need("Chromium (for the browser tests)", "chromium", lambda: find_chromium() is not None),
        # deploy/'s examples are checked by the servers themselves (tests/ops/test_deploy.py).
        Need("nginx", "nginx", lambda: on_path("nginx")),
        Need("Caddy", "caddy", lambda: on_path("caddy")),
        # Umami's official Node client, run against the server (tests/browser/).
        Need("Node.js", "nodejs", lambda: on_path("node")),
    ],
}


def install(packages: Sequence[str]) -> bool:
    """apt-get install, when that is possible without asking anyone (root on Debian)."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return False
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"prerequisites: apt-get install {' '.join(packages)}", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=environment)  # noqa: S607
    command = ["apt-get", "install", "-y", "-qq", *packages]
    subprocess.run(command, check=True, env=environment, stdout=subprocess.DEVNULL)  # noqa: S603
    return True


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] not in NEEDS:
        print(f"usage: prerequisites.py {{{'|'.join(NEEDS)}}}", file=sys.stderr)
        return 2
    target = args[0]
    missing = [need for need in NEEDS[target] if not need.present()]
    if not missing:
        return 0
    packages = [need.debian for need in missing]
    if install(packages) and all(need.present() for need in missing):
        return 0
    wanted = ", ".join(need.what for need in missing)
    print(
        f"make {target} needs {wanted}: install {'it' if len(missing) == 1 else 'them'} first "
        f"(Debian/Ubuntu: sudo apt-get install {' '.join(packages)}).",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
