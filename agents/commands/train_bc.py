"""Train a camera-to-steering policy by sequence behaviour cloning and DAgger from a privileged expert.

Examples:
  ncp-control train-bc --env LaneKeeping-v0 --model ncp-ltc --preset demo --seed 0 --out runs/bc-ltc
  ncp-control train-bc --out runs/bc-ltc --resume              # continue from the last checkpoint
  ncp-control train-bc --model lstm --preset paper --set epochs=30 --out runs/bc-lstm

The run folder receives config.json, demonstrations/, checkpoint.pt (after each epoch, and every
checkpoint_seconds of wall time inside an epoch), progress.jsonl, model.pt and eval_heldout.json (the held-out
evaluation summarised on the last line); evaluate it further with `ncp-control evaluate RUN_DIR`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ncp_control.agents.commands import checks
from ncp_control.agents.errors import UsageError

MODELS = ("ncp-ltc", "ncp-cfc", "lstm", "cnn")
PRESET_NAMES = ("demo", "paper")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", default="LaneKeeping-v0", help="Gymnasium id of a camera lane-keeping env")
    parser.add_argument("--model", choices=MODELS, default="ncp-ltc", help="sequence model (default: ncp-ltc)")
    parser.add_argument("--preset", choices=PRESET_NAMES, default="demo", help="settings preset (default: demo)")
    parser.add_argument("--seed", type=int, default=0, help="seeds weights, training roads, noise, shuffling")
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its checkpoint with its stored settings"
    )
    parser.add_argument(
        "--expert",
        default=None,
        help="expert: 'pure-pursuit' or a factory 'module:name' (default: the env's registered one); "
        "with --resume, repeat a run's own 'module:name' to allow importing it",
    )
    parser.add_argument(
        "--env-kwargs",
        default=None,
        type=_json_object,
        help="JSON object of keyword arguments for gym.make (merged over the preset's)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one training setting (a BCConfig field; VALUE parsed as JSON when it can be)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument(
        "--checkpoint-seconds",
        type=float,
        default=120.0,
        help="also write checkpoint.pt inside an epoch every this many seconds (default 120; 0: only "
        "after each epoch), so that a kill loses at most about that much training",
    )
    parser.add_argument(
        "--eval-episodes",
        type=int,
        default=10,
        help="held-out roads evaluated at the end, written to eval_heldout.json (default 10; 0: none)",
    )


def parse_overrides(items: list[str]) -> dict:
    """``["epochs=3", "lr=0.001"]`` -> ``{"epochs": 3, "lr": 0.001}`` (JSON values, else strings), each checked
    against the type of the :class:`~ncp_control.agents.imitation.BCConfig` field it sets.

    Raises:
        UsageError: not KEY=VALUE, an unknown setting (with close matches), or a value of the wrong type; the
            message names the setting and the expected type.
    """
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set expects KEY=VALUE (e.g. --set epochs=3), got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
        _check_setting(key, out[key], item)
    return out


def _check_setting(key: str, value, item: str) -> None:
    import difflib
    import typing

    from ncp_control.agents.imitation import BCConfig

    hints = typing.get_type_hints(BCConfig)
    if key not in hints:
        close = difflib.get_close_matches(key, list(hints), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else f"settings: {', '.join(hints)}"
        raise UsageError(f"--set {item}: unknown setting {key!r}; {hint}")
    if not _fits(value, hints[key]):
        raise UsageError(f"--set {item}: {key} expects {_describe(hints[key])}, got {value!r}")


def _describe(hint) -> str:
    """A BCConfig field type in words (``int | None`` -> "an integer or null")."""
    import types
    import typing

    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(h) for h in typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        return "a JSON list of integers, e.g. [24,36,48,64,8]"
    names = {int: "an integer", float: "a number", str: "a string", type(None): "null", bool: "true or false"}
    return names.get(hint, "a JSON object" if typing.get_origin(hint) is dict else str(hint))


def _fits(value, hint) -> bool:
    """Whether a JSON-parsed ``value`` fits the type ``hint`` of a BCConfig field."""
    import types
    import typing

    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin is tuple:
        return isinstance(value, list) and all(_fits(v, typing.get_args(hint)[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    return isinstance(value, hint)


def config_from_args(args: argparse.Namespace):
    """The :class:`~ncp_control.agents.imitation.BCConfig` the arguments describe (the stored one with ``--resume``)."""
    from ncp_control.agents.imitation import preset_config

    if args.resume:
        return checks.stored_bc_config(args.out)
    settings = new_run_settings(args)
    if args.env_kwargs is not None:
        if not isinstance(args.env_kwargs, dict):
            raise UsageError("--env-kwargs must be a JSON object, e.g. '{\"image_height\": 48}'")
        settings["env_kwargs"] = {**preset_config(args.preset, env_id=args.env).env_kwargs, **args.env_kwargs}
    try:
        return preset_config(args.preset, **settings)
    except ValueError as error:
        raise UsageError(f"--preset {args.preset} with --set {' '.join(args.overrides) or '(none)'}: {error}") from None


def new_run_settings(args: argparse.Namespace) -> dict:
    """The training settings of the flags train-bc and demo share (``--env``, ``--model``, ``--seed``, ``--expert``,
    ``--set``) for a new run, after checking that ``--out`` holds no run and ``--env`` is registered.

    Raises:
        UsageError: ``--out`` already holds a run, an unknown ``--env``, or a bad ``--set`` (see
            :func:`parse_overrides`).
    """
    checks.new_run_folder(args.out)
    checks.env_id(args.env)
    settings = {"env_id": args.env, "model": args.model, "seed": args.seed, "expert": args.expert}
    settings.update(parse_overrides(args.overrides))
    return settings


def _json_object(text: str):
    """argparse type for --env-kwargs: the JSON text parsed (argparse reports a parse error with the flag name)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON ({error})") from None


