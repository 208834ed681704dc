"""agents/study/cluster.py: the one place ``ncp-control study`` and ``train-rllib`` start or join Ray."""

import sys

import pytest

from ncp_control.agents.study.cluster import RAY_EXTRA_HINT, ray_session


def test_a_missing_ray_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(ValueError, match=r"pip install -e \"\.\[ray\]\""):
        with ray_session(None, None):
            pass
    with pytest.raises(ValueError, match="rllib extra"):
        with ray_session(None, None, hint="install the rllib extra"):
            pass
    assert "not installed" in RAY_EXTRA_HINT


def test_num_cpus_is_refused_with_a_cluster_address_or_ray_address(monkeypatch):
    pytest.importorskip("ray")
    with pytest.raises(ValueError, match="--num-cpus sizes a local Ray"):
        with ray_session("auto", 2):
            pass
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    with pytest.raises(ValueError, match="--num-cpus sizes a local Ray"):
        with ray_session(None, 2):
            pass


@pytest.mark.parametrize("command", ["train-rllib", "study"])
def test_the_commands_refuse_num_cpus_with_ray_address(monkeypatch, tmp_path, capsys, command):
    from ncp_control.agents.cli import main as cli_main

    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    if command == "train-rllib":
        args = ["train-rllib", "--env", "PendulumNoVel-v1", "--policy", "cfc", "--timesteps", "64"]
    else:
        args = ["study", "mujoco-mismatch"]
    code = cli_main([*args, "--num-cpus", "2", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--num-cpus sizes a local Ray" in err, err
    assert not (tmp_path / "x").exists()
