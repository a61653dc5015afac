"""tools/build_assets.py fetches the pinned npm packages itself (no Node.js): from a real HTTP
server on loopback standing in for the registry, checked against the lock file's hashes."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import json
import sys
import tarfile
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "_build_assets_fetch_under_test", ROOT / "tools" / "build_assets.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


build_assets = _load_script()


def tarball(files: dict[str, bytes], extra: tarfile.TarInfo | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        if extra is not None:
            archive.addfile(extra)
    return buffer.getvalue()


def sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


class Registry:
    """A folder served over HTTP on loopback, laid out as the npm registry's tarball URLs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        registry = self

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                registry.requests.append(self.path)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=root))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def publish(self, name: str, version: str, data: bytes) -> None:
        path = self.root / build_assets.tarball_url(name, version, "").lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    served = Registry(tmp_path / "registry")
    served.root.mkdir()
    yield served
    served.server.shutdown()
    served.server.server_close()


def lockfile(path: Path, packages: dict[str, tuple[str, str]]) -> Path:
    entries: dict[str, object] = {"": {"name": "x", "version": "0.0.0"}}
    for name, (version, integrity) in packages.items():
        entries[f"node_modules/{name}"] = {"version": version, "integrity": integrity}
    path.write_text(json.dumps({"lockfileVersion": 3, "packages": entries}), encoding="utf-8")
    return path


def test_pinned_packages_are_fetched_checked_and_not_fetched_twice(
    registry: Registry, tmp_path: Path
) -> None:
    plain = tarball({"package/dist/lib.js": b"var a = 1;", "package/LICENSE": b"MIT"})
    scoped = tarball({"package/data.bin": b"\x00\x01"})
    registry.publish("lib", "1.2.3", plain)
    registry.publish("@scope/data", "4.0.0", scoped)
    lock = lockfile(
        tmp_path / "package-lock.json",
        {"lib": ("1.2.3", sri(plain)), "@scope/data": ("4.0.0", sri(scoped))},
    )
    modules = tmp_path / "node_modules"

    fetched = build_assets.fetch_packages(lock, modules, registry.url)

    assert sorted(fetched) == ["@scope/data", "lib"]
    assert (modules / "lib" / "dist" / "lib.js").read_bytes() == b"var a = 1;"
    assert (modules / "@scope" / "data" / "data.bin").read_bytes() == b"\x00\x01"
    assert sorted(registry.requests) == [
        "/@scope/data/-/data-4.0.0.tgz",
        "/lib/-/lib-1.2.3.tgz",
    ]
    # Already there at the pinned hash: nothing is asked again.
    assert build_assets.fetch_packages(lock, modules, registry.url) == []
    assert len(registry.requests) == 2


def test_a_tarball_that_does_not_match_the_lock_file_is_refused_and_nothing_changes(
    registry: Registry, tmp_path: Path
) -> None:
    good = tarball({"package/dist/lib.js": b"var a = 1;"})
    evil = tarball({"package/dist/lib.js": b"steal(document.cookie);"})
    registry.publish("lib", "1.2.3", evil)
    lock = lockfile(tmp_path / "package-lock.json", {"lib": ("1.2.3", sri(good))})
    modules = tmp_path / "node_modules"
    (modules / "lib" / "dist").mkdir(parents=True)
    (modules / "lib" / "dist" / "lib.js").write_bytes(b"old")

    with pytest.raises(build_assets.FetchError, match=r"lib@1\.2\.3 .*sha512 is"):
        build_assets.fetch_packages(lock, modules, registry.url)

    assert (modules / "lib" / "dist" / "lib.js").read_bytes() == b"old"
    assert not (modules / build_assets.FETCHED).exists()


@pytest.mark.parametrize(
    ("name", "kind"),
    [("package/../../escaped", tarfile.REGTYPE), ("package/link", tarfile.SYMTYPE)],
)
def test_a_tarball_reaching_out_of_its_folder_is_refused(
    registry: Registry, tmp_path: Path, name: str, kind: bytes
) -> None:
    extra = tarfile.TarInfo(name)
    extra.type = kind
    extra.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else ""
    data = tarball({"package/index.js": b""}, extra)
    registry.publish("lib", "1.0.0", data)
    lock = lockfile(tmp_path / "package-lock.json", {"lib": ("1.0.0", sri(data))})

    with pytest.raises(build_assets.FetchError, match="refused"):
        build_assets.fetch_packages(lock, tmp_path / "node_modules", registry.url)

    assert not (tmp_path / "escaped").exists()
    assert not (tmp_path / "node_modules" / "lib").exists()


def test_a_package_missing_from_the_registry_is_a_clear_error(
    registry: Registry, tmp_path: Path
) -> None:
    lock = lockfile(tmp_path / "package-lock.json", {"gone": ("1.0.0", sri(b"x"))})
    with pytest.raises(build_assets.FetchError, match=r"gone/-/gone-1\.0\.0\.tgz: HTTP Error 404"):
        build_assets.fetch_packages(lock, tmp_path / "node_modules", registry.url)


def test_the_projects_lock_file_pins_every_package_with_a_hash() -> None:
    pinned = build_assets.locked_packages()
    assert {"uplot", "world-atlas", "simple-icons", "i18n-iso-countries", "axe-core"} <= set(pinned)
    assert all(integrity.startswith("sha512-") for _, integrity in pinned.values())
