"""Reading back what the plots drew: the polygons on an axes and a PNG file's size.

A plain helper module (``tests`` is on pytest's ``pythonpath``), shared by the viz and CLI tests.
"""

from __future__ import annotations

import struct

import numpy as np


def drawn_polygons(ax) -> list[np.ndarray]:
    """The polygons plot_regions put on ``ax`` (its PolyCollection with gid "regions")."""
    found = [c for c in ax.collections if c.get_gid() == "regions"]
    assert len(found) == 1
    return [path.vertices[:-1] if np.allclose(path.vertices[0], path.vertices[-1]) else path.vertices
            for path in found[0].get_paths()]


def png_size(path) -> tuple[int, int]:
    data = open(path, "rb").read(24)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])
