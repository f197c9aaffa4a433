"""Writing `.demo` files exactly as Unity's Demonstration Recorder does (format 1.7-4.x).

Layout of a file written here, byte for byte what com.unity.ml-agents 2.x/3.x writes:

* offset 0: the delimited ``DemonstrationMetaProto`` (``api_version`` 1, the name, and the
  counters: 0 while recording, the final ones once closed);
* zero bytes up to offset 33, then the delimited ``BrainParametersProto`` (``is_training``
  false, ``action_spec`` plus the deprecated size/type fields for a purely continuous or
  purely discrete behavior);
* one delimited ``AgentInfoActionPairProto`` per step: the observations, reward, done flags,
  agent id and action mask, and the *stored* action (the one executed before this
  observation, zeros after an episode starts; ``continuous_actions`` / ``discrete_actions``);
* after closing, a raw copy of the final meta.

Counters follow Unity: ``number_steps`` = records, ``number_episodes`` = ``done`` records
+ 1, ``mean_reward`` = sum of rewards / ``number_episodes``.

Every record is flushed to the operating system as soon as it is written, so when the
writing process dies the file holds every record written so far: its meta still has
counters 0, which tells readers to read records up to the end of the file. The counters
change only after the bytes are written; when an exception (Ctrl+C) lands in between,
:meth:`DemoWriter.close` cuts the file back to the last counted record, so the final meta
always matches the records.

A file that cannot be written (full disk, read-only folder, no permission) raises
:class:`~gym_unity_il.errors.OutputError` naming the file, the reason and the fix. The
writer is closed by then: the file is cut back to its last whole record and given the
final counters when the disk allows (else it is an interrupted recording, readable to its
last whole record), and the message says which.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np

from gym_unity_il.demo.reader import BRAIN_OFFSET, Demonstration
from gym_unity_il.errors import OutputError
from gym_unity_il.proto import communicator_pb2 as pb
from gym_unity_il.protocol.observations import encode_observation
from gym_unity_il.protocol.specs import brain_parameters_to_proto
from gym_unity_il.protocol.wire import encode_varint
from gym_unity_il.spec import BehaviorSpec, ImageFormat, check_image_format

#: Unity keeps at most this many characters of a demonstration name.
MAX_NAME_LENGTH = 16
API_VERSION = 1

Observation = np.ndarray | Sequence[np.ndarray] | Mapping[str, np.ndarray]


def sanitize_name(name: str) -> str:
    """The demonstration name Unity would store: characters outside ``[a-zA-Z0-9 -]``
    removed, then cut to 16 characters."""
    return re.sub(r"[^a-zA-Z0-9 \-]", "", name)[:MAX_NAME_LENGTH]


def unique_demo_path(directory: str | Path, name: str) -> Path:
    """Where Unity's recorder would put a new demonstration: ``<directory>/<name>.demo``, or
    ``<name>_0.demo``, ``<name>_1.demo``, ... when taken (``name`` sanitized first)."""
    directory = Path(directory)
    stem = sanitize_name(name) or "Demo"
    path = directory / f"{stem}.demo"
    k = 0
    while path.exists():
        path = directory / f"{stem}_{k}.demo"
        k += 1
    return path


def demo_brain_parameters(spec: BehaviorSpec) -> pb.BrainParametersProto:
    """The BrainParametersProto Unity writes into a demo for ``spec`` (``is_training`` false)."""
    return brain_parameters_to_proto(spec, is_training=False)


@dataclass(frozen=True)
class WriterCheckpoint:
    """A position in a file being written, to roll back to (see :meth:`DemoWriter.rollback`)."""

    offset: int
    steps: int
    dones: int
    reward_sum: float
    last_record: tuple[int, bytes] | None


class DemoWriter:
    """Writes one `.demo` file record by record.

    Use as a context manager, or call :meth:`close`: closing writes the final counters. A
    writer that is never closed leaves an interrupted recording, which stays readable.

    Args:
        path: the file to create. Missing folders of this path are created (as Unity's
            recorder creates its folder), nothing else.
        behavior_spec: sensors and actions of the recorded behavior.
        name: demonstration name (default: the file name without ``.demo``), sanitized as
            Unity does.
        image_format: the layout of the image arrays given to :meth:`write`.
        compress_images: PNG images as Unity does by default; else raw floats (value / 255).
        overwrite: replace an existing file (otherwise ``FileExistsError``).

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        OutputError: the file or its folder cannot be written (a file created here is
            removed again); also from :meth:`write` and :meth:`close`, see the module docstring.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        behavior_spec: BehaviorSpec,
        name: str | None = None,
        image_format: ImageFormat = "hwc_uint8",
        compress_images: bool = True,
        overwrite: bool = False,
    ) -> None:
        check_image_format(image_format)
        self.path = Path(path)
        self.behavior_spec = behavior_spec
        self.name = sanitize_name(self.path.stem if name is None else name)
        self.image_format = image_format
        self.compress_images = compress_images
        self._steps = 0
        self._dones = 0
        self._reward_sum = 0.0
        self._last_record: tuple[int, bytes] | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError.from_os_error(self.path, exc, f"Its folder {self.path.parent} could not be created.") from None
        try:
            if self.path.is_dir():
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
            # Unbuffered: every write goes to the operating system at once, and a failed
            # write leaves no buffered bytes behind to fail again at close.
            self._file = self.path.open("wb" if overwrite else "xb", buffering=0)
        except FileExistsError:
            raise FileExistsError(
                f"{self.path} already exists; pass overwrite=True (--overwrite on the command line) to replace it, or choose another name"
            ) from None
        except OSError as exc:
            raise OutputError.from_os_error(self.path, exc, "Nothing was written.") from None
        initial = pb.DemonstrationMetaProto(api_version=API_VERSION, demonstration_name=self.name).SerializeToString()
        head = encode_varint(len(initial)) + initial
        brain = demo_brain_parameters(behavior_spec).SerializeToString()
        try:
            self._write_all(head + bytes(BRAIN_OFFSET - len(head)) + encode_varint(len(brain)) + brain)
            self._end = self._file.tell()  # the end of the last counted record
        except OSError as exc:
            self._file.close()
            left = "Nothing was recorded and the file was removed."
            try:
                self.path.unlink()
            except OSError:
                left = "Nothing was recorded; delete the unfinished file."
            raise OutputError.from_os_error(self.path, exc, left) from None

    # ------------------------------------------------------------------ counters

    @property
    def number_steps(self) -> int:
        """Records written so far."""
        return self._steps

    @property
    def number_episodes(self) -> int:
        """``done`` records written so far + 1 (the value the meta gets on close)."""
        return self._dones + 1

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run."""
        return self._file.closed

    # ------------------------------------------------------------------ records

    def _sensor_arrays(self, observations: Observation) -> list[np.ndarray]:
        spec = self.behavior_spec
        if isinstance(observations, np.ndarray):
            arrays = [observations]
        elif isinstance(observations, Mapping):
            missing = set(spec.observation_keys) - set(observations)
            if missing:
                raise ValueError(f"observation dict lacks {sorted(missing)}; the behavior's keys are {list(spec.observation_keys)}")
            arrays = [observations[k] for k in spec.observation_keys]
        else:
            arrays = list(observations)
        if len(arrays) != len(spec.observation_specs):
            raise ValueError(f"got {len(arrays)} observations, the behavior {spec.name!r} has {len(spec.observation_specs)} sensors")
        out = []
        for key, o_spec, array in zip(spec.observation_keys, spec.observation_specs, arrays):
            array = np.asarray(array)
            want = o_spec.output_shape(self.image_format)
            if array.shape != want:
                raise ValueError(f"observation {key!r} has shape {array.shape}, the spec wants {want} ({self.image_format})")
            out.append(array)
        return out

    def _record_bytes(
        self,
        observations: Observation,
        *,
        reward: float = 0.0,
        done: bool = False,
        max_step_reached: bool = False,
        agent_id: int = 0,
        stored_continuous_action: np.ndarray | Sequence[float] | None = None,
        stored_discrete_action: np.ndarray | Sequence[int] | None = None,
        action_mask: np.ndarray | Sequence[bool] | None = None,
    ) -> bytes:
        """The serialized record :meth:`write` appends (arguments as there)."""
        act = self.behavior_spec.action_spec
        info = pb.AgentInfoProto(reward=float(reward), done=bool(done), max_step_reached=bool(max_step_reached), id=int(agent_id))
        for o_spec, array in zip(self.behavior_spec.observation_specs, self._sensor_arrays(observations)):
            info.observations.append(
                encode_observation(array, o_spec, image_format=self.image_format, compress=self.compress_images)
            )
        if action_mask is not None:
            mask = np.asarray(action_mask, bool).reshape(-1)
            if mask.size != sum(act.discrete_branches):
                raise ValueError(f"action_mask has {mask.size} entries, the branches {list(act.discrete_branches)} need {sum(act.discrete_branches)}")
            info.action_mask.extend((~mask).tolist())
        action = pb.AgentActionProto()
        if stored_continuous_action is not None or stored_discrete_action is not None:
            cont = np.zeros(act.continuous_size, np.float32) if stored_continuous_action is None else stored_continuous_action
            disc = np.zeros(act.discrete_size, np.int32) if stored_discrete_action is None else stored_discrete_action
            cont_arr = np.asarray(cont, np.float32).reshape(-1)
            disc_arr = np.asarray(disc).reshape(-1)
            if cont_arr.size != act.continuous_size or disc_arr.size != act.discrete_size:
                raise ValueError(
                    f"stored action has {cont_arr.size} continuous and {disc_arr.size} discrete values, "
                    f"the behavior has {act.continuous_size} and {act.discrete_size}"
                )
            if act.discrete_size and (np.any(disc_arr < 0) or np.any(disc_arr >= np.array(act.discrete_branches))):
                raise ValueError(f"discrete action {disc_arr.tolist()} is outside the branch sizes {list(act.discrete_branches)}")
            action.continuous_actions.extend(cont_arr.tolist())
            action.discrete_actions.extend(disc_arr.astype(np.int64).tolist())
        return pb.AgentInfoActionPairProto(agent_info=info, action_info=action).SerializeToString()

    def write(
        self,
        observations: Observation,
        *,
        reward: float = 0.0,
        done: bool = False,
        max_step_reached: bool = False,
        agent_id: int = 0,
        stored_continuous_action: np.ndarray | Sequence[float] | None = None,
        stored_discrete_action: np.ndarray | Sequence[int] | None = None,
        action_mask: np.ndarray | Sequence[bool] | None = None,
    ) -> None:
        """Appends one record and flushes it to the operating system.

        Args:
            observations: the sensors in the env's form: an array (one sensor), a dict keyed
                by ``behavior_spec.observation_keys``, or a sequence in sensor order.
            reward: reward received since the previous record.
            done: this record ends the episode.
            max_step_reached: with ``done``: the episode was cut, not ended by the task.
            agent_id: Unity's agent id.
            stored_continuous_action: the action executed *before* this observation (zeros
                for the first record of an episode, as Unity writes).
            stored_discrete_action: idem, one index per branch. When both are None the record
                stores no action at all.
            action_mask: True = allowed, ``sum(branches)`` entries; None = everything allowed.

        Raises:
            ValueError: an observation or action does not fit the behavior spec.
        """
        record = self._record_bytes(
            observations,
            reward=reward,
            done=done,
            max_step_reached=max_step_reached,
            agent_id=agent_id,
            stored_continuous_action=stored_continuous_action,
            stored_discrete_action=stored_discrete_action,
            action_mask=action_mask,
        )
        self._append(record, reward=float(np.float32(reward)), done=bool(done))

    def _append(self, record: bytes, *, reward: float, done: bool) -> None:
        if self._file.closed:
            raise ValueError(f"{self.path} is closed")
        offset = self._end
        data = encode_varint(len(record)) + record
        end = offset + len(data)
        try:
            if self._file.tell() != self._end:
                self._cut_to_end()
            self._write_all(data)
            self._file.flush()
        except OSError as exc:
            raise self._give_up(exc, finish=True) from None
        # Plain assignments only from here (no call, so no KeyboardInterrupt in between).
        self._last_record, self._steps, self._dones, self._reward_sum, self._end = (
            (offset, record), self._steps + 1, self._dones + done, self._reward_sum + reward, end,
        )  # fmt: skip

    def _write_all(self, data: bytes) -> None:
        """Writes all of ``data`` at the current position (a raw file may take fewer bytes per call)."""
        view = memoryview(data)
        while view:
            view = view[self._file.write(view) :]

    def _cut_to_end(self) -> None:
        """Drops bytes past the last counted record (left by an interrupted write)."""
        self._file.truncate(self._end)
        self._file.seek(self._end)

    # ------------------------------------------------------------------ editing the end

    def checkpoint(self) -> WriterCheckpoint:
        """The current end of the file, to :meth:`rollback` to later."""
        return WriterCheckpoint(self._end, self._steps, self._dones, self._reward_sum, self._last_record)

    def rollback(self, checkpoint: WriterCheckpoint) -> int:
        """Drops every record written after ``checkpoint`` (the file is truncated at a record
        boundary, so it stays readable at every moment). Returns the number dropped."""
        dropped = self._steps - checkpoint.steps
        if dropped < 0:
            raise ValueError("this checkpoint is past the end of the file (an earlier rollback dropped it)")
        self._steps, self._dones, self._reward_sum, self._last_record, self._end = (
            checkpoint.steps, checkpoint.dones, checkpoint.reward_sum, checkpoint.last_record, checkpoint.offset,
        )  # fmt: skip
        try:
            self._cut_to_end()
            self._file.flush()
        except OSError as exc:
            raise self._give_up(exc, finish=True) from None
        return dropped

    def interrupt_episode(self) -> bool:
        """Marks the last record as the end of an interrupted episode (``done`` and
        ``max_step_reached``, what Unity writes for ``EpisodeInterrupted()``), rewriting it in
        place. Returns False (and changes nothing) when there is no record or it is already
        ``done``. Use it when the recorded stream stops mid-episode (reset, pause, discard)."""
        if self._last_record is None:
            return False
        offset, record = self._last_record
        pair = pb.AgentInfoActionPairProto.FromString(record)
        if pair.agent_info.done:
            return False
        pair.agent_info.done = True
        pair.agent_info.max_step_reached = True
        reward, replacement = pair.agent_info.reward, pair.SerializeToString()
        # Forget the old last record first: if interrupted before the replacement is
        # written, the file ends one record earlier instead of disagreeing with its meta.
        self._steps, self._reward_sum, self._last_record, self._end = self._steps - 1, self._reward_sum - reward, None, offset
        try:
            self._cut_to_end()
        except OSError as exc:
            raise self._give_up(exc, finish=True) from None
        self._append(replacement, reward=reward, done=True)
        return True

    # ------------------------------------------------------------------ closing

    def final_meta(self) -> pb.DemonstrationMetaProto:
        """The meta that :meth:`close` writes (counters as Unity computes them)."""
        episodes = self._dones + 1
        return pb.DemonstrationMetaProto(
            api_version=API_VERSION,
            demonstration_name=self.name,
            number_steps=self._steps,
            number_episodes=episodes,
            mean_reward=self._reward_sum / episodes,
        )

    def close(self) -> None:
        """Writes the final meta at offset 0 and its raw copy at the end, then closes.

        The meta goes to offset 0 first, so a crash between the two writes leaves a complete
        file without the (optional) trailing copy; the copy is also left out when the disk
        has no room for it. A name too long for the 33 bytes the meta may take (only with
        millions of steps) is shortened, with a warning. Closing twice does nothing.

        Raises:
            OutputError: the final meta could not be written; the writer is closed all the
                same and the file is an interrupted recording (counters 0) that readers read
                to its last whole record.
        """
        if self._file.closed:
            return
        try:
            self._finish()
        except OSError as exc:
            raise self._give_up(exc, finish=False) from None
        try:
            self._file.close()
        except OSError as exc:  # a delayed write error (network file systems)
            raise OutputError.from_os_error(self.path, exc, "Closing the file failed: the system may not have stored all of it.") from None

    def _finish(self) -> None:
        """Cuts the file to the last counted record, writes the final meta at offset 0, then
        its raw copy at the end if the disk has room for it."""
        meta = self.final_meta()
        while len(encoded := meta.SerializeToString()) + len(encode_varint(len(encoded))) > BRAIN_OFFSET:
            meta.demonstration_name = meta.demonstration_name[:-1]
        if meta.demonstration_name != self.name:
            warnings.warn(f"{self.path}: demonstration name shortened to {meta.demonstration_name!r} to fit the meta in 33 bytes", stacklevel=3)
        self._cut_to_end()
        self._file.seek(0)
        self._write_all(encode_varint(len(encoded)) + encoded)
        self._file.seek(self._end)
        try:
            self._write_all(encoded)
        except OSError:
            with contextlib.suppress(OSError):  # without its copy, the file is still complete
                self._cut_to_end()

    def _give_up(self, error: OSError, *, finish: bool) -> OutputError:
        """Closes the writer after ``error``, first finishing the file with the records
        counted so far when ``finish`` and the disk allow, and returns the error to raise."""
        counted = f"the {self._steps} records written before the error ({self._dones} episodes ended)"
        interrupted = ("as an interrupted recording (counters 0), which read_demo reads to its last whole record "
                       "(a cut record at the end is skipped with a warning)")  # fmt: skip
        left = f"The file could not be finished: it holds {counted} {interrupted}."
        if finish:
            try:
                self._finish()
                left = f"The file is closed and holds {counted}, with its final counters."
            except OSError as again:
                left = f"Finishing the file failed too ({again.strerror or again}): it holds {counted} {interrupted}."
        with contextlib.suppress(OSError):  # the descriptor is released even when closing reports an error
            self._file.close()
        return OutputError.from_os_error(self.path, error, left)

    def __enter__(self) -> DemoWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __del__(self) -> None:
        file = getattr(self, "_file", None)
        if file is not None and not file.closed:
            with contextlib.suppress(OSError):
                file.close()  # unclosed: leave the file as an interrupted recording


def write_demo(
    path: str | Path,
    demo: Demonstration,
    *,
    name: str | None = None,
    compress_images: bool = True,
    overwrite: bool = False,
) -> Path:
    """Writes every record of ``demo`` (e.g. read, filtered or joined from other files) to a
    new modern-format `.demo` file, and returns its path. Where a source file ended in the
    middle of an episode, that record is written as an interrupted episode end (``done`` and
    ``max_step_reached``), so that no episode runs from one source file into the next.

    Args:
        path: the file to create.
        demo: the records; its ``behavior_spec`` and ``image_format`` are used.
        name: demonstration name (default: the file name).
        compress_images: PNG (default, as Unity) or raw float images.
        overwrite: replace an existing file.
    """
    masks = demo.action_masks
    file_ends = np.append(demo.file_index[1:] != demo.file_index[:-1], False) & ~demo.done
    with DemoWriter(path, behavior_spec=demo.behavior_spec, name=name, image_format=demo.image_format,
                    compress_images=compress_images, overwrite=overwrite) as writer:  # fmt: skip
        for i in range(len(demo)):
            stored = bool(demo.action_stored[i])
            writer.write(
                [o[i] for o in demo.observations],
                reward=float(demo.rewards[i]),
                done=bool(demo.done[i] or file_ends[i]),
                max_step_reached=bool(demo.max_step_reached[i] or file_ends[i]),
                agent_id=int(demo.agent_ids[i]),
                stored_continuous_action=demo.stored_continuous_actions[i] if stored else None,
                stored_discrete_action=demo.stored_discrete_actions[i] if stored else None,
                action_mask=None if masks is None or masks[i].all() else masks[i],
            )
    return Path(path)
