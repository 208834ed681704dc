"""Studies on Ray: many training runs (models x seeds) and their evaluations, from a laptop up to a cluster.

:func:`run_study` expands a spec (:mod:`ncp_control.agents.study.spec`) into jobs and runs each as a Ray Core task: a
training task per run folder, then, as each run finishes, an evaluation task per matching ``evaluate`` entry. The
work inside a task is :mod:`ncp_control.agents.study.jobs` (the same functions ``train-ppo`` / ``train-bc`` / ``evaluate`` /
``robustness`` call). The driver keeps the records and writes the summary (:mod:`ncp_control.agents.study.summary`).

Study folder ``DIR``::

    spec.json            the spec as given (a --resume must give the same)
    study.json           one entry per session (driver run): start, end (None: killed), wall seconds (up to its
                         last finished job if killed), Ray cluster, storage
    jobs.jsonl           one record per job: spec, status, submitted/start/end, attempts, Ray node id, hostname
    jobs/<job>.done      the finished job's record (evaluations: their metrics), written last, atomically
    runs/<run>/          one run folder per training job, exactly what train-ppo / train-bc write (or a copy of
                         another study's, with ``runs_from``: its record names it in ``reused_from``)
    summary.{md,csv,json}, summary-*.png   across training seeds (ncp-control study-report DIR re-renders)
    .done                the whole study finished (every job done)

Resources: a job reserves ``cpus`` Ray CPUs (default 1) and sets torch to as many threads; Ray places it wherever
the cluster has room. Faults: a task whose worker or node dies is retried by Ray (``max_retries`` =
``max_attempts - 1``) and continues from the run folder's last checkpoint; a job that raises an error is not
retried (the error is recorded). A driver that dies leaves ``jobs/*.done`` for the finished jobs; ``--resume``
skips those and restarts the others, which continue their run folders.

Storage (``storage=``): ``"shared"``: tasks write ``DIR/runs/<run>`` in place (one machine, or a file system that
every node mounts at the same path); ``"transfer"``: tasks train in a scratch folder on their node and return the
run folder as a tar archive, which the driver unpacks into ``DIR`` (evaluation tasks get the archive back);
``"auto"``: ``shared`` when every Ray node is on the driver's machine, else ``transfer``.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import os
import socket
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from ncp_control import checks
from ncp_control.agents.runs.files import write_json_atomic
from ncp_control.agents.study.cluster import ray_session, require_ray
from ncp_control.agents.study.spec import EvalJob, StudyPlan, TrainJob, plan_study

Storage = Literal["auto", "shared", "transfer"]
STORAGES = ("auto", "shared", "transfer")

#: comma-separated job ids whose worker kills itself after the first checkpoint of a fresh run (fault tests: the
#: retry finds the checkpoint, continues and is not killed)
FAULT_ENV = "NCP_CONTROL_STUDY_FAULT"


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


# ---------------------------------------------------------------------------------------------------------------
# what runs on the workers
# ---------------------------------------------------------------------------------------------------------------
class AttemptLedger:
    """A Ray actor counting the attempts of each job: every attempt reports its start, the driver reads the count."""

    def __init__(self) -> None:
        self.attempts: dict[str, int] = {}

    def start(self, job_id: str) -> int:
        self.attempts[job_id] = self.attempts.get(job_id, 0) + 1
        return self.attempts[job_id]

    def count(self, job_id: str) -> int:
        return self.attempts.get(job_id, 0)


def _where(ledger, job_id: str, cpus: int) -> dict[str, Any]:
    """Set torch threads, tell the ledger an attempt started (no wait: a task blocked in ``ray.get`` would lend
    its CPUs to another task) and say where this runs."""
    import ray
    import torch

    torch.set_num_threads(cpus)
    ledger.start.remote(job_id)
    return {
        "node_id": ray.get_runtime_context().get_node_id(),
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "start": now(),
    }


def _train_task(
    job: TrainJob, run_dir: str | None, scratch_key: str, fault: bool, ledger, init: str | bytes | None = None
) -> dict[str, Any]:
    """A training job on a worker: continue or start ``run_dir``; without one (transfer storage), train in a
    scratch folder on this node (kept for a retry here) and return the run folder as an archive. ``init``: the
    imitation run a fine-tuning job starts from, its folder (shared storage) or its archive (transfer)."""
    from ncp_control.agents.study.jobs import pack_folder, train_job, unpack_folder

    record = _where(ledger, job.job_id, job.cpus)
    transfer = run_dir is None
    scratch = Path(tempfile.gettempdir()) / "ncp-control-study" / scratch_key
    if run_dir is None:
        run_dir = str(scratch / job.job_id)
    copy = None
    if isinstance(init, bytes):  # a folder per job: two jobs fine-tuning one imitation run may run side by side
        copy = scratch / "init" / job.job_id
        init = str(unpack_folder(init, copy / str(job.init_job)))
    record.update(train_job(job.kind, job.config, run_dir, init_dir=init, exit_after_checkpoint=fault))
    import shutil

    if transfer:
        record["archive"] = pack_folder(run_dir)
        shutil.rmtree(run_dir, ignore_errors=True)
    if copy is not None:
        shutil.rmtree(copy, ignore_errors=True)
    record["end"] = now()
    return record


def _eval_task(job: EvalJob, run_dir: str, archive: bytes | None, ledger) -> dict[str, Any]:
    """An evaluation job on a worker: the run folder is ``run_dir`` or, with an ``archive``, a scratch copy."""
    from ncp_control.agents.study.jobs import evaluate_job, unpack_folder

    record = _where(ledger, job.job_id, job.cpus)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ncp-control-eval-") as scratch:
        if archive is not None:
            run_dir = str(unpack_folder(archive, Path(scratch) / job.run_id))
        record["rows"] = evaluate_job(
            run_dir, job.env_id, job.episodes, job.seed, job.perturb, job.env_kwargs, job.n_envs
        )
    record.update(seconds=time.perf_counter() - t0, end=now())
    return record


@functools.cache
def _remote():
    ray = require_ray()
    return (ray.remote(_train_task), ray.remote(_eval_task), ray.remote(num_cpus=0)(AttemptLedger))


# ---------------------------------------------------------------------------------------------------------------
# the driver
# ---------------------------------------------------------------------------------------------------------------
def run_study(
    spec: dict[str, Any],
    out: str | os.PathLike,
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    resume: bool = False,
    storage: Storage = "auto",
    runs_from: Sequence[str | os.PathLike] = (),
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run (or resume) a study in ``out``; returns the summary (see :func:`ncp_control.agents.study.summary.summarize`).

    Args:
        spec: the study spec (:func:`ncp_control.agents.study.spec.read_spec`).
        out: the study folder (created; must not hold another study unless ``resume`` with the same spec).
        address: a Ray cluster to join (also ``RAY_ADDRESS``); None: start a local Ray for this run and stop it
            after (unless this process is already connected to one, which is then used).
        num_cpus: CPUs of the local Ray (default: all); not with ``address``.
        resume: skip finished jobs (``jobs/*.done``) and continue the others.
        storage: ``"auto"``, ``"shared"`` or ``"transfer"`` (see the module docstring).
        runs_from: other study folders whose finished training runs are copied instead of trained again when
            their job id and resolved training config match (:mod:`ncp_control.agents.study.reuse`).
        progress: called with a line of text per job event.

    Raises:
        ValueError: a bad spec, a study folder holding another study, a ``runs_from`` folder that is not a study
            folder, or Ray missing (names the extra).
    """
    from ncp_control.agents.study.reuse import check_sources, reuse_runs

    checks.choice("storage", storage, STORAGES)
    plan = plan_study(spec)
    out = Path(out)
    _check_folder(out, plan, resume)
    sources = check_sources(runs_from, out)
    say = progress or (lambda line: None)
    with ray_session(address, num_cpus) as ray:
        _init_folder(out, plan)
        reuse_runs(plan.train, out, sources, new_record, now, say)
        driver = _Driver(plan, out, _choose_storage(ray, storage), say)
        driver.run()
    from ncp_control.agents.study.summary import write_summary

    summary = write_summary(out)
    if summary["jobs"]["done"] == summary["jobs"]["total"]:
        write_json_atomic(out / ".done", {"finished": now()}, indent=1)
    return summary


