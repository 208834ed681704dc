"""The PPO policy's LTC actor initialisation (LTCActorInit) and the native-kernel recurrent critic."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gymnasium import spaces
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.env_util import make_vec_env

from ncp_control.cells import cfc_fast
from ncp_control.inspect.actor_response import actor_response, lag_gains
from ncp_control.policies.ltc_actor_init import DEFAULT_LTC_ACTOR_INIT, LTCActorInit
from ncp_control.policies.recurrent_ppo import NCPActorCriticPolicy
from tests._ppo_helpers import CueRecall

torch.set_num_threads(1)

SMALL = {"type": "AutoNCP", "units": 8, "seed": 1}


def _pendulum_like_policy(seed: int, **kwargs) -> NCPActorCriticPolicy:
    """The PendulumNoVel-v1 LTC preset's actor: 2 observations, torque in [-2, 2], 32-unit input layer."""
    torch.manual_seed(seed)
    return NCPActorCriticPolicy(
        spaces.Box(-np.inf, np.inf, (2,)),
        spaces.Box(-2, 2, (1,)),
        lambda _: 1e-3,
        cell="ltc",
        net_arch={"pi": [32], "vf": [64, 64]},
        dt=0.05,
        **kwargs,
    )


def test_default_ltc_actor_answers_weakly_and_late_to_its_input():
    """The diagnosis in docs/ppo.md, as a property of the default construction (ncps's initialisation): over
    N(0, 1) observations the untrained actor's action spreads by a few hundredths on a [-2, 2] torque (the CfC
    actor's: 0.1-0.3), and it depends more on the previous observation than on the current one."""
    for seed in range(2):
        policy = _pendulum_like_policy(seed)
        response = actor_response(policy, steps=60, seed=seed)
        assert 0.03 <= response.action_std <= 0.12, (seed, response)
        lags = lag_gains(policy, steps=40, seed=seed, lags=(0, 1))
        assert lags[1] > lags[0], (seed, lags)


def test_output_gain_gives_the_cfc_actors_action_spread():
    for seed in range(2):
        gained = actor_response(
            _pendulum_like_policy(seed, ltc_init={"output_gain": 4.0, "centre_output": True}), steps=60, seed=seed
        )
        ncps = actor_response(_pendulum_like_policy(seed, ltc_init="ncps"), steps=60, seed=seed)
        assert 0.15 <= gained.action_std <= 0.6, (seed, gained)
        assert gained.action_std == pytest.approx(4 * ncps.action_std, rel=1e-4)  # the gain is all that changed
        assert abs(gained.action_mean) < 0.6, (seed, gained)


def test_smaller_capacitance_makes_the_actor_answer_the_current_observation():
    policy = _pendulum_like_policy(0, ltc_init={"cm": [0.3, 0.5]})
    lags = lag_gains(policy, steps=40, seed=0, lags=(0, 1, 2))
    assert lags[0] > lags[1] > lags[2], lags


def test_centre_output_puts_the_resting_action_at_the_box_centre():
    policy = _pendulum_like_policy(0, ltc_init={"output_gain": 4.0, "centre_output": True})
    cell = policy.actor_core.cell
    rest_input = policy.actor_mlp(torch.zeros(1, 2))
    state = torch.zeros(1, cell.state_size)
    with torch.no_grad():
        for _ in range(50):
            out, state = cell(rest_input, state, 1.0)
    assert abs(float(out)) < 1e-4
    assert float(cell.output_w.detach()) == 4.0


def test_ranges_set_the_softplus_values():
    policy = _pendulum_like_policy(0, ltc_init={"gleak": [0.05, 0.5], "cm": [2.0, 8.0]})
    cell = policy.actor_core.cell
    gleak, cm = F.softplus(cell.gleak.detach()), F.softplus(cell.cm.detach())
    assert 0.05 - 1e-5 <= float(gleak.min()) and float(gleak.max()) <= 0.5 + 1e-5
    assert 2.0 - 1e-4 <= float(cm.min()) and float(cm.max()) <= 8.0 + 1e-4
    assert float(cm.std()) > 0.5  # drawn, not a constant
    assert float(cell.output_w.detach()) == 1.0  # untouched fields keep ncps's values


def test_spec_round_trip_and_ncps():
    init = LTCActorInit.from_spec({"output_gain": 3, "cm": [1, 4], "centre_output": True})
    assert LTCActorInit.from_spec(init.to_spec()) == init
    assert LTCActorInit.from_spec(None) == DEFAULT_LTC_ACTOR_INIT == LTCActorInit()  # ncps's (see the module)
    assert LTCActorInit.from_spec("ncps") == LTCActorInit()


