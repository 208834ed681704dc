"""Argument checks shared by the subcommands: run before any work, raise :class:`~ncp_control.agents.errors.UsageError` (or
``ValueError`` for a bad file) with a message in the command line's words.

The checks of flag values (:func:`positive`, :func:`non_negative`, :func:`flag_value`) are those of
:mod:`ncp_control.checks`, given the flag as the argument's name; only the exception type differs.

Also :func:`removed_on_failure`, which takes away an output folder a failed command created, so that a failed
start never leaves a half-written folder behind that blocks the retry.
"""

from __future__ import annotations

import contextlib
import difflib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from ncp_control import checks as shared
from ncp_control.agents.errors import UsageError
from ncp_control.agents.runs.legacy import current_name

T = TypeVar("T")


def flag_value(check: Callable[..., T], flag: str, value: Any, *args: Any, **kwargs: Any) -> T | None:
    """``check(flag, value, *args, **kwargs)`` (a check of :mod:`ncp_control.checks`) for a flag's value, None when
    the flag was not given; its ``TypeError`` / ``ValueError`` comes back as a :class:`UsageError` with the same
    message (which names the flag)."""
    if value is None:
        return None
    try:
        return check(flag, value, *args, **kwargs)
    except (TypeError, ValueError) as error:
        raise UsageError(str(error)) from None


def positive(flag: str, value: int | float | None) -> None:
    """``value`` (of ``flag``, e.g. ``--episodes``) must be > 0 when given: a positive int, or a positive finite
    float for a float flag."""
    flag_value(shared.positive_real if isinstance(value, float) else shared.positive_int, flag, value)


def non_negative(flag: str, value: int | float | None) -> None:
    """``value`` (of ``flag``) must be >= 0 when given: a non-negative int, or a finite float >= 0."""
    flag_value(shared.non_negative_real if isinstance(value, float) else shared.non_negative_int, flag, value)


def env_id(value: str | None, flag: str = "--env") -> None:
    """``value`` must be a registered Gymnasium id (after importing ``ncp_control.envs``; ``module:Id`` imports ``module``).

    The message lists the closest registered ids.
    """
    if value is None:
        return
    import importlib

    import gymnasium as gym

    import ncp_control.envs  # noqa: F401  registers this project's ids

    name = value
    if ":" in value:
        module, _, name = current_name(value).partition(":")
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise UsageError(f"{flag} {value}: cannot import {module!r} to register {name!r} ({error})") from error
    if name in gym.registry:
        return
    close = difflib.get_close_matches(name, list(gym.registry), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else "gymnasium.pprint_registry() lists the registered ids"
    raise UsageError(f"{flag} {value}: unknown environment id; {hint}")


def run_folder(path: str | Path, flag: str = "RUN_DIR") -> None:
    """``path`` must be a run folder (``config.json`` with kind, env_id, policy, seed) written by a training command."""
    from ncp_control.agents.runs.load import read_config

    try:
        read_config(path)
    except ValueError as error:
        raise ValueError(
            f"{flag} {path}: {error}; give a folder written by train-ppo, train-rllib, train-bc or demo"
        ) from None


def loadable_run(path: str | Path, flag: str = "RUN_DIR") -> None:
    """``path`` must be a run folder whose model loads (a truncated or corrupt model file is reported here)."""
    from ncp_control.agents.runs.load import load_run

    run_folder(path, flag)
    load_run(path)


def stored_bc_config(out: str | Path):
    """The training settings stored in an imitation run folder, for ``--resume``; errors name the file."""
    from ncp_control.agents.imitation import BCConfig
    from ncp_control.agents.runs.load import read_json_object

    path = Path(out) / "config.json"
    if not path.is_file():
        raise UsageError(f"--resume: nothing to resume, {path} does not exist (start the run without --resume)")
    stored = read_json_object(path, "run config")
    if stored.get("kind") != "bc" or not isinstance(stored.get("training"), dict):
        raise ValueError(f"--resume: {path} is not an imitation run's config (kind 'bc' with 'training' settings)")
    try:
        return BCConfig.from_dict(stored["training"])
    except (TypeError, ValueError) as error:
        raise ValueError(f"--resume: {path}: {error}") from None


def new_run_flags(*flags: tuple[str, Any]) -> None:
    """``(flag, value)`` pairs that a new run needs: a ``UsageError`` naming those left out (or --resume)."""
    missing = [flag for flag, value in flags if value is None]
    if missing:
        raise UsageError(
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} required for a new run "
            "(or --resume --out RUN_DIR)"
        )


def new_run_folder(path: str | Path, flag: str = "--out") -> None:
    """``path`` must not hold a run already (a ``config.json``); use --resume to continue one."""
    if path is not None and (Path(path) / "config.json").exists():
        raise UsageError(f"{flag} {path} already holds a run: continue it with --resume, or choose another folder")


def writable_file(path: str | None, flag: str) -> None:
    """The folder of the output file ``path`` must exist (so that the result is not lost after the work)."""
    if path is not None and path != "-" and not Path(path).resolve().parent.is_dir():
        raise UsageError(f"{flag} {path}: the folder {Path(path).parent} does not exist")


@contextlib.contextmanager
def removed_on_failure(path: str | Path, keep: Callable[[Path], bool] = lambda p: False) -> Iterator[Path]:
    """Yield ``path``; if the body raises, remove what it wrote there (the folder itself if it did not exist
    before, else the files and folders that are new) unless ``keep(path)``.

    ``keep`` says whether the folder now holds work worth resuming (e.g. a checkpoint): then everything stays.
    """
    path = Path(path)
    existed = path.exists()
    before = set(path.rglob("*")) if path.is_dir() else set()
    try:
        yield path
    except BaseException:
        if path.is_dir() and not keep(path):
            if not existed:
                shutil.rmtree(path, ignore_errors=True)
            else:
                new = sorted(set(path.rglob("*")) - before, key=lambda p: len(p.parts), reverse=True)
                for item in new:  # deepest first, so folders are empty when their turn comes
                    if item.is_dir() and not item.is_symlink():
                        shutil.rmtree(item, ignore_errors=True)
                    else:
                        item.unlink(missing_ok=True)
        raise
