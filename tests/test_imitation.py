"""Imitation pipeline on a tiny synthetic camera env: dataset format, DAgger data, TBPTT streams, resume, seeds."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

from ncp_control.agents.imitation import (
    HELDOUT_SEED_START,
    TRAIN_SEED_LIMIT,
    BCConfig,
    DatasetError,
    Demonstrations,
    Episode,
    SteeringNoise,
    beta_schedule,
    evaluate_heldout,
    heldout_road_seeds,
    load_predictor,
    preset_config,
    resolve_expert,
    rollout,
    train,
    training_road_seeds,
)
from ncp_control.agents.imitation.sequence_bc import SequenceData
from ncp_control.policies.imitation import ModelConfig, build_model
from tests.imitation_synthetic import ENV_ID, make_expert

torch.set_num_threads(1)

ENV = ENV_ID  # registered by importing tests.imitation_synthetic
EXPERT = "tests.imitation_synthetic:make_expert"
SHAPE = (16, 32, 3)


def _tiny_config(**overrides) -> BCConfig:
    settings = dict(
        env_id=ENV,
        expert=EXPERT,
        model="cnn",
        conv_channels=(4, 4, 4, 4, 4),
        features=8,
        demo_episodes=3,
        dagger_rounds=1,
        dagger_episodes=2,
        epochs=2,
        dagger_epochs=1,
        batch_size=4,
        lr=1e-2,
    )
    return BCConfig(**{**settings, **overrides})


def _episode(steps=5, seed=3, value=0.0) -> Episode:
    rng = np.random.default_rng(seed)
    return Episode(
        observations=rng.integers(0, 256, (steps, *SHAPE), dtype=np.uint8),
        actions=rng.uniform(-1, 1, (steps, 1)).astype(np.float32),
        executed=rng.uniform(-1, 1, (steps, 1)).astype(np.float32),
        learner_actions=np.full((steps, 1), np.nan, np.float32),
        dt=np.full(steps, 0.1, np.float32),
        info={"lateral_offset_m": np.full(steps, value, np.float32), "distance_m": np.arange(steps, dtype=np.float32)},
        road_seed=seed,
        success=True,
    )


def _store(tmp_path) -> Demonstrations:
    return Demonstrations.create(
        tmp_path / "demos",
        env_id=ENV,
        env_kwargs={"dt": 0.1},
        observation_shape=SHAPE,
        action_shape=(1,),
        info_keys=["lateral_offset_m", "distance_m"],
    )


# ------------------------------------------------------------------------------------------------ dataset


def test_dataset_round_trip(tmp_path):
    store = _store(tmp_path)
    episodes = [_episode(5, seed=1), _episode(7, seed=2, value=0.5)]
    for ep in episodes:
        store.append(ep, round_index=0, beta=1.0)
    store.mark_round_complete(0)
    again = Demonstrations.open(tmp_path / "demos", env_id=ENV, observation_shape=SHAPE, action_shape=(1,))
    assert len(again) == 2 and again.total_steps == 12 and again.rounds_complete == [0]
    assert again.road_seeds == [1, 2] and again.env_kwargs == {"dt": 0.1}
    for original, loaded in zip(episodes, again.load_all()):
        np.testing.assert_array_equal(loaded.observations, original.observations)
        np.testing.assert_array_equal(loaded.actions, original.actions)
        np.testing.assert_array_equal(loaded.executed, original.executed)
        np.testing.assert_array_equal(loaded.dt, original.dt)
        assert np.isnan(loaded.learner_actions).all()
        for key in ("lateral_offset_m", "distance_m"):
            np.testing.assert_array_equal(loaded.info[key], original.info[key])
        assert loaded.road_seed == original.road_seed and loaded.success
    manifest = json.loads((tmp_path / "demos" / "manifest.json").read_text())
    assert manifest["format"] == "ncp-control/demonstrations" and manifest["version"] == 1
    assert set(manifest["episodes"][0]) == {"file", "steps", "road_seed", "round", "beta", "success", "bytes", "sha256"}


def test_truncated_episode_file_raises(tmp_path):
    store = _store(tmp_path)
    entry = store.append(_episode(), round_index=0, beta=1.0)
    path = tmp_path / "demos" / entry["file"]
    path.write_bytes(path.read_bytes()[: entry["bytes"] // 2])
    with pytest.raises(DatasetError, match="truncated"):
        Demonstrations.open(tmp_path / "demos").load(0)


def test_corrupt_episode_file_raises(tmp_path):
    store = _store(tmp_path)
    entry = store.append(_episode(), round_index=0, beta=1.0)
    path = tmp_path / "demos" / entry["file"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte flipped
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="corrupt"):
        Demonstrations.open(tmp_path / "demos").load(0)


def test_episode_file_that_does_not_match_the_manifest_raises(tmp_path):
    """A well-formed file whose arrays disagree with the manifest (here: a foreign file with its checksum)."""
    store = _store(tmp_path)
    store.append(_episode(steps=5), round_index=0, beta=1.0)
    other = Demonstrations.create(
        tmp_path / "other",
        env_id=ENV,
        env_kwargs={},
        observation_shape=SHAPE,
        action_shape=(1,),
        info_keys=["lateral_offset_m", "distance_m"],
    )
    foreign = other.append(_episode(steps=6), round_index=0, beta=1.0)
    (tmp_path / "demos" / "episode_000000.npz").write_bytes((tmp_path / "other" / foreign["file"]).read_bytes())
    manifest = json.loads((tmp_path / "demos" / "manifest.json").read_text())
    manifest["episodes"][0].update(bytes=foreign["bytes"], sha256=foreign["sha256"])
    (tmp_path / "demos" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match=r"observations has shape \(6, 16, 32, 3\), the manifest implies \(5,"):
        Demonstrations.open(tmp_path / "demos").load(0)


def test_opening_with_mismatched_expectations_raises(tmp_path):
    _store(tmp_path)
    with pytest.raises(DatasetError, match="observation_shape"):
        Demonstrations.open(tmp_path / "demos", observation_shape=(32, 64, 3))
    with pytest.raises(DatasetError, match="env_id"):
        Demonstrations.open(tmp_path / "demos", env_id="LaneKeeping-v0")
    with pytest.raises(DatasetError, match="manifest.json is missing"):
        Demonstrations.open(tmp_path / "nowhere")
    (tmp_path / "demos" / "manifest.json").write_text("{ not json")
    with pytest.raises(DatasetError, match="not valid JSON"):
        Demonstrations.open(tmp_path / "demos")


def test_missing_episode_file_and_wrong_shapes_on_append_raise(tmp_path):
    store = _store(tmp_path)
    entry = store.append(_episode(), round_index=0, beta=1.0)
    (tmp_path / "demos" / entry["file"]).unlink()
    with pytest.raises(DatasetError, match="missing"):
        store.load(0)
    bad = _episode()
    bad.observations = bad.observations[:, :8]
    with pytest.raises(DatasetError, match="do not match"):
        store.append(bad, round_index=0, beta=1.0)


def test_incomplete_round_is_discarded(tmp_path):
    store = _store(tmp_path)
    store.append(_episode(seed=1), round_index=0, beta=1.0)
    store.mark_round_complete(0)
    store.append(_episode(seed=2), round_index=1, beta=0.5)
    assert store.discard_incomplete_round(1) == 1
    assert len(Demonstrations.open(tmp_path / "demos")) == 1
    assert store.discard_incomplete_round(0) == 0  # complete rounds stay


# ---------------------------------------------------------------------------------------------- road seeds


def test_heldout_roads_never_enter_training_data(tmp_path):
    with pytest.raises(ValueError, match="held-out roads must never enter training data"):
        _store(tmp_path).append(_episode(seed=HELDOUT_SEED_START), round_index=0, beta=1.0)
    with pytest.raises(ValueError, match="training road seed"):
        heldout_road_seeds(5, 10)
    with pytest.raises(ValueError, match="training road seed"):
        evaluate_heldout(build_model(ModelConfig("cnn", SHAPE)), ENV, 1, seed=HELDOUT_SEED_START - 1)
    seeds = [s for r in range(5) for s in training_road_seeds(0, r, 200)]
    assert max(seeds) < TRAIN_SEED_LIMIT <= HELDOUT_SEED_START
    assert training_road_seeds(0, 1, 20) == training_road_seeds(0, 1, 20) != training_road_seeds(0, 2, 20)


def test_a_trained_run_used_only_training_roads(tmp_path):
    run = train(_tiny_config(), tmp_path / "run")
    store = Demonstrations.open(run / "demonstrations")
    evaluation = set(heldout_road_seeds(HELDOUT_SEED_START, 100))
    assert store.road_seeds and all(0 <= s < TRAIN_SEED_LIMIT for s in store.road_seeds)
    assert not evaluation & set(store.road_seeds)
    config = json.loads((run / "config.json").read_text())
    assert config["kind"] == "bc" and config["policy"] == "cnn" and config["env_id"] == ENV
    assert config["train_seed_limit"] == TRAIN_SEED_LIMIT


# ---------------------------------------------------------------------------------------------- rollouts


def _replay_labels(episode: Episode) -> np.ndarray:
    """Expert actions at the states visited by replaying the executed actions on the same road."""
    env = gym.make(ENV)
    expert = make_expert(env)
    env.reset(seed=episode.road_seed)
    labels = []
    for action in episode.executed:
        labels.append(expert())
        env.step(action)
    return np.stack(labels)


def test_noisy_demonstrations_label_the_visited_states():
    env = gym.make(ENV)
    noise = SteeringNoise(std=0.4, rho=0.8)
    episode = rollout(env, make_expert(env), 11, noise=noise, rng=np.random.default_rng(0), step_seconds=0.1)
    assert np.abs(episode.executed - episode.actions).max() > 0.1  # the noise was executed ...
    np.testing.assert_allclose(episode.actions, _replay_labels(episode), atol=1e-6)  # ... labels stay the expert's
    assert np.isnan(episode.learner_actions).all()
    assert episode.info["distance_m"][0] == 0.0 and np.all(np.diff(episode.info["distance_m"]) > 0)


def test_dagger_rollout_lets_the_learner_drive_and_the_expert_label():
    env = gym.make(ENV)
    learner = build_model(ModelConfig("ncp-ltc", SHAPE, features=8, conv_channels=(4, 4, 4, 4, 8), step_seconds=0.1), 0)
    episode = rollout(env, make_expert(env), 12, learner=learner, beta=0.0, step_seconds=0.1)
    np.testing.assert_array_equal(episode.executed, np.clip(episode.learner_actions, -1, 1))
    np.testing.assert_allclose(episode.actions, _replay_labels(episode), atol=1e-6)
    assert np.abs(episode.actions - episode.executed).max() > 1e-3


def test_learner_state_advances_while_the_expert_drives():
    """With beta = 1 the expert executes every step, yet the recorded learner actions equal the learner's outputs
    over the whole recorded sequence with its state carried (not reset) from the first frame."""
    env = gym.make(ENV)
    learner = build_model(ModelConfig("ncp-ltc", SHAPE, features=8, conv_channels=(4, 4, 4, 4, 8), step_seconds=0.1), 0)
    episode = rollout(env, make_expert(env), 13, learner=learner, beta=1.0, step_seconds=0.1)
    np.testing.assert_array_equal(episode.executed, episode.actions)
    t = episode.steps
    with torch.no_grad():
        out, _ = learner(
            torch.from_numpy(episode.observations)[None],
            learner.initial_state(1),
            torch.from_numpy(episode.dt)[None],
            torch.arange(t)[None] == 0,
        )
    np.testing.assert_allclose(episode.learner_actions, out[0].clamp(-1, 1).numpy(), atol=1e-5)


def test_dagger_aggregates_labelled_learner_episodes(tmp_path):
    config = _tiny_config(dagger_rounds=2, dagger_episodes=2, beta0=0.5, beta_decay=0.5)
    run = train(config, tmp_path / "run")
    store = Demonstrations.open(run / "demonstrations")
    entries = store.entries
    assert [e["round"] for e in entries] == [0, 0, 0, 1, 1, 2, 2]
    assert [e["beta"] for e in entries] == [1.0] * 3 + [0.5] * 2 + [0.25] * 2
    assert store.rounds_complete == [0, 1, 2]
    progress = [json.loads(line) for line in (run / "progress.jsonl").read_text().splitlines()]
    assert [p["train/episodes"] for p in progress] == [3, 3, 5, 7]  # training used the aggregate
    last = store.load(len(store) - 1)
    assert not np.isnan(last.learner_actions).any()  # the learner drove ...
    np.testing.assert_allclose(last.actions, _replay_labels(last), atol=1e-6)  # ... and the expert labelled
    assert beta_schedule(config, 0) == 1.0 and beta_schedule(config, 3) == 0.125


# ------------------------------------------------------------------------------------------------ training


def test_streams_visit_every_frame_once_in_episode_order():
    episodes = [_episode(steps=n, seed=n) for n in (5, 9, 3, 12, 7)]
    data = SequenceData(episodes, 0.1)
    streams = data.streams(2, 4, np.random.default_rng(0))
    assert streams.shape[1] % 4 == 0
    valid = streams[streams >= 0]
    assert sorted(valid.tolist()) == list(range(len(data)))
    for row in streams:
        row = row[row >= 0]
        steps = np.diff(row)
        # within a stream, frames advance one by one except where a new episode starts
        assert np.all((steps == 1) | data.starts[row[1:]])
        assert data.starts[row[0]]


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    config = _tiny_config(model="ncp-cfc", epochs=3, dagger_epochs=2)
    full = load_predictor(train(config, tmp_path / "full"))

    class Interrupt(Exception):
        pass

    def stop_in_round_1(record):
        if record["train/round"] == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(config, tmp_path / "resumed", callback=stop_in_round_1)
    assert not (tmp_path / "resumed" / "model.pt").exists()
    resumed = load_predictor(train(config, tmp_path / "resumed", resume=True, trusted_expert=EXPERT))
    for (name, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name)
    lines = (tmp_path / "resumed" / "progress.jsonl").read_text().splitlines()
    assert [json.loads(x)["train/epoch"] for x in lines] == [1, 2, 3, 1, 2]  # no epoch trained twice


def test_run_folder_guards(tmp_path):
    config = _tiny_config(dagger_rounds=0, epochs=1)
    train(config, tmp_path / "run")
    with pytest.raises(ValueError, match="already holds a run"):
        train(config, tmp_path / "run")
    with pytest.raises(ValueError, match="different settings"):
        train(_tiny_config(dagger_rounds=0, epochs=2), tmp_path / "run", resume=True)
    with pytest.raises(ValueError, match="nothing to resume"):
        train(config, tmp_path / "empty", resume=True)


def test_load_predictor_round_trip_and_errors(tmp_path):
    run = train(_tiny_config(model="lstm", dagger_rounds=0, epochs=1), tmp_path / "run")
    policy = load_predictor(run)
    config = json.loads((run / "config.json").read_text())
    again = load_predictor(run, config)
    frames = np.random.default_rng(0).integers(0, 256, (2, *SHAPE), dtype=np.uint8)
    a, sa = policy.predict(frames)
    b, sb = again.predict(frames)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(sa, sb)
    with pytest.raises(ValueError, match="does not exist"):
        load_predictor(tmp_path / "nothing")
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupt"):
        load_predictor(tmp_path / "corrupt")
    with pytest.raises(ValueError, match="not an imitation"):
        load_predictor(run, {**config, "kind": "ppo"})
    (run / "model.pt").unlink()
    (run / "checkpoint.pt").unlink()
    with pytest.raises(ValueError, match="neither model.pt nor checkpoint.pt"):
        load_predictor(run)


def test_presets_and_config_validation():
    demo = preset_config("demo", env_id=ENV)
    assert demo.window == 16 and demo.env_id == ENV
    assert preset_config("paper").conv_channels == (24, 36, 48, 64, 8)
    with pytest.raises(ValueError, match="preset must be one of"):
        preset_config("fast")
    with pytest.raises(ValueError, match="model must be one of"):
        BCConfig(model="gru")
    with pytest.raises(ValueError, match="unknown training settings"):
        BCConfig.from_dict({"epochz": 3})
    with pytest.raises(ValueError, match="beta0 and beta_decay"):
        BCConfig(beta0=1.5)
    assert BCConfig.from_dict(json.loads(json.dumps(demo.to_dict()))) == demo


def test_expert_resolution_errors():
    with pytest.raises(ValueError, match="no expert registered"):
        resolve_expert("Nope-v0")
    with pytest.raises(ValueError, match="package.module:factory"):
        resolve_expert(ENV, "just_a_name")
    assert resolve_expert(ENV, EXPERT, allow_import=True) is make_expert  # named by the caller
    from ncp_control.agents.imitation.experts import PurePursuitExpert

    assert resolve_expert("LaneKeeping-v0") is PurePursuitExpert  # the registry needs no permission
    assert resolve_expert(ENV, "pure-pursuit") is PurePursuitExpert


def test_a_crafted_config_cannot_make_resume_import_code(tmp_path):
    """``os:system`` (or any module:attr outside the registry) read from a run's config.json is refused, before
    anything is imported or called; repeating it on the command line (--expert) is the user's explicit say-so."""
    with pytest.raises(ValueError, match="not one of the project's experts"):
        resolve_expert(ENV, "os:system")
    with pytest.raises(ValueError, match="--expert tests.imitation_synthetic:make_expert"):
        resolve_expert(ENV, EXPERT)
    config = _tiny_config(expert="os:system")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(
        json.dumps({"kind": "bc", "env_id": ENV, "policy": "cnn", "seed": 0, "training": config.to_dict()})
    )
    with pytest.raises(ValueError, match="os:system"):
        train(config, run, resume=True)
    from ncp_control.agents.cli import main as cli_main

    assert cli_main(["train-bc", "--out", str(run), "--resume"]) == 2


