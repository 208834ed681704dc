"""A run folder (PPO or imitation) handed to the circuit-inspection library: what ``ncp-control inspect`` calls.

Three things carry the name: the library :mod:`ncp_control.inspect` (works on a
:class:`~ncp_control.inspect.circuit.Circuit` and an environment it is given; knows nothing of run folders), the
command ``ncp-control inspect`` (:mod:`ncp_control.agents.commands.inspect`: arguments and printing), and this
module, the glue between them. :func:`circuit_for_run` opens a loaded run's policy as a ``Circuit``;
:func:`inspect_run` loads the run, makes the environment it was trained on (same ``env_kwargs``, the wrappers its
policy needs) and calls :func:`ncp_control.inspect.inspect_circuit`, which writes the figures, tables and
``report.html``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ncp_control.agents.evaluation.episodes import check_spaces_fit, make_eval_env
from ncp_control.agents.runs.load import LoadedRun, load_run

__all__ = ["circuit_for_run", "inspect_run"]


def circuit_for_run(loaded: LoadedRun):
    """The run's policy as a Circuit (PPO: the RecurrentPPO actor behind the run's observation normaliser).

    Raises:
        ValueError: the run's policy has no wired LTC/CfC core (mlp, lstm, cnn runs).
    """
    from ncp_control.inspect import circuit_from_policy

    predictor = loaded.predictor
    if loaded.config["kind"] in ("ppo", "rllib"):
        if loaded.config["policy"] not in ("ltc", "cfc"):
            raise ValueError(
                f"run {loaded.run_dir} uses policy {loaded.config['policy']!r}: only 'ltc' and 'cfc' "
                "runs have neurons to inspect"
            )
        return circuit_from_policy(
            predictor.policy,
            name=f"{loaded.config['kind']}-{loaded.config['policy']}",
            observation_transform=None if predictor.normalizer is None else predictor.normalize_obs,
        )
    return circuit_from_policy(predictor)


def inspect_run(
    run_dir: str | Path,
    out: str | Path,
    *,
    env_id: str | None = None,
    episodes: int = 1,
    seed: int = 1_000_000,
    closed_loop_episodes: int | None = None,
    max_steps: int | None = None,
    ig_steps: int = 32,
    saliency_frames: int = 4,
    gif_steps: int = 200,
    figures: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Load the run in ``run_dir``, record its circuit in its env and write the inspection files into ``out``
    (see :mod:`ncp_control.inspect.pipeline`).

    Args:
        env_id: environment (default: the run's own; its ``env_kwargs`` are used only for the run's own env).
        seed: reset seed of the first episode (default 1,000,000: the first held-out road of lane keeping).
        figures: subset of ``ncp_control.inspect.pipeline.FIGURES`` to draw (default: all).
        Other arguments: see :func:`ncp_control.inspect.inspect_circuit`.
    Returns:
        The summary :func:`ncp_control.inspect.inspect_circuit` returns (also in ``out/summary.json``).
    """
    from ncp_control.inspect import inspect_circuit
    from ncp_control.inspect.pipeline import FIGURES

    loaded = load_run(run_dir)
    circuit = circuit_for_run(loaded)
    user_named = env_id is not None  # only an id the user named may import a module (see make_eval_env)
    env_id = env_id or loaded.env_id
    env_kwargs = loaded.env_kwargs if env_id == loaded.env_id else {}
    env = make_eval_env(env_id, env_kwargs, getattr(loaded.predictor, "env_wrappers", ()), allow_import=user_named)
    try:
        check_spaces_fit(loaded.predictor, env)
        meta = {
            "run_dir": str(run_dir),
            "env_id": env_id,
            "env_kwargs": env_kwargs,
            "run_kind": loaded.config["kind"],
            "policy": loaded.config["policy"],
        }
        return inspect_circuit(
            circuit,
            env,
            out,
            episodes=episodes,
            seed=seed,
            closed_loop_episodes=closed_loop_episodes,
            max_steps=max_steps,
            ig_steps=ig_steps,
            saliency_frames=saliency_frames,
            gif_steps=gif_steps,
            figures=FIGURES if figures is None else tuple(figures),
            title=f"Inspection of {run_dir} on {env_id}",
            meta=meta,
        )
    finally:
        env.close()
