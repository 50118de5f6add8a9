#!/usr/bin/python3
"""Writes a 64x48 white PNG with a blue square at x 10..29, y 10..29 (stdlib only).

    make_png.py OUT.png
"""
import struct
import sys
import zlib

W, H = 64, 48
rows = b"".join(
    b"\x00" + b"".join((b"\x20\x30\xdc" if 10 <= x < 30 and 10 <= y < 30 else b"\xff\xff\xff")
                       for x in range(W))
    for y in range(H))


def chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data +
            struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))


with open(sys.argv[1], "wb") as out:
    out.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 8, 2, 0, 0, 0)) +
              chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