@pytest.mark.parametrize(
    "spec, match",
    [
        ("default", "ltc_init must be None, 'ncps' or a dict"),
        ({"gain": 2.0}, "does not take"),
        ({"output_gain": 0.0}, "output_gain must be a positive"),
        ({"output_gain": True}, "output_gain must be a positive"),
        ({"cm": [2.0, 1.0]}, "cm must be"),
        ({"gleak": [0.0, 1.0]}, "gleak must be"),
        ({"gleak": 0.5}, "gleak must be"),
        ({"centre_output": "yes"}, "centre_output must be true or false"),
    ],
)
def test_bad_specs_raise(spec, match):
    with pytest.raises(ValueError, match=match):
        LTCActorInit.from_spec(spec)


def test_ltc_init_is_for_ltc_actors_only():
    with pytest.raises(ValueError, match="ltc_init applies only to cell='ltc'"):
        NCPActorCriticPolicy(
            spaces.Box(-1, 1, (2,)), spaces.Box(-1, 1, (1,)), lambda _: 1e-3, cell="cfc", ltc_init="ncps"
        )


def _model(critic_cell, **kwargs):
    venv = make_vec_env(CueRecall, n_envs=2, seed=0)
    policy_kwargs = {
        "cell": "ltc",
        "wiring": SMALL,
        "dt": 0.1,
        "critic": "recurrent",
        "critic_units": 12,
        "critic_cell": critic_cell,
        **kwargs,
    }
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


def test_fully_connected_cfc_critic_runs_on_the_native_kernel_and_round_trips(tmp_path):
    model = _model("cfc", critic_wiring="fully_connected", ltc_init={"output_gain": 2.0})
    core = model.policy.critic_core
    assert core.wiring is not None and core.output_size == core.state_size == 12  # every neuron feeds the MLP
    x, state = torch.randn(3, 5, 2), core.initial_state(3)
    assert cfc_fast.fast_path_available(core.cell, x, state)
    model.learn(64)
    model.save(tmp_path / "m.zip")
    loaded = RecurrentPPO.load(tmp_path / "m.zip", device="cpu")
    assert loaded.policy.critic_wiring == "fully_connected"
    assert loaded.policy.ltc_init == LTCActorInit(output_gain=2.0)
    obs = np.random.default_rng(2).uniform(-1, 1, (2, 2)).astype(np.float32)
    state = None
    for t in range(4):  # carried state and a reset of env 0 at step 2
        starts = np.array([t in (0, 2), t == 0])
        values = []
        for m in (model, loaded):
            h = torch.zeros(1, 2, 12) if state is None else state
            values.append(m.policy.predict_values(torch.as_tensor(obs), (h, h * 0), torch.as_tensor(starts)))
        torch.testing.assert_close(values[0], values[1], rtol=0, atol=0)
        a, state_a = model.predict(
            obs, state=None if state is None else (state.numpy(),) * 2, episode_start=starts, deterministic=True
        )
        b, _ = loaded.predict(
            obs, state=None if state is None else (state.numpy(),) * 2, episode_start=starts, deterministic=True
        )
        np.testing.assert_array_equal(a, b)
        state = torch.as_tensor(state_a[0])


def test_critic_state_resets_exactly_at_episode_start():
    model = _model("cfc", critic_wiring="fully_connected")
    policy = model.policy
    obs = torch.as_tensor(np.random.default_rng(0).uniform(-1, 1, (2, 2)).astype(np.float32))
    carried = torch.randn(1, 2, 12)
    starts = torch.tensor([1.0, 0.0])
    values = policy.predict_values(obs, (carried, carried * 0), starts)
    fresh = policy.predict_values(obs, (torch.zeros(1, 2, 12),) * 2, starts)
    torch.testing.assert_close(values[0], fresh[0], rtol=0, atol=0)  # env 0 started: the carried state is gone
    assert not torch.allclose(values[1], fresh[1])  # env 1 continues from its carried state


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"critic_cell": "lstm", "critic_wiring": "fully_connected"}, "critic_wiring='fully_connected' needs"),
        ({"critic_cell": "cfc", "critic_wiring": "sparse"}, "critic_wiring must be one of"),
    ],
)
def test_bad_critic_wiring_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _model(**kwargs)


