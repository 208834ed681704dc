"""ncp_control.agents.evaluation.episodes.evaluate and ncp_control.agents.runs.load.load_run: metrics on known tiny envs, seeds, errors."""

import json

import numpy as np
import pytest
from gymnasium import spaces

from ncp_control.agents.evaluation.episodes import evaluate
from ncp_control.agents.runs.load import LOADERS, load_run, read_config
from tests._ppo_helpers import register_test_envs

register_test_envs()


class Scripted:
    """A Predictor that records what it is given: action = first observation entry (the counter t/10),
    state = number of steps since the copy's episode start."""

    observation_space = spaces.Box(-10.0, 10.0, (2,), np.float32)
    action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self):
        self.calls = []

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        n = observation.shape[0]
        state = np.zeros(n, int) if state is None else state.copy()
        state[episode_start] = 0
        self.calls.append((observation.copy(), episode_start.copy(), state.copy()))
        return observation[:, :1].copy(), state + 1


def test_returns_lengths_and_seeds_on_a_known_env():
    result = evaluate(Scripted(), "Counter-v0", episodes=3, seed=10)
    assert result["returns"] == [4.0, 4.0, 4.0] and result["lengths"] == [4, 4, 4]
    assert result["mean_return"] == 4.0 and result["std_return"] == 0.0 and result["episodes"] == 3
    assert result["seeds"] == [10, 11, 12]
    assert "completion_rate" not in result


def test_episode_seeds_do_not_depend_on_n_envs():
    """Episode i is reset with seed + i: the same initial observations whatever the parallelism."""
    firsts = {}
    for n_envs in (1, 2, 3):
        p = Scripted()
        evaluate(p, "Counter-v0", episodes=3, seed=5, n_envs=n_envs)
        starts = [obs[i, 1] for obs, start, _ in p.calls for i in np.flatnonzero(start)]
        firsts[n_envs] = sorted(starts)
    assert firsts[1] == firsts[2] == firsts[3]
    assert len(set(firsts[1])) == 3  # three different episodes


def test_state_is_restarted_for_each_new_episode_of_a_copy():
    p = Scripted()
    evaluate(p, "Counter-v0", episodes=4, seed=0, n_envs=2)
    steps_since_start = [state for _, _, state in p.calls]
    # two copies, episodes of 4 steps: the state counts 0..3 twice per copy
    assert [s.tolist() for s in steps_since_start] == [[0, 0], [1, 1], [2, 2], [3, 3]] * 2


def test_lane_keeping_metrics():
    result = evaluate(Scripted(), "CounterLane-v0", episodes=2, seed=0)
    # actions = t/10 of the previous observation: 0.0, 0.1, 0.2, 0.3 -> |lateral| mean 0.15, |delta| 0.1
    assert result["completion_rate"] == 1.0
    assert result["mean_abs_lateral_m"] == pytest.approx(0.15)
    assert result["steering_smoothness"] == pytest.approx(0.1)
    assert result["departures_per_km"] == 0.0
    assert result["distances_m"] == [8.0, 8.0]
    assert result["abs_lateral_m"] == pytest.approx([0.15, 0.15])
    assert result["crashes"] == [False, False] and result["crash_rate"] == 0.0
    failing = evaluate(Scripted(), "CounterLaneFail-v0", episodes=2, seed=0)
    assert failing["completion_rate"] == 0.0
    assert failing["departures_per_km"] == pytest.approx(2 / 0.016)  # 2 departures in 16 m
    assert failing["crashes"] == [True, True] and failing["crash_rate"] == 1.0


def test_evaluate_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown environment id"):
        evaluate(Scripted(), "NoSuchEnv-v9", episodes=1, seed=0)
    with pytest.raises(ValueError, match="episodes must be a positive int"):
        evaluate(Scripted(), "Counter-v0", episodes=0, seed=0)
    with pytest.raises(ValueError, match="n_envs must be a positive int"):
        evaluate(Scripted(), "Counter-v0", episodes=1, seed=0, n_envs=0)
    with pytest.raises(ValueError, match="does not fit this environment"):
        evaluate(Scripted(), "CartPole-v1", episodes=1, seed=0)


def test_wrappers_are_applied():
    from gymnasium.wrappers import TransformObservation

    double = lambda env: TransformObservation(env, lambda o: o * 2, env.observation_space)  # noqa: E731
    p = Scripted()
    evaluate(p, "Counter-v0", episodes=1, seed=0, wrappers=[double])
    assert p.calls[1][0][0, 0] == pytest.approx(0.2)


