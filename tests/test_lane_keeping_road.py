"""Road geometry of the lane-keeping envs (envs/lane_keeping/road.py): integration, projection, generation, meshes."""

import math

import numpy as np
import pytest

from ncp_control.envs.lane_keeping.road import Road, RoadConfig, wrap_angle


def test_straight_road_projection_is_exact():
    road = Road.from_curvature(np.zeros(201), ds=0.5, length=90.0, lane_width=3.5)
    assert road.end == 100.0
    s, d, heading = road.project(37.25, -1.2, s_hint=30.0)
    assert (s, d, heading) == pytest.approx((37.25, -1.2, 0.0), abs=1e-12)
    assert road.project(37.25, 2.0) == pytest.approx((37.25, 2.0, 0.0), abs=1e-12)  # global search path
    assert road.lane_center_offset == -1.75
    assert road.point_at(12.3, road.lane_center_offset) == pytest.approx((12.3, -1.75))


def test_constant_curvature_road_is_a_circle():
    kappa = 0.04
    road = Road.from_curvature(np.full(301, kappa), ds=0.5, length=150.0)
    # centre of the circle is at (0, 1/kappa) for a left turn starting at the origin heading +x
    radius = np.hypot(road.xy[:, 0], road.xy[:, 1] - 1.0 / kappa)
    np.testing.assert_allclose(radius, 1.0 / kappa, atol=1e-6)
    np.testing.assert_allclose(road.heading, kappa * road.s, atol=1e-12)
    # a point 1 m outside the circle (to the right of travel) at angle 1 rad
    phi = 1.0
    x, y = (1 / kappa + 1.0) * math.sin(phi), 1 / kappa - (1 / kappa + 1.0) * math.cos(phi)
    s, d, heading = road.project(x, y, s_hint=20.0)
    assert s == pytest.approx(phi / kappa, abs=2e-3)
    assert d == pytest.approx(-1.0, abs=1e-4)
    assert heading == pytest.approx(phi, abs=1e-4)


@pytest.mark.parametrize("seed", range(5))
def test_walk_projection_matches_global_search(seed):
    rng = np.random.default_rng(seed)
    road = Road.generate(rng)
    for _ in range(200):
        s_true = rng.uniform(0.0, road.end - 1.0)
        d_true = rng.uniform(-4.0, 4.0)
        x, y = road.point_at(s_true, d_true)
        hint = s_true + rng.uniform(-3.0, 3.0)
        walked = road.project(x, y, s_hint=hint)
        searched = road.project(x, y)
        assert walked == pytest.approx(searched, abs=1e-9)
        assert walked[:2] == pytest.approx((s_true, d_true), abs=1e-9)  # project inverts point_at


def test_generated_roads_are_seeded_bounded_and_fixed_size():
    config = RoadConfig(max_curvature=0.05)
    a = Road.generate(np.random.default_rng(7), config)
    b = Road.generate(np.random.default_rng(7), config)
    c = Road.generate(np.random.default_rng(8), config)
    np.testing.assert_array_equal(a.xy, b.xy)
    assert not np.array_equal(a.curvature, c.curvature)
    for road in (a, c):
        assert np.abs(road.curvature).max() <= 0.05 + 1e-12
        assert np.abs(road.curvature).max() >= 0.01  # there is at least one real curve
        assert road.num_samples == config.num_samples
        assert np.all(road.curvature[: int(config.start_straight / config.ds)] == 0.0)  # straight start
        # curvature is continuous: clothoid ramps change it by at most max/transition per metre
        assert np.abs(np.diff(road.curvature)).max() <= 0.05 / config.transition_length * config.ds + 1e-12
        assert np.abs(road.heading).max() < 3 * math.pi / 4 + 1e-9  # roads do not loop back
    dashes = [road.dashed_mesh(0.0, 0.2, 3.0, 6.0, 0.0).vertices.shape for road in (a, c)]
    assert dashes[0] == dashes[1]