def test_ltc_lr_scale_steps_the_cell_at_a_multiple_of_the_rate_and_survives_the_schedule(tmp_path):
    """With Adam the first step moves every parameter by about lr (sign of the gradient): the LTC cell's
    parameters move ltc_lr_scale times as far as the MLP's, also after SB3 rewrote the groups' lr, and the groups'
    stored lr stays the schedule's value."""
    moves = {}
    for scale in (1.0, 10.0):
        model = _model("cfc", critic_wiring="fully_connected", ltc_lr_scale=scale)
        policy = model.policy
        before = {name: p.detach().clone() for name, p in policy.named_parameters()}
        model.learn(32)  # one rollout, one epoch: a single batch
        assert [g["lr"] for g in policy.optimizer.param_groups] == [pytest.approx(3e-4)] * len(
            policy.optimizer.param_groups
        )
        delta = {name: (p.detach() - before[name]).abs().max().item() for name, p in policy.named_parameters()}
        moves[scale] = (
            max(v for n, v in delta.items() if n.startswith("actor_core.cell.")),
            max(v for n, v in delta.items() if n.startswith("critic_mlp.")),
        )
        assert len(policy.optimizer.param_groups) == (1 if scale == 1.0 else 2)
    cell_1, mlp_1 = moves[1.0]
    cell_10, mlp_10 = moves[10.0]
    assert mlp_10 == pytest.approx(mlp_1, rel=0.2)  # the rest learns at the rate itself
    assert cell_10 > 5 * cell_1  # Adam: ~lr per step, times the scale
    model.save(tmp_path / "m.zip")
    loaded = RecurrentPPO.load(tmp_path / "m.zip", device="cpu")
    assert loaded.policy.ltc_lr_scale == 10.0
    assert [g.get("lr_scale", 1.0) for g in loaded.policy.optimizer.param_groups] == [1.0, 10.0]


def test_ltc_output_lr_scale_steps_the_motor_output_map_at_its_own_multiple(tmp_path):
    """ltc_output_lr_scale=1 beside ltc_lr_scale=10: the cell's output map (output_w, output_b) moves about as far
    as the MLPs (Adam: ~lr per step), the rest of the cell 10x as far; three groups, kept through save and load."""
    model = _model("cfc", critic_wiring="fully_connected", ltc_lr_scale=10.0, ltc_output_lr_scale=1.0)
    policy = model.policy
    before = {name: p.detach().clone() for name, p in policy.named_parameters()}
    model.learn(32)
    delta = {name: (p.detach() - before[name]).abs().max().item() for name, p in policy.named_parameters()}
    output_map = max(delta["actor_core.cell.output_w"], delta["actor_core.cell.output_b"])
    rest_of_cell = max(v for n, v in delta.items() if n.startswith("actor_core.cell.") and "output_" not in n)
    mlp = max(v for n, v in delta.items() if n.startswith("critic_mlp."))
    assert output_map == pytest.approx(mlp, rel=0.2)
    assert rest_of_cell > 5 * output_map
    assert [g.get("lr_scale", 1.0) for g in policy.optimizer.param_groups] == [1.0, 10.0, 1.0]
    assert [len(g["params"]) for g in policy.optimizer.param_groups][2] == 2
    model.save(tmp_path / "m.zip")
    loaded = RecurrentPPO.load(tmp_path / "m.zip", device="cpu")
    assert (loaded.policy.ltc_lr_scale, loaded.policy.ltc_output_lr_scale) == (10.0, 1.0)
    assert [g.get("lr_scale", 1.0) for g in loaded.policy.optimizer.param_groups] == [1.0, 10.0, 1.0]
    # without it the output map steps with the rest of the cell, in the cell's group (models saved before it load)
    assert len(_model("cfc", critic_wiring="fully_connected", ltc_lr_scale=10.0).policy.optimizer.param_groups) == 2


@pytest.mark.parametrize("option", ["ltc_lr_scale", "ltc_output_lr_scale"])
@pytest.mark.parametrize("value", [0, -1.0, float("nan"), "10", True])
def test_ltc_lr_scales_reject_bad_values_and_other_cells(option, value):
    with pytest.raises(ValueError, match=f"{option} must be a positive number"):
        _pendulum_like_policy(0, **{option: value})
    with pytest.raises(ValueError, match=f"{option} applies only to cell='ltc'"):
        NCPActorCriticPolicy(
            spaces.Box(-1, 1, (2,)), spaces.Box(-1, 1, (1,)), lambda _: 1e-3, cell="cfc", **{option: 10.0}
        )
