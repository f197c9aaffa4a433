"""Demonstrations as `imitation` trajectories and transitions, and in SB3 replay buffers.

Pairing convention (the causal one, as the legacy ML-Agents loader does it): Unity
writes in record *t* the action executed *before* observation *t*, so the action taken at
observation *t* is the stored action of record *t+1*, and the reward for it is record
*t+1*'s reward::

    records:      o_0 (a_-, r_-)   o_1 (a_0, r_0)   o_2 (a_1, r_1)   ...   o_T (a_T-1, r_T-1, done)
    trajectory:   obs = [o_0 ... o_T], acts = [a_0 ... a_T-1], rews = [r_0 ... r_T-1]

The stored action of an episode's first record (zeros) is not used, and the episode's
last observation ``o_T`` has no action.

Episodes are cut at every ``done`` record, at the end of each file, and before a record
that stores no action (0.12-0.15 recordings end with one), per agent id (records of
different agents are never joined; in 1.x files the id also changes every episode). A
trajectory is ``terminal`` when its last record is ``done`` and not ``max_step_reached``;
an episode cut by the step limit, an interruption or the end of the recording is not
terminal. Episodes with fewer than two records hold no transition and are left out.

Actions come in the gymnasium form of the behavior's action space
(:meth:`gym_unity_il.spec.ActionSpec.space`): ``float32 [T, c]`` for ``Box``, ``int64 [T]``
for ``Discrete``, ``int64 [T, d]`` for ``MultiDiscrete``. Hybrid actions (a ``Dict`` space)
cannot be one flat array: pass ``hybrid_actions="continuous"`` or ``"discrete"`` to keep one
part. Observations are one array for a single sensor, else an ``imitation`` ``DictObs``
keyed by ``behavior_spec.observation_keys``, exactly as ``UnityIL-v0`` returns them.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from gymnasium import spaces

from gym_unity_il.demo.reader import Demonstration, read_demo
from gym_unity_il.errors import DemoFormatError, SpecMismatchError
from gym_unity_il.extras import require
from gym_unity_il.spec import ActionSpec, BehaviorSpec, ImageFormat

if TYPE_CHECKING:  # imitation (and torch) load on first use, not on import; SB3 buffers need neither
    from imitation.data import types

#: What the trajectory converters say when imitation is missing.
_IMITATION = "converting demonstrations to imitation trajectories or transitions"

HybridActions = Literal["error", "continuous", "discrete"]


def _action_spec(spec: ActionSpec, hybrid_actions: HybridActions) -> ActionSpec:
    """The action spec the converted actions follow (one part of a hybrid spec)."""
    if hybrid_actions not in ("error", "continuous", "discrete"):
        raise ValueError(f"hybrid_actions={hybrid_actions!r}: use 'error', 'continuous' or 'discrete'")
    if not spec.is_hybrid:
        return spec
    if hybrid_actions == "error":
        raise SpecMismatchError(
            f"the behavior has hybrid actions (continuous {spec.continuous_size} + discrete {list(spec.discrete_branches)}), "
            "which imitation and SB3 buffers cannot hold as one flat action array. "
            "Fix: pass hybrid_actions='continuous' or hybrid_actions='discrete' to keep one part."
        )
    return ActionSpec(spec.continuous_size, ()) if hybrid_actions == "continuous" else ActionSpec(0, spec.discrete_branches)


def flat_action_space(spec: BehaviorSpec, *, hybrid_actions: HybridActions = "error") -> spaces.Space:
    """The gymnasium action space of the converted actions (the env's own action space,
    or the kept part of a hybrid one)."""
    return _action_spec(spec.action_spec, hybrid_actions).space()


def flat_actions(demo: Demonstration, rows: np.ndarray, space: spaces.Space) -> np.ndarray:
    """The stored actions of records ``rows`` in the form of ``space``, a space of
    :func:`flat_action_space` (see the module docstring for the forms)."""
    if isinstance(space, spaces.Box):
        return demo.stored_continuous_actions[rows]
    disc = demo.stored_discrete_actions[rows].astype(np.int64)
    return disc[:, 0] if isinstance(space, spaces.Discrete) else disc


@dataclass(frozen=True, eq=False)
class Episode:
    """Records of one episode (or part of one) in a Demonstration.

    Attributes:
        rows: indices of its records, in order (at least two).
        terminal: the last record ended the episode by the task (``done`` and not
            ``max_step_reached``).
        truncated: the last record is a ``done`` with ``max_step_reached`` (step limit or
            interruption); False for a terminal episode or one cut by the recording.
    """

    rows: np.ndarray
    terminal: bool
    truncated: bool


def split_episodes(demo: Demonstration) -> list[Episode]:
    """The episodes of a demonstration, in order of their first record (see the module
    docstring for where they are cut)."""
    n = len(demo)
    if n == 0:
        return []
    order = np.lexsort((np.arange(n), demo.agent_ids, demo.file_index))
    same_stream = (demo.file_index[order[1:]] == demo.file_index[order[:-1]]) & (demo.agent_ids[order[1:]] == demo.agent_ids[order[:-1]])
    joined = same_stream & ~demo.done[order[:-1]] & demo.action_stored[order[1:]]
    cuts = np.flatnonzero(~joined) + 1
    episodes = []
    for rows in np.split(order, cuts):
        if rows.size < 2:
            continue
        last = rows[-1]
        done, cut = bool(demo.done[last]), bool(demo.max_step_reached[last])
        episodes.append(Episode(rows=rows, terminal=done and not cut, truncated=done and cut))
    episodes.sort(key=lambda e: int(e.rows[0]))
    return episodes


def _load(path_or_demo: str | Path | Demonstration, image_format: ImageFormat) -> Demonstration:
    return path_or_demo if isinstance(path_or_demo, Demonstration) else read_demo(path_or_demo, image_format=image_format)


def _observations(demo: Demonstration, rows: np.ndarray) -> np.ndarray | types.DictObs:
    if len(demo.observations) == 1:
        return demo.observations[0][rows]
    dict_obs = require("imitation.data.types", "train", _IMITATION).DictObs
    return dict_obs({k: o[rows] for k, o in zip(demo.behavior_spec.observation_keys, demo.observations)})


def demo_to_trajectories(
    path_or_demo: str | Path | Demonstration,
    *,
    image_format: ImageFormat = "hwc_uint8",
    hybrid_actions: HybridActions = "error",
) -> list[types.TrajectoryWithRew]:
    """One ``imitation`` trajectory per episode of a demonstration.

    Args:
        path_or_demo: a `.demo` file, a directory of them, or a loaded :class:`Demonstration`.
        image_format: image layout when reading a path (a Demonstration keeps its own).
        hybrid_actions: for a behavior with both continuous and discrete actions, which part
            to keep (``"error"`` raises instead).

    Returns:
        Trajectories in recording order: ``obs`` of length T+1, ``acts`` / ``rews`` of
        length T (action at ``obs[t]`` = stored action of the next record), ``infos`` None.

    Raises:
        DemoFormatError: a file cannot be read.
        SpecMismatchError: hybrid actions with ``hybrid_actions="error"``.
        MissingExtraError: imitation is not installed (the ``train`` extra).
    """
    trajectory = require("imitation.data.types", "train", _IMITATION).TrajectoryWithRew
    demo = _load(path_or_demo, image_format)
    act_space = flat_action_space(demo.behavior_spec, hybrid_actions=hybrid_actions)
    if len(demo) and not demo.observations:
        files = ", ".join(str(m.path) for m in demo.metas)
        raise DemoFormatError(f"{files}: the records hold no observation at all. Fix: record the behavior with at least one sensor.")
    trajectories = []
    for ep in split_episodes(demo):
        after = ep.rows[1:]
        trajectories.append(
            trajectory(
                obs=_observations(demo, ep.rows),
                acts=flat_actions(demo, after, act_space),
                infos=None,
                terminal=ep.terminal,
                rews=demo.rewards[after].astype(np.float32),
            )
        )
    return trajectories


def demo_to_transitions(
    path_or_demo: str | Path | Demonstration,
    *,
    image_format: ImageFormat = "hwc_uint8",
    hybrid_actions: HybridActions = "error",
) -> types.TransitionsWithRew:
    """All transitions of :func:`demo_to_trajectories`, flattened by ``imitation``
    (``dones`` True only at the end of terminal episodes).

    Raises:
        DemoFormatError: a file cannot be read, or the demonstration holds no transition.
        SpecMismatchError: hybrid actions with ``hybrid_actions="error"``.
        MissingExtraError: imitation is not installed (the ``train`` extra).
    """
    rollout = require("imitation.data.rollout", "train", _IMITATION)
    demo = _load(path_or_demo, image_format)
    trajectories = demo_to_trajectories(demo, hybrid_actions=hybrid_actions)
    if not trajectories:
        files = ", ".join(str(m.path) for m in demo.metas)
        raise DemoFormatError(f"{files}: no transition to learn from ({len(demo)} records; an episode needs two). Fix: record longer episodes.")
    return rollout.flatten_trajectories_with_rew(trajectories)


def spaces_match(a: spaces.Space, b: spaces.Space) -> bool:
    """Whether two spaces hold the same arrays: same type, shape and dtype (bounds ignored),
    the same Discrete size / MultiDiscrete branches, the same Dict keys in the same order."""
    if isinstance(a, spaces.Dict) and isinstance(b, spaces.Dict):
        return list(a.spaces) == list(b.spaces) and all(spaces_match(a[k], b[k]) for k in a.spaces)
    if type(a) is not type(b):
        return False
    if isinstance(a, spaces.Discrete):
        return int(a.n) == int(b.n)  # type: ignore[attr-defined]
    if isinstance(a, spaces.MultiDiscrete):
        return np.array_equal(a.nvec, b.nvec)  # type: ignore[attr-defined]
    return a.shape == b.shape and a.dtype == b.dtype


def fill_replay_buffer(
    buffer,  # type: ignore[no-untyped-def]
    path_or_demo: str | Path | Demonstration,
    *,
    image_format: ImageFormat = "hwc_uint8",
    hybrid_actions: HybridActions = "error",
) -> int:
    """Adds every transition of a demonstration to an SB3 ``ReplayBuffer`` or ``DictReplayBuffer``.

    Each episode end is added with ``done=True``; episodes cut by the step limit, an
    interruption or the end of the recording carry ``{"TimeLimit.truncated": True}`` in their
    info, so a buffer with ``handle_timeout_termination`` keeps bootstrapping through them.

    Args:
        buffer: a buffer made for the env (``n_envs=1``); its observation and action spaces
            must be the demonstration's.
        path_or_demo: a `.demo` file, a directory, or a :class:`Demonstration`.
        image_format: image layout when reading a path.
        hybrid_actions: see :func:`demo_to_trajectories`.

    Returns:
        The number of transitions added.

    Raises:
        SpecMismatchError: the buffer's spaces differ from the demonstration's.
        ValueError: the buffer has ``n_envs`` other than 1.
    """
    demo = _load(path_or_demo, image_format)
    spec = demo.behavior_spec
    act_space = flat_action_space(spec, hybrid_actions=hybrid_actions)
    if buffer.n_envs != 1:
        raise ValueError(f"the replay buffer has n_envs={buffer.n_envs}; create it with n_envs=1 to hold demonstrations")
    obs_space = spec.observation_space(demo.image_format)
    for what, theirs, ours in (("observation", buffer.observation_space, obs_space), ("action", buffer.action_space, act_space)):
        if not spaces_match(theirs, ours):
            raise SpecMismatchError(
                f"the replay buffer's {what} space {theirs} differs from the demonstration's {ours} ({spec.describe()}). "
                f"Fix: make the buffer from the env the demonstration was recorded in"
                + (f", and read images with the buffer's layout (image_format={demo.image_format!r} now)" if what == "observation" else "")
                + "."
            )
    keys = spec.observation_keys
    added = 0
    for ep in split_episodes(demo):
        obs = [o[ep.rows] for o in demo.observations]
        acts = flat_actions(demo, ep.rows[1:], act_space)
        rews = demo.rewards[ep.rows[1:]]
        last = len(ep.rows) - 2
        for t in range(len(ep.rows) - 1):
            if isinstance(obs_space, spaces.Dict):
                now = OrderedDict((k, o[t][None]) for k, o in zip(keys, obs))
                nxt = OrderedDict((k, o[t + 1][None]) for k, o in zip(keys, obs))
            else:
                now, nxt = obs[0][t][None], obs[0][t + 1][None]
            end = t == last
            info = {"TimeLimit.truncated": True} if end and not ep.terminal else {}
            buffer.add(now, nxt, np.asarray(acts[t])[None], np.array([rews[t]], np.float32), np.array([end]), [info])
            added += 1
    return added