def test_meshes_face_up_and_cover_the_right_band():
    road = Road.generate(np.random.default_rng(0))
    for mesh in (road.strip_mesh(1.0, -1.0, 0.01), road.dashed_mesh(0.0, 0.2, 3.0, 6.0, 0.02)):
        v = mesh.vertices[mesh.faces]  # (F, 3 corners, 3 coords)
        normal_z = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])[:, 2]
        assert np.all(normal_z > 0)  # counter-clockwise from above: lit from above, not culled
    strip = road.strip_mesh(2.0, -1.0, 0.0)
    lateral = [road.project(x, y, s_hint=i // 2 * road.ds)[1] for i, (x, y, _) in enumerate(strip.vertices)]
    np.testing.assert_allclose(lateral[0::2], -1.0, atol=1e-6)
    np.testing.assert_allclose(lateral[1::2], 2.0, atol=1e-6)


def test_curvature_lookup_scalar_and_array_agree():
    road = Road.generate(np.random.default_rng(3))
    s = np.linspace(-5.0, road.end + 5.0, 997)
    np.testing.assert_array_equal(road.curvature_at(s), [road.curvature_at(float(x)) for x in s])


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(length=-1.0),
        dict(max_curvature=0.0),
        dict(min_curvature=0.1),
        dict(curve_turn=(1.0, 0.5)),
        dict(ds=20.0),
        dict(length=float("nan")),
    ],
)
def test_bad_road_config_raises(kwargs):
    with pytest.raises(ValueError):
        RoadConfig(**kwargs)


def test_wrap_angle():
    assert wrap_angle(3 * math.pi / 2) == pytest.approx(-math.pi / 2)
    assert wrap_angle(-0.1) == pytest.approx(-0.1)
    assert -math.pi <= wrap_angle(math.pi) < math.pi


def test_projection_is_continuous_off_the_centre_line():
    """No jumps of s at sample corners: a point 3 m outside a circular road maps to s = angle / kappa."""
    kappa = 0.04
    road = Road.from_curvature(np.full(401, kappa), ds=0.5, length=150.0)
    phi = np.linspace(0.5, 2.0, 3001)  # 1.5 rad of arc in steps of 0.5 mrad (1.4 cm at radius 28 m)
    radius = 1 / kappa + 3.0
    s_prev = None
    for p in phi:
        s, d, _ = road.project(radius * math.sin(p), 1 / kappa - radius * math.cos(p), s_hint=s_prev)
        assert s == pytest.approx(p / kappa, abs=2e-3)
        assert d == pytest.approx(-3.0, abs=1.5e-3)  # polyline chords sag by ds^2 kappa / 8 = 1.25 mm
        s_prev = s


def test_coarse_strip_keeps_both_ends_and_stays_on_the_band():
    road = Road.generate(np.random.default_rng(1))
    fine, coarse = road.strip_mesh(0.1, -0.1, 0.0), road.strip_mesh(0.1, -0.1, 0.0, stride=4)
    n = road.num_samples
    assert len(coarse.vertices) == 2 * (len(range(0, n, 4)) + (0 if (n - 1) % 4 == 0 else 1))
    np.testing.assert_array_equal(coarse.vertices[:2], fine.vertices[:2])
    np.testing.assert_array_equal(coarse.vertices[-2:], fine.vertices[-2:])
    # chord midpoints of the coarse centre stay within the sagitta (2 m chords: (2 m)^2 * 0.04 / 8 = 2 cm)
    centre = 0.5 * (coarse.vertices[0::2, :2] + coarse.vertices[1::2, :2])
    mid = 0.5 * (centre[1:] + centre[:-1])
    lateral = [road.project(x, y, s_hint=4 * road.ds * (i + 0.5))[1] for i, (x, y) in enumerate(mid)]
    assert np.abs(lateral).max() <= 0.021
    with pytest.raises(ValueError):
        road.strip_mesh(0.1, -0.1, 0.0, stride=0)
