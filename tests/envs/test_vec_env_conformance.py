"""UnityVecEnv against the same built-in scenes simulated in this process, step by step.

Each case runs the scene in its player processes behind the VecEnv and, beside it, one
copy of the scene per process here (same class, arguments and seeds), fed the same actions.
Every observation, reward, episode end, truncation flag, terminal observation and action
mask the VecEnv returns must equal what the in-process scenes produce, with SB3's
auto-reset semantics. Cases cover 1, 12 and 64 agents per process, 1 and 2 processes,
decision periods 1 and 5, every built-in scene, and agents ending at different times.
"""

from __future__ import annotations

import numpy as np
import pytest

from gym_unity_il.envs.vec_env import make_unity_vec_env
from gym_unity_il.scenes import SCENES

SEED = 100


def _cases() -> list:
    cases = []
    for agents in (1, 12, 64):
        for processes in (1, 2):
            for period in (1, 5):
                cases.append(pytest.param("ball", {"num_agents": agents, "decision_period": period, "max_steps": 90}, processes,
                                          id=f"ball-{agents}agents-{processes}proc-period{period}"))  # fmt: skip
    cases.append(pytest.param("grid", {"num_agents": 12, "camera_height": 10, "camera_width": 12, "max_steps": 8}, 2, id="grid-12agents-2proc"))
    cases.append(pytest.param("hallway", {"num_agents": 12, "length": 5, "max_steps": 12}, 2, id="hallway-12agents-2proc"))
    cases.append(pytest.param("hybrid", {"num_agents": 12, "decision_period": 5, "max_steps": 40}, 1, id="hybrid-12agents-1proc-period5"))
    return cases


class Reference:
    """The scenes of every process, simulated here, reporting what the VecEnv should."""

    def __init__(self, name: str, kwargs: dict, seeds: list[int]) -> None:
        self.scenes = [SCENES[name](seed=s, **kwargs) for s in seeds]
        for scene in self.scenes:
            scene.reset()  # as the player does at the RESET following a reseed
        self.behavior = next(iter(self.scenes[0].behavior_specs()))

    def first(self) -> tuple[list[np.ndarray], np.ndarray | None]:
        batches = [scene.observe()[self.behavior] for scene in self.scenes]
        return self._join([b.observations for b in batches]), self._mask(batches)

    def step(self, continuous: np.ndarray, discrete: np.ndarray) -> dict:
        out = {"obs": [], "reward": [], "done": [], "truncated": [], "terminal": []}
        batches = []
        lo = 0
        for scene in self.scenes:
            n = scene.num_agents
            scene.act({self.behavior: (continuous[lo : lo + n], discrete[lo : lo + n])})
            batch = scene.observe()[self.behavior]
            batches.append(batch)
            ended, deciding = batch.done, ~batch.done
            ids = batch.agent_ids[ended]  # agent ids are the slot indices within a process
            assert np.array_equal(batch.agent_ids[deciding], np.arange(n))
            reward = batch.rewards[deciding].copy()
            reward[ids] = batch.rewards[ended]
            done = np.zeros(n, bool)
            done[ids] = True
            truncated = np.zeros(n, bool)
            truncated[ids] = batch.max_step_reached[ended]
            out["obs"].append([o[deciding] for o in batch.observations])
            out["reward"].append(reward)
            out["done"].append(done)
            out["truncated"].append(truncated)
            out["terminal"].append({int(i) + lo: [o[ended][j] for o in batch.observations] for j, i in enumerate(ids)})
            lo += n
        return {
            "obs": self._join(out["obs"]),
            "reward": np.concatenate(out["reward"]),
            "done": np.concatenate(out["done"]),
            "truncated": np.concatenate(out["truncated"]),
            "terminal": {k: v for part in out["terminal"] for k, v in part.items()},
            "mask": self._mask(batches),
        }

    @staticmethod
    def _join(per_process: list[list[np.ndarray]]) -> list[np.ndarray]:
        return [np.concatenate(arrays) for arrays in zip(*per_process)]

    @staticmethod
    def _mask(batches: list) -> np.ndarray | None:
        if batches[0].action_mask is None:
            return None
        return np.concatenate([b.action_mask[~b.done] for b in batches])


def _sensors(obs) -> list[np.ndarray]:
    return list(obs.values()) if isinstance(obs, dict) else [obs]


def _actions(rng: np.random.Generator, spec, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Random actions; continuous ones leaning per slot so agents end at different times."""
    n = len(bias)
    continuous = np.clip(bias[:, None] + rng.normal(0, 0.3, (n, spec.continuous_size)), -1, 1).astype(np.float32)
    discrete = np.stack([rng.integers(0, b, n) for b in spec.discrete_branches], axis=1).astype(np.int32) if spec.discrete_branches else np.zeros((n, 0), np.int32)
    return continuous, discrete


@pytest.mark.parametrize(("scene", "kwargs", "processes"), _cases())
def test_vec_env_matches_the_scene_simulated_in_process(assert_released, scene: str, kwargs: dict, processes: int) -> None:
    agents = kwargs["num_agents"]
    steps = 100 if kwargs.get("decision_period", 1) == 1 else 25
    venv = make_unity_vec_env(scene=scene, n_envs=processes, scene_kwargs=kwargs, seed=7, timeout_wait=30)
    ports = list(venv.ports)
    try:
        assert venv.num_envs == agents * processes
        assert venv.seed(SEED) == [SEED + i for i in range(venv.num_envs)]
        obs = venv.reset()
        reference = Reference(scene, kwargs, [SEED + p * agents for p in range(processes)])
        expected_obs, expected_mask = reference.first()
        for got, want in zip(_sensors(obs), expected_obs):
            np.testing.assert_array_equal(got, want)
        spec = venv.behavior_spec.action_spec
        rng = np.random.default_rng(0)
        bias = np.linspace(-1.0, 1.0, venv.num_envs)
        end_steps, truncations, terminations = set(), 0, 0
        for t in range(steps):
            if expected_mask is not None:
                np.testing.assert_array_equal(np.stack(venv.env_method("action_masks")), expected_mask)
            continuous, discrete = _actions(rng, spec, bias)
            if spec.is_hybrid:
                action = {"continuous": continuous, "discrete": discrete}
            elif spec.continuous_size:
                action = continuous
            else:
                action = discrete[:, 0] if len(spec.discrete_branches) == 1 else discrete
            obs, reward, done, infos = venv.step(action)
            want = reference.step(continuous, discrete)
            for got, expected in zip(_sensors(obs), want["obs"]):
                np.testing.assert_array_equal(got, expected)
            assert reward.dtype == np.float32 and done.dtype == bool and len(infos) == venv.num_envs
            np.testing.assert_array_equal(reward, want["reward"])
            np.testing.assert_array_equal(done, want["done"])
            for i in np.flatnonzero(done):
                assert infos[i]["TimeLimit.truncated"] == want["truncated"][i]
                for got, expected in zip(_sensors(infos[i]["terminal_observation"]), want["terminal"][int(i)]):
                    np.testing.assert_array_equal(got, expected)
            assert not any("terminal_observation" in infos[i] for i in np.flatnonzero(~done))
            expected_mask = want["mask"]
            if done.any():
                end_steps.add(t)
            truncations += int(want["truncated"].sum())
            terminations += int((want["done"] & ~want["truncated"]).sum())
    finally:
        venv.close()
    for port in ports:
        assert_released(port)
    assert truncations + terminations > 0, "the case should see episode ends"
    if agents > 1 and scene == "ball":
        assert terminations > 0 and truncations > 0 and len(end_steps) > 1, "agents should end at different times, both ways"
