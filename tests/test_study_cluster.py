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
