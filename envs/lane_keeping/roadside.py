"""Roadside objects for the lane-keeping world: posts, trees and buildings beside the road (numpy only).

Distractors for camera policies. The scene draws a fixed pool of :data:`POOL_SIZE` simple solids (``POOL_KINDS``:
thin hexagonal prisms for posts, fat green ones for trees, boxes for buildings), all in ONE MuJoCo mesh
(:func:`pool_mesh`): software rendering pays about 0.07 ms per drawn geom, so 20 separate geoms would halve the
camera env's speed (measured), one mesh costs almost nothing. Each solid's colour is a texel of the fixed
:data:`PALETTE` texture, picked by the texture coordinates of its vertices.

A :class:`RoadsideLayout` is a list of *slots* along the whole road (about one every ``mean_spacing`` metres on
random sides) drawn per episode; the renderer shows the ``POOL_SIZE`` slots from just behind the car onwards, slot
``j`` on pool solid ``j % POOL_SIZE`` (so a slot's kind is the kind of that solid). Every slot keeps its footprint
(the disc around a prism, or the box's rectangle) at least ``clearance`` metres from every point of the road
centre line, where the env passes ``clearance = lane_width + shoulder + margin``: nothing stands on the asphalt or
within ``margin`` of it, also where the road comes back near itself; a slot that cannot be placed so is marked
invisible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ncp_control.envs.lane_keeping.road import Road

__all__ = [
    "POOL_KINDS",
    "POOL_SIZE",
    "PALETTE",
    "PALETTE_SIDE",
    "RoadsideLayout",
    "place_roadside",
    "distance_to_polyline",
    "pool_faces",
    "pool_mesh",
]

# kind of each pool geom: interleaved so consecutive slots mix kinds (8 posts, 6 trees, 6 buildings)
POOL_KINDS: tuple[str, ...] = (
    "post",
    "tree",
    "post",
    "building",
    "post",
    "tree",
    "building",
    "post",
    "tree",
    "building",
    "post",
    "tree",
    "post",
    "building",
    "tree",
    "post",
    "building",
    "post",
    "tree",
    "building",
)
POOL_SIZE = len(POOL_KINDS)

_SIDES = {"post": 6, "tree": 6, "building": 4}  # prism sides per kind


def _make_palette() -> np.ndarray:
    """(64, 3) RGB in [0, 1]: posts 0-3, trees 4-19 (greens), buildings 20-59 (5 facades x 8 brightness)."""
    posts = np.array([[0.92, 0.92, 0.90], [0.80, 0.15, 0.12], [0.90, 0.75, 0.10], [0.45, 0.45, 0.47]])
    a, b = np.meshgrid(np.linspace(0, 1, 4), np.linspace(0, 1, 4), indexing="ij")
    green = 0.25 + 0.2 * a.ravel()
    trees = np.stack([green * (0.4 + 0.4 * b.ravel()), green, green * (0.2 + 0.3 * a[::-1].ravel())], axis=1)
    facades = np.array(
        [[0.85, 0.78, 0.62], [0.62, 0.30, 0.22], [0.70, 0.70, 0.72], [0.92, 0.92, 0.88], [0.45, 0.50, 0.58]]
    )
    buildings = np.clip(facades[:, None, :] * np.linspace(0.85, 1.1, 8)[None, :, None], 0, 1).reshape(-1, 3)
    palette = np.full((64, 3), 0.5)
    palette[:60] = np.concatenate([posts, trees, buildings])
    return palette


PALETTE = _make_palette()
PALETTE_SIDE = 8  # the palette texture is 8 x 8 texels, entry i at row i // 8, column i % 8


@dataclass(frozen=True)
class RoadsideLayout:
    """The roadside slots of one episode, sorted by arc length; ``M`` slots.

    Attributes:
        s: (M,) arc length (m) of the road sample beside which each slot stands.
        xy: (M, 2) world position (m) of the footprint centre.
        yaw: (M,) rotation (rad) about the vertical axis (buildings face the road; 0 for cylinders).
        size: (M, 3) MuJoCo geom size: cylinders (radius, half height, 0); boxes (half length along the road,
            half depth, half height) (m).
        colour: (M,) index into :data:`PALETTE`.
        visible: (M,) False for a slot that could not keep its clearance (drawn nowhere).
        kind: (M,) kind name of each slot (``POOL_KINDS[j % POOL_SIZE]``).
    """

    s: np.ndarray
    xy: np.ndarray
    yaw: np.ndarray
    size: np.ndarray
    colour: np.ndarray
    visible: np.ndarray
    kind: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.s.size)

    @property
    def rgba(self) -> np.ndarray:
        """(M, 4) colour of each slot."""
        return np.concatenate([PALETTE[self.colour], np.ones((len(self), 1))], axis=1)

    def footprint(self, j: int, points: int = 32) -> np.ndarray:
        """(points, 2) points on the boundary of slot ``j``'s footprint (world m): a circle for a cylinder, the
        rectangle (corners included, ``points / 4`` per side) for a box."""
        return _footprints(
            self.xy[j : j + 1],
            self.yaw[j : j + 1],
            self.size[j : j + 1],
            np.array([self.kind[j] == "building"]),
            points,
        )[0]


def _footprints(xy: np.ndarray, yaw: np.ndarray, size: np.ndarray, is_box: np.ndarray, points: int) -> np.ndarray:
    """Boundary points (K, points, 2) of K footprints: centres ``xy`` (K, 2), ``yaw`` (K,), geom ``size`` (K, 3),
    ``is_box`` (K,) (else a cylinder of radius ``size[:, 0]``); ``points`` a multiple of 4."""
    angle = np.linspace(0.0, 2 * np.pi, points, endpoint=False)
    circle = np.stack([np.cos(angle), np.sin(angle)], axis=1)  # (points, 2) unit circle
    t = np.linspace(-1.0, 1.0, points // 4)
    one = np.ones_like(t)
    square = np.concatenate(
        [np.stack([t, -one], 1), np.stack([t, one], 1), np.stack([-one, t], 1), np.stack([one, t], 1)]
    )  # (points, 2) boundary of [-1, 1]^2
    local = np.where(is_box[:, None, None], square[None] * size[:, None, :2], circle[None] * size[:, None, :1])
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]  # rotate the local (along, across) axes by yaw
    world_x = c * local[:, :, 0] - s * local[:, :, 1]
    world_y = s * local[:, :, 0] + c * local[:, :, 1]
    return np.stack([world_x, world_y], axis=2) + xy[:, None, :]


def distance_to_polyline(points: np.ndarray, line: np.ndarray) -> np.ndarray:
    """Euclidean distance from each of ``points`` (P, 2) to the polyline through ``line`` (N, 2); returns (P,)."""
    return _distance_to_segments(points, line[:-1], line[1:])


def _distance_to_segments(points: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Distance from each of ``points`` (P, 2) to the nearest of the segments ``starts[i] -> ends[i]`` (S, 2);
    returns (P,) (inf when S = 0)."""
    if starts.shape[0] == 0:
        return np.full(points.shape[0], np.inf)
    seg = ends - starts
    rel = points[:, None, :] - starts[None, :, :]  # (P, S, 2)
    seg_len2 = np.maximum(np.einsum("ij,ij->i", seg, seg), 1e-12)  # sum over x/y; 1e-12 m^2 guards repeated points
    t = np.clip(np.einsum("pij,ij->pi", rel, seg) / seg_len2, 0.0, 1.0)  # (P, S) position along each segment
    nearest = rel - t[:, :, None] * seg[None, :, :]
    return np.sqrt(np.einsum("pij,pij->pi", nearest, nearest).min(axis=1))  # min over segments, axis 1


