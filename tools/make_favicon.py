#!/usr/bin/env python3
"""Write flask_tracking/static/favicon.ico: the brand's three rising bars, 32x32, as an ICO
holding one PNG (every browser reads that), drawn with the standard library only.

The SVG icon beside it (favicon.svg) is the same drawing for browsers that take SVG; this
file answers the /favicon.ico that browsers ask for on pages with no icon link (JSON pages).

Usage: python tools/make_favicon.py
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

SIZE = 32
ACCENT = (0x3B, 0x5B, 0xDB, 0xFF)
CLEAR = (0, 0, 0, 0)
# (left, top) of each bar in the 32x32 grid; bars are 8 wide and reach the bottom (y = 29).
BARS = ((3, 17), (12, 10), (21, 3))
TARGET = Path(__file__).resolve().parent.parent / "flask_tracking" / "static" / "favicon.ico"


def pixel(x: int, y: int) -> tuple[int, int, int, int]:
    for left, top in BARS:
        if left <= x < left + 8 and top <= y < 29:
            return ACCENT
    return CLEAR


def png() -> bytes:
    rows = b"".join(
        b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(SIZE)) for y in range(SIZE)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", SIZE, SIZE, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def ico(image: bytes) -> bytes:
    # ICONDIR (reserved, type 1 = icon, one image), then its ICONDIRENTRY, then the PNG.
    directory = struct.pack("<HHH", 0, 1, 1)
    entry = struct.pack("<BBBBHHII", SIZE, SIZE, 0, 0, 1, 32, len(image), 6 + 16)
    return directory + entry + image


if __name__ == "__main__":
    TARGET.write_bytes(ico(png()))
    print(f"wrote {TARGET.name}: {TARGET.stat().st_size} bytes")
