"""UnityVecEnv.set_env_parameters on real "ball" processes: numbers and samplers reach every
process with the next step or reset, survive a restart, and 0.x builds take numbers only.

The ball scene reads the parameter ``gravity``: with zero actions the plate keeps its tilt,
so one step changes the ball's velocity by ``DT * ROLLING * gravity * sin(tilt)``, which
:func:`gravity_seen` reads back from two observations.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gym_unity_il.envs import make_unity_vec_env
from gym_unity_il.errors import ConfigError
from gym_unity_il.protocol.channels import Sampler, SamplerType
from gym_unity_il.scenes.ball import DT, ROLLING


def gravity_seen(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """The gravity each slot's ball rolled under in one zero-action step (from its velocity along x)."""
    return -(after[:, 5] - before[:, 5]) / (DT * ROLLING * np.sin(after[:, 0]))


def step_gravity(venv, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One zero-action step: its observations and the gravity each slot saw."""
    after, *_ = venv.step(np.zeros((venv.num_envs, 2), np.float32))
    return after, gravity_seen(obs, after)


def test_a_number_reaches_every_process_with_the_next_step() -> None:
    venv = make_unity_vec_env(scene="ball", scene_kwargs={"num_agents": 2}, num_processes=2, seed=0)
    try:
        obs, seen = step_gravity(venv, venv.reset())
        assert seen == pytest.approx(9.81, rel=1e-3)
        venv.set_env_parameters({"gravity": 2.5})
        _, seen = step_gravity(venv, obs)
        assert seen == pytest.approx(2.5, rel=1e-3)  # every slot of both processes, without a reset
        obs, seen = step_gravity(venv, venv.reset())
        assert seen == pytest.approx(2.5, rel=1e-3)
        with pytest.raises(ConfigError, match=r"'gravity': expected a finite number or a Sampler, got nan"):
            venv.set_env_parameters({"gravity": float("nan")})
        _, seen = step_gravity(venv, obs)  # refused: nothing was sent, the env goes on
        assert seen == pytest.approx(2.5, rel=1e-3)
    finally:
        venv.close()


def sampled(seed: int, resets: int, sampler: Sampler) -> list[float]:
    """The gravity drawn at each of ``resets`` resets of a one-process ball env given ``sampler``."""
    venv = make_unity_vec_env(scene="ball", scene_kwargs={"num_agents": 3}, seed=seed)
    try:
        venv.set_env_parameters({"gravity": sampler})
        values = []
        for _ in range(resets):
            _, seen = step_gravity(venv, venv.reset())
            assert seen == pytest.approx(seen[0], rel=1e-3)  # one draw per reset, for the whole scene
            values.append(float(seen[0]))
        return values
    finally:
        venv.close()


@pytest.mark.parametrize(
    "sampler, low, high",
    [
        (Sampler(SamplerType.UNIFORM, 3, (5.0, 15.0)), 5.0, 15.0),
        (Sampler(SamplerType.MULTIRANGEUNIFORM, 3, (1.0, 2.0, 20.0, 21.0)), 1.0, 21.0),
        (Sampler(SamplerType.GAUSSIAN, 3, (10.0, 1.0)), 4.0, 16.0),
    ],
    ids=["uniform", "multirange_uniform", "gaussian"],
)
def test_a_sampler_draws_anew_at_each_reset_and_repeats_with_its_seed(sampler: Sampler, low: float, high: float) -> None:
    values = sampled(0, 4, sampler)
    assert all(low - 1e-3 <= v <= high + 1e-3 for v in values) and len({round(v, 3) for v in values}) == 4
    if sampler.sampler_type == SamplerType.MULTIRANGEUNIFORM:
        assert all(v <= 2.0 + 1e-3 or v >= 20.0 - 1e-3 for v in values)
    assert sampled(5, 4, sampler) == pytest.approx(values, rel=1e-4)  # the sampler's seed, not the scene's, decides
    other = Sampler(sampler.sampler_type, 4, sampler.arguments)
    assert sampled(0, 4, other) != pytest.approx(values, rel=1e-4)


def test_the_last_value_set_wins_and_reset_options_come_after_earlier_settings() -> None:
    venv = make_unity_vec_env(scene="ball", scene_kwargs={"num_agents": 2}, seed=0)
    try:
        venv.set_env_parameters({"gravity": Sampler(SamplerType.UNIFORM, 1, (30.0, 40.0))})
        venv.set_env_parameters({"gravity": 4.0})  # a number after a sampler: the sampler is gone
        _, seen = step_gravity(venv, venv.reset())
        assert seen == pytest.approx(4.0, rel=1e-3)
        venv.set_env_parameters({"gravity": 6.0})
        venv.set_options({"env_parameters": {"gravity": 7.0}})
        _, seen = step_gravity(venv, venv.reset())
        assert seen == pytest.approx(7.0, rel=1e-3)
    finally:
        venv.close()


def test_a_restarted_process_gets_the_parameters_again(tmp_path: Path) -> None:
    venv = make_unity_vec_env(scene="ball", scene_kwargs={"num_agents": 2}, num_processes=2, timeout_wait=20, max_restarts=1,
                              additional_args=["--fault", "crash-at-step:3", "--fault", f"once:{tmp_path / 'crashed'}"])  # fmt: skip
    try:
        obs = venv.reset()
        venv.set_env_parameters({"gravity": 3.0})
        restarted = False
        for _ in range(4):
            after, _, _, infos = venv.step(np.zeros((4, 2), np.float32))
            restarted |= any(info.get("unity_restarted") for info in infos)
            obs = after
        assert restarted and venv.restart_count == 1
        _, seen = step_gravity(venv, obs)
        assert seen == pytest.approx(3.0, rel=1e-3)  # both processes, the restarted one included
    finally:
        venv.close()


def test_a_0_10_build_takes_numbers_with_the_next_reset_and_refuses_samplers() -> None:
    venv = make_unity_vec_env(scene="ball", scene_kwargs={"protocol": "0.10", "num_agents": 2}, seed=0)
    try:
        obs = venv.reset()
        venv.set_env_parameters({"gravity": 2.0})
        obs, seen = step_gravity(venv, obs)
        assert seen == pytest.approx(9.81, rel=1e-3)  # reset parameters wait for the reset
        _, seen = step_gravity(venv, venv.reset())
        assert seen == pytest.approx(2.0, rel=1e-3)
        with pytest.raises(ConfigError, match=r"\['gravity'\]: samplers, but the build is ML-Agents 0\.10.*numbers"):
            venv.set_env_parameters({"gravity": Sampler(SamplerType.UNIFORM, 0, (1.0, 2.0))})
        _, seen = step_gravity(venv, venv.reset())
        assert seen == pytest.approx(2.0, rel=1e-3)
    finally:
        venv.close()
