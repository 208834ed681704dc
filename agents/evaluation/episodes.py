"""Closed-loop evaluation of any recurrent or feed-forward policy on a Gymnasium environment.

A *Predictor* is anything with stable-baselines3's recurrent ``predict`` semantics::

    predict(observation (n_envs, *obs_shape), state=None, episode_start=(n_envs,) bool | None, deterministic=True)
        -> (actions (n_envs, *act_shape), state)

SB3 models are Predictors; so are :class:`ncp_control.agents.ppo.PPOPredictor` and the imitation models. A Predictor may also
declare ``env_wrappers`` (callables ``env -> env`` that its observations need, e.g. the elapsed-time observation)
and ``observation_space`` / ``action_space`` (checked against the environment).

Episodes and seeds: episode ``i`` (0-based) is reset with seed ``seed + i``, whatever ``n_envs`` is, so every
model sees the same episodes (the same roads in lane keeping). With ``n_envs > 1`` the episodes are spread over
parallel copies of the environment and the predictor is called on the batch; the recurrent state of a copy is
reset (``episode_start=True``) whenever that copy starts a new episode.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ncp_control import checks
from ncp_control.agents.runs.legacy import current_name

#: info keys that identify a lane-keeping environment (all three must be present).
LANE_KEYS = ("is_success", "lateral_offset_m", "distance_m")


#: Modules that a ``"module:EnvId"`` id may import without the user's say-so: the project's own env packages.
TRUSTED_ENV_MODULES: frozenset[str] = frozenset({"ncp_control.envs"})


def make_eval_env(
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    wrappers: Sequence[Callable[[gym.Env], gym.Env]] = (),
    *,
    allow_import: bool = False,
) -> gym.Env:
    """``gym.make(env_id, **env_kwargs)`` with ``wrappers`` applied in order (first = innermost).

    ``env_id`` may be ``"module:EnvId"`` (Gymnasium's convention) so that worker processes can register envs that
    live outside :mod:`ncp_control.envs`. The module is imported only when ``EnvId`` is not registered yet and either the
    module is one of :data:`TRUSTED_ENV_MODULES` or ``allow_import`` is true: callers pass ``allow_import=True``
    only for ids the user typed (``--env``) or passed in code, never for ids read from a run folder's config.

    Raises:
        ValueError: the id is not registered (the message lists how to find registered ids), or it asks to import
            a module that is neither trusted nor allowed.
    """
    import ncp_control.envs  # noqa: F401  registers this project's ids

    if ":" in env_id:
        module, _, env_id = current_name(env_id).partition(":")
        if env_id not in gym.registry:
            _import_env_module(module, env_id, allow_import)
    if env_id not in gym.registry:
        raise ValueError(
            f"unknown environment id {env_id!r}; registered ids are listed by gymnasium.pprint_registry() "
            "(this project's: LaneKeeping-v0, LaneKeepingState-v0, PendulumNoVel-v1, ...)"
        )
    env = gym.make(env_id, **(env_kwargs or {}))
    for wrap in wrappers:
        env = wrap(env)
    return env


def _import_env_module(module: str, env_id: str, allow_import: bool) -> None:
    import importlib

    if module not in TRUSTED_ENV_MODULES and not allow_import:
        raise ValueError(
            f"environment id '{module}:{env_id}' asks to import the module {module!r}, which is not one of this "
            "project's env modules; a run folder's config cannot make this program import code. If you trust it, "
            f"name it yourself: --env {module}:{env_id}"
        )
    try:
        importlib.import_module(module)
    except ImportError as error:
        raise ValueError(f"cannot import {module!r} to register {env_id!r}: {error}") from error


def check_spaces_fit(predictor, env: gym.Env) -> None:
    """Raise ``ValueError`` when the predictor's declared spaces do not fit the environment's."""
    for name in ("observation_space", "action_space"):
        expected = getattr(predictor, name, None)
        actual = getattr(env, name)
        if expected is not None and not _spaces_equal(expected, actual):
            spec = getattr(env, "spec", None)
            hint = (
                " PendulumNoVel-v1 became rl-zoo's env on 2026-11-28 (velocity zeroed, Box(3,)); models trained "
                "on its earlier Box(2,) observation need retraining."
                if spec is not None and spec.id == "PendulumNoVel-v1" and getattr(expected, "shape", None) == (2,)
                else ""
            )
            raise ValueError(
                f"the model does not fit this environment: its {name} is {expected}, the environment's is {actual}. "
                "Evaluate on the environment (and env_kwargs) the model was trained on." + hint
            )


def evaluate(
    predictor,
    env_id: str,
    episodes: int,
    seed: int,
    *,
    env_kwargs: dict[str, Any] | None = None,
    wrappers: Sequence[Callable[[gym.Env], gym.Env]] = (),
    n_envs: int = 1,
    deterministic: bool = True,
    allow_import: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Run ``episodes`` episodes and summarise them.

    Args:
        predictor: a Predictor (see the module docstring).
        env_id: a registered Gymnasium id.
        episodes: number of episodes (>= 1); episode i is reset with seed ``seed + i``.
        seed: seed of the first episode.
        env_kwargs: keyword arguments for ``gym.make``.
        wrappers: callables ``env -> env`` applied in order (e.g. perturbations), before the predictor's own
            ``env_wrappers``.
        n_envs: environments run in parallel in one process (>= 1).
        deterministic: use the policy's deterministic action.
        allow_import: ``env_id`` is the user's own (see :func:`make_eval_env`): a ``"module:EnvId"`` may import
            its module.
        progress: called as ``progress(done, episodes)`` whenever an episode ends (see :func:`progress_printer`).

    Returns:
        ``mean_return``, ``std_return`` (population std over episodes), ``episodes``, ``returns`` and
        ``lengths`` (per episode, in episode order), ``seeds``, ``crashes`` (per episode: it ended by termination,
        not truncation, without ``info["is_success"]`` — a crash or a fall) and ``crash_rate``; and when the env's info has the lane-keeping keys
        (``is_success``, ``lateral_offset_m``, ``distance_m``): ``completion_rate`` (fraction of episodes ending
        with ``is_success``), ``mean_abs_lateral_m`` (mean |lateral offset| over all steps of all episodes),
        ``departures_per_km`` (episodes terminated without success per kilometre driven in total),
        ``steering_smoothness`` (mean |a_t - a_{t-1}| over consecutive steps within episodes, all action
        dimensions), ``distances_m``, ``successes`` and ``abs_lateral_m`` (mean |lateral offset| over the episode's
        steps) per episode.

    Raises:
        ValueError: bad ``episodes``/``n_envs``, unknown env id, or a model whose spaces do not fit the env.
    """
    episodes = checks.positive_int("episodes", episodes)
    n_envs = checks.positive_int("n_envs", n_envs)
    all_wrappers = [*wrappers, *getattr(predictor, "env_wrappers", ())]
    n_envs = min(int(n_envs), int(episodes))
    envs_ = [make_eval_env(env_id, env_kwargs, all_wrappers, allow_import=allow_import) for _ in range(n_envs)]
    try:
        check_spaces_fit(predictor, envs_[0])
        return _run(predictor, envs_, int(episodes), int(seed), deterministic, progress)
    finally:
        for env in envs_:
            env.close()


def _run(
    predictor,
    envs_: list[gym.Env],
    episodes: int,
    seed: int,
    deterministic: bool,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    n = len(envs_)
    returns = np.zeros(episodes)
    lengths = np.zeros(episodes, dtype=int)
    lane = _empty_lane_record(episodes)
    lane_seen = True
    next_episode = 0
    episode_of = [-1] * n  # which episode each copy runs; -1 = idle
    observations: list[Any] = [None] * n
    last_action: list[np.ndarray | None] = [None] * n
    starts = np.ones(n, dtype=bool)
    for i in range(n):
        observations[i], _ = envs_[i].reset(seed=seed + next_episode)
        episode_of[i] = next_episode
        next_episode += 1
    state = None
    finished = 0
    while any(e >= 0 for e in episode_of):
        batch = _stack([observations[i] for i in range(n)])
        actions, state = predictor.predict(batch, state=state, episode_start=starts.copy(), deterministic=deterministic)
        actions = np.asarray(actions)
        starts[:] = False
        for i, env in enumerate(envs_):
            ep = episode_of[i]
            if ep < 0:
                continue
            action = actions[i]
            observations[i], reward, terminated, truncated, info = env.step(action)
            returns[ep] += float(reward)
            lengths[ep] += 1
            last_action[i] = _record_action(lane, action, last_action[i])
            lane_seen = _record_lane_info(lane, ep, info) and lane_seen
            if terminated or truncated:
                lane["departed"][ep] = bool(terminated) and not bool(info.get("is_success", False))
                last_action[i] = None
                finished += 1
                if progress is not None:
                    progress(finished, episodes)
                if next_episode < episodes:
                    observations[i], _ = env.reset(seed=seed + next_episode)
                    episode_of[i] = next_episode
                    next_episode += 1
                    starts[i] = True
                else:
                    episode_of[i] = -1
    return _summarise(returns, lengths, seed, lane, lane_seen)


def _empty_lane_record(episodes: int) -> dict[str, list]:
    """The per-episode and per-step lane-keeping numbers :func:`_run` gathers, before the first step."""
    return {
        "success": [None] * episodes,
        "distance": [0.0] * episodes,
        "departed": [False] * episodes,
        "abs_lateral": [],
        "action_deltas": [],
        "episode_abs_lateral": [[] for _ in range(episodes)],
    }


def _record_action(lane: dict[str, list], action: Any, previous: np.ndarray | None) -> np.ndarray:
    """Note |a_t - a_{t-1}| (mean over action dims) when the copy took an action before; return the flat action."""
    flat_action = np.asarray(action, dtype=np.float64).reshape(-1)
    if previous is not None:
        lane["action_deltas"].append(np.abs(flat_action - previous).mean())  # mean over action dims
    return flat_action


def _record_lane_info(lane: dict[str, list], ep: int, info: dict[str, Any]) -> bool:
    """Note one step's lane-keeping info for episode ``ep``; False when the info lacks the lane-keeping keys."""
    if not all(k in info for k in LANE_KEYS):
        return False
    lane["abs_lateral"].append(abs(float(info["lateral_offset_m"])))
    lane["episode_abs_lateral"][ep].append(lane["abs_lateral"][-1])
    lane["distance"][ep] = float(info["distance_m"])
    lane["success"][ep] = bool(info["is_success"])
    return True


def _summarise(
    returns: np.ndarray, lengths: np.ndarray, seed: int, lane: dict[str, list], lane_seen: bool
) -> dict[str, Any]:
    """:func:`evaluate`'s result from the numbers :func:`_run` gathered."""
    episodes = len(returns)
    result: dict[str, Any] = {
        "mean_return": float(returns.mean()),
        "std_return": float(returns.std()),
        "episodes": episodes,
        "returns": returns.tolist(),
        "lengths": lengths.tolist(),
        "seeds": [seed + i for i in range(episodes)],
        "crashes": [bool(d) for d in lane["departed"]],
        "crash_rate": float(np.mean(lane["departed"])),
    }
    if lane_seen:
        km = sum(lane["distance"]) / 1000.0
        departures = sum(lane["departed"])
        result.update(
            completion_rate=float(np.mean([bool(s) for s in lane["success"]])),
            mean_abs_lateral_m=float(np.mean(lane["abs_lateral"])),
            departures_per_km=float(departures / km) if km > 0 else float("inf") if departures else 0.0,
            steering_smoothness=float(np.mean(lane["action_deltas"])) if lane["action_deltas"] else 0.0,
            distances_m=list(lane["distance"]),
            successes=[bool(s) for s in lane["success"]],
            abs_lateral_m=[float(np.mean(v)) if v else 0.0 for v in lane["episode_abs_lateral"]],
        )
    return result


def _stack(observations: list[Any]):
    if isinstance(observations[0], dict):
        return {k: np.stack([o[k] for o in observations]) for k in observations[0]}
    return np.stack(observations)


def _spaces_equal(a: spaces.Space, b: spaces.Space) -> bool:
    if isinstance(a, spaces.Dict) and isinstance(b, spaces.Dict):
        return set(a.spaces) == set(b.spaces) and all(_spaces_equal(a[k], b[k]) for k in a.spaces)
    if type(a) is not type(b):
        return False
    if isinstance(a, spaces.Box) and isinstance(b, spaces.Box):  # b: same type as a
        return a.shape == b.shape or _transposed_image(a, b)
    return a == b


def _transposed_image(model_space: spaces.Box, env_space: spaces.Box) -> bool:
    """SB3 stores a channels-last uint8 image space as channels-first (``VecTransposeImage``) and transposes the
    observations back in ``predict``: ``(C, H, W)`` fits an env's ``(H, W, C)``."""
    a, b = model_space.shape, env_space.shape
    return (
        len(a) == 3
        and len(b) == 3
        and a == (b[2], b[0], b[1])
        and model_space.dtype == np.uint8
        and env_space.dtype == np.uint8
    )


# --------------------------------------------------------------------------------------------------------------
# on screen
# --------------------------------------------------------------------------------------------------------------
def progress_printer(
    what: str, every_seconds: float = 15.0, write: Callable[[str], None] = lambda line: print(line, flush=True)
) -> Callable[[int, int], None]:
    """An ``evaluate(progress=...)`` callback printing ``what: 7/20 episodes (35 s)`` at most every ``every_seconds``
    (and at the last episode): lines that read well in a log file."""
    import time

    t0 = time.monotonic()
    last = [t0]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - last[0] >= every_seconds:
            last[0] = now
            write(f"{what}: {done}/{total} episodes ({now - t0:.0f} s)")

    return report


def summary_line(result: dict[str, Any]) -> str:
    """One line for the end of training: mean return ± sd (ddof=1) over the episodes, completion where the env
    reports it, the seeds. ``result`` is :func:`evaluate`'s."""
    returns = np.asarray(result["returns"], dtype=np.float64)
    sd = float(returns.std(ddof=1)) if len(returns) > 1 else 0.0
    seeds = result.get("seeds") or [0]
    text = (
        f"mean return {returns.mean():.2f} ± {sd:.2f} (sd) over {len(returns)} episodes (seeds {seeds[0]}-{seeds[-1]})"
    )
    if "completion_rate" in result:
        done = sum(bool(s) for s in result["successes"])
        text += f", completed {done}/{len(returns)} ({result['completion_rate']:.0%})"
    elif any(result.get("crashes", [])):
        text += f", ended early (crash/fall) in {sum(result['crashes'])}/{len(returns)}"
    return text


def format_table(result: dict[str, Any]) -> str:
    """A compact text table of an evaluation: the summary numbers, then one row per episode (at most 20 shown)."""
    returns = np.asarray(result["returns"], dtype=np.float64)
    n = len(returns)
    sd = float(returns.std(ddof=1)) if n > 1 else 0.0
    lines = [
        f"{result.get('run_dir', '')} on {result.get('env_id', '')}: {n} episodes".strip(),
        f"  mean return     {returns.mean():12.2f} ± {sd:.2f} (sd)   min {returns.min():.2f}   max {returns.max():.2f}",
        f"  mean length     {np.mean(result['lengths']):12.1f}",
        f"  crash rate      {result['crash_rate']:12.0%}",
    ]
    if "completion_rate" in result:
        lines += [
            f"  completion      {result['completion_rate']:12.0%}",
            f"  |lateral| m     {result['mean_abs_lateral_m']:12.3f}",
            f"  departures/km   {result['departures_per_km']:12.2f}",
            f"  smoothness      {result['steering_smoothness']:12.4f}",
        ]
    lines.append("  episode  seed        return  length" + ("  completed" if "successes" in result else ""))
    shown = range(min(n, 20))
    for i in shown:
        row = f"  {i:7d}  {result['seeds'][i]:<9d} {returns[i]:9.2f}  {result['lengths'][i]:6d}"
        if "successes" in result:
            row += f"  {'yes' if result['successes'][i] else 'no'}"
        lines.append(row)
    if n > len(shown):
        lines.append(f"  ... {n - len(shown)} more episodes (--json FILE keeps them all)")
    return "\n".join(lines)
