"""Domain randomisation of the lane-keeping world: textures, roadside objects, and the default look left unchanged."""

import hashlib
import json
import pathlib

import gymnasium as gym
import numpy as np
import pytest

import ncp_control.envs  # noqa: F401  (registers the ids)
from ncp_control.envs.lane_keeping.appearance import Appearance

REFERENCE = json.loads((pathlib.Path(__file__).parent / "data" / "lane_keeping_plain_frames.json").read_text())


def _digest(array) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _steer(k: int) -> np.ndarray:
    return np.array([0.3 * np.sin(0.2 * k)], np.float32)


@pytest.mark.parametrize("seed", ["0", "5", "42"])
def test_default_look_is_bit_for_bit_the_one_recorded_before_textures_and_objects(seed):
    """Frames without domain randomisation match hashes recorded on main before this feature (same Mesa build)."""
    env = gym.make("LaneKeeping-v0", render_mode="rgb_array")
    obs, _ = env.reset(seed=int(seed))
    digests = [_digest(obs)]
    for k in range(40):
        obs, *_ = env.step(_steer(k))
        if k in (14, 39):
            digests.append(_digest(obs))
    digests.append(_digest(env.render()))  # chase view
    assert digests == REFERENCE["camera"][seed]

    state = gym.make("LaneKeepingState-v0")
    obs, _ = state.reset(seed=int(seed))
    trace = [obs]
    for k in range(40):
        obs, reward, *_ = state.step(_steer(k))
        trace += [obs, np.float64(reward)]
    assert hashlib.sha256(b"".join(np.asarray(x).tobytes() for x in trace)).hexdigest() == REFERENCE["state"][seed]


# ---------------------------------------------------------------- roadside objects
def _dense_centre_line(road, per_segment=8):
    """(K, 2) points every ds / per_segment along the centre line polyline (an independent distance reference)."""
    t = np.linspace(0.0, 1.0, per_segment, endpoint=False)[None, :, None]  # (1, P, 1)
    a, b = road.xy[:-1, None, :], road.xy[1:, None, :]
    return np.concatenate([(a + t * (b - a)).reshape(-1, 2), road.xy[-1:]])


def _min_distance(points, line_points):
    """Smallest distance between any of ``points`` (P, 2) and any of ``line_points`` (K, 2)."""
    centre = points.mean(axis=0)
    reach = np.sqrt(((points - centre) ** 2).sum(axis=1)).max() + 20.0  # farther line points cannot be nearest
    line_points = line_points[np.sqrt(((line_points - centre) ** 2).sum(axis=1)) < reach]
    if len(line_points) == 0:
        return np.inf
    diff = points[:, None, :] - line_points[None, :, :]  # (P, K, 2)
    return np.sqrt((diff**2).sum(axis=2)).min()  # over x/y (axis 2), then over all pairs


def test_roadside_objects_never_come_within_the_margin_of_the_asphalt():
    """Footprints (discs, box rectangles) of every visible slot stay >= lane_width + shoulder (0.5) + margin (1.0)
    from the centre line, over many seeds and randomised lane widths; also on a tight circle where the road
    surrounds slots on the inside (those must be hidden)."""
    from ncp_control.envs.lane_keeping.road import Road
    from ncp_control.envs.lane_keeping.roadside import place_roadside

    env = gym.make("LaneKeepingState-v0", domain_randomization=True).unwrapped
    checked = 0
    for seed in range(25):
        env.reset(seed=seed)
        layout = env.roadside_objects()
        clearance = env.road.lane_width + 0.5 + 1.0
        line = _dense_centre_line(env.road)
        assert len(layout) > 25 and layout.visible.mean() > 0.9  # about one slot every 9 m
        assert np.all(np.diff(layout.s) > 0) and layout.s[0] >= 0 and layout.s[-1] <= env.road.s[-1]
        for j in np.nonzero(layout.visible)[0]:
            assert _min_distance(layout.footprint(j, points=64), line) >= clearance - 1e-6
            checked += 1
    assert checked > 700

    circle = Road.from_curvature(np.full(400, 1 / 12.0), 0.5, 150.0)  # radius 12 m: the inside is all road
    layout = place_roadside(np.random.default_rng(0), circle, 5.0)
    line = _dense_centre_line(circle)
    assert not layout.visible.all()
    for j in range(len(layout)):
        if layout.visible[j]:
            assert _min_distance(layout.footprint(j, points=64), line) >= 5.0 - 1e-6


