"""UnityVecEnv's opt-in restart of a failed Unity process (``max_restarts``), with real
scene processes that crash or hang through the player's test faults."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest

from gym_unity_il.envs import UnityVecEnv, make_unity_vec_env
from gym_unity_il.errors import ConfigError, EnvClosedError, SpecMismatchError, UnityProcessExitedError, UnityTimeoutError

ZERO = np.zeros((5, 2), np.float32)


def _ball(num_agents: int, *, seed: int, faults: tuple[str, ...] = (), **kwargs: Any) -> dict[str, Any]:
    """UnitySession arguments of one "ball" process, with ``--fault`` flags."""
    args = [a for fault in faults for a in ("--fault", fault)]
    return {"scene": "ball", "scene_kwargs": {"num_agents": num_agents}, "seed": seed, "timeout_wait": 20, "additional_args": args, **kwargs}


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def released(assert_released):
    """Closes the VecEnvs a test made and checks every port they ever used is free and no
    process is left (the checks of ``assert_released``)."""
    made: list[tuple[UnityVecEnv, set[int]]] = []

    def track(venv: UnityVecEnv) -> set[int]:
        ports = set(venv.ports)
        made.append((venv, ports))
        return ports

    yield track
    used: set[int] = set()
    for venv, ports in made:
        used |= ports | set(venv.ports)
        venv.close()
    for port in used:
        assert_released(port)


def test_a_crashed_process_is_restarted_and_only_its_slots_are_cut(tmp_path: Path, released, caplog) -> None:
    sessions = [
        _ball(2, seed=0),
        _ball(3, seed=1, worker_id=1, log_folder=tmp_path, faults=("crash-at-step:3", f"once:{tmp_path / 'crashed'}")),
    ]
    venv = UnityVecEnv(sessions=sessions, max_restarts=1)
    ports = released(venv)
    pids = list(venv.process_ids)
    venv.reset()
    for _ in range(2):
        before, _, done, _ = venv.step(ZERO)
        assert not done.any()
    with caplog.at_level(logging.WARNING, logger="gym_unity_il.envs.vec_env"):
        obs, reward, done, infos = venv.step(ZERO)
    assert done.tolist() == [False, False, True, True, True]
    assert reward[2:].tolist() == [0.0, 0.0, 0.0]
    for i in (2, 3, 4):
        assert infos[i]["unity_restarted"] and infos[i]["TimeLimit.truncated"]
        np.testing.assert_array_equal(infos[i]["terminal_observation"], before[i])
    assert all("unity_restarted" not in infos[i] and "terminal_observation" not in infos[i] for i in (0, 1))
    assert venv.restart_count == 1 and venv.restart_counts == [0, 1]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "Unity process 1 failed (UnityProcessExitedError" in warnings[0] and "exited with code 3" in warnings[0]
    assert "restart 1 of 1" in warnings[0]

    # the old process is gone, a new one serves the slots; process 0 was not touched
    assert venv.process_ids[0] == pids[0] and venv.process_ids[1] != pids[1] and _gone(pids[1])
    ports.add(venv.ports[1])
    assert "crashing at step 3" in (tmp_path / "Player-1.log").read_text()  # the failed process's log stays
    assert (tmp_path / "restart-1" / "Player-1.log").is_file()
    # the new process has the handshake seed 1 + 1 * 2 processes = 3: a fresh process with it starts alike
    fresh = make_unity_vec_env(scene="ball", scene_kwargs={"num_agents": 3}, seed=3, timeout_wait=20)
    released(fresh)
    np.testing.assert_array_equal(obs[2:], fresh.reset())

    for _ in range(5):  # stepping goes on
        obs, _, done, infos = venv.step(ZERO)
        assert not done.any() and not any("unity_restarted" in info for info in infos)
    assert venv.restart_count == 1


def test_the_failure_after_the_last_restart_closes_everything(released, caplog) -> None:
    venv = UnityVecEnv(sessions=[_ball(2, seed=0), _ball(3, seed=1, faults=("crash-at-step:2",))], max_restarts=1)
    released(venv)
    venv.reset()
    venv.step(ZERO)
    _, _, done, _ = venv.step(ZERO)  # the first crash: restarted
    assert done[2:].all() and venv.restart_count == 1
    released(venv)
    venv.step(ZERO)
    with pytest.raises(UnityProcessExitedError, match=r"(?s)process 1 failed and the restart limit is reached \(max_restarts=1.*exited with code 3"):
        venv.step(ZERO)  # the restarted process crashes at its own step 2
    assert venv.restart_count == 1
    assert sum("restart 1 of 1" in r.getMessage() for r in caplog.records) == 1
    with pytest.raises(EnvClosedError, match="closed"):
        venv.step(ZERO)
    assert all(_gone(pid) for pid in venv.process_ids if pid is not None)


def test_without_max_restarts_a_crash_closes_everything_as_before(released) -> None:
    venv = UnityVecEnv(sessions=[_ball(2, seed=0), _ball(3, seed=1, faults=("crash-at-step:1",))])
    released(venv)
    assert venv.max_restarts == 0
    venv.reset()
    with pytest.raises(UnityProcessExitedError, match="exited with code 3") as failure:
        venv.step(ZERO)
    assert "restart" not in str(failure.value)
    assert venv.restart_count == 0
    assert all(_gone(pid) for pid in venv.process_ids if pid is not None)


def test_a_hung_process_is_ended_and_restarted(tmp_path: Path, released, caplog) -> None:
    venv = make_unity_vec_env(scene="ball", scene_kwargs={"num_agents": 2}, timeout_wait=3, max_restarts=1,
                              additional_args=["--fault", "hang-at-step:2", "--fault", f"once:{tmp_path / 'hung'}"])  # fmt: skip
    released(venv)
    hung = venv.process_ids[0]
    assert hung is not None
    venv.reset()
    venv.step(np.zeros((2, 2), np.float32))
    _, _, done, infos = venv.step(np.zeros((2, 2), np.float32))  # waits timeout_wait, then restarts
    assert done.all() and all(info["unity_restarted"] for info in infos)
    assert any(f"Unity process 0 failed ({UnityTimeoutError.__name__}" in r.getMessage() for r in caplog.records)
    assert _gone(hung) and venv.process_ids[0] != hung and venv.restart_counts == [1]
    released(venv)
    _, _, done, _ = venv.step(np.zeros((2, 2), np.float32))
    assert not done.any()


def test_a_process_lost_before_a_reset_is_restarted_by_the_reset(released) -> None:
    venv = make_unity_vec_env(scene="ball", n_envs=2, scene_kwargs={"num_agents": 2}, timeout_wait=20, max_restarts=1)
    released(venv)
    venv.set_options({"env_parameters": {"gravity": 0.0}})
    venv.reset()
    victim = psutil.Process(venv.process_ids[0])
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(10)
    obs = venv.reset()  # no options: the processes keep the parameters they were given
    assert obs.shape == (4, 8) and venv.restart_counts == [1, 0]
    assert [bool(info.get("unity_restarted")) for info in venv.reset_infos] == [True, True, False, False]
    released(venv)
    for _ in range(5):
        obs, _, done, _ = venv.step(np.ones((4, 2), np.float32))
        assert not done.any()
    np.testing.assert_array_equal(obs[:, 5:8], 0.0)  # the restarted process got gravity 0 too: no ball rolls


def test_a_process_that_comes_back_different_is_an_error(tmp_path: Path, released) -> None:
    venv = make_unity_vec_env(scene="restart_scene:SeedSizedBall", timeout_wait=20, max_restarts=1,
                              additional_args=["--fault", "crash-at-step:2", "--fault", f"once:{tmp_path / 'crashed'}"])  # fmt: skip
    released(venv)
    assert venv.num_envs == 2  # seed 0: two agents; the restart gets seed 1: three
    venv.reset()
    venv.step(np.zeros((2, 2), np.float32))
    with pytest.raises(SpecMismatchError, match=r"process 0 came back from its restart with 3 agent\(s\).*it had 2"):
        venv.step(np.zeros((2, 2), np.float32))
    released(venv)
    with pytest.raises(EnvClosedError, match="closed"):
        venv.reset()


@pytest.mark.parametrize("bad", [-1, True, 1.5])
def test_max_restarts_must_be_a_whole_number(bad: Any) -> None:
    with pytest.raises(ConfigError, match="max_restarts must be a whole number >= 0"):
        UnityVecEnv(sessions=[_ball(1, seed=0)], max_restarts=bad)


def test_ray_actors_restart_their_process_too(tmp_path: Path, monkeypatch) -> None:
    ray = pytest.importorskip("ray")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        faults = ("crash-at-step:2", f"once:{tmp_path / 'crashed'}")
        venv = UnityVecEnv(sessions=[_ball(2, seed=0), _ball(3, seed=1, faults=faults)], ray=True, max_restarts=1)
        pids = list(venv.process_ids)
        try:
            venv.reset()
            venv.step(ZERO)
            _, _, done, infos = venv.step(ZERO)
            assert done.tolist() == [False, False, True, True, True] and all(infos[i]["unity_restarted"] for i in (2, 3, 4))
            assert venv.restart_counts == [0, 1] and venv.process_ids[0] == pids[0] and venv.process_ids[1] not in pids
            pids.append(venv.process_ids[1])
            _, _, done, _ = venv.step(ZERO)
            assert not done.any()
        finally:
            venv.close()
        for pid in pids:  # the scene processes are the actors' children: wait (bounded) for each to end
            try:
                psutil.Process(pid).wait(10)
            except (psutil.NoSuchProcess, psutil.TimeoutExpired):
                pass  # ended, or left as a zombie (checked next)
            assert _gone(pid)
    finally:
        ray.shutdown()
