"""OpenMP's wait policy follows whether the worker was given its own cores."""

import os

import pytest

from generation.openmp import choose_wait_policy


@pytest.fixture
def env(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("COPYDESK_TORCH_THREADS", raising=False)
    return monkeypatch


def test_a_shared_machine_waits_passively(env):
    choose_wait_policy()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"


def test_a_worker_with_pinned_threads_keeps_libgomps_default(env):
    env.setenv("COPYDESK_TORCH_THREADS", "2")
    choose_wait_policy()
    assert "OMP_WAIT_POLICY" not in os.environ


def test_an_explicit_policy_wins(env):
    env.setenv("OMP_WAIT_POLICY", "ACTIVE")
    choose_wait_policy()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