def place_roadside(rng: np.random.Generator, road: Road, clearance: float, mean_spacing: float = 9.0) -> RoadsideLayout:
    """Draw the roadside slots of one episode.

    Args:
        rng: the episode's look stream (the road's own random numbers are not touched).
        road: the episode's road; slots cover its whole sampled length.
        clearance: smallest distance (m) from any point of a footprint to the road centre line.
        mean_spacing: mean distance (m) between consecutive slots along the road.
    """
    if not (math.isfinite(clearance) and clearance > 0 and math.isfinite(mean_spacing) and mean_spacing > 0):
        raise ValueError(f"clearance and mean_spacing must be finite and > 0, got {clearance!r}, {mean_spacing!r}")
    end = float(road.s[-1])
    gaps = rng.uniform(0.4 * mean_spacing, 1.6 * mean_spacing, size=int(end / (0.4 * mean_spacing)) + 1)
    s = np.cumsum(gaps) - gaps[0] * rng.random()
    s = s[(s >= 0.0) & (s <= end)]
    m = s.size
    kind = tuple(POOL_KINDS[j % POOL_SIZE] for j in range(m))
    is_post = np.array([k == "post" for k in kind], dtype=bool)
    is_tree = np.array([k == "tree" for k in kind], dtype=bool)
    is_building = ~(is_post | is_tree)
    u = rng.random((m, 6))  # six uniforms per slot whatever its kind, mapped to the kind's ranges below

    def lerp(column: int, low: float, high: float) -> np.ndarray:
        return low + (high - low) * u[:, column]

    size = np.zeros((m, 3))
    size[:, 0] = np.select([is_post, is_tree], [lerp(0, 0.06, 0.12), lerp(0, 0.8, 2.0)], lerp(0, 2.0, 6.0))
    size[:, 1] = np.select([is_post, is_tree], [lerp(1, 0.5, 0.8), lerp(1, 2.0, 4.0)], lerp(1, 2.0, 5.0))
    size[:, 2] = np.where(is_building, lerp(2, 2.0, 7.0), 0.0)
    gap = np.select([is_post, is_tree], [lerp(3, 0.0, 2.0), lerp(3, 0.5, 10.0)], lerp(3, 3.0, 20.0))  # m
    colour = np.select(
        [is_post, is_tree],
        [(u[:, 4] * 4).astype(int), 4 + (u[:, 4] * 16).astype(int)],
        20 + 8 * (u[:, 4] * 5).astype(int) + (u[:, 5] * 8).astype(int),
    )
    side = np.where(rng.random(m) < 0.5, 1.0, -1.0)  # +1 left of the road, -1 right

    index = np.minimum(np.round(s / road.ds).astype(int), road.s.size - 1)
    heading = road.heading[index]
    normal = np.stack([-np.sin(heading), np.cos(heading)], axis=1)  # (M, 2) left normals
    # footprint extent towards the road: radius for a cylinder, half depth for a box aligned with the road
    extent = np.where(is_building, size[:, 1], size[:, 0])
    d = side * (clearance + extent + gap)
    xy = road.xy[index] + d[:, None] * normal
    yaw = np.where(is_building, heading, 0.0)
    layout = RoadsideLayout(s=s, xy=xy, yaw=yaw, size=size, colour=colour, visible=np.ones(m, dtype=bool), kind=kind)
    # the road may bend back towards a slot (inside of a curve, a later segment): check footprints against the
    # whole centre line and hide the slots that come too close. Cheap test first, on every 4th centre-line sample:
    # the distance from the footprint's bounding circle to those samples, less half their spacing (every point of
    # the centre line is within that of one of them). Only slots failing it get the exact polyline test, against
    # the pieces of the centre line near them.
    stride = 4
    spacing = stride * road.ds
    coarse = road.xy[::stride]  # (C, 2)
    radius = np.where(is_building, np.hypot(size[:, 0], size[:, 1]), size[:, 0])
    to_coarse = xy[:, None, :] - coarse[None, :, :]  # (M, C, 2)
    coarse_distance = np.sqrt(np.einsum("mck,mck->mc", to_coarse, to_coarse))  # (M, C), sum over x/y
    starts, ends = road.xy[:-1], road.xy[1:]  # (N-1, 2) centre-line segments
    floor = np.arange(starts.shape[0]) // stride  # coarse samples bracketing each segment's start
    ceil = np.minimum(floor + 1, coarse.shape[0] - 1)
    doubtful = np.nonzero(coarse_distance.min(axis=1) - radius - 0.5 * spacing < clearance)[0]
    if doubtful.size:
        # a segment closer than radius + clearance to a slot's centre has a bracketing coarse sample within
        # radius + clearance + spacing of it: test each doubtful slot's boundary against those segments only
        close = coarse_distance[doubtful] < (radius[doubtful] + clearance + spacing)[:, None]  # (D, C)
        slot, segment = np.nonzero(close[:, floor] | close[:, ceil])  # (K,) pairs to test
        boundary = _footprints(xy[doubtful], yaw[doubtful], size[doubtful], is_building[doubtful], 32)  # (D, 32, 2)
        seg = ends[segment] - starts[segment]  # (K, 2)
        rel = boundary[slot] - starts[segment][:, None, :]  # (K, 32, 2)
        along = np.clip(np.einsum("kpi,ki->kp", rel, seg) / np.einsum("ki,ki->k", seg, seg)[:, None], 0.0, 1.0)
        nearest = rel - along[:, :, None] * seg[:, None, :]
        pair_distance = np.sqrt(np.einsum("kpi,kpi->kp", nearest, nearest).min(axis=1))  # min over boundary points
        slot_distance = np.full(doubtful.size, np.inf)
        np.minimum.at(slot_distance, slot, pair_distance)
        layout.visible[doubtful[slot_distance < clearance]] = False
    return layout


