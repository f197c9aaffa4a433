"""UnityVecEnv with its Unity processes hosted by Ray actors, on a local Ray instance."""

from __future__ import annotations

import os
import signal

import numpy as np
import psutil
import pytest

ray = pytest.importorskip("ray")

from gym_unity_il.envs import make_unity_vec_env  # noqa: E402
from gym_unity_il.errors import ConfigError, UnityProcessExitedError  # noqa: E402
from gym_unity_il.link.server import check_port_free  # noqa: E402

KWARGS = {"scene": "ball", "n_envs": 2, "scene_kwargs": {"num_agents": 3, "max_steps": 15}, "seed": 4, "timeout_wait": 20}


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray instance for the module (starting one takes seconds)."""
    previous = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    if previous is None:
        os.environ.pop("RAY_AUTH_MODE", None)
    else:
        os.environ["RAY_AUTH_MODE"] = previous


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_gone(pid: int) -> bool:
    """Whether the process has ended, waiting a bounded time for it (Ray reaps asynchronously)."""
    try:
        psutil.Process(pid).wait(10)
    except psutil.NoSuchProcess:
        return True
    except psutil.TimeoutExpired:
        return _gone(pid)
    return True


@pytest.mark.parametrize("protocol", [None, "0.10"])
def test_ray_actors_give_the_same_steps_as_local_threads(ray_session, protocol: str | None) -> None:
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (25, 6, 2)).astype(np.float32)
    kwargs = KWARGS if protocol is None else {**KWARGS, "scene_kwargs": {**KWARGS["scene_kwargs"], "protocol": protocol}}  # a seed-era build
    runs = []
    for on_ray in (False, True):
        venv = make_unity_vec_env(ray=on_ray, **kwargs)
        pids, ports = list(venv.process_ids), list(venv.ports)
        try:
            assert venv.num_envs == 6
            if on_ray:
                with pytest.raises(ConfigError, match="Ray actors"):
                    venv.sessions  # noqa: B018 - the sessions live in the actors, not here
            venv.seed(9)
            steps = [venv.reset()]
            ends = 0
            for a in actions:
                obs, reward, done, infos = venv.step(a)
                steps += [obs, reward, done]
                ends += int(done.sum())
                for i in np.flatnonzero(done):
                    steps.append(infos[i]["terminal_observation"])
        finally:
            venv.close()
        assert ends >= 6  # max_steps=15: every slot finished an episode
        runs.append(steps)
        assert all(_wait_gone(pid) for pid in pids)  # the scene processes (children of the actors, or of this process)
        for port in ports:
            check_port_free("127.0.0.1", port)
    assert len(runs[0]) == len(runs[1])
    for local, remote in zip(*runs):
        np.testing.assert_array_equal(local, remote)


def test_a_killed_process_in_an_actor_closes_every_actor(ray_session) -> None:
    venv = make_unity_vec_env(ray=True, **KWARGS)
    pids = list(venv.process_ids)
    venv.reset()
    os.kill(pids[0], signal.SIGKILL)
    with pytest.raises(UnityProcessExitedError):
        for _ in range(100):  # the step on which the crash is noticed raises
            venv.step(np.zeros((6, 2), np.float32))
    assert all(_wait_gone(pid) for pid in pids)
    venv.close()  # idempotent


def test_ray_options_need_ray(ray_session) -> None:
    with pytest.raises(ConfigError, match="ray=True"):
        make_unity_vec_env(ray_actor_options={"num_cpus": 1}, **KWARGS)


def test_environment_parameters_reach_processes_in_ray_actors(ray_session) -> None:
    from gym_unity_il.protocol.channels import Sampler, SamplerType
    from gym_unity_il.scenes.ball import DT, ROLLING

    zero = np.zeros((6, 2), np.float32)
    venv = make_unity_vec_env(ray=True, **KWARGS)
    try:
        seen = []
        for value in (2.5, Sampler(SamplerType.UNIFORM, 3, (5.0, 15.0))):
            venv.set_env_parameters({"gravity": value})
            before = venv.reset()
            after, *_ = venv.step(zero)
            seen.append(-(after[:, 5] - before[:, 5]) / (DT * ROLLING * np.sin(after[:, 0])))
        assert seen[0] == pytest.approx(2.5, rel=1e-3)
        assert 5.0 <= seen[1][0] <= 15.0 and seen[1] == pytest.approx(seen[1][0], rel=1e-3)  # both actors draw alike (one seed)
    finally:
        venv.close()