def _without_doc(spec: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in spec.items() if key != "_doc"}


def _check_folder(out: Path, plan: StudyPlan, resume: bool) -> None:
    from ncp_control.agents.runs.load import read_json_object

    spec_path = out / "spec.json"
    if spec_path.exists():
        if not resume:
            raise ValueError(f"{out} already holds a study; pass --resume to continue it or choose another --out")
        held = read_json_object(spec_path, "study spec")
        if _without_doc(held) != _without_doc(plan.spec):  # "_doc" is a comment: editing it changes no job
            raise ValueError(
                f"{out} holds a study of another spec ({spec_path}); resume it with that spec or choose another --out"
            )
    elif resume and out.exists() and any(out.iterdir()):
        raise ValueError(f"nothing to resume: {out} has no spec.json (not a study folder)")


def _init_folder(out: Path, plan: StudyPlan) -> None:
    spec_path = out / "spec.json"
    (out / "jobs").mkdir(parents=True, exist_ok=True)
    (out / "runs").mkdir(exist_ok=True)
    write_json_atomic(spec_path, plan.spec, indent=1)
    if (out / ".done").exists():
        os.remove(out / ".done")


def _choose_storage(ray, storage: Storage) -> str:
    if storage != "auto":
        return storage
    here = ray.util.get_node_ip_address()
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    return "shared" if all(n.get("NodeManagerAddress") == here for n in nodes) else "transfer"