def print_progress(record: dict) -> None:
    """One line per progress record of :func:`ncp_control.agents.imitation.train` (reads well in a log file)."""
    if "collect/episode" in record:
        print(
            f"round {record['collect/round']}: collected episode {record['collect/episode']}/"
            f"{record['collect/episodes']} ({record['collect/steps']} steps, {record['time/seconds']:.0f} s)",
            flush=True,
        )
        return
    print(
        f"round {record['train/round']} epoch {record['train/epoch']}: loss {record['train/loss']:.4f} "
        f"({record['train/episodes']} episodes, {record['train/frames']} frames, beta {record['train/beta']:.2f}, "
        f"{record['time/seconds']:.0f} s)",
        flush=True,
    )


def check_args(args: argparse.Namespace) -> None:
    """Everything about the command line that can be checked before any work."""
    checks.positive("--threads", args.threads)
    checks.non_negative("--seed", args.seed)
    checks.non_negative("--eval-episodes", args.eval_episodes)
    checks.non_negative("--checkpoint-seconds", args.checkpoint_seconds)


def has_progress(run_dir) -> bool:
    """Whether an imitation run folder holds work worth resuming (a checkpoint, a model or demonstrations)."""
    run_dir = Path(run_dir)
    return any((run_dir / name).exists() for name in ("checkpoint.pt", "model.pt")) or any(
        (run_dir / "demonstrations").glob("*.npz")
    )


# The steps of `run` below (and new_run_settings above) are also the first steps of `ncp-control demo`.


def set_threads(threads: int | None) -> None:
    """Set torch's CPU threads to ``threads`` (None: leave torch's choice)."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)


def train_run(config, args: argparse.Namespace) -> Path:
    """Train the run ``config`` describes into ``--out`` (continue it with ``--resume``), printing one line per
    collected episode and per epoch; returns the run folder.

    If training fails, what it wrote is removed unless the folder holds work worth resuming (:func:`has_progress`).
    """
    from ncp_control.agents.imitation import train

    with checks.removed_on_failure(args.out, keep=has_progress):
        return train(
            config,
            args.out,
            resume=args.resume,
            callback=print_progress,
            on_collect=print_progress,
            checkpoint_seconds=args.checkpoint_seconds,
            trusted_expert=args.expert,
        )


def evaluate_run(run_dir, config, episodes: int, label: str):
    """Load the trained model of ``run_dir``, evaluate it on ``episodes`` held-out roads (progress lines start
    with ``label``) and write ``eval_heldout.json``; returns the predictor and the metrics dict."""
    from ncp_control.agents.evaluation.episodes import progress_printer
    from ncp_control.agents.imitation import evaluate_heldout, load_predictor

    predictor = load_predictor(run_dir)
    metrics = evaluate_heldout(
        predictor, config.env_id, episodes, env_kwargs=config.env_kwargs, progress=progress_printer(label)
    )
    (Path(run_dir) / "eval_heldout.json").write_text(json.dumps(metrics, indent=1))
    return predictor, metrics


def run(args: argparse.Namespace) -> int:
    check_args(args)
    config = config_from_args(args)

    from ncp_control.agents.evaluation.episodes import summary_line

    set_threads(args.threads)
    run_dir = train_run(config, args)
    if args.eval_episodes == 0:
        print(f"{config.model}: trained; run folder {run_dir}")
        return 0
    print(f"evaluating on {args.eval_episodes} held-out roads ...", flush=True)
    _, metrics = evaluate_run(run_dir, config, args.eval_episodes, "evaluated")
    print(f"{config.model} held-out: {summary_line(metrics)}; run folder {run_dir}")
    return 0
