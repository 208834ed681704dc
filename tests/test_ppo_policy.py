"""NCPActorCriticPolicy inside sb3-contrib's RecurrentPPO: states, resets, save/load, elapsed time, errors."""

import numpy as np
import pytest
import torch
from gymnasium import spaces
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.env_util import make_vec_env

from ncp_control.policies.elapsed_time import ElapsedTimeObservation
from ncp_control.policies.recurrent_ppo import NCPActorCriticPolicy, build_wiring, motor_count
from tests._ppo_helpers import Counter, CueRecall

torch.set_num_threads(1)

SMALL = {"type": "AutoNCP", "units": 8, "seed": 1}


def _model(env, cell="cfc", n_envs=2, **policy_kwargs):
    venv = make_vec_env(env, n_envs=n_envs, seed=0)
    policy_kwargs = {"cell": cell, "wiring": SMALL, "dt": 0.1, **policy_kwargs}
    return RecurrentPPO(
        NCPActorCriticPolicy,
        venv,
        n_steps=16,
        batch_size=32,
        n_epochs=1,
        seed=0,
        policy_kwargs=policy_kwargs,
        device="cpu",
    )


@pytest.mark.parametrize("cell", ["cfc", "ltc"])
def test_predict_state_shapes_and_values(cell):
    model = _model(CueRecall, cell)
    obs = np.array([[1.0, 1.0], [-1.0, 1.0], [0.0, 0.0]], np.float32)
    actions, state = model.predict(obs, state=None, episode_start=np.ones(3, bool), deterministic=True)
    assert actions.shape == (3, 1)
    h, c = state
    assert h.shape == c.shape == (1, 3, model.policy.state_size) == (1, 3, 8)
    assert np.count_nonzero(c) == 0  # the cell's state lives in h; c stays zero
    assert np.all(np.any(h != 0, axis=2))  # every env's state moved
    assert not np.allclose(h[0, 0], h[0, 1])  # and depends on its own observation


