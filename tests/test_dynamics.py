"""Dynamics perturbations (model mismatch): the physics really changes, nominal levels are the plain env bit for
bit, and a perturbation that does not fit the env is refused in one line."""

from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np
import pytest

import ncp_control.envs  # noqa: F401  (registers the ids)
from ncp_control.agents.imitation.experts import PurePursuitExpert
from ncp_control.envs.perturbations import PERTURBATIONS, MujocoParams, apply_perturbations, make_perturbation

LANE = "LaneKeepingState-v0"
LANE_NAMES = ["steering_gain", "steering_bias", "steering_lag", "speed", "crosswind", "crosswind_gusts"]
MUJOCO_NAMES = ["mass", "friction", "actuator_gain"]


def drive(env, seed, steps, policy=None):
    """(observations, rewards, infos) of a seeded episode of at most ``steps`` steps; ``policy(env)`` gives each
    action (default: straight wheels, or a fixed pseudo-random sequence on MuJoCo envs)."""
    obs, info = env.reset(seed=seed)
    observations, rewards, infos = [obs], [], [info]
    rng = np.random.default_rng(7)
    for _ in range(steps):
        if policy is not None:
            action = policy(env)
        elif isinstance(env.unwrapped, ncp_control.envs.lane_keeping.world.LaneKeepingBase):
            action = np.zeros(1, np.float32)
        else:
            action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
        obs, reward, terminated, truncated, info = env.step(action)
        observations.append(obs)
        rewards.append(reward)
        infos.append(info)
        if terminated or truncated:
            break
    return np.array(observations), np.array(rewards), infos


def expert(env):
    return PurePursuitExpert(env)()


def same(a, b):
    return len(a[0]) == len(b[0]) and np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_registry_lists_every_dynamics_parameter_once():
    dynamics = sorted(name for name, info in PERTURBATIONS.items() if info.dynamics)
    assert dynamics == sorted(LANE_NAMES + MUJOCO_NAMES)
    lane_env = gym.make(LANE)
    assert set(lane_env.unwrapped.get_params()) == set(LANE_NAMES)
    assert {n: PERTURBATIONS[n].neutral for n in LANE_NAMES} == lane_env.unwrapped.get_params()
    assert set(MujocoParams(gym.make("HopperNoVel-v5")).get_params()) == set(MUJOCO_NAMES)
    # the registry's ranges are the ones set_params enforces
    from ncp_control.envs.lane_keeping.world import DYNAMICS_RANGES
    from ncp_control.envs.perturbations.dynamics import MUJOCO_PARAMS, MUJOCO_RANGES

    for name, (low, high) in {**DYNAMICS_RANGES, **MUJOCO_RANGES}.items():
        assert (PERTURBATIONS[name].low, PERTURBATIONS[name].high) == (low, high), name
    assert all(PERTURBATIONS[name].neutral == level for name, level in MUJOCO_PARAMS.items())


@pytest.mark.parametrize("name", LANE_NAMES)
def test_nominal_lane_keeping_levels_are_the_plain_env_bit_for_bit(name):
    plain = drive(gym.make(LANE), 5, 600, expert)
    wrapped = make_perturbation(gym.make(LANE), f"{name}:{PERTURBATIONS[name].neutral}")
    perturbed = drive(wrapped, 5, 600, expert)
    assert same(plain, perturbed) and len(plain[0]) > 400
    assert perturbed[2][0]["dynamics"][name] == PERTURBATIONS[name].neutral
    for a, b in zip(plain[2], perturbed[2]):
        assert {k: v for k, v in b.items() if k != "dynamics"} == a


@pytest.mark.parametrize("env_id", ["Hopper-v5", "HopperNoVel-v5", "HalfCheetahNoVel-v5"])
def test_nominal_mujoco_levels_are_the_plain_env_and_mass_changes_the_trajectory(env_id):
    plain = drive(gym.make(env_id), 0, 60)
    nominal = drive(apply_perturbations(gym.make(env_id), ["mass:1", "friction:1", "actuator_gain:1"]), 0, 60)
    assert same(plain, nominal)
    heavy = drive(make_perturbation(gym.make(env_id), "mass:2"), 0, 60)
    assert not same(plain, heavy)
    assert heavy[2][-1]["dynamics"] == {"mass": 2.0, "friction": 1.0, "actuator_gain": 1.0}
    n = min(len(plain[0]), len(heavy[0]))
    assert np.abs(plain[0][:n] - heavy[0][:n]).max() > 1e-2  # a real change, not rounding


