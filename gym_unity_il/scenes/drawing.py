"""Numpy drawing for the pictures built-in scenes make of themselves (for people, not agents).

A picture is ``uint8 (height, width, 3)`` RGB. Shapes are drawn as boolean masks over the
world coordinates of every pixel's centre (:func:`world_grid`), then painted.
"""

from __future__ import annotations

import numpy as np

BACKGROUND = (34, 38, 46)


def canvas(height: int, width: int, colour: tuple[int, int, int] = BACKGROUND) -> np.ndarray:
    """A picture filled with one colour."""
    return np.broadcast_to(np.asarray(colour, np.uint8), (height, width, 3)).copy()


def world_grid(height: int, width: int, half_extent: float) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` of every pixel centre, ``[H, W]`` each, for a view of the square
    ``[-half_extent, half_extent]^2`` with x to the right and y up."""
    x = ((np.arange(width) + 0.5) / width * 2.0 - 1.0) * half_extent
    y = (1.0 - (np.arange(height) + 0.5) / height * 2.0) * half_extent
    return np.broadcast_to(x[None, :], (height, width)), np.broadcast_to(y[:, None], (height, width))


def disc(x: np.ndarray, y: np.ndarray, centre: tuple[float, float], radius: float) -> np.ndarray:
    """The pixels within ``radius`` of ``centre``."""
    return (x - centre[0]) ** 2 + (y - centre[1]) ** 2 <= radius**2


def ring(x: np.ndarray, y: np.ndarray, centre: tuple[float, float], radius: float, width: float) -> np.ndarray:
    """The pixels within ``width / 2`` of the circle of ``radius`` around ``centre``."""
    distance = np.sqrt((x - centre[0]) ** 2 + (y - centre[1]) ** 2)
    return np.abs(distance - radius) <= width / 2


def segment(x: np.ndarray, y: np.ndarray, start: tuple[float, float], end: tuple[float, float], width: float) -> np.ndarray:
    """The pixels within ``width / 2`` of the segment from ``start`` to ``end``."""
    dx, dy = end[0] - start[0], end[1] - start[1]
    length2 = dx * dx + dy * dy
    t = np.clip(((x - start[0]) * dx + (y - start[1]) * dy) / length2, 0.0, 1.0) if length2 > 0 else np.zeros_like(x)
    return (x - start[0] - t * dx) ** 2 + (y - start[1] - t * dy) ** 2 <= (width / 2) ** 2


def paint(image: np.ndarray, where: np.ndarray, colour: tuple[int, int, int]) -> None:
    """Paints the pixels of a mask in one colour."""
    image[where] = colour