def test_rendered_roadside_mesh_stays_off_the_road_and_follows_the_car():
    """The vertices actually drawn (the pool mesh in the model) are outside the clearance, and the window of
    slots moves along the road with the car."""
    env = gym.make("LaneKeeping-v0", domain_randomization=("objects",))
    base = env.unwrapped
    env.reset(seed=3)
    mesh = base._roadside_mesh
    clearance = base.road.lane_width + 0.5 + 1.0
    line = _dense_centre_line(base.road)
    windows = []
    for k in range(200):
        env.step(np.zeros(1, np.float32) if k % 2 else _steer(k))
        if k % 40 == 0:
            vertices = base.model.mesh_vert[
                base.model.mesh_vertadr[mesh] : base.model.mesh_vertadr[mesh] + base.model.mesh_vertnum[mesh]
            ]
            shown = vertices[vertices[:, 2] > -50.0]  # hidden solids sit 100 m below the ground
            assert len(shown) > 100
            assert _min_distance(shown[:, :2].astype(np.float64), line) >= clearance - 1e-3  # float32 vertices
            windows.append(base._roadside_window)
    assert windows == sorted(windows) and windows[-1] > windows[0]


def test_roadside_objects_are_visible_distractors():
    """Same seed and colours, objects on vs off: the images differ above the road (buildings, trees)."""
    plain = gym.make("LaneKeeping-v0", domain_randomization=("colours",))
    objects = gym.make("LaneKeeping-v0", domain_randomization=("colours", "objects"))
    differing = 0
    for seed in range(4):
        a, _ = plain.reset(seed=seed)
        b, _ = objects.reset(seed=seed)
        differing += int((np.abs(a.astype(int) - b.astype(int)).max(axis=2) > 10).sum())  # max over RGB
    assert differing > 200


# ---------------------------------------------------------------- textures
def test_textures_vary_across_seeds_and_show_in_the_asphalt_and_ground():
    """Colours fixed, textures randomised: the asphalt patch in front of the car is flat without a texture and
    textured (pixel spread) with one; different textures give different asphalt pixels."""
    env = gym.make("LaneKeeping-v0", domain_randomization=("textures",))
    base = env.unwrapped
    patches, names = {}, set()
    for seed in range(12):
        obs, _ = env.reset(seed=seed)
        look = base.appearance
        names.add((look.asphalt_texture, look.ground_texture))
        patch = obs[54:64, 40:56].astype(np.float64)  # right lane just ahead of the car: asphalt only
        spread = patch.std(axis=(0, 1)).max()  # per channel over the pixels, max over channels
        if look.asphalt_texture is None:
            assert spread < 0.5  # flat shading of one colour: measured 0.0
        else:
            assert spread > 1.0, (seed, look.asphalt_texture, spread)  # measured 1.7-4.3 (64x128, filtered)
        patches.setdefault(look.asphalt_texture, patch)
    assert len({a for a, _ in names}) >= 3 and len({g for _, g in names}) >= 3
    textured = [p for name, p in patches.items() if name is not None]
    assert len(textured) >= 2 and not np.array_equal(textured[0], textured[1])
    # colours stay the default ones (only textures are randomised here)
    assert base.appearance.asphalt == Appearance().asphalt


