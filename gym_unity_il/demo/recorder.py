"""Recording any gymnasium env, driven by any policy, into a Unity `.demo` file.

:class:`DemoRecorder` wraps an env and writes one record per observation the env hands
out, with Unity's timing: the record of an observation stores the action executed
*before* it (zeros after a reset), the reward received with it and the episode flags.
The file can be read back by :func:`gym_unity_il.demo.read_demo`, by Unity's own tools
and by ML-Agents' Python loaders.

Teacher controls, for a human (or a script) demonstrating live:

* ``recorder.recording = False`` pauses: steps go to the env but not to the file;
  ``True`` resumes. Pausing ends the recorded part of the episode there (the last record
  is marked as an interrupted episode end), so no transition ever spans a gap.
* ``recorder.mark()`` remembers the current end of the file (done once on construction).
* ``recorder.discard_since_mark()`` drops every record written since the mark (the file
  is truncated at a record boundary, readable at every moment) and, when that leaves an
  episode unfinished, marks its last kept record as an interrupted episode end.

The behavior spec comes from ``env.unwrapped.behavior_spec`` when the env has one
(``UnityIL-v0`` does), else from the gymnasium spaces (:func:`behavior_spec_from_spaces`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from gym_unity_il.demo.minari import check_new_dataset, demo_to_minari
from gym_unity_il.demo.spaces import behavior_spec_from_spaces, sensors_of
from gym_unity_il.demo.writer import DemoWriter
from gym_unity_il.errors import SpecMismatchError
from gym_unity_il.spec import BehaviorSpec, ImageFormat

if TYPE_CHECKING:  # the type only: recording imports no scene
    from gym_unity_il.scenes.evaluate import Predictor


def _shapes(space: spaces.Space) -> list[tuple[str, tuple[int, ...] | None]]:
    """Keys and shapes of a Box or a Dict of them (what must agree between a spec and an env)."""
    if isinstance(space, spaces.Dict):
        return [(k, getattr(sub, "shape", None)) for k, sub in space.spaces.items()]
    return [("", getattr(space, "shape", None))]


class DemoRecorder(gym.Wrapper):
    """Writes every observation ``env`` returns, with the action that led to it, to a `.demo` file.

    Args:
        env: the env to record (any policy may drive it through this wrapper).
        path: the `.demo` file to create (missing folders of this path are created).
        behavior_spec: the spec to record with; default ``env.unwrapped.behavior_spec`` if
            present, else :func:`behavior_spec_from_spaces` of the env's spaces.
        name: demonstration name stored in the file (default: the file name).
        image_format: layout of the env's images; default ``env.unwrapped.image_format`` if
            present, else the one the spaces imply.
        compress_images: store images as PNG (Unity's default) rather than raw floats.
        overwrite: replace an existing file.
        recording: start recording at once (True) or paused.
        agent_id: the agent id written into every record.

    Raises:
        SpecMismatchError: ``behavior_spec`` does not describe the env's spaces.
        ValueError: a space a `.demo` file cannot hold.
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        OutputError: the file cannot be written: here, or from :meth:`reset` / :meth:`step`
            when the disk fills up or fails. The file is closed by then with every record
            written before (see :class:`~gym_unity_il.demo.writer.DemoWriter`); the env is
            not: :meth:`close` closes it.
    """

    def __init__(
        self,
        env: gym.Env,
        path: str | Path,
        *,
        behavior_spec: BehaviorSpec | None = None,
        name: str | None = None,
        image_format: ImageFormat | None = None,
        compress_images: bool = True,
        overwrite: bool = False,
        recording: bool = True,
        agent_id: int = 0,
    ) -> None:
        super().__init__(env)
        base = env.unwrapped
        spec = behavior_spec or getattr(base, "behavior_spec", None)
        if not isinstance(spec, BehaviorSpec):
            spec = behavior_spec_from_spaces(env.observation_space, env.action_space)
        fmt = image_format or getattr(base, "image_format", None) or sensors_of(env.observation_space)[1]
        if _shapes(spec.observation_space(fmt)) != _shapes(env.observation_space):
            raise SpecMismatchError(
                f"the behavior spec {spec.describe()} gives observations {spec.observation_space(fmt)} ({fmt}), "
                f"the env returns {env.observation_space}. Fix: pass the env's own behavior_spec (or none) and image_format."
            )
        self.behavior_spec = spec
        self.agent_id = int(agent_id)
        self._writer = DemoWriter(path, behavior_spec=spec, name=name, image_format=fmt, compress_images=compress_images, overwrite=overwrite)
        self._recording = bool(recording)
        self._episode_open = False  # the last record belongs to an episode still running
        self._mark = self._writer.checkpoint()

    # ------------------------------------------------------------------ controls

    @property
    def path(self) -> Path:
        """The `.demo` file being written."""
        return self._writer.path

    @property
    def number_steps(self) -> int:
        """Records written so far."""
        return self._writer.number_steps

    @property
    def recording(self) -> bool:
        """Whether steps are written to the file; set False to pause, True to resume."""
        return self._recording

    @recording.setter
    def recording(self, value: bool) -> None:
        if self._recording and not value:
            self._close_episode()
        self._recording = bool(value)

    def mark(self) -> None:
        """Remembers the current end of the file for :meth:`discard_since_mark`."""
        self._mark = self._writer.checkpoint()

    def discard_since_mark(self) -> int:
        """Drops the records written since the last :meth:`mark` (or since the start) and
        returns how many. Recording goes on from the env's current state as a new episode
        part; the mark moves to the new end of the file."""
        dropped = self._writer.rollback(self._mark)
        if dropped:
            self._episode_open = True  # the record before the mark may be mid-episode
            self._close_episode()
        self._mark = self._writer.checkpoint()
        return dropped

    def _close_episode(self) -> None:
        """Ends the recorded part of a running episode at its last record."""
        if self._episode_open:
            self._writer.interrupt_episode()
        self._episode_open = False

    # ------------------------------------------------------------------ env

    def _mask(self, info: dict[str, Any]) -> np.ndarray | None:
        mask = info.get("action_mask")
        total = sum(self.behavior_spec.action_spec.discrete_branches)
        if mask is None or not total or np.size(mask) != total:
            return None
        return np.asarray(mask, bool).reshape(-1)

    def _observation(self, obs: Any) -> Any:
        if isinstance(obs, dict):
            return OrderedDict((k, obs[k]) for k in self.behavior_spec.observation_keys)
        return obs

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """Resets the env and records its first observation (stored action zeros)."""
        obs, info = self.env.reset(**kwargs)
        self._close_episode()
        if self._recording:
            act = self.behavior_spec.action_spec
            self._writer.write(
                self._observation(obs),
                agent_id=self.agent_id,
                stored_continuous_action=np.zeros(act.continuous_size, np.float32),
                stored_discrete_action=np.zeros(act.discrete_size, np.int32),
                action_mask=self._mask(info),
            )
            self._episode_open = True
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Steps the env and records the new observation with ``action`` as its stored action."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self._recording:
            cont, disc = self.behavior_spec.action_spec.split(action)
            done = bool(terminated or truncated)
            self._writer.write(
                self._observation(obs),
                reward=float(reward),
                done=done,
                max_step_reached=bool(truncated and not terminated),
                agent_id=self.agent_id,
                stored_continuous_action=cont,
                stored_discrete_action=disc,
                action_mask=self._mask(info),
            )
            self._episode_open = not done
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        """Finishes the file (final counters, trailing meta copy) and closes the env, even
        when the file cannot be finished. An episode still running stays open in the file:
        readers treat it as cut by the end of the recording."""
        try:
            self._writer.close()
        finally:
            super().close()


def record_episodes(
    env: gym.Env,
    act: Callable[[Any], Any] | Predictor,
    path: str | Path,
    *,
    episodes: int,
    seed: int = 0,
    on_episode: Callable[[int, float], None] | None = None,
    minari_id: str | None = None,
    dataset_dir: str | Path | None = None,
    **recorder_kwargs: Any,
) -> tuple[Path, list[float]]:
    """Records ``episodes`` whole episodes of ``env`` driven by ``act`` into ``path`` and
    closes ``env``.

    ``act`` is either a callable ``obs -> action`` or a policy with SB3's ``predict``
    (models, loaded policies, scripted experts, recurrent ones such as sb3-contrib's
    ``RecurrentPPO``). A policy is called as ``predict(obs, state=state,
    episode_start=episode_start, deterministic=True)``: ``state`` is None at the first
    step of the recording, then what its previous call returned; ``episode_start`` is a
    bool array of one row, True at the first step of each episode (where a recurrent
    policy resets its state) and False at the others. Feed-forward policies return state
    None and ignore both.

    Episode *i* starts from ``env.reset(seed=seed + i)``; once it is written,
    ``on_episode(i, its return)`` is called (e.g. to show progress). ``recorder_kwargs`` go
    to :class:`DemoRecorder` (e.g. ``overwrite=True``). On any exception (Ctrl+C included)
    the file and ``env`` are closed: the file keeps every episode recorded so far, and an
    unfinished last one as cut by the end of the recording.

    With ``minari_id`` the recording is also written as the Minari dataset of that id, in
    ``dataset_dir`` (default: Minari's root, ``MINARI_DATASETS_PATH``) once every episode
    is recorded, exactly as :func:`~gym_unity_il.demo.demo_to_minari` converts the file
    (the ``datasets`` extra). When ``env`` was made by ``gym.make("UnityIL-v0", ...)``
    the dataset keeps those keywords, so ``dataset.recover_environment()`` makes it again.
    The id is checked before the first episode.

    Raises:
        OutputError: the file cannot be written (full disk, read-only folder, ...), naming
            the file, the reason, what the file holds and the fix; ``env`` is closed.
        ConfigError, FileExistsError: ``minari_id`` is malformed or taken (nothing recorded).

    Returns:
        The file written and the return of each episode.
    """
    try:
        if episodes < 1:
            raise ValueError(f"episodes must be at least 1, got {episodes}")
        if minari_id is not None:
            check_new_dataset(minari_id, dataset_dir=dataset_dir)
        recorder = DemoRecorder(env, path, **recorder_kwargs)
    except BaseException:
        env.close()
        raise
    returns = []
    state: Any = None
    try:
        for i in range(episodes):
            obs, _ = recorder.reset(seed=seed + i)
            total, done, first = 0.0, False, True
            while not done:
                if hasattr(act, "predict"):
                    action, state = act.predict(obs, state=state, episode_start=np.array([first]), deterministic=True)
                else:
                    action = act(obs)
                obs, reward, terminated, truncated, _ = recorder.step(action)
                total += float(reward)
                done, first = terminated or truncated, False
            returns.append(total)
            if on_episode is not None:
                on_episode(i, total)
    finally:
        recorder.close()
    if minari_id is not None:
        spec = env.spec
        env_kwargs = dict(spec.kwargs) if spec is not None and spec.id == "UnityIL-v0" else None
        demo_to_minari(recorder.path, minari_id, dataset_dir=dataset_dir, env_kwargs=env_kwargs)
    return recorder.path, returns