class _Driver:
    """Submits the jobs, waits for them, keeps ``jobs.jsonl`` and the ``.done`` markers."""

    def __init__(self, plan: StudyPlan, out: Path, storage: str, say: Callable[[str], None]):
        from ncp_control.agents.study.summary import read_records

        self.plan, self.out, self.storage, self.say = plan, out, storage, say
        self.records = {job.job_id: new_record(job) for job in plan.jobs()}
        for job_id, record in read_records(out).items():
            if job_id in self.records and (out / "jobs" / f"{job_id}.done").is_file():
                self.records[job_id] = record
        self.faults = {j for j in os.environ.get(FAULT_ENV, "").split(",") if j}
        self.pending: dict[Any, TrainJob | EvalJob] = {}
        self.archives: dict[str, Any] = {}
        key = hashlib.sha256(str(out.resolve()).encode()).hexdigest()[:12]
        self.scratch_key = f"{plan.name}-{key}"

    def done(self, job_id: str) -> bool:
        return self.records[job_id]["status"] == "done"

    def run(self) -> None:
        import ray

        t0 = time.time()
        session = {
            "start": now(),
            "end": None,
            "wall_seconds": 0.0,
            "storage": self.storage,
            "ray": ray.__version__,
            "cluster_cpus": ray.cluster_resources().get("CPU"),
            "nodes": len(ray.nodes()),
        }
        index = record_session(self.out, session)
        self.ledger = _remote()[2].remote()
        # wait until it runs: a task's report to an actor still starting is buffered in the task's worker, and is
        # lost if that worker dies (the attempt would go uncounted)
        ray.get(self.ledger.count.remote(""))
        self.queue = []
        for job in self.plan.train:
            if not self.done(job.job_id):
                self.queue.append(job)
            else:
                self.say(f"{job.job_id}: done earlier, skipped")
                self._submit_evaluations(job)
        self._fill()
        self._write_records()
        while self.pending:
            ready, _ = ray.wait(list(self.pending), num_returns=1)
            self._finish(ready[0])
            self._fill()
            session.update(wall_seconds=time.time() - t0)  # a killed driver keeps its time up to here
            record_session(self.out, session, index)
        session.update(end=now(), wall_seconds=time.time() - t0)
        record_session(self.out, session, index)

    def _fill(self) -> None:
        """Submit queued training jobs, in spec order among those ready (a fine-tuning job once its imitation run
        is done), while their CPUs fit in the cluster's (at least one job in flight).

        Ray's pattern for limiting pending tasks: a run's evaluations, submitted when it finishes, then queue ahead
        of the remaining training instead of behind all of it, so finished results arrive throughout the study.
        """
        import ray

        capacity = ray.cluster_resources().get("CPU", 1.0)  # grows with an autoscaling cluster
        while (job := self._next_ready()) is not None:
            busy = sum(j.cpus for j in self.pending.values() if isinstance(j, TrainJob))
            if busy and busy + job.cpus > capacity:
                return
            self.queue.remove(job)
            self._submit_train(job)

    def _next_ready(self) -> TrainJob | None:
        """The first queued job whose imitation run (if any) is done; drops (as skipped) the jobs whose imitation
        run failed or was skipped."""
        for job in list(self.queue):
            if job.init_job is None or self.done(job.init_job):
                return job
            if self.records[job.init_job]["status"] in ("failed", "skipped"):
                self.queue.remove(job)
                self._skip(job, f"its imitation run {job.init_job} did not finish")
        return None

    def _skip(self, job: TrainJob, why: str) -> None:
        """Record a training job and its evaluations as skipped (``why``)."""
        self.records[job.job_id].update(status="skipped", error=why)
        for evaluation in self.plan.evaluations_of(job):
            self.records[evaluation.job_id].update(status="skipped", error=f"training {job.job_id}: {why}")
        self.say(f"{job.job_id}: skipped, {why}")
        self._write_records()

    def _submit_train(self, job: TrainJob) -> None:
        train_remote = _remote()[0]
        run_dir = None if self.storage == "transfer" else str(self.out.resolve() / "runs" / job.job_id)
        init: str | Any = None
        if job.init_job is not None:
            init = str(self.out.resolve() / "runs" / job.init_job)
            if self.storage == "transfer":
                init = self._archive(job.init_job)
        ref = train_remote.options(num_cpus=job.cpus, max_retries=self.plan.max_attempts - 1, name=job.job_id).remote(
            job, run_dir, self.scratch_key, job.job_id in self.faults, self.ledger, init
        )
        self.pending[ref] = job
        self.records[job.job_id].update(status="submitted", submitted=now())
        self.say(f"{job.job_id}: submitted")

    def _submit_evaluations(self, job: TrainJob) -> None:
        eval_remote = _remote()[1]
        run_dir = self.out.resolve() / "runs" / job.job_id
        for evaluation in self.plan.evaluations_of(job):
            if self.done(evaluation.job_id):
                continue
            archive = self._archive(job.job_id) if self.storage == "transfer" else None
            ref = eval_remote.options(
                num_cpus=evaluation.cpus, max_retries=self.plan.max_attempts - 1, name=evaluation.job_id
            ).remote(evaluation, str(run_dir), archive, self.ledger)
            self.pending[ref] = evaluation
            self.records[evaluation.job_id].update(status="submitted", submitted=now())

    def _archive(self, run_id: str):
        """The run folder ``runs/<run_id>`` as an archive in Ray's object store (put once, shared by its tasks)."""
        import ray

        if run_id not in self.archives:
            from ncp_control.agents.study.jobs import pack_folder

            self.archives[run_id] = ray.put(pack_folder(self.out / "runs" / run_id))
        return self.archives[run_id]

    def _finish(self, ref) -> None:
        import ray

        job = self.pending.pop(ref)
        record = self.records[job.job_id]
        try:
            result = ray.get(ref)
        except ray.exceptions.RayError as error:
            record.update(
                status="failed",
                end=now(),
                error=_error_text(error),
                attempts=ray.get(self.ledger.count.remote(job.job_id)),
            )
            self.say(f"{job.job_id}: FAILED after {record['attempts']} attempt(s): {record['error']}")
            if isinstance(job, TrainJob):
                for evaluation in self.plan.evaluations_of(job):
                    self.records[evaluation.job_id].update(status="skipped", error=f"training {job.job_id} failed")
            self._write_records()
            return
        archive = result.pop("archive", None)
        if archive is not None:
            from ncp_control.agents.study.jobs import unpack_folder

            unpack_folder(archive, self.out / "runs" / job.job_id)
        attempts = max(1, ray.get(self.ledger.count.remote(job.job_id)))  # 0 only if its report is still in flight
        record.update(status="done", attempts=attempts, error=None, **result)
        write_json_atomic(self.out / "jobs" / f"{job.job_id}.done", record, indent=1)  # last: the job is finished
        self._write_records()
        self.say(f"{job.job_id}: done on {record['hostname']} (attempt {record['attempts']})")
        if isinstance(job, TrainJob):
            self._submit_evaluations(job)

    def _write_records(self) -> None:
        from ncp_control.agents.study.summary import write_records

        write_records(self.out, self.records.values())