@pytest.mark.parametrize("cell", ["cfc", "ltc"])
def test_predict_zeroes_state_exactly_for_envs_that_start(cell):
    model = _model(CueRecall, cell)
    obs = np.random.default_rng(0).uniform(-1, 1, (2, 2)).astype(np.float32)
    _, state = model.predict(obs, episode_start=np.ones(2, bool))
    _, state = model.predict(obs, state=state, episode_start=np.zeros(2, bool))
    # env 0 starts a new episode, env 1 continues
    a, s = model.predict(obs, state=state, episode_start=np.array([True, False]), deterministic=True)
    a_fresh, s_fresh = model.predict(obs[:1], state=None, episode_start=np.array([True]), deterministic=True)
    a_cont, s_cont = model.predict(
        obs[1:], state=tuple(x[:, 1:] for x in state), episode_start=np.array([False]), deterministic=True
    )
    np.testing.assert_allclose(a[0], a_fresh[0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(s[0][0, 0], s_fresh[0][0, 0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(a[1], a_cont[0], rtol=0, atol=1e-6)
    assert not np.allclose(
        a[0], model.predict(obs, state=state, episode_start=np.zeros(2, bool), deterministic=True)[0][0]
    )


def test_rollout_resets_state_exactly_at_episode_starts_mid_rollout():
    """In a vector env whose copies end episodes at different steps, the state entering the cell is exactly
    zero for a copy on the step its episode starts, and non-zero on the other steps."""
    venv = make_vec_env(Counter, n_envs=2, seed=0, env_kwargs=None)
    venv.envs[0].unwrapped.length = 3  # copy 0: episodes of 3 steps, copy 1: 4 steps
    model = RecurrentPPO(
        NCPActorCriticPolicy,
        venv,
        n_steps=12,
        batch_size=24,
        n_epochs=1,
        seed=0,
        policy_kwargs={"cell": "cfc", "wiring": SMALL, "dt": 0.05},
        device="cpu",
    )
    core = model.policy.actor_core
    seen = []
    original = core.cell_step

    def recording(x, state, dt):
        if x.shape[0] == 2:  # rollout steps (batch = n_envs); training runs sequences of other sizes
            seen.append(state.detach().clone())
        return original(x, state, dt)

    core.cell_step = recording
    model.learn(12)
    starts = torch.stack(seen[:12]).numpy()  # (12 steps, 2 envs, S)
    expected_start = {0: {0, 3, 6, 9}, 1: {0, 4, 8}}
    for env in (0, 1):
        for t in range(12):
            zero = not np.any(starts[t, env])
            assert zero == (t in expected_start[env]), (env, t)


@pytest.mark.parametrize("cell", ["cfc", "ltc"])
def test_training_sequences_reproduce_rollout_log_probs(cell):
    """The buffer's padded, episode-cut sequences replayed through the policy give the rollout's log-probs:
    resets and padding are handled identically in acting and training."""
    venv = make_vec_env(Counter, n_envs=2, seed=0)
    venv.envs[0].unwrapped.length = 3
    model = RecurrentPPO(
        NCPActorCriticPolicy,
        venv,
        n_steps=16,
        batch_size=12,
        n_epochs=1,
        seed=0,
        policy_kwargs={"cell": cell, "wiring": SMALL, "dt": 0.05},
        device="cpu",
    )
    _, callback = model._setup_learn(16, None)
    model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=16)
    checked = 0
    for batch in model.rollout_buffer.get(12):
        with torch.no_grad():
            _, log_prob, _ = model.policy.evaluate_actions(
                batch.observations, batch.actions, batch.lstm_states, batch.episode_starts
            )
        mask = batch.mask > 0
        torch.testing.assert_close(log_prob[mask], batch.old_log_prob[mask], rtol=1e-5, atol=1e-5)
        checked += int(mask.sum())
    assert checked == 32


@pytest.mark.parametrize("cell", ["cfc", "ltc"])
def test_save_load_round_trip_gives_identical_actions(cell, tmp_path):
    model = _model(CueRecall, cell)
    model.learn(64)
    model.save(tmp_path / "m.zip")
    loaded = RecurrentPPO.load(tmp_path / "m.zip", device="cpu")
    obs = np.random.default_rng(1).uniform(-1, 1, (6, 2, 2)).astype(np.float32)
    state_a = state_b = None
    starts = np.ones(2, bool)
    for t in range(6):
        a, state_a = model.predict(obs[t], state=state_a, episode_start=starts, deterministic=True)
        b, state_b = loaded.predict(obs[t], state=state_b, episode_start=starts, deterministic=True)
        assert np.array_equal(a, b)
        assert np.array_equal(state_a[0], state_b[0])
        starts = np.array([False, t == 2])
    for p, q in zip(model.policy.state_dict().values(), loaded.policy.state_dict().values()):
        assert torch.equal(p, q)
    assert loaded.policy.wiring_spec == SMALL and loaded.policy.dt == 0.1
    # the policy alone round-trips too (policy.save / NCPActorCriticPolicy.load)
    model.policy.save(tmp_path / "policy.pt")
    policy = NCPActorCriticPolicy.load(tmp_path / "policy.pt")
    a, _ = model.policy.predict(obs[0], episode_start=np.ones(2, bool), deterministic=True)
    b, _ = policy.predict(obs[0], episode_start=np.ones(2, bool), deterministic=True)
    assert np.array_equal(a, b)


def test_elapsed_time_from_the_observation_reaches_the_cell():
    env = ElapsedTimeObservation(Counter())
    assert isinstance(env.observation_space, spaces.Dict)
    obs, _ = env.reset(seed=0)
    assert obs["elapsed_time"].tolist() == [np.float32(0.05)]
    model = RecurrentPPO(
        NCPActorCriticPolicy,
        make_vec_env(lambda: ElapsedTimeObservation(Counter()), n_envs=2),
        n_steps=16,
        batch_size=32,
        n_epochs=1,
        seed=0,
        device="cpu",
        policy_kwargs={"cell": "ltc", "wiring": SMALL, "dt": 0.05},
    )
    model.learn(32)  # padded steps carry elapsed_time 0: must not produce NaN
    assert all(torch.isfinite(p).all() for p in model.policy.parameters())
    x = np.array([[0.3, -0.2]], np.float32)
    _, short = model.predict(
        {"observation": x, "elapsed_time": np.array([[0.05]], np.float32)}, episode_start=np.ones(1, bool)
    )
    _, long = model.predict(
        {"observation": x, "elapsed_time": np.array([[2.0]], np.float32)}, episode_start=np.ones(1, bool)
    )
    assert not np.allclose(short[0], long[0])
    # time in the observation counts in units of dt: 0.1 s at dt = 0.05 s is the same as 2 units
    _, a = model.predict(
        {"observation": x, "elapsed_time": np.array([[0.1]], np.float32)}, episode_start=np.ones(1, bool)
    )
    model.policy.time_unit = 1.0  # seconds; now 2 units of cell time need 2 s
    _, b = model.predict(
        {"observation": x, "elapsed_time": np.array([[2.0]], np.float32)}, episode_start=np.ones(1, bool)
    )
    np.testing.assert_allclose(a[0], b[0], rtol=1e-6)


def test_plain_observations_step_the_cell_by_dt_in_time_units():
    x = np.array([[0.3, -0.2]], np.float32)
    plain = _model(Counter, "ltc", dt=0.05)  # time_unit None: every step is 1 unit
    s1 = plain.predict(x, episode_start=np.ones(1, bool))[1][0]
    plain.policy.dt = 2.0
    assert np.array_equal(s1, plain.predict(x, episode_start=np.ones(1, bool))[1][0])
    plain.policy.time_unit = 1.0  # seconds: now a 2 s step differs from a 1 unit step
    s2 = plain.predict(x, episode_start=np.ones(1, bool))[1][0]
    assert not np.allclose(s1, s2)


def test_info_elapsed_time_overrides_the_nominal_dt():
    class Irregular(Counter):
        def step(self, action):
            obs, r, term, trunc, info = super().step(action)
            info["elapsed_time"] = 0.05 * (1 + self.t % 3)
            return obs, r, term, trunc, info

    env = ElapsedTimeObservation(Irregular(length=10))
    env.reset(seed=0)
    times = [env.step(np.zeros(1))[0]["elapsed_time"][0] for _ in range(3)]
    np.testing.assert_allclose(times, [0.1, 0.15, 0.05], rtol=1e-6)


def test_discrete_actions_use_motor_neurons_as_logits():
    import gymnasium as gym

    model = RecurrentPPO(
        NCPActorCriticPolicy,
        "CartPole-v1",
        n_steps=32,
        batch_size=32,
        n_epochs=1,
        seed=0,
        policy_kwargs={"cell": "cfc", "wiring": SMALL, "dt": 0.02},
        device="cpu",
    )
    assert model.policy.actor_core.output_size == 2 == motor_count(gym.spaces.Discrete(2))
    model.learn(64)
    actions, _ = model.predict(np.zeros((3, 4), np.float32), episode_start=np.ones(3, bool))
    assert actions.shape == (3,) and set(actions.tolist()) <= {0, 1}


def test_box_action_means_are_scaled_to_the_action_bounds():
    model = RecurrentPPO(
        NCPActorCriticPolicy,
        "Pendulum-v1",
        n_steps=16,
        batch_size=16,
        n_epochs=1,
        seed=0,
        policy_kwargs={"cell": "cfc", "wiring": SMALL, "dt": 0.05},
        device="cpu",
    )
    scale = model.policy.action_net
    torch.testing.assert_close(scale(torch.tensor([[1.0], [-1.0], [0.0]])), torch.tensor([[2.0], [-2.0], [0.0]]))


def test_recurrent_critic_and_pre_cell_mlp():
    model = _model(CueRecall, "cfc", critic="recurrent", critic_units=12, net_arch={"pi": [16], "vf": [8]})
    assert model.policy.critic_core.state_size == 12
    assert model.policy.state_size == 12  # max(actor 8, critic 12)
    model.learn(32)
    _, state = model.predict(np.zeros((2, 2), np.float32), episode_start=np.ones(2, bool))
    assert state[0].shape == (1, 2, 12)


@pytest.mark.parametrize("critic_cell, state", [("lstm", 24), ("cfc", 12), ("ltc", 12)])
def test_recurrent_critic_of_another_kind_round_trips(critic_cell, state, tmp_path):
    model = _model(CueRecall, "ltc", critic="recurrent", critic_units=12, critic_cell=critic_cell)
    assert model.policy.critic_core.kind == critic_cell
    assert model.policy.state_size == state  # an LSTM's state is (h, c)
    model.learn(32)
    model.save(tmp_path / "m.zip")
    loaded = RecurrentPPO.load(tmp_path / "m.zip", device="cpu")
    assert loaded.policy.critic_cell == critic_cell
    obs = np.random.default_rng(2).uniform(-1, 1, (2, 2)).astype(np.float32)
    starts = np.ones(2, bool)
    values = [
        m.policy.predict_values(torch.as_tensor(obs), (torch.zeros(1, 2, state),) * 2, torch.as_tensor(starts))
        for m in (model, loaded)
    ]
    torch.testing.assert_close(values[0], values[1], rtol=0, atol=0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"cell": "gru"}, "cell must be one of"),
        ({"critic": "lstm"}, "critic must be one of"),
        ({"critic_cell": "cfc"}, "needs critic='recurrent'"),
        ({"critic": "recurrent", "critic_cell": "gru"}, "critic_cell must be one of"),
        ({"dt": 0.0}, "dt must be a positive"),
        ({"time_unit": -1.0}, "time_unit must be a positive"),
        ({"wiring": {"type": "Random", "units": 8}}, "wiring type must be one of"),
        ({"wiring": {"type": "AutoNCP", "units": 8, "output_size": 2}}, "motor count comes from the action space"),
        ({"wiring": {"type": "AutoNCP", "unit": 8}}, "does not take"),
        ({"wiring": {"units": 8}}, "'type' key"),
        ({"net_arch": {"pi": [8], "qf": [8]}}, "net_arch must be a dict"),
    ],
)
def test_bad_policy_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _model(CueRecall, **kwargs)