def _crafted_store(tmp_path, name: str):
    """A demonstrations folder whose manifest lists one episode of round 1 (incomplete) under ``name``."""
    store = Demonstrations.create(
        tmp_path / "demos",
        env_id=ENV,
        env_kwargs={},
        observation_shape=SHAPE,
        action_shape=(1,),
        info_keys=["lateral_offset_m", "distance_m"],
    )
    store.append(_episode(), round_index=0, beta=1.0)
    manifest = json.loads((tmp_path / "demos" / "manifest.json").read_text())
    manifest["episodes"].append({**manifest["episodes"][0], "file": name, "round": 1})
    (tmp_path / "demos" / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path / "demos"


@pytest.mark.parametrize("kind", ["absolute", "dotdot", "nested dotdot", "symlink out", "symlinked dir"])
def test_a_crafted_manifest_cannot_reach_outside_the_dataset_folder(tmp_path, kind):
    """Names that are absolute, contain '..' or resolve outside (symlinks) are refused before anything is read
    or deleted: the victim file outside the folder survives open(), load() and discard_incomplete_round()."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    outside = tmp_path / "outside"
    outside.mkdir()
    name = {
        "absolute": str(victim),
        "dotdot": "../victim.txt",
        "nested dotdot": "x/../../victim.txt",
        "symlink out": "link.npz",
        "symlinked dir": "sub/victim.txt",
    }[kind]
    folder = _crafted_store(tmp_path, name)
    if kind == "symlink out":
        (folder / "link.npz").symlink_to(victim)
    if kind == "symlinked dir":
        (folder / "sub").symlink_to(tmp_path)
    with pytest.raises(DatasetError, match="manifest"):
        Demonstrations.open(folder)
    store = Demonstrations(folder, json.loads((folder / "manifest.json").read_text()))  # bypassing open()
    with pytest.raises(DatasetError):
        store.discard_incomplete_round(1)
    with pytest.raises(DatasetError):
        store.load(1)
    assert victim.read_text() == "precious"
    assert len(json.loads((folder / "manifest.json").read_text())["episodes"]) == 2  # nothing rewritten either


def test_a_symlink_inside_the_folder_stays_usable(tmp_path):
    folder = _crafted_store(tmp_path, "alias.npz")
    (folder / "alias.npz").symlink_to(folder / "episode_000000.npz")
    store = Demonstrations.open(folder)
    assert store.load(1).steps == 5
    assert store.discard_incomplete_round(1) == 1 and (folder / "episode_000000.npz").is_file()


def test_a_planted_temporary_symlink_cannot_redirect_writes(tmp_path):
    from ncp_control.agents.runs.files import append_line, write_json_atomic

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json.tmp").symlink_to(victim)
    write_json_atomic(run / "config.json", {"a": 1})
    assert victim.read_text() == "precious" and json.loads((run / "config.json").read_text()) == {"a": 1}
    (run / "progress.jsonl").symlink_to(victim)
    with pytest.raises(ValueError, match="symlink"):
        append_line(run / "progress.jsonl", "{}")
    assert victim.read_text() == "precious"