def test_load_run_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_run(tmp_path / "missing")
    with pytest.raises(ValueError, match="no config.json"):
        load_run(tmp_path)
    (tmp_path / "config.json").write_text("{broken")
    with pytest.raises(ValueError, match="corrupt"):
        load_run(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"kind": "ppo", "env_id": "X"}))
    with pytest.raises(ValueError, match="lacks required keys"):
        read_config(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"kind": "sac", "env_id": "X", "policy": "mlp", "seed": 0}))
    with pytest.raises(ValueError, match="unknown run kind 'sac'"):
        load_run(tmp_path)
    assert set(LOADERS) == {"ppo", "bc", "rllib"}


def test_load_run_without_model(tmp_path):
    from ncp_control.agents.ppo import resolve_config

    config = resolve_config("Pendulum-v1", "cfc", timesteps=10)
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="nothing to load"):
        load_run(tmp_path)
    (tmp_path / "model.zip").write_text("not a zip")
    with pytest.raises(ValueError, match="load_sb3_predictor only if you trust"):  # SB3's zip is never unpickled
        load_run(tmp_path)
    (tmp_path / "policy.pt").write_text("not a torch file")
    with pytest.raises(ValueError, match="cannot load policy weights .*policy.pt"):
        load_run(tmp_path)


def test_run_env_kwargs_for_ppo_and_imitation_configs(tmp_path):
    from ncp_control.agents.runs.load import LoadedRun

    ppo = LoadedRun(tmp_path, {"kind": "ppo", "env_kwargs": {"a": 1}}, None)
    bc = LoadedRun(tmp_path, {"kind": "bc", "training": {"env_kwargs": {"image_height": 32}}}, None)
    bare = LoadedRun(tmp_path, {"kind": "bc"}, None)
    assert ppo.env_kwargs == {"a": 1} and bc.env_kwargs == {"image_height": 32} and bare.env_kwargs == {}


def test_module_prefixed_env_id_imports_the_registering_module():
    from ncp_control.agents.evaluation.episodes import make_eval_env

    env = make_eval_env("tests.imitation_synthetic:TinyLane-v0", allow_import=True)  # named by the user
    assert env.observation_space.shape == (16, 32, 3)
    env.close()
    with pytest.raises(ValueError, match="cannot import"):
        make_eval_env("no_such_module_xyz:Nothing-v0", allow_import=True)


def test_an_env_id_from_a_run_config_cannot_import_a_module(tmp_path, capsys):
    """A crafted config.json naming ``os:system`` (or any module) as the env: nothing is imported, clear refusal."""
    from ncp_control.agents.cli import main
    from ncp_control.agents.evaluation.episodes import make_eval_env

    with pytest.raises(ValueError, match="--env os:system"):
        make_eval_env("os:system")
    with pytest.raises(ValueError, match="not one of this project's env modules"):
        make_eval_env("antigravity:Fly-v0")  # importing it would open a web browser
    import sys

    assert "antigravity" not in sys.modules
    from tests._robust_helpers import write_untrained_bc_run

    run = write_untrained_bc_run(tmp_path / "run", height=8, width=16)
    config = json.loads((run / "config.json").read_text())
    config["env_id"] = "os:system"
    (run / "config.json").write_text(json.dumps(config))
    assert main(["evaluate", str(run), "--episodes", "1"]) == 2
    assert "os:system" in capsys.readouterr().err


def test_evaluate_command_uses_an_imitation_run_s_training_env_kwargs(tmp_path, capsys):
    import tests.imitation_synthetic  # noqa: F401  registers TinyLane-v0
    from ncp_control.agents.cli import main
    from tests._robust_helpers import write_untrained_bc_run

    run = write_untrained_bc_run(tmp_path / "run", height=8, width=16)  # not the env's default 16x32
    assert main(["evaluate", str(run), "--episodes", "1", "--seed", "1000000", "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["episodes"] == 1


def test_a_channels_first_image_model_fits_a_channels_last_camera_env():
    """SB3 keeps camera models' observation space channels-first (VecTransposeImage) and transposes in predict;
    evaluate must accept them on the channels-last env and still refuse an image of another size."""
    import gymnasium as gym
    import numpy as np

    from ncp_control.agents.evaluation.episodes import check_spaces_fit

    class Env:
        observation_space = gym.spaces.Box(0, 255, (64, 128, 3), np.uint8)
        action_space = gym.spaces.Box(-1, 1, (1,), np.float32)

    class Model:
        observation_space = gym.spaces.Box(0, 255, (3, 64, 128), np.uint8)
        action_space = Env.action_space

    check_spaces_fit(Model(), Env())
    Model.observation_space = gym.spaces.Box(0, 255, (3, 48, 128), np.uint8)
    with pytest.raises(ValueError, match="does not fit"):
        check_spaces_fit(Model(), Env())
