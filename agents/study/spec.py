"""Study specs: what to train and how to evaluate it, read from JSON and expanded into jobs.

A spec is a JSON object, given as a file or by the name of a spec the package ships
(``agents/configs/studies/<name>.json``: ``ncp-control study memory-smoke``, see :func:`shipped_specs`)::

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
- ``kind: "ppo"`` with ``init_from`` (PPO fine-tuning of imitation runs, ``train-ppo --init-from``): the training
  tag of a ``bc`` entry on the same env (``"untagged"`` for one without a tag). Each policy and seed starts from
  that entry's run of the matching imitation model and the same seed (ltc from ncp-ltc, cfc from ncp-cfc, lstm
  from lstm, mlp from cnn: ``train-ppo --init-from``'s mapping), which must be in the spec; the job runs once that run is
  done (it is skipped if that run failed). The entry needs a ``tag``, and its runs take the *imitation model's*
  name (``ppo-LaneKeeping-v0-ft-ncp-ltc-s0`` for tag ``ft``), so that the summary compares each model with its
  own fine-tuned self (``ncp-ltc`` against ``ft:ncp-ltc``; the tag may not be a ``bc`` entry's tag on the same
  env). The job's config and record hold ``init_from`` as ``runs/<imitation job>`` (in the study folder); the
  task completes the config from that run folder as ``train-ppo --init-from`` does
  (:func:`ncp_control.agents.ppo.init_from.init_config`), so the run's own ``config.json`` records the folder the
  task read: the study's ``runs/<imitation job>`` with shared storage, a scratch copy on the worker with transfer.

Evaluation entries apply to every run trained on their ``env``: ``episodes``, ``seed`` (of the first episode);
optional:

- ``perturb``: sweeps such as ``"pixel_noise:0,0.316"`` (see ``ncp-control robustness``);
- ``env_kwargs``: ``gym.make`` arguments of the evaluation env (a JSON object), e.g.
  ``{"domain_randomization": ["colours"]}``. The env of an evaluation is built from the run's training arguments
  (image size, road settings) *without* its training look (``domain_randomization``), then these on top
  (:func:`ncp_control.agents.study.jobs.evaluation_env_kwargs`): a run trained under randomisation is evaluated on the clean
  look unless the entry asks for randomisation. Every such env is built once when the spec is read, so a bad
  argument (an unknown randomisation element) fails before any job runs;
- ``tag``: the condition's name in the summary (e.g. ``"clean"``, ``"colours"``; unique per env);
- ``train_tags``: the training tags whose runs the entry evaluates (``"untagged"``: entries without a tag;
  default: every run on its env);
- ``n_envs``: env copies an evaluation job batches through the model (default 1; 10 evaluates the camera task
  about 1.7x faster on one core). Results change at the level of floating-point rounding (which a closed loop
  can grow), so every entry of a study should keep one value.

Job ids: ``<run>`` for training, ``eval<i>-<run>`` for evaluation entry ``i`` (tags and ``env_kwargs`` do not
change the ids of a spec that does not use them).

Every entry (and the spec itself, as the default) may set ``cpus`` (CPUs the job reserves and torch threads it
uses; default 1). The spec may set ``max_attempts`` (runs of a job whose worker or node dies; default 3).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ncp_control import checks

if TYPE_CHECKING:
    from ncp_control.agents.ppo.models import PolicyName

#: the specs the package ships (installed with it: a wheel holds them as package data)
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "configs" / "studies"
_TOP_KEYS = {"name", "train", "evaluate", "cpus", "max_attempts", "_doc"}
_PPO_KEYS = {"kind", "env", "policies", "seeds", "timesteps", "config", "tag", "cpus", "init_from"}
_BC_KEYS = {"kind", "env", "models", "seeds", "preset", "set", "env_kwargs", "tag", "cpus"}
_TAG = re.compile(r"^[a-z0-9-]+$")
#: what an evaluation entry's ``train_tags`` calls the runs of training entries without a ``tag``
UNTAGGED = "untagged"
_EVAL_KEYS = {"env", "episodes", "seed", "perturb", "env_kwargs", "tag", "train_tags", "cpus", "n_envs"}


@dataclass(frozen=True)
class TrainJob:
    """One training run: ``config`` is the resolved PPO config or ``BCConfig.to_dict()``; ``tag`` the entry's
    ``tag`` (None: untagged); ``init_job`` the imitation job a fine-tuning run starts from (None: from scratch)."""

    job_id: str
    kind: str
    env_id: str
    model: str
    seed: int
    cpus: int
    config: dict[str, Any] = field(compare=False, repr=False)
    entry: dict[str, Any] = field(compare=False, repr=False)
    tag: str | None = None
    init_job: str | None = None


@dataclass(frozen=True)
class EvalJob:
    """One evaluation of one run (``index``: position of its entry in the spec's ``evaluate`` list; ``env_kwargs``
    and ``condition``: the entry's ``env_kwargs`` and ``tag``)."""

    job_id: str
    run_id: str
    index: int
    env_id: str
    episodes: int
    seed: int
    perturb: tuple[str, ...]
    cpus: int
    env_kwargs: dict[str, Any] = field(default_factory=dict, compare=False)
    condition: str | None = None
    n_envs: int = 1


@dataclass(frozen=True)
class StudyPlan:
    """A validated spec: its training jobs and its evaluation entries."""

    name: str
    spec: dict[str, Any]
    train: tuple[TrainJob, ...]
    evaluate: tuple[dict[str, Any], ...]
    max_attempts: int

    def evaluations_of(self, job: TrainJob) -> list[EvalJob]:
        """The evaluation jobs of one training run: every entry on the run's env that applies to its tag."""
        return [
            EvalJob(
                f"eval{i}-{job.job_id}",
                job.job_id,
                i,
                e["env"],
                e["episodes"],
                e["seed"],
                tuple(e.get("perturb", ())),
                e["cpus"],
                copy.deepcopy(e["env_kwargs"]),
                e["tag"],
                e["n_envs"],
            )
            for i, e in enumerate(self.evaluate)
            if applies(e, job)
        ]

    def jobs(self) -> list[TrainJob | EvalJob]:
        return [*self.train, *(e for job in self.train for e in self.evaluations_of(job))]


def applies(entry: dict[str, Any], job: TrainJob) -> bool:
    """Whether a validated evaluation entry evaluates ``job``'s run: same env, and its tag (``UNTAGGED`` for an
    untagged entry) among the entry's ``train_tags`` (None: every tag)."""
    tags = entry["train_tags"]
    return entry["env"] == job.env_id and (tags is None or (job.tag or UNTAGGED) in tags)


def shipped_specs() -> dict[str, Path]:
    """The study specs the package ships, by name (the file name without ``.json``), sorted."""
    return {path.stem: path for path in sorted(SHIPPED_DIR.glob("*.json"), key=lambda p: p.stem)}


def resolve_spec(spec: str | Path) -> Path:
    """The spec file that ``spec`` names: a path to a file, else the name of a shipped spec (``memory-smoke``,
    with or without ``.json``). A file in the working folder wins over a shipped spec of the same name.

    Raises ``ValueError`` naming the shipped specs when it is neither."""
    path = Path(spec)
    if path.is_file():
        return path
    shipped = shipped_specs()
    name = path.name[: -len(".json")] if path.name.endswith(".json") else path.name
    if str(spec) in (name, f"{name}.json") and name in shipped:
        return shipped[name]
    if path.parent != Path(".") or path.suffix == ".json":
        raise ValueError(f"study spec {spec} does not exist (shipped specs, by name: {', '.join(shipped)})")
    raise ValueError(
        f"study spec {spec!r} is neither a file nor the name of a shipped spec: use one of {', '.join(shipped)}, "
        "or the path to a JSON file"
    )


def read_spec(path: str | Path) -> dict[str, Any]:
    """The spec (a file, or the name of a shipped spec: :func:`resolve_spec`) as a dict (JSON). Raises
    ``ValueError`` naming the file when it is missing or not JSON."""
    path = resolve_spec(path)
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
    cpus = checks.positive_int("cpus", spec.get("cpus", 1))
    max_attempts = checks.positive_int("max_attempts", spec.get("max_attempts", 3))
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
    _check_init_jobs(jobs)
    evaluations = tuple(
        _evaluation(f"evaluate[{i}]", e, cpus, jobs) for i, e in enumerate(_list("evaluate", spec.get("evaluate", [])))
    )
    _check_conditions(evaluations)
    _check_envs(jobs, evaluations)
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
    _check_keys(
        where,
        entry,
        _PPO_KEYS if ppo else _BC_KEYS,
        {"kind", "env", "seeds"} | ({"policies", "timesteps"} if ppo else {"models"}),
    )
    env_id = _string(f"{where}.env", entry["env"])
    cpus = checks.positive_int(f"{where}.cpus", entry.get("cpus", default_cpus))
    tag = check_tag(f"{where}.tag", entry["tag"]) if "tag" in entry else None
    if tag == UNTAGGED:
        raise ValueError(f"{where}.tag: {UNTAGGED!r} is reserved (it names the runs of untagged entries)")
    init_tag = _init_tag(where, entry, tag)
    # what checks.seed checks without optional or high, typed int
    seeds = [checks.non_negative_int(f"{where}.seeds", s) for s in _list(f"{where}.seeds", entry["seeds"])]
    models = [
        _string(f"{where}.{'policies' if ppo else 'models'}", m)
        for m in _list(where, entry["policies" if ppo else "models"])
    ]
    jobs = []
    fine_tuned = fine_tuned_models() if init_tag is not None else {}
    for model in models:
        for seed in seeds:
            init_job = None
            if init_tag is not None:
                if model not in fine_tuned:
                    raise ValueError(
                        f"{where}.policies: {model!r} cannot start from an imitation run; with init_from the "
                        f"policies are {', '.join(fine_tuned)}"
                    )
                name = fine_tuned[model]
                init_job = run_id("bc", env_id, name, seed, None if init_tag == UNTAGGED else init_tag)
                config = _ppo_config(where, entry, model, seed, init_from=f"runs/{init_job}")
            else:
                name = model
                config = _ppo_config(where, entry, model, seed) if ppo else _bc_config(where, entry, model, seed)
            jobs.append(
                TrainJob(
                    run_id(kind, env_id, name, seed, tag),
                    kind,
                    env_id,
                    name,
                    seed,
                    cpus,
                    config,
                    copy.deepcopy(entry),
                    tag,
                    init_job,
                )
            )
    return jobs


def fine_tuned_models() -> dict[str, str]:
    """PPO policy -> the imitation model it fine-tunes (the inverse of ``train-ppo --init-from``'s mapping)."""
    from ncp_control.agents.ppo.init_from import POLICY_OF_KIND

    return {policy: kind for kind, policy in POLICY_OF_KIND.items()}


def fine_tuning_tags(spec: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(env, fine-tuning tag) -> the training tag of the imitation entry it starts from, for the PPO entries of a
    (valid) ``spec`` with ``init_from``."""
    return {
        (e["env"], e["tag"]): e["init_from"]
        for e in spec.get("train", [])
        if isinstance(e, dict) and e.get("kind") == "ppo" and "init_from" in e
    }


def _init_tag(where: str, entry: dict[str, Any], tag: str | None) -> str | None:
    """A fine-tuning entry's ``init_from`` (the training tag of the imitation entry it starts from), or None."""
    if "init_from" not in entry:
        return None
    init_tag = check_tag(f"{where}.init_from", entry["init_from"])
    if tag is None:
        raise ValueError(
            f"{where}: a fine-tuning entry (init_from) needs a 'tag' of its own, e.g. \"ft\": its runs take the "
            "imitation models' names"
        )
    if init_tag == tag:
        raise ValueError(f"{where}.init_from: {init_tag!r} is this entry's own tag; name the tag of a 'bc' entry")
    return init_tag


def _check_init_jobs(jobs: list[TrainJob]) -> None:
    """Every fine-tuning job's imitation run is an imitation job of the spec, and no fine-tuning tag is an imitation
    entry's tag on the same env (their runs would share names in the summary)."""
    imitation = {job.job_id for job in jobs if job.kind == "bc"}
    imitation_tags = {(job.env_id, job.tag) for job in jobs if job.kind == "bc"}
    for job in jobs:
        if job.init_job is not None and (job.env_id, job.tag) in imitation_tags:
            raise ValueError(
                f"{job.job_id}: the fine-tuning tag {job.tag!r} is also a 'bc' entry's tag on {job.env_id}; give the "
                "fine-tuning entry a tag of its own"
            )
        if job.init_job is not None and job.init_job not in imitation:
            tag = job.entry["init_from"]
            raise ValueError(
                f"{job.job_id} starts from {job.init_job}, which no 'bc' entry of the spec trains: init_from "
                f"{tag!r} names the training tag of a 'bc' entry on {job.env_id} with model {job.model} and seed "
                f"{job.seed} ({UNTAGGED!r}: an entry without a tag)"
            )


def _ppo_config(
    where: str, entry: dict[str, Any], policy: str, seed: int, init_from: str | None = None
) -> dict[str, Any]:
    """What ``train-ppo --env E --policy P --timesteps T --seed S --config FILE --no-progress`` resolves (with
    ``init_from``: before ``--init-from``'s :func:`~ncp_control.agents.ppo.init_from.init_config`, which needs the
    imitation run and is the task's to apply)."""
    from ncp_control.agents.ppo import resolve_config

    overrides = copy.deepcopy(entry.get("config", {}))
    if not isinstance(overrides, dict):
        raise ValueError(f"{where}.config must be an object (the keys of a PPO run's config.json)")
    if "init_from" in overrides:
        raise ValueError(f"{where}.config: init_from is the entry's own key (the tag of a 'bc' entry of the spec)")
    overrides["progress_bar"] = False
    if init_from is not None:
        overrides["init_from"] = init_from
    try:
        timesteps = checks.positive_int(f"{where}.timesteps", entry["timesteps"])
        # resolve_config checks the policy name
        return resolve_config(
            entry["env"], cast("PolicyName", policy), timesteps=timesteps, seed=seed, overrides=overrides
        )
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from error


def _bc_config(where: str, entry: dict[str, Any], model: str, seed: int) -> dict[str, Any]:
    """What ``train-bc --env E --model M --preset P --seed S --set K=V ... [--env-kwargs J]`` resolves."""
    from ncp_control.agents.imitation import preset_config

    preset = entry.get("preset", "demo")
    settings = entry.get("set", {})
    if not isinstance(settings, dict):
        raise ValueError(f'{where}.set must be an object of BCConfig fields, e.g. {{"epochs": 1}}')
    try:
        values = {"env_id": entry["env"], "model": model, "seed": seed, "expert": None, **settings}
        if "env_kwargs" in entry:
            values["env_kwargs"] = {
                **preset_config(preset, env_id=entry["env"]).env_kwargs,
                **_json_object("env_kwargs", entry["env_kwargs"]),
            }
        return preset_config(preset, **values).to_dict()
    except (ValueError, TypeError) as error:
        raise ValueError(f"{where}: {error}") from error


def _evaluation(where: str, entry: Any, default_cpus: int, jobs: list[TrainJob]) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be an object, got {entry!r}")
    _check_keys(where, entry, _EVAL_KEYS, {"env", "episodes", "seed"})
    env_id = _string(f"{where}.env", entry["env"])
    train_tags = None
    if "train_tags" in entry:
        known = sorted({job.tag or UNTAGGED for job in jobs if job.env_id == env_id})
        train_tags = [_string(f"{where}.train_tags", t) for t in _list(f"{where}.train_tags", entry["train_tags"])]
        unknown = sorted(set(train_tags) - set(known))
        if unknown or not train_tags:
            raise ValueError(
                f"{where}.train_tags: {unknown or 'empty'}: no training entry on {env_id} has such a tag;"
                f" the tags there are {known} ({UNTAGGED!r}: entries without a tag)"
            )
    perturb = [_string(f"{where}.perturb", p) for p in _list(f"{where}.perturb", entry.get("perturb", []))]
    if perturb:
        from ncp_control.agents.evaluation.robustness import parse_sweeps

        try:
            parse_sweeps(perturb)
        except ValueError as error:
            raise ValueError(f"{where}.perturb: {error}") from error
    return {
        "env": env_id,
        "episodes": checks.positive_int(f"{where}.episodes", entry["episodes"]),
        "seed": checks.seed(f"{where}.seed", entry["seed"]),
        "perturb": perturb,
        "env_kwargs": _json_object(f"{where}.env_kwargs", entry.get("env_kwargs", {})),
        "tag": check_tag(f"{where}.tag", entry["tag"]) if "tag" in entry else None,
        "train_tags": train_tags,
        "cpus": checks.positive_int(f"{where}.cpus", entry.get("cpus", default_cpus)),
        "n_envs": checks.positive_int(f"{where}.n_envs", entry.get("n_envs", 1)),
    }


def _check_conditions(evaluations: tuple[dict[str, Any], ...]) -> None:
    """An evaluation tag names one condition of its env in the summary: two entries cannot share it."""
    seen: dict[tuple[str, str], int] = {}
    for i, e in enumerate(evaluations):
        if e["tag"] is not None:
            if (e["env"], e["tag"]) in seen:
                raise ValueError(
                    f"evaluate[{i}].tag {e['tag']!r} is already the tag of evaluate"
                    f"[{seen[e['env'], e['tag']]}] on {e['env']}: give each evaluation condition its "
                    "own tag"
                )
            seen[e["env"], e["tag"]] = i


def _check_envs(jobs: list[TrainJob], evaluations: tuple[dict[str, Any], ...]) -> None:
    """Build (and close) every distinct env a job will build from a spec's ``env_kwargs`` (for training, and for
    each evaluation entry with the kwargs of every run it evaluates), so that a bad argument (an unknown
    ``domain_randomization`` element, a misspelt keyword) fails here, before any job runs."""
    from ncp_control.agents.evaluation.episodes import make_eval_env
    from ncp_control.agents.study.jobs import evaluation_env_kwargs

    builds: dict[str, tuple[str, str, dict[str, Any]]] = {}  # one build per distinct (env, kwargs)

    def add(where: str, env_id: str, kwargs: dict[str, Any]) -> None:
        builds.setdefault(json.dumps([env_id, kwargs], sort_keys=True), (where, env_id, kwargs))

    for job in jobs:
        if job.config.get("env_kwargs"):
            add(f"training run {job.job_id}", job.env_id, job.config["env_kwargs"])
    for i, e in enumerate(evaluations):
        for job in jobs if e["env_kwargs"] else ():
            if applies(e, job):
                add(
                    f"evaluate[{i}] (run {job.job_id})",
                    e["env"],
                    evaluation_env_kwargs(job.env_id, job.config.get("env_kwargs") or {}, e["env"], e["env_kwargs"]),
                )
    for where, env_id, kwargs in builds.values():
        try:
            make_eval_env(env_id, kwargs, allow_import=True).close()
        except Exception as error:  # the env's own message says what is wrong
            raise ValueError(
                f"{where}: cannot make {env_id} with env_kwargs {kwargs}: {type(error).__name__}: {error}"
            ) from error
    _check_perturbations_fit(evaluations)


def _check_perturbations_fit(evaluations: tuple[dict[str, Any], ...]) -> None:
    """Wrap each evaluation env in every level of its entry's sweeps once, so that a perturbation the env does
    not take (an image perturbation on a vector env, a lane-keeping dynamics parameter on a MuJoCo task) fails
    here, before any job runs."""
    from ncp_control.agents.evaluation.episodes import make_eval_env
    from ncp_control.agents.evaluation.robustness import parse_sweeps
    from ncp_control.envs.perturbations import PERTURBATIONS, make_perturbation

    for i, e in enumerate(evaluations):
        if not e["perturb"]:
            continue
        env = make_eval_env(e["env"], e["env_kwargs"], allow_import=True)
        try:
            for name, levels in parse_sweeps(e["perturb"]):
                for level in levels:
                    if level != PERTURBATIONS[name].neutral:  # a neutral level runs on the plain env
                        make_perturbation(env, f"{name}:{level}", seed=0)
        except (TypeError, ValueError) as error:
            raise ValueError(f"evaluate[{i}].perturb on {e['env']}: {error}") from error
        finally:
            env.close()


def _json_object(where: str, value: Any) -> dict[str, Any]:
    """A JSON object of plain data (what a spec file holds; no tuples, sets, NaN or objects from code)."""
    try:
        same = isinstance(value, dict) and json.loads(json.dumps(value, allow_nan=False)) == value
    except (TypeError, ValueError):
        same = False
    if not same:
        raise ValueError(
            f"{where} must be a JSON object of plain data (strings, numbers, booleans, lists, objects), got {value!r}"
        )
    return copy.deepcopy(value)


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
