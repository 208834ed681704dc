"""Study specs: what to train and how to evaluate it, read from JSON and expanded into jobs.

A spec is a JSON object (shipped examples: ``agents/configs/studies/``)::

    {
      "name": "memory-smoke",
      "train": [
        {"kind": "ppo", "env": "PendulumNoVel-v1", "policies": ["ltc", "cfc"], "seeds": [0, 1], "timesteps": 2048},
        {"kind": "bc", "env": "LaneKeeping-v0", "models": ["ncp-ltc"], "preset": "demo", "seeds": [0],
         "set": {"epochs": 1, "dagger_rounds": 0}}
      ],
      "evaluate": [
        {"env": "PendulumNoVel-v1", "episodes": 3, "seed": 1000},
        {"env": "LaneKeeping-v0", "episodes": 2, "seed": 1000000, "perturb": ["pixel_noise:0,0.2"]}
      ]
    }

Training entries (one job per model x seed, run folder ``runs/<kind>-<env>-<model>-s<seed>``, or
``runs/<kind>-<env>-<tag>-<model>-s<seed>`` for an entry with a ``tag``):

- ``kind: "ppo"``: ``env``, ``policies`` (ltc, cfc, lstm, mlp), ``seeds``, ``timesteps``; optional ``config`` (an
  object with the keys of a run's config.json, what ``train-ppo --config FILE`` takes).
- ``kind: "bc"``: ``env``, ``models`` (ncp-ltc, ncp-cfc, lstm, cnn), ``seeds``; optional ``preset`` (demo, paper;
  default demo), ``set`` (BCConfig fields, what ``train-bc --set KEY=VALUE`` takes), ``env_kwargs``.
- either kind: optional ``tag`` (lowercase letters, digits, ``-``; not ``"untagged"``), so that the same model and
  seed trained twice with other settings (e.g. ``"env_kwargs": {"domain_randomization": true}``, tag ``"dr"``)
  get their own run folders; untagged entries keep the plain names.

Evaluation entries apply to every run trained on their ``env``: ``episodes``, ``seed`` (of the first episode);
optional ``perturb`` (sweeps such as ``"pixel_noise:0,0.316"``, see ``ncp-control robustness``).

Every entry (and the spec itself, as the default) may set ``cpus`` (CPUs the job reserves and torch threads it
uses; default 1). The spec may set ``max_attempts`` (runs of a job whose worker or node dies; default 3).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_TOP_KEYS = {"name", "train", "evaluate", "cpus", "max_attempts", "_doc"}
_PPO_KEYS = {"kind", "env", "policies", "seeds", "timesteps", "config", "tag", "cpus"}
_BC_KEYS = {"kind", "env", "models", "seeds", "preset", "set", "env_kwargs", "tag", "cpus"}
_TAG = re.compile(r"^[a-z0-9-]+$")
#: what an evaluation entry's ``train_tags`` calls the runs of training entries without a ``tag``
UNTAGGED = "untagged"
_EVAL_KEYS = {"env", "episodes", "seed", "perturb", "cpus"}


@dataclass(frozen=True)
class TrainJob:
    """One training run: ``config`` is the resolved PPO config or ``BCConfig.to_dict()``; ``tag`` the entry's
    ``tag`` (None: untagged)."""

    job_id: str
    kind: str
    env_id: str
    model: str
    seed: int
    cpus: int
    config: dict[str, Any] = field(compare=False, repr=False)
    entry: dict[str, Any] = field(compare=False, repr=False)
    tag: str | None = None


@dataclass(frozen=True)
class EvalJob:
    """One evaluation of one run (``index``: position of its entry in the spec's ``evaluate`` list)."""

    job_id: str
    run_id: str
    index: int
    env_id: str
    episodes: int
    seed: int
    perturb: tuple[str, ...]
    cpus: int


@dataclass(frozen=True)
class StudyPlan:
    """A validated spec: its training jobs and its evaluation entries."""

    name: str
    spec: dict[str, Any]
    train: tuple[TrainJob, ...]
    evaluate: tuple[dict[str, Any], ...]
    max_attempts: int

    def evaluations_of(self, job: TrainJob) -> list[EvalJob]:
        """The evaluation jobs of one training run: every entry on the run's env."""
        return [EvalJob(f"eval{i}-{job.job_id}", job.job_id, i, e["env"], e["episodes"], e["seed"],
                        tuple(e.get("perturb", ())), e["cpus"])
                for i, e in enumerate(self.evaluate) if e["env"] == job.env_id]

    def jobs(self) -> list[TrainJob | EvalJob]:
        return [*self.train, *(e for job in self.train for e in self.evaluations_of(job))]


def read_spec(path: str | Path) -> dict[str, Any]:
    """The spec file as a dict (JSON). Raises ``ValueError`` naming the file when it is missing or not JSON."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"study spec {path} does not exist")
    try:
        spec = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"study spec {path} is not valid JSON: {error}") from error
    if not isinstance(spec, dict):
        raise ValueError(f"study spec {path} must hold a JSON object")
    return spec


def plan_study(spec: dict[str, Any]) -> StudyPlan:
    """Validate ``spec`` and expand it into jobs; the training configs are resolved here (a typo fails before
    anything runs).

    Raises:
        ValueError: unknown keys, wrong types, unknown policies/models/presets/perturbations, repeated jobs.
    """
    _check_keys("the spec", spec, _TOP_KEYS, {"name", "train"})
    name = _string("name", spec["name"])
    cpus = _positive("cpus", spec.get("cpus", 1))
    max_attempts = _positive("max_attempts", spec.get("max_attempts", 3))
    entries = _list("train", spec["train"])
    if not entries:
        raise ValueError("the spec's 'train' list is empty: name at least one training entry")
    jobs: list[TrainJob] = []
    for i, entry in enumerate(entries):
        jobs.extend(_train_jobs(f"train[{i}]", entry, cpus))
    ids = [job.job_id for job in jobs]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ValueError(f"the spec names these runs twice: {repeated}")
    evaluations = tuple(_evaluation(f"evaluate[{i}]", e, cpus) for i, e in enumerate(_list("evaluate",
                                                                                            spec.get("evaluate", []))))
    return StudyPlan(name, copy.deepcopy(spec), tuple(jobs), evaluations, max_attempts)


def run_id(kind: str, env_id: str, model: str, seed: int, tag: str | None = None) -> str:
    """``<kind>-<env>-<model>-s<seed>``, or ``<kind>-<env>-<tag>-<model>-s<seed>`` for a tagged training entry,
    with anything but letters, digits, ``.``, ``_``, ``-`` replaced by ``_``."""
    name = f"{kind}-{env_id}-{model}-s{seed}" if tag is None else f"{kind}-{env_id}-{tag}-{model}-s{seed}"
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def check_tag(where: str, value: Any) -> str:
    """A tag: a short name of lowercase letters, digits and ``-`` (it becomes part of folder names)."""
    if not isinstance(value, str) or not _TAG.match(value):
        raise ValueError(f"{where} must be a short name of lowercase letters, digits and '-', got {value!r}")
    return value


def _train_jobs(where: str, entry: Any, default_cpus: int) -> list[TrainJob]:
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be an object, got {entry!r}")
    kind = entry.get("kind")
    if kind not in ("ppo", "bc"):
        raise ValueError(f"{where}.kind must be 'ppo' or 'bc', got {kind!r}")
    ppo = kind == "ppo"
    _check_keys(where, entry, _PPO_KEYS if ppo else _BC_KEYS,
                {"kind", "env", "seeds"} | ({"policies", "timesteps"} if ppo else {"models"}))
    env_id = _string(f"{where}.env", entry["env"])
    cpus = _positive(f"{where}.cpus", entry.get("cpus", default_cpus))
    tag = check_tag(f"{where}.tag", entry["tag"]) if "tag" in entry else None
    if tag == UNTAGGED:
        raise ValueError(f"{where}.tag: {UNTAGGED!r} is reserved (it names the runs of untagged entries)")
    seeds = [_non_negative(f"{where}.seeds", s) for s in _list(f"{where}.seeds", entry["seeds"])]
    models = [_string(f"{where}.{'policies' if ppo else 'models'}", m)
              for m in _list(where, entry["policies" if ppo else "models"])]
    jobs = []
    for model in models:
        for seed in seeds:
            config = _ppo_config(where, entry, model, seed) if ppo else _bc_config(where, entry, model, seed)
            jobs.append(TrainJob(run_id(kind, env_id, model, seed, tag), kind, env_id, model, seed, cpus, config,
                                 copy.deepcopy(entry), tag))
    return jobs


def _ppo_config(where: str, entry: dict[str, Any], policy: str, seed: int) -> dict[str, Any]:
    """What ``train-ppo --env E --policy P --timesteps T --seed S --config FILE --no-progress`` resolves."""
    from agents.ppo import resolve_config

    overrides = copy.deepcopy(entry.get("config", {}))
    if not isinstance(overrides, dict):
        raise ValueError(f"{where}.config must be an object (the keys of a PPO run's config.json)")
    overrides["progress_bar"] = False
    try:
        return resolve_config(entry["env"], policy, timesteps=_positive(f"{where}.timesteps", entry["timesteps"]),
                              seed=seed, overrides=overrides)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from error


def _bc_config(where: str, entry: dict[str, Any], model: str, seed: int) -> dict[str, Any]:
    """What ``train-bc --env E --model M --preset P --seed S --set K=V ... [--env-kwargs J]`` resolves."""
    from agents.imitation import preset_config

    preset = entry.get("preset", "demo")
    settings = entry.get("set", {})
    if not isinstance(settings, dict):
        raise ValueError(f"{where}.set must be an object of BCConfig fields, e.g. {{\"epochs\": 1}}")
    try:
        values = {"env_id": entry["env"], "model": model, "seed": seed, "expert": None, **settings}
        if "env_kwargs" in entry:
            if not isinstance(entry["env_kwargs"], dict):
                raise ValueError("env_kwargs must be an object")
            values["env_kwargs"] = {**preset_config(preset, env_id=entry["env"]).env_kwargs, **entry["env_kwargs"]}
        return preset_config(preset, **values).to_dict()
    except (ValueError, TypeError) as error:
        raise ValueError(f"{where}: {error}") from error


def _evaluation(where: str, entry: Any, default_cpus: int) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be an object, got {entry!r}")
    _check_keys(where, entry, _EVAL_KEYS, {"env", "episodes", "seed"})
    perturb = [_string(f"{where}.perturb", p) for p in _list(f"{where}.perturb", entry.get("perturb", []))]
    if perturb:
        from agents.robustness import parse_sweeps

        try:
            parse_sweeps(perturb)
        except ValueError as error:
            raise ValueError(f"{where}.perturb: {error}") from error
    return {"env": _string(f"{where}.env", entry["env"]), "episodes": _positive(f"{where}.episodes",
                                                                                entry["episodes"]),
            "seed": _non_negative(f"{where}.seed", entry["seed"]), "perturb": perturb,
            "cpus": _positive(f"{where}.cpus", entry.get("cpus", default_cpus))}


def _check_keys(where: str, entry: dict[str, Any], allowed: set[str], required: set[str]) -> None:
    unknown = set(entry) - allowed
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(allowed - {'_doc'})}")
    missing = required - set(entry)
    if missing:
        raise ValueError(f"{where}: missing keys {sorted(missing)}")


def _list(where: str, value: Any) -> list:
    if not isinstance(value, list):
        raise ValueError(f"{where} must be a list, got {value!r}")
    return value


def _string(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where} must be a non-empty string, got {value!r}")
    return value


def _positive(where: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where} must be a positive integer, got {value!r}")
    return value


def _non_negative(where: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{where} must be a non-negative integer, got {value!r}")
    return value