def test_mujoco_parameters_write_the_model_and_close_restores_it():
    env = gym.make("HopperNoVel-v5")
    model = env.unwrapped.model
    mass, friction, gain = model.body_mass.copy(), model.geom_friction.copy(), model.actuator_gainprm.copy()
    wrapped = apply_perturbations(env, ["mass:2", "friction:0.5", "actuator_gain:0.25"])
    wrapped.reset(seed=0)
    np.testing.assert_array_equal(model.body_mass, mass * 2)
    np.testing.assert_array_equal(model.geom_friction[:, 0], friction[:, 0] * 0.5)
    np.testing.assert_array_equal(model.geom_friction[:, 1:], friction[:, 1:])
    np.testing.assert_array_equal(model.actuator_gainprm[:, 0], gain[:, 0] * 0.25)
    # one MujocoParams holds all three: the levels never compound over resets
    wrapped.reset(seed=1)
    np.testing.assert_array_equal(model.body_mass, mass * 2)
    wrapped.close()
    np.testing.assert_array_equal(model.body_mass, mass)
    np.testing.assert_array_equal(model.geom_friction, friction)
    np.testing.assert_array_equal(model.actuator_gainprm, gain)


def test_mujoco_set_params_mid_episode_leaves_the_state_alone():
    env = MujocoParams(gym.make("HopperNoVel-v5"))
    env.reset(seed=0)
    for _ in range(5):
        env.step(env.action_space.sample())
    qpos = env.unwrapped.data.qpos.copy()
    env.set_params(mass=3.0)
    np.testing.assert_array_equal(env.unwrapped.data.qpos, qpos)
    assert env.get_params()["mass"] == 3.0


def test_steering_gain_zero_drives_straight_off_the_first_curve():
    nominal = drive(gym.make(LANE), 5, 600, expert)
    assert nominal[2][-1]["is_success"]
    dead = drive(make_perturbation(gym.make(LANE), "steering_gain:0"), 5, 600, expert)
    infos = dead[2]
    assert not infos[-1]["is_success"] and len(infos) < len(nominal[2])
    assert all(info["steering"] == 0.0 for info in infos)  # the expert steers; the wheels do not turn
    assert abs(infos[-1]["road_curvature"]) > 0.005  # it left the lane in a curve


@pytest.mark.parametrize("wind", [1.0, -1.0])
def test_a_crosswind_drifts_the_car_to_the_lee_side(wind):
    calm = drive(gym.make(LANE), 3, 30)
    windy = drive(make_perturbation(gym.make(LANE), f"crosswind:{wind}"), 3, 30)
    steps = min(len(calm[0]), len(windy[0])) - 1
    drift = windy[0][steps, 0] - calm[0][steps, 0]  # lateral offset, left positive
    expected = wind * steps * 0.05  # 20 Hz: wind * elapsed time, on the straight start
    assert np.sign(drift) == np.sign(wind) and abs(drift - expected) < 0.1 * abs(expected)
    assert windy[2][-1]["crosswind_mps"] == wind and calm[2][-1]["crosswind_mps"] == 0.0


