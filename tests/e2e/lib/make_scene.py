#!/usr/bin/python3
"""Writes a 320x200 PNG scene on a light background: a red rectangle (x 20..99, y 30..109), a
green disc (centre 170, 100, radius 40) and a blue square (x 230..289, y 120..179). The emulator
(scene mode) finds three objects labelled by colour. Used by the README's examples
(docs/shapes.png) and the CLI's e2e tests.

    make_scene.py OUT.png
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pngio import write_png  # noqa: E402


def pixel(x, y):
    if 20 <= x < 100 and 30 <= y < 110:
        return (220, 30, 30)
    if (x - 170) ** 2 + (y - 100) ** 2 <= 40 ** 2:
        return (30, 170, 60)
    if 230 <= x < 290 and 120 <= y < 180:
        return (32, 48, 220)
    return (245, 245, 240)


write_png(sys.argv[1], 320, 200, pixel)