def test_texture_generator_is_deterministic_and_validated():
    from ncp_control.envs.lane_keeping.textures import ASPHALT_TEXTURES, GROUND_TEXTURES, make_texture

    for name in [*ASPHALT_TEXTURES, *GROUND_TEXTURES]:
        a, b = make_texture(name), make_texture(name)
        assert a.shape == (64, 64, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
        assert 150 <= a.min() and a.std() > 3  # near white (the material colour rules) but with structure
    assert not np.array_equal(make_texture("grain"), make_texture("patches"))
    streaks = make_texture("streaks")[:, :, 0].astype(float)
    assert streaks.std(axis=0).mean() < streaks.std(axis=1).mean()  # streaks run along axis 0 (the road)
    with pytest.raises(ValueError, match="unknown texture"):
        make_texture("gravel")
    with pytest.raises(ValueError, match="size"):
        make_texture("grain", size=10)


# ---------------------------------------------------------------- the option, determinism, pickle, expert
def test_same_seed_same_frames_with_full_domain_randomization():
    def run():
        env = gym.make("LaneKeeping-v0", domain_randomization=True, render_mode="rgb_array")
        frames = []
        for seed in (1, 2):
            obs, _ = env.reset(seed=seed)
            frames.append(obs)
            for k in range(60):
                obs, *_ = env.step(_steer(k))
            frames += [obs, env.render()]
        return frames

    a, b = run(), run()
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], a[3])  # and the two seeds differ


def test_element_subsets_randomise_only_what_they_name():
    plain = Appearance(lane_width=3.5)
    env = gym.make("LaneKeepingState-v0", domain_randomization=["objects"]).unwrapped
    env.reset(seed=4)
    assert env.appearance == plain and env.roadside_objects() is not None
    env = gym.make("LaneKeepingState-v0", domain_randomization=("colours", "lighting")).unwrapped
    env.reset(seed=4)
    look = env.appearance
    assert env.roadside_objects() is None
    assert look.asphalt != plain.asphalt and look.sun_dir != plain.sun_dir
    assert (look.lane_width, look.asphalt_texture, look.camera_pitch) == (3.5, None, 0.0)
    # the full set draws the same values for the elements it shares with a subset (one look stream)
    full = gym.make("LaneKeepingState-v0", domain_randomization=True).unwrapped
    full.reset(seed=4)
    assert full.appearance.asphalt == look.asphalt and full.appearance.sun_dir == look.sun_dir


@pytest.mark.parametrize(
    "value, error",
    [(("colors",), ValueError), ("colours", TypeError), (1, TypeError), ((1,), TypeError), (None, TypeError)],
)
def test_bad_domain_randomization_raises(value, error):
    with pytest.raises(error, match="domain_randomization"):
        gym.make("LaneKeepingState-v0", domain_randomization=value)


def test_roads_and_start_do_not_depend_on_textures_or_objects():
    """The road and the car's start come from their own streams: a seed drives the same road whatever the look
    (except 'geometry', which changes lane width and curvature range by design)."""
    traces = []
    for dr in (False, ("textures", "objects", "colours", "lighting", "camera")):
        env = gym.make("LaneKeepingState-v0", domain_randomization=dr)
        obs, _ = env.reset(seed=9)
        trace = [obs]
        for k in range(30):
            trace.append(env.step(_steer(k))[0])
        traces.append(np.array(trace))
    assert np.array_equal(traces[0], traces[1])


def test_a_look_pickled_before_appearance_py_existed_still_loads():
    """Envs pickled before ``Appearance`` moved from world.py to appearance.py name it ``world.Appearance``."""
    import pickle

    look = Appearance(lane_width=3.2, asphalt_texture="grain")
    old = pickle.dumps(look, protocol=0).replace(b"lane_keeping.appearance", b"lane_keeping.world")
    assert b"lane_keeping.world" in old and pickle.loads(old) == look


def test_pickle_round_trip_with_domain_randomization():
    import pickle

    env = gym.make("LaneKeeping-v0", domain_randomization=("textures", "objects")).unwrapped
    clone = pickle.loads(pickle.dumps(env))
    a, _ = env.reset(seed=7)
    b, _ = clone.reset(seed=7)
    assert np.array_equal(a, b)
    assert np.array_equal(env.step(_steer(0))[0], clone.step(_steer(0))[0])


def test_expert_completes_camera_roads_with_full_domain_randomization():
    from ncp_control.agents.imitation.experts import PurePursuitExpert

    env = gym.make("LaneKeeping-v0", domain_randomization=True)
    expert = PurePursuitExpert(env)
    for seed in (0, 1):
        env.reset(seed=seed)
        done, info = False, {}
        while not done:
            _, _, terminated, truncated, info = env.step(expert())
            done = terminated or truncated
        assert info["is_success"], seed
