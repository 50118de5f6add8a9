"""Minimal PNG reading and writing for the e2e tests (stdlib only): 8-bit grey, grey+alpha,
RGB and RGBA, non-interlaced, every filter type. Enough for what libvips and the tests write.

    width, height, channels, rows = read_png(path)   # rows[y][x * channels + c]
    write_png(path, width, height, pixel)             # pixel(x, y) -> (r, g, b)
"""
import struct
import zlib

_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


def _chunks(data):
    pos = 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        yield kind, data[pos + 8:pos + 8 + length]
        pos += 12 + length


def read_png(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG")
    idat = b""
    for kind, body in _chunks(data):
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
    if depth != 8 or colour not in _CHANNELS or interlace:
        raise ValueError(f"{path}: depth {depth} colour {colour} interlace {interlace} unsupported")
    channels = _CHANNELS[colour]
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xff
            elif kind == 2:
                line[i] = (line[i] + up) & 0xff
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xff
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                predictor = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                line[i] = (line[i] + predictor) & 0xff
        rows.append(line)
        previous = line
    return width, height, channels, rows


def rgb(rows, channels, x, y):
    """The pixel's (r, g, b); grey is repeated."""
    p = rows[y][x * channels:(x + 1) * channels]
    return (p[0], p[0], p[0]) if channels <= 2 else (p[0], p[1], p[2])


def _chunk(kind, body):
    return (struct.pack(">I", len(body)) + kind + body +
            struct.pack(">I", zlib.crc32(kind + body) & 0xffffffff))


def _exif_orientation(orientation):
    """A TIFF-structured EXIF block holding only the orientation tag (0x0112, SHORT)."""
    return (b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1) +
            struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0))


def write_png(path, width, height, pixel, orientation=None):
    """pixel(x, y) of the stored image; orientation: an EXIF orientation for an eXIf chunk."""
    rows = b"".join(b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(width))
                    for y in range(height))
    exif = _chunk(b"eXIf", _exif_orientation(orientation)) if orientation else b""
    with open(path, "wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n" +
                  _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + exif +
                  _chunk(b"IDAT", zlib.compress(rows, 9)) + _chunk(b"IEND", b""))