def test_gusts_come_from_the_episode_seed_and_have_the_level_as_standard_deviation():
    def gusts(seed, steps=400):
        env = gym.make(LANE, road_length=1000.0, max_lateral_offset=1e3)
        env.unwrapped.set_params(crosswind_gusts=1.5)
        return np.array([info["crosswind_mps"] for info in drive(env, seed, steps)[2][1:]])

    a, b, c = gusts(1), gusts(1), gusts(2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    both = np.concatenate([a, c, gusts(3), gusts(4)])
    assert 1.0 < both.std() < 2.0 and abs(both.mean()) < 0.75
    assert np.corrcoef(a[:-1], a[1:])[0, 1] > 0.9  # 2 s correlation time at 20 Hz


def test_steering_lag_bias_and_speed_change_the_car():
    full_left = lambda env: np.ones(1, np.float32)  # noqa: E731
    nominal = drive(gym.make(LANE), 3, 6, full_left)
    slow = drive(make_perturbation(gym.make(LANE), "steering_lag:10"), 3, 6, full_left)
    assert 0 < slow[0][-1, 4] < 0.5 * nominal[0][-1, 4]  # wheel angle: the servo follows ten times slower
    drifting = drive(make_perturbation(gym.make(LANE), "steering_bias:0.02"), 3, 40)
    assert drifting[0][-1, 4] > 0.05 and drifting[2][-1]["heading_error_rad"] > nominal[2][0]["heading_error_rad"]
    fast = drive(make_perturbation(gym.make(LANE), "speed:2"), 3, 10)
    calm = drive(gym.make(LANE), 3, 10)
    assert fast[2][-1]["distance_m"] == pytest.approx(2 * calm[2][-1]["distance_m"], rel=0.02)
    assert fast[1].sum() == pytest.approx(2 * calm[1].sum(), rel=0.05)  # progress per metre, as nominal


def test_camera_env_takes_the_same_parameters():
    env = gym.make("LaneKeeping-v0", image_height=24, image_width=32)
    plain = drive(env, 3, 10)
    env2 = make_perturbation(gym.make("LaneKeeping-v0", image_height=24, image_width=32), "crosswind:2")
    windy = drive(env2, 3, 10)
    assert plain[0].shape == windy[0].shape and not np.array_equal(plain[0][-1], windy[0][-1])
    assert windy[2][-1]["lateral_offset_m"] > plain[2][-1]["lateral_offset_m"] + 0.5


def test_parameters_survive_pickling_and_close_restores_them():
    env = gym.make(LANE)
    env.unwrapped.set_params(steering_lag=4.0, crosswind=0.5)
    env.reset(seed=0)
    env.step(np.zeros(1, np.float32))
    copy = pickle.loads(pickle.dumps(env.unwrapped))
    assert copy.get_params() == env.unwrapped.get_params()
    a, b = env.unwrapped.step(np.ones(1, np.float32)), copy.step(np.ones(1, np.float32))
    np.testing.assert_array_equal(a[0], b[0])
    wrapped = make_perturbation(gym.make(LANE), "speed:1.5")
    wrapped.reset(seed=0)
    assert wrapped.unwrapped.get_params()["speed"] == 1.5
    wrapped.close()
    assert wrapped.unwrapped.get_params()["speed"] == 1.0


@pytest.mark.parametrize(
    ("env_id", "spec", "message"),
    [
        ("HopperNoVel-v5", "steering_gain:0.5", "steering_gain applies to the lane-keeping envs"),
        (LANE, "mass:2", "mass, friction and actuator_gain apply to Gymnasium's MuJoCo envs"),
        ("PendulumNoVel-v1", "friction:2", "PendulumNoVel-v1 is not one"),
        (LANE, "steering_lag:0", r"must be in \[0.1, 50.0\]"),
        (LANE, "speed:3", r"must be in \[0.5, 2.0\]"),
        ("HopperNoVel-v5", "mass:0", r"must be in \[0.1, 10.0\]"),
    ],
)
def test_misfits_and_levels_out_of_range_are_refused(env_id, spec, message):
    with pytest.raises(ValueError, match=message):
        make_perturbation(gym.make(env_id), spec)


def test_set_params_refuses_unknown_names_and_bad_values():
    env = gym.make(LANE).unwrapped
    with pytest.raises(ValueError, match="unknown dynamics parameter 'mass'.*valid: steering_gain"):
        env.set_params(mass=2)
    with pytest.raises(ValueError, match="crosswind"):
        env.set_params(crosswind=float("nan"))
    with pytest.raises(TypeError):
        env.set_params(speed="fast")
    assert env.get_params()["speed"] == 1.0
    with pytest.raises(ValueError, match="valid: mass, friction, actuator_gain"):
        MujocoParams(gym.make("HopperNoVel-v5")).set_params(gravity=2)


def test_robustness_cli_sweeps_dynamics_and_refuses_a_misfit_in_one_line(tmp_path, capsys):
    from ncp_control.agents.cli import main

    legacy = "tests/data/legacy_runs"
    out = tmp_path / "mismatch"
    code = main(
        [
            "robustness",
            f"{legacy}/bc-lanekeeping",
            "--perturb",
            "steering_gain:0,1",
            "--perturb",
            "crosswind:0,1",
            "--episodes",
            "2",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    import json

    rows = json.loads((out / "robustness.json").read_text())["rows"]
    assert {(r["perturbation"], r["level"]) for r in rows} >= {("steering_gain", 0.0), ("crosswind", 1.0)}
    capsys.readouterr()
    code = main(
        ["robustness", f"{legacy}/ppo-pendulum", "--perturb", "mass:1,2", "--out", str(tmp_path / "x"), "--quiet"]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "PendulumNoVel-v1 is not one" in err
    assert not (tmp_path / "x").exists()
