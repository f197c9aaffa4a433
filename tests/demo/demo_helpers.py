"""Helpers shared by the `.demo` tests: small specs, random observations, scripted files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gym_unity_il.demo import DemoWriter
from gym_unity_il.spec import ActionSpec, BehaviorSpec, DimensionProperty, ObservationSpec

NONE = DimensionProperty.NONE
TE = DimensionProperty.TRANSLATIONAL_EQUIVARIANCE


def vector(size: int, name: str = "") -> ObservationSpec:
    return ObservationSpec(shape=(size,), dimension_property=(NONE,), name=name or f"VectorSensor_size{size}")


def image(h: int, w: int, c: int, *, chw: bool = False, name: str = "CameraSensor") -> ObservationSpec:
    if chw:
        return ObservationSpec(shape=(c, h, w), dimension_property=(NONE, TE, TE), name=name, channels_first=True)
    return ObservationSpec(shape=(h, w, c), dimension_property=(TE, TE, NONE), name=name)


def spec_of(*observations: ObservationSpec, continuous: int = 0, branches: tuple[int, ...] = (), name: str = "Test?team=0") -> BehaviorSpec:
    return BehaviorSpec(name=name, observation_specs=tuple(observations), action_spec=ActionSpec(continuous, branches))


def random_observation(o: ObservationSpec, image_format: str, rng: np.random.Generator) -> np.ndarray:
    """A value the env could return: uint8 HWC images, float32 k/255 CHW images, float32 vectors."""
    shape = o.output_shape(image_format)
    if o.is_visual:
        pixels = rng.integers(0, 256, shape, dtype=np.uint8)
        return pixels if image_format == "hwc_uint8" else pixels.astype(np.float32) / np.float32(255.0)
    return rng.normal(size=shape).astype(np.float32)


@dataclass
class Written:
    """What a scripted writer put into a file, record by record."""

    observations: list[list[np.ndarray]]
    continuous: np.ndarray
    discrete: np.ndarray
    rewards: np.ndarray
    done: np.ndarray
    max_step_reached: np.ndarray
    agent_ids: np.ndarray


def write_episodes(path: Path, spec: BehaviorSpec, episodes: list[tuple[int, str]], *, seed: int = 0, close: bool = True) -> Written:
    """Writes episodes with Unity's timing. Each episode is ``(records, end)`` where ``end`` is
    "done" (ended by the task), "max_step" (cut) or "open" (still running when the file ends).
    The first record of an episode stores zeros; record t>0 stores the action taken at t-1."""
    rng = np.random.default_rng(seed)
    act = spec.action_spec
    out = Written([], np.zeros((0, act.continuous_size), np.float32), np.zeros((0, act.discrete_size), np.int32),
                  np.zeros(0, np.float32), np.zeros(0, bool), np.zeros(0, bool), np.zeros(0, np.int32))  # fmt: skip
    rows: dict[str, list] = {k: [] for k in ("c", "d", "r", "done", "cut", "id")}
    writer = DemoWriter(path, behavior_spec=spec, overwrite=True)
    for e, (length, end) in enumerate(episodes):
        taken_c = np.zeros(act.continuous_size, np.float32)
        taken_d = np.zeros(act.discrete_size, np.int32)
        for t in range(length):
            obs = [random_observation(o, "hwc_uint8", rng) for o in spec.observation_specs]
            last = t == length - 1 and end != "open"
            reward = 0.0 if t == 0 else float(np.float32(rng.normal()))
            writer.write(obs, reward=reward, done=last, max_step_reached=last and end == "max_step", agent_id=e,
                         stored_continuous_action=taken_c, stored_discrete_action=taken_d)  # fmt: skip
            out.observations.append(obs)
            for key, value in zip(rows, (taken_c, taken_d, reward, last, last and end == "max_step", e)):
                rows[key].append(value)
            taken_c = rng.uniform(-1, 1, act.continuous_size).astype(np.float32)
            taken_d = np.array([rng.integers(b) for b in act.discrete_branches], np.int32)
    if close:
        writer.close()
    n = len(rows["r"])
    out.continuous = np.array(rows["c"], np.float32).reshape(n, act.continuous_size)
    out.discrete = np.array(rows["d"], np.int32).reshape(n, act.discrete_size)
    out.rewards = np.array(rows["r"], np.float32)
    out.done = np.array(rows["done"], bool)
    out.max_step_reached = np.array(rows["cut"], bool)
    out.agent_ids = np.array(rows["id"], np.int32)
    return out