def pool_faces() -> np.ndarray:
    """(F, 3) int32 faces of the pool mesh (fixed): per solid with K sides, 2 triangles per side then a K - 2
    triangle fan on top, over that solid's 5 K vertices (4 per side, K on top); counter-clockwise from outside."""
    faces, base = [], 0
    for kind in POOL_KINDS:
        k = _SIDES[kind]
        for i in range(k):
            v = base + 4 * i  # bottom i, bottom i + 1, top i + 1, top i
            faces += [(v, v + 1, v + 2), (v, v + 2, v + 3)]
        top = base + 4 * k
        faces += [(top, top + i, top + i + 1) for i in range(1, k - 1)]
        base += 5 * k
    return np.array(faces, dtype=np.int32)


def _pool_offsets() -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """For each prism side count K: the pool solids with K sides and their first vertex in the pool mesh."""
    starts = np.cumsum([0] + [5 * _SIDES[kind] for kind in POOL_KINDS])[:-1]
    groups = {}
    for k in sorted(set(_SIDES.values())):
        solids = np.array([i for i, kind in enumerate(POOL_KINDS) if _SIDES[kind] == k])
        groups[k] = (solids, starts[solids])
    return groups


_POOL_GROUPS = _pool_offsets()
_POOL_VERTICES = sum(5 * _SIDES[kind] for kind in POOL_KINDS)


