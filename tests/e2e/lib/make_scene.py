#!/usr/bin/python3
"""Writes a 320x200 PNG scene on a light background: a red rectangle (x 20..99, y 30..109), a
green disc (centre 170, 100, radius 40) and a blue square (x 230..289, y 120..179). The emulator
(scene mode) finds three objects labelled by colour. Used by the README's examples
(docs/shapes.png) and the CLI's e2e tests.

    make_scene.py OUT.png [--rotated]

--rotated stores the scene turned a quarter left (200x320) with EXIF orientation 6 in an eXIf
chunk: a viewer, the gateway and libvips' autorot show it upright, 320x200, as above.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pngio import write_png  # noqa: E402


WIDTH, HEIGHT = 320, 200


def pixel(x, y):
    """The upright scene's colour at (x, y)."""
    if 20 <= x < 100 and 30 <= y < 110:
        return (220, 30, 30)
    if (x - 170) ** 2 + (y - 100) ** 2 <= 40 ** 2:
        return (30, 170, 60)
    if 230 <= x < 290 and 120 <= y < 180:
        return (32, 48, 220)
    return (245, 245, 240)


if __name__ == "__main__":
    if "--rotated" in sys.argv[2:]:
        # Orientation 6: display = stored turned 90 degrees clockwise, so upright (x, y) is
        # stored (y, WIDTH - 1 - x).
        write_png(sys.argv[1], HEIGHT, WIDTH, lambda xs, ys: pixel(WIDTH - 1 - ys, xs),
                  orientation=6)
    else:
        write_png(sys.argv[1], WIDTH, HEIGHT, pixel)
