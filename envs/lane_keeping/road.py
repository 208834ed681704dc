"""Procedural road geometry for the lane-keeping environments (numpy only, no MuJoCo).

A :class:`Road` is a planar centre line given by its curvature profile ``kappa(s)`` over arc length ``s``,
sampled every ``ds`` metres and integrated into headings and positions. Roads are made of straights and
constant-curvature arcs joined by clothoid transitions (curvature changing linearly with ``s``), so the
curvature, and therefore the steering a driver needs, is continuous.

Conventions (used by every caller):

- World frame: x east, y north, z up; headings in radians, counter-clockwise from +x.
- ``s``: arc length along the road centre line in metres, ``0`` at the start.
- Lateral coordinate ``d``: signed distance from the centre line, **positive to the left** of the direction of travel.
- Curvature: ``1/m``, positive when the road turns left.
- The road has two lanes separated by the (dashed) centre line; traffic drives in the right lane, whose centre is
  at ``d = -lane_width / 2``.

The same generator state gives the same road, bit for bit (everything is float64 numpy arithmetic in a fixed order).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ncp_control import checks

__all__ = ["Road", "RoadConfig", "Mesh", "wrap_angle"]


def wrap_angle(angle: float) -> float:
    """Wrap an angle in radians to ``[-pi, pi)``."""
    return (angle + math.pi) % (2.0 * math.pi) - math.pi


@dataclass(frozen=True)
class RoadConfig:
    """Parameters of the road generator (lengths in metres, curvatures in 1/m).

    Attributes:
        length: drivable length; the episode succeeds when the car passes ``s = length``.
        extra_length: road drawn (and previewed) beyond ``length`` so the camera never sees the end of the world.
        max_curvature: largest ``|kappa|`` of any curve.
        min_curvature: smallest ``|kappa|`` of a curve (so curves are not mistaken for straights).
        start_straight: length of the straight at the start.
        straight_length: (low, high) range of the other straights' lengths.
        curve_turn: (low, high) range of one curve's total heading change in radians (ramps included); the upper
            bound also keeps roads from looping onto themselves.
        transition_length: length of each clothoid transition (curvature ramps linearly over it).
        ds: sampling step of the centre line.
    """

    length: float = 250.0
    extra_length: float = 80.0
    max_curvature: float = 0.04
    min_curvature: float = 0.01
    start_straight: float = 20.0
    straight_length: tuple[float, float] = (10.0, 50.0)
    curve_turn: tuple[float, float] = (math.pi / 12, math.pi / 2)
    transition_length: float = 10.0
    ds: float = 0.5

    def __post_init__(self) -> None:
        positive = ("length", "extra_length", "max_curvature", "transition_length", "ds")
        for name in positive:
            checks.positive_real(f"RoadConfig.{name}", getattr(self, name))
        if not 0 <= self.min_curvature <= self.max_curvature:
            raise ValueError(
                f"need 0 <= min_curvature <= max_curvature, got {self.min_curvature!r} and {self.max_curvature!r}"
            )
        checks.non_negative_real("RoadConfig.start_straight", self.start_straight)
        for name in ("straight_length", "curve_turn"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise ValueError(
                    f"RoadConfig.{name} must be a (low, high) range with 0 <= low <= high, got {(low, high)!r}"
                )
        if self.ds > self.transition_length:
            raise ValueError(f"RoadConfig.ds ({self.ds}) must not exceed transition_length ({self.transition_length})")

    @property
    def num_samples(self) -> int:
        """Number of centre-line samples; fixed for a config, so every road has the same mesh sizes."""
        return int(math.ceil((self.length + self.extra_length) / self.ds)) + 1


@dataclass(frozen=True)
class Mesh:
    """A triangle mesh: ``vertices`` (V, 3) float64 in metres, ``faces`` (F, 3) int32 vertex indices,
    counter-clockwise seen from above (normals point up)."""

    vertices: np.ndarray
    faces: np.ndarray


class Road:
    """A sampled planar road centre line.

    Build one with :meth:`generate` (random, from a numpy ``Generator``) or :meth:`from_curvature` (a given
    curvature profile, e.g. a straight road for tests).

    Attributes (all float64, sample ``i`` at ``s = i * ds``):
        s: (N,) arc length of each sample.
        curvature: (N,) centre-line curvature.
        heading: (N,) centre-line heading.
        xy: (N, 2) centre-line position.
        length: drivable length (see :class:`RoadConfig`).
        lane_width: width of one lane in metres.
    """

    def __init__(self, curvature: np.ndarray, ds: float, length: float, lane_width: float = 3.5):
        curvature = np.asarray(curvature, dtype=np.float64)
        if curvature.ndim != 1 or curvature.size < 2:
            raise ValueError(f"curvature must be a 1-D array with at least 2 samples, got shape {curvature.shape}")
        if not np.all(np.isfinite(curvature)):
            raise ValueError("curvature must be finite")
        if not (ds > 0 and lane_width > 0 and 0 < length <= (curvature.size - 1) * ds):
            raise ValueError(
                f"need ds > 0, lane_width > 0 and 0 < length <= (N - 1) * ds, got ds={ds}, "
                f"lane_width={lane_width}, length={length}, N={curvature.size}"
            )
        self.ds = float(ds)
        self.length = float(length)
        self.lane_width = float(lane_width)
        self.curvature = curvature
        n = curvature.size
        self.s = np.arange(n, dtype=np.float64) * self.ds
        # heading: trapezoidal integral of curvature over s
        self.heading = np.concatenate(([0.0], np.cumsum(0.5 * (curvature[1:] + curvature[:-1]) * self.ds)))
        # position: each step is the chord of an arc of length ds turning by dtheta, which points along the
        # mid-step heading and is ds * sin(dtheta / 2) / (dtheta / 2) long (exact for constant curvature)
        mid = 0.5 * (self.heading[1:] + self.heading[:-1])
        chord = self.ds * np.sinc(np.diff(self.heading) / (2.0 * np.pi))  # np.sinc(x) = sin(pi x) / (pi x)
        steps = np.stack([np.cos(mid), np.sin(mid)], axis=1) * chord[:, None]
        self.xy = np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)], axis=0)
        # unit tangents and normals (left) per sample
        self._tangent = np.stack([np.cos(self.heading), np.sin(self.heading)], axis=1)
        self._seg = self.xy[1:] - self.xy[:-1]  # (N-1, 2) segment vectors
        self._seg_len2 = np.einsum("ij,ij->i", self._seg, self._seg)  # sum over x/y, axis 1
        # Python-float copies for the scalar per-step lookups (indexing lists is ~10x faster than numpy scalars)
        self._px, self._py = self.xy[:, 0].tolist(), self.xy[:, 1].tolist()
        self._sx, self._sy = self._seg[:, 0].tolist(), self._seg[:, 1].tolist()
        self._l2 = self._seg_len2.tolist()
        self._nx, self._ny = (-self._tangent[:, 1]).tolist(), self._tangent[:, 0].tolist()  # left normals
        self._ps, self._ph, self._pk = self.s.tolist(), self.heading.tolist(), self.curvature.tolist()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_curvature(cls, curvature: np.ndarray, ds: float, length: float, lane_width: float = 3.5) -> Road:
        """A road with the given curvature samples ``curvature``: (N,) in 1/m, spaced ``ds`` metres apart."""
        return cls(curvature, ds, length, lane_width)

    @classmethod
    def generate(cls, rng: np.random.Generator, config: RoadConfig = RoadConfig(), lane_width: float = 3.5) -> Road:
        """Draw a random road: a start straight, then alternating curves and straights until the end.

        Each curve has a random sign (forced to turn back when the heading has drifted beyond 45 degrees from the
        start direction), ``|kappa|`` uniform in ``[min_curvature, max_curvature]`` and a total turn uniform in
        ``curve_turn`` (a curve too sharp for a small turn keeps only its two clothoid ramps and turns
        ``|kappa| * transition_length``). Consecutive pieces are joined by clothoid transitions.
        """
        n = config.num_samples
        total = (n - 1) * config.ds
        # Piecewise-linear curvature profile as knots (s, kappa).
        knots_s = [0.0, config.start_straight]
        knots_k = [0.0, 0.0]
        heading = 0.0
        pos = config.start_straight
        trans = config.transition_length
        while pos < total:
            # a curve: ramp up, hold, ramp down
            mag = rng.uniform(config.min_curvature, config.max_curvature)
            if heading > math.pi / 4:
                sign = -1.0
            elif heading < -math.pi / 4:
                sign = 1.0
            else:
                sign = 1.0 if rng.random() < 0.5 else -1.0
            turn = rng.uniform(*config.curve_turn)
            # heading change of the curve = mag * (arc + trans) (two ramps of half the arc's rate each)
            arc = max(0.0, turn / mag - trans)
            kappa = sign * mag
            knots_s += [pos + trans, pos + trans + arc, pos + 2 * trans + arc]
            knots_k += [kappa, kappa, 0.0]
            heading += kappa * (arc + trans)
            pos += 2 * trans + arc
            pos += rng.uniform(*config.straight_length)
            knots_s.append(pos)
            knots_k.append(0.0)
        s = np.arange(n, dtype=np.float64) * config.ds
        curvature = np.interp(s, np.asarray(knots_s), np.asarray(knots_k))
        return cls(curvature, config.ds, config.length, lane_width)

    # ------------------------------------------------------------------ lookups
    @property
    def num_samples(self) -> int:
        return self.s.size

    @property
    def end(self) -> float:
        """Arc length of the last sample (the drawn road ends here; it is longer than :attr:`length`)."""
        return float(self.s[-1])

    @property
    def lane_center_offset(self) -> float:
        """Lateral coordinate ``d`` of the centre of the driving (right) lane: ``-lane_width / 2``."""
        return -0.5 * self.lane_width

    def curvature_at(self, s: float | np.ndarray) -> float | np.ndarray:
        """Centre-line curvature (1/m) at arc length ``s`` (a float, or an array of any shape), linearly
        interpolated, clamped to the road's ends."""
        if isinstance(s, float):
            i = min(max(int(s / self.ds), 0), len(self._pk) - 2)
            t = min(max((s - self._ps[i]) / self.ds, 0.0), 1.0)
            return self._pk[i] + t * (self._pk[i + 1] - self._pk[i])
        return np.interp(s, self.s, self.curvature)

    def heading_at(self, s: float) -> float:
        """Centre-line heading (rad, unwrapped) at arc length ``s``."""
        return float(np.interp(s, self.s, self.heading))

    def point_at(self, s: float, d: float = 0.0) -> tuple[float, float]:
        """World (x, y) of the point with road coordinates ``(s, d)`` (m; ``d`` left positive).

        Road coordinates between two samples ``i, i+1`` are ``xy_i + t * (xy_{i+1} - xy_i) + d * n(t)`` with
        ``t = (s - s_i) / ds`` and the normal ``n(t)`` interpolated linearly between the samples' unit left
        normals, so that every point near the road has exactly one ``(s, d)`` and :meth:`project` inverts this map.
        """
        i = min(max(int(s / self.ds), 0), self.num_samples - 2)
        t = (s - self._ps[i]) / self.ds
        nx = self._nx[i] + t * (self._nx[i + 1] - self._nx[i])
        ny = self._ny[i] + t * (self._ny[i + 1] - self._ny[i])
        return self._px[i] + t * self._sx[i] + d * nx, self._py[i] + t * self._sy[i] + d * ny

    def project(self, x: float, y: float, s_hint: float | None = None) -> tuple[float, float, float]:
        """Road coordinates of a world point: the inverse of :meth:`point_at`.

        Args:
            x, y: the point (m).
            s_hint: arc length near the answer (e.g. the previous step's). With a hint the segment is found by
                walking from the hint's segment (a few scalar operations: the fast path used every step); without
                one the walk starts from the segment closest to the point.

        Returns:
            ``(s, d, heading)``: arc length (m), signed lateral coordinate (m, left positive) and the centre-line
            heading (rad, unwrapped) at ``s``. ``s`` is continuous in the point (no jumps at sample corners) and
            clamped to ``[0, end]``. Unique as long as ``|d|`` is below the smallest radius of curvature.
        """
        if s_hint is None:
            s_hint = self._closest_segment(x, y) * self.ds
        i = min(max(int(s_hint / self.ds), 0), self.num_samples - 2)
        last = self.num_samples - 2
        direction = 0  # +1 walking forward, -1 backward; a reversal means we sit on a segment boundary
        for _ in range(self.num_samples):
            t, rx, ry = self._solve_segment(i, x, y)
            if t > 1.0 and i < last and direction >= 0:
                i += 1
                direction = 1
            elif t < 0.0 and i > 0 and direction <= 0:
                i -= 1
                direction = -1
            else:
                break
        t = min(max(t, 0.0), 1.0)
        nx = self._nx[i] + t * (self._nx[i + 1] - self._nx[i])
        ny = self._ny[i] + t * (self._ny[i + 1] - self._ny[i])
        d = ((rx - t * self._sx[i]) * nx + (ry - t * self._sy[i]) * ny) / (nx * nx + ny * ny)
        heading = self._ph[i] + t * (self._ph[i + 1] - self._ph[i])
        return self._ps[i] + t * self.ds, d, heading

    def _solve_segment(self, i: int, x: float, y: float) -> tuple[float, float, float]:
        """Parameter ``t`` of segment ``i`` whose interpolated normal line passes through (x, y), and the offset
        ``(rx, ry)`` of the point from the segment start.

        With ``r`` the offset, ``S`` the segment, ``n(t) = N0 + t D`` the interpolated normal, ``r - t S`` must be
        parallel to ``n(t)``: ``cross(r - t S, N0 + t D) = 0``, a quadratic ``a t^2 + b t + c = 0``.
        """
        rx, ry = x - self._px[i], y - self._py[i]
        sx, sy = self._sx[i], self._sy[i]
        n0x, n0y = self._nx[i], self._ny[i]
        dx, dy = self._nx[i + 1] - n0x, self._ny[i + 1] - n0y
        a = -(sx * dy - sy * dx)
        b = (rx * dy - ry * dx) - (sx * n0y - sy * n0x)
        c = rx * n0y - ry * n0x
        # b ~ -ds (never 0 for a sane road); the root near the segment is the stable form 2c / (-b -+ sqrt(disc))
        disc = max(b * b - 4.0 * a * c, 0.0)
        root = math.sqrt(disc)
        q = -b - root if b >= 0 else -b + root
        return 2.0 * c / q, rx, ry

    def _closest_segment(self, x: float, y: float) -> int:
        """Index of the centre-line segment (chord) closest to (x, y), by exhaustive search."""
        rel_x = x - self.xy[:-1, 0]  # (N-1,) offsets from every segment start
        rel_y = y - self.xy[:-1, 1]
        t = (rel_x * self._seg[:, 0] + rel_y * self._seg[:, 1]) / self._seg_len2
        np.clip(t, 0.0, 1.0, out=t)
        dx = rel_x - t * self._seg[:, 0]
        dy = rel_y - t * self._seg[:, 1]
        return int(np.argmin(dx * dx + dy * dy))

    # ------------------------------------------------------------------ meshes
    def strip_mesh(self, d_left: float, d_right: float, z: float, stride: int = 1) -> Mesh:
        """A continuous strip between lateral coordinates ``d_right < d_left`` along the whole road, at height ``z``.

        ``stride``: use every ``stride``-th centre-line sample (and the last one); coarser strips draw faster and
        deviate from the true curve by at most ``(stride * ds)**2 * |kappa| / 8`` (2 cm for 2 m chords at
        ``kappa = 0.04``). Returns a :class:`Mesh` with ``2 M`` vertices and ``2 (M - 1)`` faces, ``M`` the number of
        samples used (fixed for a given N and stride)."""
        stride = checks.positive_int("stride", stride)
        index: np.ndarray = np.arange(0, self.num_samples, stride)  # wide: np.append returns another shape type
        if index[-1] != self.num_samples - 1:
            index = np.append(index, self.num_samples - 1)
        left = self._offset_points(d_left)[index]
        right = self._offset_points(d_right)[index]
        n = index.size
        vertices = np.empty((2 * n, 3))
        vertices[0::2, :2] = right
        vertices[1::2, :2] = left
        vertices[:, 2] = z
        return Mesh(vertices, _strip_faces(n))

    def dashed_mesh(self, d: float, width: float, dash: float, gap: float, z: float) -> Mesh:
        """Dashes of length ``dash`` every ``dash + gap`` metres, centred on lateral coordinate ``d``, ``width`` wide.

        The number of dashes depends only on the road's sampled length, so meshes of roads drawn with the same
        :class:`RoadConfig` have the same sizes. Each dash is a quad (4 vertices, 2 faces)."""
        period = dash + gap
        starts = np.arange(0.0, self.end - dash, period)
        s0 = starts
        s1 = starts + dash
        corners = []
        for s_end in (s0, s1):
            h = np.interp(s_end, self.s, self.heading)
            cx = np.interp(s_end, self.s, self.xy[:, 0])
            cy = np.interp(s_end, self.s, self.xy[:, 1])
            nx, ny = -np.sin(h), np.cos(h)  # left normal
            for dd in (d - 0.5 * width, d + 0.5 * width):
                corners.append(np.stack([cx + dd * nx, cy + dd * ny], axis=1))
        # corners order: (s0,right), (s0,left), (s1,right), (s1,left) -> one quad per dash
        m = starts.size
        vertices = np.empty((4 * m, 3))
        for j, c in enumerate(corners):
            vertices[j::4, :2] = c
        vertices[:, 2] = z
        base = 4 * np.arange(m, dtype=np.int32)[:, None]
        faces = np.concatenate(
            [base + np.array([0, 2, 1], dtype=np.int32), base + np.array([1, 2, 3], dtype=np.int32)], axis=0
        )
        return Mesh(vertices, faces)

    def bounds(self, margin: float) -> tuple[float, float, float, float]:
        """Axis-aligned bounding box ``(xmin, ymin, xmax, ymax)`` of the centre line grown by ``margin`` metres."""
        lo = self.xy.min(axis=0) - margin  # over samples, axis 0
        hi = self.xy.max(axis=0) + margin
        return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])

    def _offset_points(self, d: float) -> np.ndarray:
        """(N, 2) points at lateral coordinate ``d`` beside every centre-line sample."""
        normal = np.stack([-self._tangent[:, 1], self._tangent[:, 0]], axis=1)
        return self.xy + d * normal


def _strip_faces(n: int) -> np.ndarray:
    """Faces of a triangle strip over ``n`` (right, left) vertex pairs, counter-clockwise seen from above."""
    i = 2 * np.arange(n - 1, dtype=np.int32)[:, None]
    # vertices: 2i = right_i, 2i+1 = left_i. Travelling along +s, right -> next right -> left is CCW from above.
    return np.concatenate([i + np.array([0, 2, 1], dtype=np.int32), i + np.array([1, 2, 3], dtype=np.int32)], axis=0)