def test_dict_observations_other_than_timed_are_rejected():
    space = spaces.Dict({"a": spaces.Box(-1, 1, (2,)), "b": spaces.Box(-1, 1, (1,))})
    with pytest.raises(ValueError, match="ElapsedTimeObservation"):
        NCPActorCriticPolicy(space, spaces.Box(-1, 1, (1,)), lambda _: 1e-3)


def test_build_wiring_sets_the_motor_count():
    w = build_wiring(
        {
            "type": "NCP",
            "inter_neurons": 6,
            "command_neurons": 4,
            "sensory_fanout": 3,
            "inter_fanout": 2,
            "recurrent_command_synapses": 2,
            "motor_fanin": 2,
            "seed": 3,
        },
        3,
    )
    assert w.output_dim == 3 and w.units == 13
    assert build_wiring({"type": "FullyConnected", "units": 5}, 2).output_dim == 2


def test_gsde_uses_the_whole_actor_state_as_exploration_features():
    venv = make_vec_env(Counter, n_envs=2, seed=0)
    venv.envs[0].unwrapped.length = 3
    model = RecurrentPPO(
        NCPActorCriticPolicy,
        venv,
        n_steps=16,
        batch_size=12,
        n_epochs=1,
        seed=0,
        use_sde=True,
        sde_sample_freq=4,
        policy_kwargs={"cell": "cfc", "wiring": SMALL, "dt": 0.05},
        device="cpu",
    )
    assert tuple(model.policy.log_std.shape) == (8, 1)  # (state size, actions)
    _, callback = model._setup_learn(16, None)
    model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=16)
    for batch in model.rollout_buffer.get(12):
        with torch.no_grad():
            _, log_prob, _ = model.policy.evaluate_actions(
                batch.observations, batch.actions, batch.lstm_states, batch.episode_starts
            )
        mask = batch.mask > 0
        torch.testing.assert_close(log_prob[mask], batch.old_log_prob[mask], rtol=1e-5, atol=1e-5)
    model.learn(32)
    assert all(torch.isfinite(p).all() for p in model.policy.parameters())