def pool_mesh(layout: RoadsideLayout | None, first: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices, normals and texture coordinates of the pool mesh showing slots ``first .. first + POOL_SIZE - 1``.

    Slot ``j`` goes on pool solid ``j % POOL_SIZE``; a solid without a visible slot (past the end of the layout,
    a hidden slot, or ``layout=None``) is flattened 100 m below the ground. Prisms are inscribed in their
    footprint disc; boxes are the footprint rectangle.

    Returns:
        vertices (V, 3) world m, normals (V, 3) unit, texcoords (V, 2) into the palette texture; V is fixed
        (5 K per solid of K sides, vertex order as in :func:`pool_faces`).
    """
    vertices = np.tile([0.0, 0.0, -100.0], (_POOL_VERTICES, 1))
    normals = np.tile([0.0, 0.0, 1.0], (_POOL_VERTICES, 1))
    texcoords = np.full((_POOL_VERTICES, 2), 0.5 / PALETTE_SIDE)
    if layout is None:
        return vertices, normals, texcoords
    for k, (solids, starts) in _POOL_GROUPS.items():
        slots = first + (solids - first) % POOL_SIZE  # the slot of the window that lands on each solid
        shown = slots < len(layout)
        shown[shown] = layout.visible[slots[shown]]
        if not shown.any():
            continue
        slots, starts = slots[shown], starts[shown]
        n = slots.size
        size, yaw = layout.size[slots], layout.yaw[slots]  # (n, 3), (n,)
        if k == 4:  # boxes: the footprint rectangle, counter-clockwise from (+a, -b)
            sign = np.array([[1.0, -1.0], [1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0]])
            local = sign[None] * size[:, None, :2]  # (n, 4, 2)
            height = 2.0 * size[:, 2]
        else:  # prisms inscribed in the disc
            angle = 2 * np.pi * np.arange(k) / k
            local = size[:, None, :1] * np.stack([np.cos(angle), np.sin(angle)], axis=1)[None]  # (n, k, 2)
            height = 2.0 * size[:, 1]
        c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
        ring = np.stack([c * local[..., 0] - s * local[..., 1], s * local[..., 0] + c * local[..., 1]], axis=2)
        ring += layout.xy[slots][:, None, :]  # (n, k, 2) world corners, counter-clockwise
        nxt = np.roll(ring, -1, axis=1)
        edge = nxt - ring
        outward = np.stack([edge[..., 1], -edge[..., 0]], axis=2)
        outward /= np.linalg.norm(outward, axis=2, keepdims=True)  # (n, k, 2) side normals
        solid = np.empty((n, 5 * k, 3))
        sides = solid[:, : 4 * k].reshape(n, k, 4, 3)  # view: 4 vertices per side
        sides[:, :, 0, :2], sides[:, :, 1, :2], sides[:, :, 2, :2], sides[:, :, 3, :2] = ring, nxt, nxt, ring
        sides[:, :, :2, 2] = 0.0
        sides[:, :, 2:, 2] = height[:, None, None]
        solid[:, 4 * k :, :2] = ring
        solid[:, 4 * k :, 2] = height[:, None]
        solid_normals = np.zeros((n, 5 * k, 3))
        solid_normals[:, : 4 * k].reshape(n, k, 4, 3)[..., :2] = outward[:, :, None, :]
        solid_normals[:, 4 * k :, 2] = 1.0
        row, col = np.divmod(layout.colour[slots], PALETTE_SIDE)
        index = (starts[:, None] + np.arange(5 * k)[None]).ravel()  # (n * 5k,) rows of the pool mesh
        vertices[index] = solid.reshape(-1, 3)
        normals[index] = solid_normals.reshape(-1, 3)
        texcoords[index] = np.repeat(
            np.stack([(col + 0.5) / PALETTE_SIDE, (row + 0.5) / PALETTE_SIDE], axis=1), 5 * k, axis=0
        )
    return vertices, normals, texcoords