def new_record(job: TrainJob | EvalJob) -> dict[str, Any]:
    """The record of a job not yet run: its id, its spec, ``status: "pending"``, no attempts and empty timing and
    placement fields (a finished job's record, completed, is its ``jobs/<id>.done``). ``reuse_runs`` takes this
    function to write the records of the runs it copies in."""
    if isinstance(job, TrainJob):
        spec = {
            "type": "train",
            "kind": job.kind,
            "env": job.env_id,
            "model": job.model,
            "seed": job.seed,
            "cpus": job.cpus,
            "run": f"runs/{job.job_id}",
        }
        if job.tag is not None:
            spec["tag"] = job.tag
        if job.init_job is not None:
            spec["init_from"] = f"runs/{job.init_job}"
    else:
        spec = {
            "type": "evaluate",
            "run": f"runs/{job.run_id}",
            "evaluation": job.index,
            "env": job.env_id,
            "episodes": job.episodes,
            "seed": job.seed,
            "perturb": list(job.perturb),
            "cpus": job.cpus,
        }
        if job.env_kwargs:
            spec["env_kwargs"] = job.env_kwargs
        if job.condition is not None:
            spec["condition"] = job.condition
        if job.n_envs != 1:
            spec["n_envs"] = job.n_envs
    return {
        "id": job.job_id,
        "spec": spec,
        "status": "pending",
        "submitted": None,
        "start": None,
        "end": None,
        "attempts": 0,
        "node_id": None,
        "hostname": None,
        "error": None,
    }


def _error_text(error: BaseException) -> str:
    cause = getattr(error, "cause", None)
    if isinstance(cause, BaseException):
        return f"{type(cause).__name__}: {' '.join(str(cause).split())}"
    return f"{type(error).__name__}: {' '.join(str(error).split())[:500]}"


def record_session(out: Path, session: dict[str, Any], index: int | None = None) -> int:
    """Write ``session`` into ``study.json``: appended (``index`` None) or at ``index``; returns its index."""
    from ncp_control.agents.runs.load import read_json_object

    path = out / "study.json"
    study = read_json_object(path, "study record") if path.is_file() else {"sessions": []}
    if index is None:
        study["sessions"].append(session)
        index = len(study["sessions"]) - 1
    else:
        study["sessions"][index] = session
    write_json_atomic(path, study, indent=1)
    return index