@pytest.mark.parametrize("cell", ["ltc", "cfc"])
def test_camera_observations_use_the_imitation_conv_head(cell):
    """Image observations go through ConvHead (the imitation models' conv head), also after SB3 transposes them."""
    import gymnasium as gym

    import tests.imitation_synthetic  # noqa: F401  registers the 16x32 camera env
    from ncp_control.inspect import circuit_from_policy, saliency_maps
    from ncp_control.policies.recurrent_ppo import ConvHeadExtractor

    env = make_vec_env(lambda: gym.make(tests.imitation_synthetic.ENV_ID), n_envs=2, seed=0)
    model = RecurrentPPO(
        NCPActorCriticPolicy,
        env,
        n_steps=16,
        batch_size=32,
        n_epochs=1,
        seed=0,
        policy_kwargs=dict(
            cell=cell,
            wiring={"type": "AutoNCP", "units": 8},
            dt=0.1,
            features_extractor_kwargs=dict(features=8, channels=(4, 4, 4, 4, 4)),
        ),
    )
    extractor = model.policy.features_extractor
    assert isinstance(extractor, ConvHeadExtractor) and extractor.channels_first  # VecTransposeImage applied
    before = [p.detach().clone() for p in extractor.parameters()]
    model.learn(64)
    assert any(not torch.equal(a, b) for a, b in zip(before, extractor.parameters()))  # the head trains
    obs = env.reset()
    actions, state = model.predict(obs, None, np.ones(2, bool), deterministic=True)
    assert actions.shape == (2, 1) and np.all(np.isfinite(actions))
    frames = np.stack([obs[0]] * 2)  # (T, 3, H, W): the policy's (transposed) observation format
    masks = saliency_maps(circuit_from_policy(model.policy), frames)
    assert masks.shape == (2, 16, 32)
    with pytest.raises(ValueError, match="image space"):
        ConvHeadExtractor(spaces.Box(0, 1, (4,)))
