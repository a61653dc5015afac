"""Fetching pinned packages from the npm registry, with the standard library only: a tarball's
address, its integrity checked against a lock file's (or the registry's) SRI hash, and a safe
unpack. Used by tools/build_assets.py (the dashboard's browser assets) and by
`flask-tracking geoip update` (the city database).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path

DEFAULT_REGISTRY = "https://registry.npmjs.org"


class FetchError(Exception):
    """A pinned package could not be fetched or did not match its lock file entry."""


def tarball_url(name: str, version: str, registry: str = DEFAULT_REGISTRY) -> str:
    """The registry's address of a package's tarball (scoped names keep their scope)."""
    base = name.rsplit("/", 1)[-1]
    return f"{registry.rstrip('/')}/{name}/-/{base}-{version}.tgz"


def check_integrity(data: bytes, integrity: str) -> None:
    """Raise FetchError unless the data matches one of the lock file's SRI hashes."""
    for item in integrity.split():
        algorithm, _, expected = item.partition("-")
        if algorithm not in ("sha512", "sha384", "sha256"):
            continue
        digest = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
        if hmac.compare_digest(digest, expected):
            return
        raise FetchError(f"{algorithm} is {digest}, the lock file says {expected}")
    raise FetchError(f"no usable hash in {integrity!r}")


def unpack(data: bytes, folder: Path) -> None:
    """Extract an npm tarball (its files under package/) into folder, replacing it.

    Only files and folders inside it are accepted: a link, a device, an absolute path or a
    ".." is refused before anything is written (and tarfile's "data" filter checks again)."""
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            for member in archive.getmembers():
                if not (member.isfile() or member.isdir()) or not _inside(member.name):
                    raise FetchError(f"the tarball holds {member.name!r}, which is refused")
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # 3.11.4+
            archive.extractall(staging, **safe)  # type: ignore[arg-type]  # noqa: S202 - checked
        roots = list(staging.iterdir())
        if len(roots) != 1 or not roots[0].is_dir():
            raise FetchError("the tarball does not hold one top folder")
        if folder.exists():
            shutil.rmtree(folder)
        roots[0].rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _inside(name: str) -> bool:
    """Whether an archive member's name stays inside the folder it is extracted into."""
    parts = Path(name).parts
    return bool(parts) and not Path(name).is_absolute() and ".." not in parts


def download(url: str, timeout: float = 60.0) -> bytes:
    """GET a URL (https only, or file: for tests and mirrors)."""
    if not url.startswith(("https://", "http://", "file:")):
        raise FetchError(f"refusing to fetch {url}")
    agent = {"User-Agent": "flask-tracking-build-assets"}
    request = urllib.request.Request(url, headers=agent)  # noqa: S310 - schemes checked above
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            data: bytes = response.read()
            return data
    except (OSError, ValueError) as error:
        raise FetchError(f"{url}: {error}") from error
