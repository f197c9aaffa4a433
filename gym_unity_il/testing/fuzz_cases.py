"""Fuzz cases for the package's parsers of untrusted bytes, and the harness that runs one.

Two parts of the package read bytes that someone else wrote: the `.demo` reader
(:mod:`gym_unity_il.demo`, every era) and the decoding of Unity's messages on the live link
(:func:`gym_unity_il.protocol.messages.parse_unity_message`,
:func:`~gym_unity_il.protocol.handshake.read_handshake`,
:func:`~gym_unity_il.protocol.agents.decode_unity_output` and the side channels, as the
session calls them). This module

* builds valid inputs: `.demo` files written by :class:`~gym_unity_il.demo.DemoWriter` or
  assembled in the record formats of the older eras, prefixes of real recordings (when a
  folder of them is given), messages encoded the way the built-in scene player encodes
  them, and side-channel bytes the way the channels write them;
* mutates them at the byte level (bit flips, inserted and deleted bytes, truncation at
  every kind of offset, length prefixes blown up) and at the field level (shapes, masks,
  NaN rewards, PNG headers, channel mappings, brain parameters, records of other eras);
* runs one :class:`Case` through its parser (:func:`run_case`): a result or an error of
  :mod:`gym_unity_il.errors` (plus, for files, :class:`~gym_unity_il.demo.DemoFormatWarning`)
  is accepted; anything else escapes. A case that was not mutated must also decode to the
  arrays it was built from, so the targets are the real decoding paths;
* runs one agent of Unity's messages, mutated or not, down both roads (the link's decoding,
  and the `.demo` reader on a file of that agent's record): both must give the same arrays,
  or both refuse it.

Hypothesis strategies draw the cases (:func:`demo_cases`, :func:`link_cases`,
:func:`agent_cases`, :func:`side_channel_cases`); :func:`real_demo_cases` mutates real
recordings with a seeded numpy generator. ``benchmarks/fuzz_inputs.py`` runs 100k of them,
the fuzz tests a few hundred.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import io
import json
import math
import struct
import tempfile
import uuid
import warnings
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from hypothesis import strategies as st
from PIL import Image

from gym_unity_il.demo import DemoFormatWarning, DemoReader, DemoWriter, demo_to_trajectories, iter_records, read_demo
from gym_unity_il.demo.reader import BRAIN_OFFSET
from gym_unity_il.errors import GymUnityILError
from gym_unity_il.proto import communicator_pb2 as pb
from gym_unity_il.proto import legacy_pb2 as lpb
from gym_unity_il.protocol.agents import decode_agent_infos, decode_unity_output
from gym_unity_il.protocol.channels import (
    ENGINE_CONFIGURATION_CHANNEL_ID,
    ENVIRONMENT_PARAMETERS_CHANNEL_ID,
    STATS_CHANNEL_ID,
    EngineConfigurationChannel,
    EngineSetting,
    EnvironmentParametersChannel,
    StatsSideChannel,
)
from gym_unity_il.protocol.handshake import COMMUNICATION_VERSION, capabilities_proto, channels_first_for_package, read_handshake
from gym_unity_il.protocol.images import PNG_SIGNATURE, encode_png, png_chunk
from gym_unity_il.protocol.messages import HEADER_OK, parse_unity_message
from gym_unity_il.protocol.observations import ObservationEncoder, float_data_from_array, float_payload
from gym_unity_il.protocol.side_channels import PayloadWriter, SideChannelManager, frame_messages, split_messages
from gym_unity_il.protocol.specs import behavior_spec_from_proto, brain_parameters_to_proto
from gym_unity_il.protocol.wire import WireError, delimited, encode_varint, fields_of, read_varint
from gym_unity_il.scenes.base import AgentBatch
from gym_unity_il.scenes.player import ScenePlayer, wire_observation_spec
from gym_unity_il.spec import ActionSpec, BehaviorSpec, DimensionProperty, ImageFormat, ObservationSpec

#: Values that break sizes, counts and enums: zero, one-off, negative, int32 and uint32 limits.
EDGE_INTS = (0, 1, 2, 3, 7, -1, -2, 255, 4096, 100_000, 2**31 - 1, -(2**31), 2**24 + 1)
EDGE_FLOATS = (math.nan, math.inf, -math.inf, 3.4e38, -3.4e38, 1e-45, -0.0, 2.5, 1e10)
#: Length prefixes far beyond any file or message.
BIG_LENGTHS = (2**31 - 1, 2**31, 2**32 + 5, 2**40, 2**63 - 1, 2**64 - 1, 2**70)  # 2**70: an 11-byte varint
EDGE_VERSIONS = ("", "x", "1.5.0", "1.0.0", "0.15.0", "2.0", "9" * 5000, "1." + "9" * 5000, "\u0663.0.0", "1.5.0-" + "a" * 100,
                 "-1.0", "1.5.0\x00", "3.0.0-exp.1", "99999999999999999999.0")  # fmt: skip
_NONE, _TE = DimensionProperty.NONE, DimensionProperty.TRANSLATIONAL_EQUIVARIANCE


def _pick(options: Sequence, k: int):  # type: ignore[no-untyped-def]
    return options[k % len(options)]


# ---------------------------------------------------------------------------------- outcomes


class UnexpectedWarning(AssertionError):
    """A parser issued a warning it does not document."""


class WrongResult(AssertionError):
    """An input that was not mutated did not decode to the arrays it was built from."""


@dataclass(frozen=True, eq=False)
class Case:
    """One input for one parser.

    Attributes:
        target: ``"demo"`` (the bytes of a `.demo` file), ``"link"`` (one message of Unity),
            ``"agents"`` (a message whose second agent is decoded on the link and from a
            `.demo` file, which must agree) or ``"side-channels"`` (the ``side_channel``
            bytes of a message).
        data: the input.
        origin: how it was made (its source and mutations), for reports.
        options: how it is read. demo: ``mode`` (``read_demo``, ``iter_records``,
            ``batches``, ``read`` or ``convert``), ``image_format``, ``batch_size``; link:
            ``image_format``, ``channels_first`` (when there is no handshake); agents:
            ``image_format``.
        prior: link only: a valid earlier message, decoded first, whose behaviors the
            session then knows (None: ``data`` is the first message, with the handshake).
        expected: for an input that was not mutated, what it must decode to.
    """

    target: str
    data: bytes = field(repr=False)
    origin: str = ""
    options: dict[str, object] = field(default_factory=dict)
    prior: bytes | None = field(default=None, repr=False)
    expected: object | None = field(default=None, repr=False)


def run_case(case: Case, workdir: Path) -> str:
    """Runs ``case`` through its parser.

    Args:
        case: the input.
        workdir: a folder for the `.demo` file of a demo case.

    Returns:
        ``"result"``, or the class name of the :class:`GymUnityILError` the parser raised.

    Raises:
        UnexpectedWarning: a warning other than the reader's DemoFormatWarning.
        WrongResult: an unmutated input did not give back its arrays (or raised).
        Exception: anything else the parser let escape (the fuzzing finds these).
    """
    run = {"demo": _run_demo, "link": _run_link, "agents": _run_agents, "side-channels": _run_side_channels}[case.target]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            run(case, workdir)
            kind = "result"
        except GymUnityILError as exc:
            if case.expected is not None:
                raise WrongResult(f"a valid input ({case.origin}) raised {type(exc).__name__}: {exc}") from exc
            kind = type(exc).__name__
    documented = DemoFormatWarning if case.target == "demo" else ()
    unexpected = [w for w in caught if not (documented and issubclass(w.category, documented))]
    if unexpected:
        w = unexpected[0]
        raise UnexpectedWarning(f"{w.category.__name__} at {w.filename}:{w.lineno}: {w.message}")
    return kind


def save_case(case: Case, folder: Path, note: str = "") -> None:
    """Writes a case to ``folder`` (``input.bin``, ``prior.bin``, ``case.json``) for :func:`load_case`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "input.bin").write_bytes(case.data)
    if case.prior is not None:
        (folder / "prior.bin").write_bytes(case.prior)
    about = {"target": case.target, "origin": case.origin, "options": case.options, "note": note}
    (folder / "case.json").write_text(json.dumps(about, indent=1) + "\n")


def load_case(folder: Path) -> Case:
    """A case saved by :func:`save_case` (without its expected arrays)."""
    about = json.loads((folder / "case.json").read_text())
    prior = folder / "prior.bin"
    return Case(about["target"], (folder / "input.bin").read_bytes(), about["origin"], about["options"],
                prior.read_bytes() if prior.exists() else None)  # fmt: skip


# ---------------------------------------------------------------------------------- sensors


@dataclass(frozen=True)
class Sensor:
    """One sensor of a generated behavior.

    Attributes:
        shape: ``(size,)`` for a vector, ``(height, width, channels)`` for an image.
        png: an image travels as PNG (else as raw floats, value / 255).
    """

    shape: tuple[int, ...]
    png: bool = True

    @property
    def is_image(self) -> bool:
        return len(self.shape) == 3

    def spec(self, index: int, *, chw: bool = False) -> ObservationSpec:
        """The spec of the sensor ``index`` of a behavior (images HWC, or CHW on the wire with ``chw``)."""
        if not self.is_image:
            return ObservationSpec(shape=self.shape, dimension_property=(_NONE,), name=f"VectorSensor{index}")
        h, w, c = self.shape
        name = f"CameraSensor{index}"
        if chw:
            return ObservationSpec(shape=(c, h, w), dimension_property=(_NONE, _TE, _TE), name=name, channels_first=True)
        return ObservationSpec(shape=(h, w, c), dimension_property=(_TE, _TE, _NONE), name=name)

    def value(self, rng: np.random.Generator) -> np.ndarray:
        """A random observation: uint8 HWC for an image, float32 for a vector."""
        if self.is_image:
            return rng.integers(0, 256, self.shape, dtype=np.uint8)
        return rng.normal(size=self.shape).astype(np.float32)


def _as_format(array: np.ndarray, image: bool, image_format: str) -> np.ndarray:
    """A stacked sensor array ``[n, ...]`` (images uint8 HWC) in the reader's output layout."""
    if image and image_format == "chw_float":
        return np.ascontiguousarray(array.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255.0)
    return array


def _png(hwc: np.ndarray) -> bytes:
    """uint8 HWC (1 or 3 channels) as one PNG the way the protocol writes it (grey as equal RGB)."""
    data, _ = encode_png(hwc)
    return data


# ---------------------------------------------------------------------------------- .demo sources

#: File formats the generated `.demo` files are written in (the reader's eras, 0.6-0.11 split
#: into its camera-resolution and compressed-observation variants).
ERAS = ("4.x", "1.x", "0.12", "0.10", "0.11")


@dataclass(frozen=True)
class DemoRecipe:
    """What a generated `.demo` file holds.

    Attributes:
        era: one of :data:`ERAS` (``4.x`` is written by DemoWriter).
        sensors: the sensors; 0.10 / 0.11 files list images first, then one vector.
        continuous: continuous action size.
        branches: discrete branch sizes (eras before 1.7 hold one kind of action only).
        episodes: ``(records, end)`` per episode, ``end`` in ``done``, ``max_step``, ``open``.
        closed: the recording was closed (final counters and the meta copy at the end).
        masks: records carry action masks.
        png: images as PNG (else raw floats, eras 1.x and 4.x).
        chw: 4.x images declared CHW (Unity 3.x and later).
        seed: for the values.
    """

    era: str
    sensors: tuple[Sensor, ...]
    continuous: int
    branches: tuple[int, ...]
    episodes: tuple[tuple[int, str], ...]
    closed: bool = True
    masks: bool = False
    png: bool = True
    chw: bool = False
    seed: int = 0


@dataclass(frozen=True)
class DemoParts:
    """A `.demo` file cut into its parts: the serialized meta, brain parameters and records,
    and the bytes after the records (the raw meta copy, or nothing)."""

    meta: bytes
    brain: bytes
    records: tuple[bytes, ...]
    tail: bytes
    legacy: bool  # records are bare 0.6-0.11 AgentInfoProtos


@dataclass(frozen=True, eq=False)
class DemoSource:
    """A valid `.demo` file, its parts and (for generated files) the arrays it holds."""

    name: str
    parts: DemoParts = field(repr=False)
    data: bytes = field(repr=False)
    expected: dict[str, object] | None = field(repr=False)


def join_demo(parts: DemoParts) -> tuple[bytes, list[int], list[int]]:
    """The bytes of a file from its parts, the offsets where parts begin and end, and the
    offsets of the length prefixes (meta, brain, each record)."""
    out = bytearray(encode_varint(len(parts.meta)) + parts.meta)
    out += bytes(max(0, BRAIN_OFFSET - len(out)))
    points, prefixes = [0, 1, len(out)], [0]
    for body in (parts.brain, *parts.records):
        prefixes.append(len(out))
        out += encode_varint(len(body))
        points.append(len(out))
        out += body
        points.append(len(out))
    out += parts.tail
    points.append(len(out))
    return bytes(out), points, prefixes


def split_demo(data: bytes, legacy: bool) -> DemoParts:
    """The parts of a valid `.demo` file (records: as many as the meta announces, or every
    one of an interrupted recording)."""
    meta_len, at = read_varint(data, 0, len(data))
    meta = data[at : at + meta_len]
    parsed = pb.DemonstrationMetaProto.FromString(meta)
    pos, bodies = BRAIN_OFFSET, []
    interrupted = parsed.number_steps == 0 and parsed.number_episodes == 0
    while pos < len(data) and (interrupted or len(bodies) <= parsed.number_steps):
        length, start = read_varint(data, pos, len(data))
        bodies.append(data[start : start + length])
        pos = start + length
    return DemoParts(meta, bodies[0], tuple(bodies[1:]), data[pos:], legacy)


def _meta(name: str, steps: int, episodes: int, reward: float) -> bytes:
    return pb.DemonstrationMetaProto(api_version=1, demonstration_name=name, number_steps=steps, number_episodes=episodes,
                                     mean_reward=reward).SerializeToString()  # fmt: skip


@dataclass
class _Step:
    obs: list[np.ndarray]
    reward: float
    done: bool
    max_step: bool
    agent_id: int
    cont: np.ndarray
    disc: np.ndarray
    allowed: np.ndarray | None


def _script(recipe: DemoRecipe) -> list[_Step]:
    """The records of a recipe with Unity's timing: the first record of an episode stores a
    zero action, record t>0 the action taken at t-1."""
    rng = np.random.default_rng(recipe.seed)
    steps = []
    for e, (length, end) in enumerate(recipe.episodes):
        cont = np.zeros(recipe.continuous, np.float32)
        disc = np.zeros(len(recipe.branches), np.int32)
        for t in range(length):
            last = t == length - 1 and end != "open"
            allowed = None
            if recipe.masks and recipe.branches:
                allowed = rng.random(sum(recipe.branches)) < 0.7
            steps.append(_Step([s.value(rng) for s in recipe.sensors], 0.0 if t == 0 else float(np.float32(rng.normal())), last,
                               last and end == "max_step", e, cont, disc, allowed))  # fmt: skip
            cont = rng.uniform(-1, 1, recipe.continuous).astype(np.float32)
            disc = np.array([rng.integers(b) for b in recipe.branches], np.int32)
    return steps


def _expected(recipe: DemoRecipe, steps: list[_Step], order: list[int]) -> dict[str, object]:
    """What reading the file gives (images uint8 HWC), sensors in the reader's order ``order``."""
    n, total = len(steps), sum(recipe.branches)
    masks = None
    if recipe.branches:
        masks = np.array([s.allowed if s.allowed is not None else np.ones(total, bool) for s in steps], bool).reshape(n, total)
    return {
        "observations": tuple(np.array([s.obs[j] for s in steps]).reshape((n, *recipe.sensors[j].shape)) for j in order),
        "images": tuple(recipe.sensors[j].is_image for j in order),
        "stored_continuous_actions": np.array([s.cont for s in steps], np.float32).reshape(n, recipe.continuous),
        "stored_discrete_actions": np.array([s.disc for s in steps], np.int32).reshape(n, len(recipe.branches)),
        "rewards": np.array([s.reward for s in steps], np.float32),
        "done": np.array([s.done for s in steps], bool),
        "max_step_reached": np.array([s.max_step for s in steps], bool),
        "agent_ids": np.array([s.agent_id for s in steps], np.int32),
        "action_masks": masks,
    }


def _behavior(recipe: DemoRecipe) -> BehaviorSpec:
    sensors = tuple(s.spec(i, chw=recipe.chw) for i, s in enumerate(recipe.sensors))
    return BehaviorSpec(name="Fuzz?team=0", observation_specs=sensors, action_spec=ActionSpec(recipe.continuous, recipe.branches))


def _write_modern(recipe: DemoRecipe, steps: list[_Step]) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.demo"
        writer = DemoWriter(path, behavior_spec=_behavior(recipe), compress_images=recipe.png)
        for s in steps:
            writer.write(s.obs, reward=s.reward, done=s.done, max_step_reached=s.max_step, agent_id=s.agent_id,
                         stored_continuous_action=s.cont, stored_discrete_action=s.disc, action_mask=s.allowed)  # fmt: skip
        if recipe.closed:
            writer.close()
        else:
            del writer  # an interrupted recording: counters 0, no meta copy
        return path.read_bytes()


def _flat_action(step: _Step) -> list[float]:
    return [*step.cont.tolist(), *(float(d) for d in step.disc.tolist())]


def _pair_record(recipe: DemoRecipe, step: _Step) -> bytes:
    """A 0.12-1.6 record: AgentInfoActionPairProto with unnamed HWC sensors and the flat action."""
    info = pb.AgentInfoProto(reward=step.reward, done=step.done, max_step_reached=step.max_step, id=step.agent_id)
    for sensor, value in zip(recipe.sensors, step.obs):
        obs = info.observations.add(shape=sensor.shape)
        if sensor.is_image and recipe.png:
            obs.compression_type = pb.PNG
            obs.compressed_data = _png(value)
        else:
            obs.float_data.CopyFrom(float_data_from_array(value.astype(np.float32) / np.float32(255) if sensor.is_image else value))
    if step.allowed is not None:
        info.action_mask.extend((~step.allowed).tolist())
    action = pb.AgentActionProto(vector_actions_deprecated=_flat_action(step))
    return pb.AgentInfoActionPairProto(agent_info=info, action_info=action).SerializeToString()


def _legacy_record(recipe: DemoRecipe, step: _Step) -> bytes:
    """A 0.6-0.11 record: a bare AgentInfoProto, PNGs in field 2 (0.10) or 13 (0.11)."""
    info = lpb.AgentInfoProto(reward=step.reward, done=step.done, max_step_reached=step.max_step, id=step.agent_id,
                              stored_vector_actions=_flat_action(step))  # fmt: skip
    for sensor, value in zip(recipe.sensors, step.obs):
        if not sensor.is_image:
            info.stacked_vector_observation.extend(value.tolist())
        elif recipe.era == "0.10":
            info.visual_observations.append(_png(value))
        else:
            info.compressed_observations.add(shape=sensor.shape, compression_type=lpb.PNG, data=_png(value))
    if step.allowed is not None:
        info.action_mask.extend((~step.allowed).tolist())
    return info.SerializeToString()


def _old_brain(recipe: DemoRecipe) -> bytes:
    kind = lpb.continuous if recipe.continuous else lpb.discrete
    sizes = [recipe.continuous] if recipe.continuous else list(recipe.branches)
    if recipe.era == "1.x":
        return pb.BrainParametersProto(brain_name="Fuzz?team=0", vector_action_size_deprecated=sizes,
                                       vector_action_space_type_deprecated=kind).SerializeToString()  # fmt: skip
    vector = sum(s.shape[0] for s in recipe.sensors if not s.is_image)
    # 0.12-0.15 brains always hold field 1 or 2 (the reader tells them from 1.0-1.6 brains by it).
    size = max(vector, 1) if recipe.era == "0.12" else vector
    brain = lpb.BrainParametersProto(brain_name="Fuzz", vector_observation_size=size, num_stacked_vector_observations=1,
                                     vector_action_size=sizes, vector_action_space_type=kind)  # fmt: skip
    if recipe.era == "0.10":
        for s in recipe.sensors:
            if s.is_image:
                brain.camera_resolutions.add(height=s.shape[0], width=s.shape[1], gray_scale=s.shape[2] == 1)
    return brain.SerializeToString()


@functools.lru_cache(maxsize=512)
def build_demo(recipe: DemoRecipe) -> DemoSource:
    """The valid file a recipe describes and the arrays it holds."""
    steps = _script(recipe)
    order = list(range(len(recipe.sensors)))
    if recipe.era == "4.x":
        data = _write_modern(recipe, steps)
        return DemoSource(f"written {recipe}", split_demo(data, False), data, _expected(recipe, steps, order))
    legacy = recipe.era in ("0.10", "0.11")
    if legacy:  # the reader lists the images first, then the one vector
        order = sorted(order, key=lambda j: not recipe.sensors[j].is_image)
        records = tuple(_legacy_record(recipe, s) for s in steps)
    else:
        records = tuple(_pair_record(recipe, s) for s in steps)
    dones = sum(s.done for s in steps)
    meta = _meta("fuzz", len(steps), dones + 1, sum(s.reward for s in steps) / (dones + 1)) if recipe.closed else _meta("fuzz", 0, 0, 0.0)
    tail = meta if recipe.closed and recipe.era != "0.12" else b""
    parts = DemoParts(meta, _old_brain(recipe), records, tail, legacy)
    return DemoSource(f"assembled {recipe}", parts, join_demo(parts)[0], _expected(recipe, steps, order))


def real_sources(folder: Path, *, max_bytes: int = 24_000) -> list[DemoSource]:
    """The real recordings of ``folder`` as sources: small files whole; of a larger one its
    first records (at most ``max_bytes``, at least one), once as an interrupted recording and
    once closed with the counters of that prefix."""
    sources = []
    for path in sorted(folder.glob("*.demo")):
        data = path.read_bytes()
        legacy = DemoReader(path).era.legacy_records
        if len(data) <= max_bytes:
            sources.append(DemoSource(path.name, split_demo(data, legacy), data, None))
            continue
        whole = split_demo(data, legacy)
        keep, size = [], 0
        for record in whole.records:
            if keep and size + len(record) > max_bytes:
                break
            keep.append(record)
            size += len(record)
        old = pb.DemonstrationMetaProto.FromString(whole.meta)
        closed = _meta(old.demonstration_name, len(keep), old.number_episodes, old.mean_reward)
        interrupted = _meta(old.demonstration_name, 0, 0, 0.0)
        for meta, tail, how in ((interrupted, b"", "interrupted"), (closed, closed if whole.tail else b"", "closed")):
            parts = DemoParts(meta, whole.brain, tuple(keep), tail, legacy)
            sources.append(DemoSource(f"{path.name} first {len(keep)} records, {how}", parts, join_demo(parts)[0], None))
    return sources


# ---------------------------------------------------------------------------------- reading files


def read_everything(path: Path, options: dict[str, object]) -> dict[str, object]:
    """Reads a file the way ``options`` say and returns its arrays as one dict (the fields of
    :class:`~gym_unity_il.demo.Demonstration` that hold arrays)."""
    mode, image_format = options.get("mode", "read_demo"), options.get("image_format", "hwc_uint8")
    names = ("stored_continuous_actions", "stored_discrete_actions", "rewards", "done", "max_step_reached", "agent_ids", "action_masks")
    if mode in ("read_demo", "read", "convert"):
        if mode == "read":  # one file, arrays allocated once when the meta's count can be trusted
            reader = DemoReader(path, image_format=image_format, batch_size=int(options.get("batch_size", 1)))  # type: ignore[arg-type]
            demo = reader.read()
        else:
            demo = read_demo(path, image_format=image_format)  # type: ignore[arg-type]
        if mode == "convert":
            demo_to_trajectories(demo, hybrid_actions="continuous")
        return {"observations": demo.observations, **{k: getattr(demo, k) for k in names}}
    if mode == "iter_records":
        records = list(iter_records(path, image_format=image_format))  # type: ignore[arg-type]
        if not records:
            return {}
        attrs = ("stored_continuous_action", "stored_discrete_action", "reward", "done", "max_step_reached", "agent_id", "action_mask")
        out: dict[str, object] = {"observations": tuple(np.array(o) for o in zip(*(r.observations for r in records)))}
        for name, attr in zip(names, attrs):
            values = [getattr(r, attr) for r in records]
            out[name] = None if values[0] is None else np.array(values)
        return out
    reader = DemoReader(path, image_format=image_format, batch_size=int(options.get("batch_size", 1)))  # type: ignore[arg-type]
    chunks = list(reader.iter_batches())
    if not chunks:
        return {}
    out = {"observations": tuple(np.concatenate(o) for o in zip(*(c.observations for c in chunks)))}
    for name in names:
        parts = [getattr(c, name) for c in chunks]
        out[name] = None if parts[0] is None else np.concatenate(parts)
    return out


def check_demo(got: dict[str, object], expected: dict[str, object], image_format: str) -> None:
    """Raises WrongResult unless ``got`` (from :func:`read_everything`) holds the expected arrays."""
    n = len(expected["rewards"])  # type: ignore[arg-type]
    if not got:
        if n:
            raise WrongResult(f"no record read, {n} written")
        return
    for name, want in expected.items():
        if name == "images":
            continue
        have = got[name]
        if name == "observations":
            images = expected["images"]
            pairs = list(zip(have, (_as_format(w, img, image_format) for w, img in zip(want, images))))  # type: ignore[arg-type]
            if len(have) != len(want):  # type: ignore[arg-type]
                raise WrongResult(f"{len(have)} sensors read, {len(want)} written")  # type: ignore[arg-type]
        else:
            pairs = [(have, want)]
        for a, b in pairs:
            if (a is None) != (b is None) or a is not None and not (np.shape(a) == np.shape(b) and np.array_equal(a, b, equal_nan=True)):
                raise WrongResult(f"{name}: read {a!r}, written {b!r}")


def _run_demo(case: Case, workdir: Path) -> None:
    path = workdir / "case.demo"
    path.write_bytes(case.data)
    got = read_everything(path, case.options)
    if case.expected is not None:
        check_demo(got, case.expected, str(case.options.get("image_format", "hwc_uint8")))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------- field mutators


def _varint_positions(data: bytes, base: int = 0, depth: int = 3, limit: int = 64) -> list[int]:
    """Offsets of the length prefixes of the length-delimited fields in ``data`` read as a
    message, and in the payloads that read as messages too (down to ``depth``)."""
    try:
        fields = fields_of(data)
    except WireError:
        return []
    out: list[int] = []
    for _, wire_type, start, end in fields:
        if wire_type != 2 or len(out) >= limit:
            continue
        out.append(base + start - len(encode_varint(end - start)))
        if depth > 1 and end > start:
            out += _varint_positions(data[start:end], base + start, depth - 1, limit - len(out))
    return out


def put_varint(data: bytearray, at: int, value: int) -> None:
    """Replaces the varint at ``at`` with ``value`` (any size; 2**64-1 and more become 10+ bytes)."""
    try:
        _, end = read_varint(data, at, len(data))
    except WireError:
        end = at + 1
    new = encode_varint(value) if value < 2**64 else b"\xff" * 10 + b"\x01"
    data[at:end] = new


def _png_chunks(png: bytes) -> list[tuple[int, bytes, bytes]]:
    """(offset, type, payload) of the chunks of one well-formed PNG."""
    out, pos = [], 8
    while pos + 8 <= len(png):
        (length,) = struct.unpack_from(">I", png, pos)
        out.append((pos, png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return out


@functools.lru_cache(maxsize=8)
def zlib_bomb(size: int) -> bytes:
    """A zlib stream of ``size`` zero bytes (a multiple of 16 MiB) made of repeated, fully
    flushed blocks, about 1000 times smaller than what it inflates to."""
    block = 16 << 20
    deflate = zlib.compressobj(9)
    head = deflate.compress(bytes(block)) + deflate.flush(zlib.Z_FULL_FLUSH)
    again = deflate.compress(bytes(block)) + deflate.flush(zlib.Z_FULL_FLUSH)
    return head + again * (size // block - 1) + deflate.flush()


def png_bomb(height: int, width: int, *, inflated: int = 256 << 20) -> bytes:
    """An 8-bit RGB PNG whose header says ``height`` x ``width`` and whose pixel data
    inflates to ``inflated`` zero bytes (unfiltered rows, far more of them than the header says)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib_bomb(inflated)) + png_chunk(b"IEND", b"")


def _pillow_png(h: int, w: int, mode: str, rng: np.random.Generator) -> bytes:
    """A PNG in one of the modes Pillow writes (palette, 16-bit, grey+alpha, 1-bit, ...)."""
    img = Image.fromarray(rng.integers(0, 256, (max(h, 1), max(w, 1), 3), dtype=np.uint8)).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def mutate_png(png: bytes, a: int, b: int, payload: bytes) -> bytes:
    """One change to PNG bytes: header sizes and types, chunks dropped, cut or repeated,
    another mode, a decompression bomb."""
    chunks = _png_chunks(png) if png.startswith(PNG_SIGNATURE) else []
    how = a % 9
    if how == 0 and chunks:  # IHDR fields, with or without a correct CRC
        ihdr = bytearray(chunks[0][2].ljust(13, b"\0"))
        w, h = struct.unpack_from(">II", ihdr)
        sizes = (0, 1, 2, 100_000, 2**31 - 1, 2**32 - 1, min(w + 1, 2**32 - 1), min(h * 1000, 2**32 - 1))
        which = b % 7
        if which < 2:
            struct.pack_into(">I", ihdr, 4 * which, _pick(sizes, b // 7))
        else:
            ihdr[6 + which] = _pick((0, 1, 2, 3, 4, 6, 7, 8, 16, 255), b // 7)
        rest = png[chunks[1][0] :] if len(chunks) > 1 else b""
        head = png_chunk(b"IHDR", bytes(ihdr)) if b & 1 else struct.pack(">I", 13) + b"IHDR" + bytes(ihdr) + b"\0\0\0\0"
        return PNG_SIGNATURE + head + rest
    if how == 1 and chunks:  # drop a chunk
        pos, kind, data = _pick(chunks, b)
        return png[:pos] + png[pos + 12 + len(data) :]
    if how == 2:  # cut anywhere
        return png[: b % (len(png) + 1)]
    if how == 3:  # a second PNG, garbage, or a stray signature after it
        return png + _pick((png, payload, PNG_SIGNATURE + payload, PNG_SIGNATURE), b)
    if how == 4 and chunks:  # a chunk length far beyond the data
        pos = _pick(chunks, b)[0]
        return png[:pos] + struct.pack(">I", _pick((2**31 - 1, 2**32 - 1, 100_000, 0), b // 3)) + png[pos + 4 :]
    if how == 5 and chunks:  # the same size in another mode
        w, h = struct.unpack_from(">II", chunks[0][2])
        if w * h <= 4096:
            return _pillow_png(h, w, _pick(("P", "LA", "I;16", "1", "RGBA", "L"), b), np.random.default_rng(b))
    if how == 6 and chunks:  # a decompression bomb of the same header size
        w, h = struct.unpack_from(">II", chunks[0][2])
        return png_bomb(h, w)
    if how == 7:  # header of an absurd image, tiny data
        return png_bomb(_pick((100_000, 2**31 - 1, 65_535), b), _pick((100_000, 2**31 - 1, 1), b // 3), inflated=16 << 20)
    flipped = bytearray(png)
    if flipped:
        flipped[b % len(flipped)] ^= (payload[:1] or b"\x01")[0] or 1
    return bytes(flipped)


def mutate_observation(obs: pb.ObservationProto, a: int, b: int, payload: bytes) -> None:
    """One change to an ObservationProto (shape, dimension properties, types, channel
    mapping, PNG data, floats)."""
    how = a % 10
    k = a // 10
    if how == 0:
        shape = list(obs.shape)
        if shape and b % 3:
            shape[b % len(shape)] = _pick(EDGE_INTS, k)
        elif b % 2:
            shape.append(_pick(EDGE_INTS, k))
        else:
            shape = shape[:-1]
        obs.ClearField("shape")
        obs.shape.extend(shape)
    elif how == 1:
        obs.ClearField("dimension_properties")
        obs.dimension_properties.extend(_pick((0, 1, 2, 3, 4, 5, 8, -1, 2**31 - 1), k + i) for i in range(b % 5))
    elif how == 2:
        obs.observation_type = _pick((0, 1, 2, -1, 99), b)
        obs.compression_type = _pick((0, 1, 2, -1, 7), k)
    elif how == 3:
        obs.ClearField("compressed_channel_mapping")
        obs.compressed_channel_mapping.extend(_pick((-1, 0, 1, 2, 3, 6, 7, 100, -100, 2**31 - 1, -(2**31)), v) for v in payload)
    elif how in (4, 5, 6) and obs.WhichOneof("observation_data") == "compressed_data":
        obs.compressed_data = mutate_png(obs.compressed_data, k, b, payload)
    elif how == 7:
        values = np.frombuffer(float_payload(obs.float_data), "<f4").copy()
        if values.size and b % 3 == 0:
            values[b % values.size] = _pick(EDGE_FLOATS, k)
        elif b % 3 == 1:
            values = values[: max(0, values.size - 1 - k % 3)]
        else:
            values = np.append(values, np.float32(1.0))
        obs.float_data.CopyFrom(float_data_from_array(values))
    elif how == 8:  # the data in the other representation, or none
        if b % 3 == 0:
            obs.compressed_data = payload
        elif b % 3 == 1:
            obs.float_data.CopyFrom(float_data_from_array(np.ones(b % 7, np.float32)))
        else:
            obs.ClearField("observation_data")
        obs.compression_type = _pick((0, 1), k)
    else:
        obs.name = _pick(("", "\u00e9\u00e8", "x" * 300, "CameraSensor0"), b)


def mutate_agent(info: pb.AgentInfoProto, a: int, b: int, payload: bytes) -> None:
    """One change to an AgentInfoProto (rewards, mask, observations, ids, flags); half of
    the changes go to one of its observations."""
    how = a % 16
    k = a // 16
    if how >= 8 and info.observations:
        mutate_observation(info.observations[b % len(info.observations)], k, b // 7, payload)
    elif how == 0:
        info.reward = _pick(EDGE_FLOATS, b)
    elif how == 1:
        info.group_reward = _pick(EDGE_FLOATS, b)
    elif how == 2:
        info.ClearField("action_mask")
        info.action_mask.extend([bool(v & 1) for v in payload] * (1 + b % 3))
    elif how == 3 and info.observations:
        del info.observations[b % len(info.observations)]
    elif how == 4 and info.observations:
        info.observations.add().CopyFrom(info.observations[b % len(info.observations)])
    elif how == 5:
        info.observations.add()
    elif how == 6:
        info.id, info.group_id = _pick(EDGE_INTS, b), _pick(EDGE_INTS, k)
    else:
        info.done, info.max_step_reached = bool(b & 1), bool(b & 2)


def mutate_action(action: pb.AgentActionProto, a: int, b: int, payload: bytes) -> None:
    """One change to a stored action (lengths, NaN, out-of-range discrete indices)."""
    how = a % 4
    if how == 0:
        action.continuous_actions.extend([_pick(EDGE_FLOATS, b)] * (1 + b % 2))
    elif how == 1:
        values = list(action.discrete_actions) or [0]
        values[b % len(values)] = _pick(EDGE_INTS, a // 4)
        action.ClearField("discrete_actions")
        action.discrete_actions.extend(values)
    elif how == 2:
        action.vector_actions_deprecated.extend([_pick(EDGE_FLOATS, b)] * (1 + b % 3))
    else:
        action.Clear()


def mutate_brain(brain: pb.BrainParametersProto, a: int, b: int, payload: bytes) -> None:
    """One change to a BrainParametersProto (action sizes and branches, deprecated fields, name)."""
    how = a % 7
    if how == 0:
        brain.action_spec.num_continuous_actions = _pick(EDGE_INTS, b)
    elif how == 1:
        brain.action_spec.ClearField("discrete_branch_sizes")
        brain.action_spec.discrete_branch_sizes.extend(_pick(EDGE_INTS, b + i) for i in range(1 + b % 3))
    elif how == 2:
        brain.action_spec.num_discrete_actions = _pick(EDGE_INTS, b)
    elif how == 3:
        brain.ClearField("vector_action_size_deprecated")
        brain.vector_action_size_deprecated.extend(_pick(EDGE_INTS, b + i) for i in range(b % 3))
        brain.ClearField("action_spec")
    elif how == 4:
        brain.vector_action_space_type_deprecated = _pick((0, 1, 2, -1), b)
    elif how == 5:
        brain.ClearField("action_spec")
    else:
        brain.brain_name = _pick(("", "Fuzz?team=x", "Other?team=0", "\u00e9" * 40), b)


def mutate_legacy_brain(brain: lpb.BrainParametersProto, a: int, b: int, payload: bytes) -> None:
    """One change to a 0.6-0.15 brain (observation sizes, stacking, camera resolutions, actions)."""
    how = a % 5
    if how == 0:
        brain.vector_observation_size = _pick(EDGE_INTS, b)
    elif how == 1:
        brain.num_stacked_vector_observations = _pick(EDGE_INTS, b)
    elif how == 2:
        res = brain.camera_resolutions[b % len(brain.camera_resolutions)] if brain.camera_resolutions else brain.camera_resolutions.add()
        res.width, res.height, res.gray_scale = _pick(EDGE_INTS, b), _pick(EDGE_INTS, a // 5), bool(b & 1)
    elif how == 3:
        brain.ClearField("vector_action_size")
        brain.vector_action_size.extend(_pick(EDGE_INTS, b + i) for i in range(b % 3))
    else:
        brain.vector_action_space_type = _pick((0, 1, 2, -1), b)


def mutate_legacy_record(info: lpb.AgentInfoProto, a: int, b: int, payload: bytes) -> None:
    """One change to a bare 0.6-0.11 record (vector, PNGs, compressed observations, stored action, mask)."""
    how = a % 8
    k = a // 8
    if how == 0:
        values = list(info.stacked_vector_observation)
        if values and b % 2:
            values[b % len(values)] = _pick(EDGE_FLOATS, k)
        else:
            values = values[: b % (len(values) + 2)]
        info.ClearField("stacked_vector_observation")
        info.stacked_vector_observation.extend(values)
    elif how == 1 and info.visual_observations:
        at = b % len(info.visual_observations)
        info.visual_observations[at] = mutate_png(info.visual_observations[at], k, b // 3, payload)
    elif how == 2 and info.compressed_observations:
        obs = pb.ObservationProto.FromString(info.compressed_observations[b % len(info.compressed_observations)].SerializeToString())
        mutate_observation(obs, k, b // 3, payload)
        info.compressed_observations[b % len(info.compressed_observations)].ParseFromString(obs.SerializeToString())
    elif how == 3:
        info.stored_vector_actions.extend([_pick(EDGE_FLOATS + (-1.0, 99.0), b)] * (b % 3))
    elif how == 4:
        info.ClearField("stored_vector_actions")
        info.stored_vector_actions.extend([_pick(EDGE_FLOATS + (-1.0, 99.0, 2.0**31), b)] * (1 + k % 3))
    elif how == 5:
        info.ClearField("action_mask")
        info.action_mask.extend([bool(v & 1) for v in payload])
    elif how == 6:
        info.visual_observations.append(payload)
    else:
        info.reward, info.id = _pick(EDGE_FLOATS, b), _pick(EDGE_INTS, k)


# ---------------------------------------------------------------------------------- .demo mutations

#: Changes to the parts of a file (records through protobuf, record order, other eras' records).
STRUCTURE_MUTATIONS = ("record-field", "record-field", "image", "action-field", "brain-field", "meta-field", "splice", "reorder", "tail",
                       "unpack")  # fmt: skip
#: Changes to the bytes.
BYTE_MUTATIONS = ("flip", "flip", "insert", "delete", "overwrite", "truncate", "truncate", "varint", "varint", "foreign")
#: Files that are not recordings at all.
FOREIGN_FILES = (b"", b"version https://git-lfs.github.com/spec/v1\noid sha256:4d7a2146\nsize 3551\n", PNG_SIGNATURE + bytes(40),
                 b"PK\x03\x04" + bytes(60), b"\x0a" * 40, bytes(34), b"\x00" * 33 + b"\xff" * 11)  # fmt: skip
DEMO_MUTATIONS = STRUCTURE_MUTATIONS + BYTE_MUTATIONS

Mutation = tuple[str, int, int, bytes]


def mutate_image(observations: Sequence[pb.ObservationProto], a: int, b: int, payload: bytes) -> None:
    """A change to one image observation among ``observations`` (its PNG, channel mapping,
    shape or float data), when there is one."""
    images = [o for o in observations if len(o.shape) == 3]
    if images:
        how = _pick((3, 4, 5, 6, 7, 0, 2), a)  # mutate_observation's image-related changes, PNG ones most often
        mutate_observation(_pick(images, b), how + 10 * (a // 7), b // 5, payload)


def _fixed32s(tag: int, values: Sequence[float]) -> bytes:
    """``values`` as one fixed32 field each (the unpacked encoding protobuf also accepts)."""
    return b"".join(bytes((tag,)) + struct.pack("<f", v) for v in values)


def _varints(tag: int, values: Sequence[int]) -> bytes:
    return b"".join(bytes((tag,)) + encode_varint(v & 0xFFFFFFFFFFFFFFFF) for v in values)


def unpack_record(record: bytes, legacy: bool) -> bytes:
    """The same record with every repeated number written unpacked (one field per value) and
    the observations after the other fields: other bytes, the same message for protobuf."""
    if legacy:
        info = lpb.AgentInfoProto.FromString(record)
        floats, actions, mask = list(info.stacked_vector_observation), list(info.stored_vector_actions), list(info.action_mask)
        for name in ("stacked_vector_observation", "stored_vector_actions", "action_mask"):
            info.ClearField(name)
        return info.SerializeToString() + _fixed32s(0x0D, floats) + _fixed32s(0x25, actions) + _varints(0x58, mask)
    pair = pb.AgentInfoActionPairProto.FromString(record)
    info, action = pair.agent_info, pair.action_info
    sensors = []
    for obs in info.observations:
        if obs.WhichOneof("observation_data") == "float_data":
            values = _fixed32s(0x0D, obs.float_data.data)
            obs.ClearField("float_data")
            sensors.append(obs.SerializeToString() + delimited(4, values))  # float_data
        else:
            sensors.append(obs.SerializeToString())
    mask = list(info.action_mask)
    info.ClearField("observations")
    info.ClearField("action_mask")
    info_bytes = info.SerializeToString() + _varints(0x58, mask) + b"".join(delimited(13, o) for o in sensors)
    flat, cont, disc = list(action.vector_actions_deprecated), list(action.continuous_actions), list(action.discrete_actions)
    action.Clear()
    action_bytes = _fixed32s(0x0D, flat) + _fixed32s(0x35, cont) + _varints(0x38, disc)
    return delimited(1, info_bytes) + delimited(2, action_bytes)


def _mutate_record(record: bytes, legacy: bool, kind: str, a: int, b: int, payload: bytes) -> bytes:
    try:
        if kind == "unpack":
            return unpack_record(record, legacy)
        if legacy:
            info = lpb.AgentInfoProto.FromString(record)
            mutate_legacy_record(info, a, b, payload)
            return info.SerializeToString()
        pair = pb.AgentInfoActionPairProto.FromString(record)
    except Exception:  # a record an earlier mutation damaged: leave it
        return record
    if kind == "action-field":
        mutate_action(pair.action_info, a, b, payload)
    elif kind == "image":
        mutate_image(pair.agent_info.observations, a, b, payload)
    else:
        mutate_agent(pair.agent_info, a, b, payload)
    return pair.SerializeToString()


def _mutate_parts(parts: DemoParts, mutation: Mutation, other: DemoSource | None) -> DemoParts:
    kind, a, b, payload = mutation
    records = list(parts.records)
    if kind == "unpack":  # every record, so that the file stays valid
        records = [_mutate_record(r, parts.legacy, kind, a, b, payload) for r in records]
    elif kind in ("record-field", "action-field", "image") and records:
        at = b % len(records)
        records[at] = _mutate_record(records[at], parts.legacy, kind, a, b // max(len(records), 1), payload)
    elif kind == "brain-field":
        try:
            if parts.legacy or b % 3 == 0:
                brain = lpb.BrainParametersProto.FromString(parts.brain)
                mutate_legacy_brain(brain, a, b, payload)
            else:
                brain = pb.BrainParametersProto.FromString(parts.brain)
                mutate_brain(brain, a, b, payload)
            return dataclasses.replace(parts, brain=brain.SerializeToString())
        except Exception:
            return parts
    elif kind == "meta-field":
        meta = pb.DemonstrationMetaProto()
        try:
            meta.ParseFromString(parts.meta)
        except Exception:
            pass
        which = a % 5
        if which == 0:
            meta.number_steps = _pick((0, len(records) - 1, len(records) + 1, -1, 2**31 - 1, len(records)), b)
        elif which == 1:
            meta.number_episodes = _pick(EDGE_INTS, b)
        elif which == 2:
            meta.api_version = _pick((0, 1, 2, -1, 2**31 - 1), b)
        elif which == 3:
            meta.demonstration_name = _pick(("", "x" * 30, "\u00e9", "Demo"), b)
        else:
            return dataclasses.replace(parts, meta=payload * (1 + b % 5))
        return dataclasses.replace(parts, meta=meta.SerializeToString())
    elif kind == "splice" and other is not None and other.parts.records:
        theirs = other.parts.records
        how = a % 4
        if how == 0 and records:
            records[b % len(records)] = theirs[a % len(theirs)]
        elif how == 1:
            records.insert(b % (len(records) + 1), theirs[a % len(theirs)])
        elif how == 2:
            records = list(theirs)
        else:
            return dataclasses.replace(parts, brain=other.parts.brain)
    elif kind == "reorder" and records:
        how = a % 4
        i, j = b % len(records), (b // 7) % len(records)
        if how == 0:
            records.insert(i, records[j])
        elif how == 1:
            del records[i]
        elif how == 2:
            records[i], records[j] = records[j], records[i]
        else:
            records.reverse()
    elif kind == "tail":
        copy = _meta("fuzz", len(records), 1, 0.0)  # the meta copy Unity appends (an interrupted file may end with it)
        tails = (b"", payload, parts.meta + payload, parts.tail * 2, parts.meta[:-1], copy, copy[:-2])
        return dataclasses.replace(parts, tail=_pick(tails, a))
    else:
        return parts
    return dataclasses.replace(parts, records=tuple(records))


def _mutate_bytes(data: bytes, points: list[int], prefixes: list[int], mutation: Mutation) -> bytes:
    kind, a, b, payload = mutation
    out = bytearray(data)
    if not out:
        return data
    # Half the positions land where the structure is (part boundaries and length prefixes).
    near = [min(max(p + d, 0), len(out) - 1) for p in points + prefixes for d in (-1, 0, 1)]
    at = _pick(near, b) if a & 1 else b % len(out)
    if kind == "flip":
        out[at] ^= (1 << (a >> 1) % 8) if a & 2 else (payload[:1] or b"\x01")[0] or 1
    elif kind == "insert":
        out[at:at] = payload or b"\x00"
    elif kind == "delete":
        del out[at : at + 1 + (a >> 1) % 8]
    elif kind == "overwrite":
        out[at : at + len(payload)] = payload
    elif kind == "truncate":
        cuts = sorted({c for p in points for c in (p - 2, p - 1, p, p + 1, p + 2) if 0 <= c < len(out)})
        mids = [(s + e) // 2 for s, e in zip(points, points[1:])]
        del out[_pick(cuts + mids, b) if a & 1 else b % len(out) :]
    elif kind == "foreign":
        return _pick(FOREIGN_FILES, b) + (data if a & 1 else b"")
    elif kind == "varint":
        positions = prefixes + _varint_positions(data[BRAIN_OFFSET:], BRAIN_OFFSET, depth=4, limit=48)
        at = _pick(positions, b)
        try:
            old, _ = read_varint(out, at, len(out))
        except WireError:
            old = 0
        put_varint(out, at, _pick(BIG_LENGTHS, a >> 1) if a & 1 else max(0, old + _pick((-4, -1, 1, 4, 8), a >> 1)))
    return bytes(out)


def mutate_demo(source: DemoSource, mutations: Sequence[Mutation], other: DemoSource | None = None) -> bytes:
    """Applies the structural mutations to the parts of ``source``, joins them, then applies
    the byte mutations (``other``: where spliced records or brains come from)."""
    parts = source.parts
    for m in mutations:
        if m[0] in STRUCTURE_MUTATIONS:
            parts = _mutate_parts(parts, m, other)
    data, points, prefixes = join_demo(parts)
    for m in mutations:
        if m[0] in BYTE_MUTATIONS:
            data = _mutate_bytes(data, points, prefixes, m)
    return data


def _demo_case(source: DemoSource, mutations: Sequence[Mutation], other: DemoSource | None, options: dict[str, object]) -> Case:
    if not mutations:
        return Case("demo", source.data, f"{source.name} (valid)", options, expected=source.expected)
    if all(m[0] == "unpack" for m in mutations):  # other bytes, the same records
        return Case("demo", mutate_demo(source, mutations), f"{source.name} (valid, numbers unpacked)", options, expected=source.expected)
    spliced = f" + parts of {other.name}" if other is not None and any(m[0] == "splice" for m in mutations) else ""
    origin = f"{source.name}{spliced}, mutations {[(k, a, b, p.hex()) for k, a, b, p in mutations]}"
    return Case("demo", mutate_demo(source, mutations, other), origin, options)


# ---------------------------------------------------------------------------------- strategies

_INTS = st.integers(0, 2**32 - 1)
#: True for one draw in twenty (an unmutated input, checked against its arrays); shrinks to False.
_ONE_IN_TWENTY = st.sampled_from([False] * 19 + [True])
_SMALL_PAYLOAD = st.binary(min_size=1, max_size=8)


def mutations(kinds: Sequence[str], *, min_size: int = 1, max_size: int = 3) -> st.SearchStrategy[list[Mutation]]:
    """Lists of ``(kind, a, b, payload)``: ``a`` and ``b`` pick what and where, modulo the choices."""
    return st.lists(st.tuples(st.sampled_from(list(kinds)), _INTS, _INTS, _SMALL_PAYLOAD), min_size=min_size, max_size=max_size)


# Strategies are built once: hypothesis validates every new strategy object it draws from.
_VECTOR = st.builds(lambda n: Sensor((n,)), st.integers(0, 5))


def _image(channels: Sequence[int]) -> st.SearchStrategy[Sensor]:
    return st.builds(lambda h, w, c: Sensor((h, w, c)), st.integers(1, 5), st.integers(1, 5), st.sampled_from(list(channels)))


_MODERN_SENSORS = st.lists(st.one_of(_VECTOR, _image((1, 2, 3, 4, 7))), min_size=1, max_size=3).map(tuple)
_OLD_SENSORS = st.lists(st.one_of(_VECTOR, _image((1, 3))), min_size=1, max_size=3).map(tuple)
_LEGACY_IMAGES = st.lists(_image((1, 3)), max_size=2).map(tuple)
_LEGACY_VECTOR = st.one_of(st.just(()), st.builds(lambda n: (Sensor((n,)),), st.integers(1, 6)))
_EPISODES = st.lists(st.tuples(st.integers(1, 4), st.sampled_from(["done", "max_step", "open"])), min_size=1, max_size=3).map(tuple)
_BRANCHES = st.lists(st.integers(1, 4), max_size=2).map(tuple)
_DEMO_MUTATION_LISTS = mutations(DEMO_MUTATIONS)


@st.composite
def _demo_recipes(draw: st.DrawFn) -> DemoRecipe:
    era = draw(st.sampled_from(ERAS))
    continuous = draw(st.integers(0, 3))
    if era == "4.x":
        sensors, branches = draw(_MODERN_SENSORS), draw(_BRANCHES)
    else:  # the older eras hold one kind of action only
        branches = () if continuous else draw(_BRANCHES) or (2,)
        sensors = draw(_OLD_SENSORS) if era in ("1.x", "0.12") else (draw(_LEGACY_IMAGES) + draw(_LEGACY_VECTOR)) or (Sensor((3,)),)
    return DemoRecipe(
        era=era,
        sensors=sensors,
        continuous=continuous,
        branches=branches,
        episodes=draw(_EPISODES),
        closed=draw(st.booleans()),
        masks=draw(st.booleans()),
        png=era not in ("4.x", "1.x") or draw(st.booleans()),
        chw=era == "4.x" and draw(st.booleans()),
        seed=draw(st.integers(0, 2**16)),
    )


#: Recipes of valid `.demo` files of every era (images first, then one vector, in 0.10 / 0.11).
DEMO_RECIPES = _demo_recipes()
#: The APIs a demo case is read with; converting to imitation trajectories needs imitation (the train extra).
READ_MODES = ("read_demo", "iter_records", "batches", "read", *(("convert",) if importlib.util.find_spec("imitation") else ()))
#: How a demo case is read: the API, the image layout and the batch size.
DEMO_OPTIONS = st.fixed_dictionaries({
    "mode": st.sampled_from(READ_MODES),
    "image_format": st.sampled_from(["hwc_uint8", "chw_float"]),
    "batch_size": st.sampled_from([1, 2, 3, 4096]),
})  # fmt: skip


def random_mutations(rng: np.random.Generator, kinds: Sequence[str], max_size: int = 3) -> list[Mutation]:
    """Like :func:`mutations`, drawn uniformly by a seeded numpy generator (cheaper per case)."""
    return [(str(kinds[rng.integers(len(kinds))]), int(rng.integers(2**32)), int(rng.integers(2**32)), rng.bytes(int(rng.integers(1, 9))))
            for _ in range(int(rng.integers(1, max_size + 1)))]  # fmt: skip


def _random_demo_options(rng: np.random.Generator) -> dict[str, object]:
    return {"mode": str(rng.choice(READ_MODES)),
            "image_format": str(rng.choice(["hwc_uint8", "chw_float"])), "batch_size": int(rng.choice([1, 2, 3, 4096]))}  # fmt: skip


@st.composite
def demo_cases(draw: st.DrawFn, *, real: Sequence[DemoSource] = (), extra: int = 0) -> list[Case]:
    """Generated files of every era, mutated (a few left valid); records and brains are
    spliced in from files of other eras, and from ``real`` recordings when given.

    Returns one case drawn by hypothesis, then ``extra`` more of the same files with
    mutations drawn by a numpy generator (hypothesis's bookkeeping costs more than running
    a case: the extras make a large run affordable).
    """
    source = build_demo(draw(DEMO_RECIPES))
    other = real[draw(st.integers(0, len(real) - 1))] if real and draw(st.integers(0, 3)) == 0 else build_demo(draw(DEMO_RECIPES))
    valid = draw(_ONE_IN_TWENTY)
    cases = [_demo_case(source, [] if valid else draw(_DEMO_MUTATION_LISTS), other, draw(DEMO_OPTIONS))]
    if extra:
        rng = np.random.default_rng(draw(_INTS))
        cases += [_demo_case(source, random_mutations(rng, DEMO_MUTATIONS), other, _random_demo_options(rng)) for _ in range(extra)]
    return cases


def real_demo_cases(sources: Sequence[DemoSource], rng: np.random.Generator) -> Iterator[Case]:
    """Endless cases mutating real recordings (the mutations of :func:`demo_cases`, drawn
    by a seeded numpy generator)."""
    while True:
        source, other = sources[rng.integers(len(sources))], sources[rng.integers(len(sources))]
        yield _demo_case(source, random_mutations(rng, DEMO_MUTATIONS), other, _random_demo_options(rng))


# ---------------------------------------------------------------------------------- messages


@dataclass(frozen=True)
class BehaviorRecipe:
    """A behavior in generated messages.

    Attributes:
        sensors: its sensors (images as PNG or raw floats, per sensor).
        continuous: continuous action size.
        branches: discrete branch sizes.
        agents: agents with data in each message (at least one).
        done: bit k set: agent k ends its episode in the message (bit k+8: by the step limit).
        masks: decision steps carry action masks.
    """

    sensors: tuple[Sensor, ...]
    continuous: int
    branches: tuple[int, ...]
    agents: int
    done: int = 0
    masks: bool = False


@dataclass(frozen=True)
class MessageRecipe:
    """Two consecutive messages of Unity: the first with the handshake and the announcements."""

    behaviors: tuple[BehaviorRecipe, ...]
    package_version: str = "2.3.0"  # 3.x and later send images CHW
    stats: int = 0  # stats messages in the side channel of each message
    seed: int = 0


@dataclass(frozen=True, eq=False)
class BuiltMessages:
    """The serialized messages of a recipe and what decoding each gives: per behavior, the
    arrays of its decision and terminal steps (images uint8 HWC)."""

    first: bytes
    second: bytes
    expected_first: dict[str, object]
    expected_second: dict[str, object]
    channels_first: bool


def _behavior_name(index: int) -> str:
    return f"Fuzz{index}?team=0"


def _message(recipe: MessageRecipe, rng: np.random.Generator, first: bool) -> tuple[pb.UnityMessageProto, dict[str, object]]:
    channels_first = channels_first_for_package(recipe.package_version)
    message = pb.UnityMessageProto(header=pb.HeaderProto(status=200))
    output = message.unity_output
    if first:
        init = output.rl_initialization_output
        init.name, init.communication_version, init.package_version = "AcademySingleton", COMMUNICATION_VERSION, recipe.package_version
        init.capabilities.CopyFrom(capabilities_proto())
    expected: dict[str, object] = {}
    for index, b in enumerate(recipe.behaviors):
        name = _behavior_name(index)
        specs = tuple(s.spec(i) for i, s in enumerate(b.sensors))
        spec = BehaviorSpec(name=name, observation_specs=specs, action_spec=ActionSpec(b.continuous, b.branches))
        if first:
            output.rl_initialization_output.brain_parameters.append(brain_parameters_to_proto(spec, is_training=True))
        done = np.array([bool(b.done >> k & 1) for k in range(b.agents)])
        cut = done & np.array([bool(b.done >> (k + 8) & 1) for k in range(b.agents)])
        allowed = rng.random((b.agents, sum(b.branches))) < 0.7 if b.masks and b.branches else None
        observations = [np.array([s.value(rng) for _ in range(b.agents)]).reshape((b.agents, *s.shape)) for s in b.sensors]
        rewards = rng.normal(size=b.agents).astype(np.float32)
        ids = np.arange(b.agents, dtype=np.int32) + 3 * index
        batch = AgentBatch(agent_ids=ids, observations=observations, rewards=rewards, done=done, max_step_reached=cut, action_mask=allowed)
        wire_specs = [wire_observation_spec(o, channels_first=channels_first) for o in specs]
        encoders = tuple(ObservationEncoder(o, compress=s.png) for o, s in zip(wire_specs, b.sensors))
        ScenePlayer._fill_agent_infos(output.rl_output.agentInfos[name].value, batch, encoders)  # the player's own encoding
        steps = {}
        for which, rows in (("decision", ~done), ("terminal", done)):
            mask = None
            if which == "decision" and b.branches and rows.any():  # a batch without agents has no mask
                mask = allowed[rows] if allowed is not None else np.ones((int(rows.sum()), sum(b.branches)), bool)
            obs = tuple(o[rows] for o in observations)
            steps[which] = {"agent_id": ids[rows], "obs": obs, "reward": rewards[rows], "interrupted": cut[rows], "action_mask": mask}
        expected[name] = (steps, tuple(s.is_image for s in b.sensors))
    if recipe.stats:
        stats = [(STATS_CHANNEL_ID, StatsSideChannel.encode(f"stat{k}", float(rng.normal()))) for k in range(recipe.stats)]
        output.rl_output.side_channel = frame_messages(stats)
    return message, expected


@functools.lru_cache(maxsize=512)
def build_messages(recipe: MessageRecipe) -> BuiltMessages:
    """The two messages of a recipe (built the way the built-in scene player builds them)."""
    rng = np.random.default_rng(recipe.seed)
    first, expected_first = _message(recipe, rng, True)
    second, expected_second = _message(recipe, rng, False)
    return BuiltMessages(first.SerializeToString(), second.SerializeToString(), expected_first, expected_second,
                         channels_first_for_package(recipe.package_version))  # fmt: skip


def decode_message(data: bytes, specs: dict[str, BehaviorSpec], *, handshake: bool, channels_first: bool,
                   image_format: ImageFormat) -> tuple[dict[str, object], bool]:  # fmt: skip
    """Decodes one message the way the session does: parse, the handshake (first message,
    with the session's own function), agent data (adding announced behaviors to ``specs``),
    side channels. Returns the steps and the channels-first setting for the next messages."""
    message = parse_unity_message(data)
    output = message.unity_output
    if handshake:
        channels_first = read_handshake(message).channels_first
    steps = decode_unity_output(output, specs, channels_first=channels_first, image_format=image_format)
    stats = StatsSideChannel()
    if output.rl_output.side_channel:
        manager = SideChannelManager([EngineConfigurationChannel(), EnvironmentParametersChannel(), stats])
        manager.process_incoming(output.rl_output.side_channel)
    stats.take_stats()
    return steps, channels_first  # type: ignore[return-value]


def check_steps(steps: dict[str, object], expected: dict[str, object], image_format: str) -> None:
    """Raises WrongResult unless the decoded steps hold the expected arrays."""
    if set(steps) != set(expected):
        raise WrongResult(f"behaviors {sorted(steps)} decoded, {sorted(expected)} sent")
    for name, (want, images) in expected.items():  # type: ignore[misc]
        for which, batch in zip(("decision", "terminal"), steps[name]):  # type: ignore[call-overload]
            w = want[which]
            pairs = [(batch.agent_id, w["agent_id"]), (batch.reward, w["reward"]), (batch.action_mask, w["action_mask"])]
            if which == "terminal":
                pairs.append((batch.interrupted, w["interrupted"]))
            pairs += list(zip(batch.obs, (_as_format(o, img, image_format) for o, img in zip(w["obs"], images))))
            if len(batch.obs) != len(w["obs"]):
                raise WrongResult(f"{name}: {len(batch.obs)} sensors decoded, {len(w['obs'])} sent")
            for a, b in pairs:
                if (a is None) != (b is None) or a is not None and not (a.shape == b.shape and np.array_equal(a, b)):
                    raise WrongResult(f"{name} {which}: decoded {a!r}, sent {b!r}")


def _run_link(case: Case, workdir: Path) -> None:
    image_format: ImageFormat = case.options.get("image_format", "hwc_uint8")  # type: ignore[assignment]
    specs: dict[str, BehaviorSpec] = {}
    channels_first = bool(case.options.get("channels_first", False))
    if case.prior is not None:
        _, channels_first = decode_message(case.prior, specs, handshake=True, channels_first=False, image_format=image_format)
    steps, _ = decode_message(case.data, specs, handshake=case.prior is None, channels_first=channels_first, image_format=image_format)
    if case.expected is not None:
        check_steps(steps, case.expected, image_format)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------- message mutations

LINK_MUTATIONS = ("agent", "agent", "image", "image", "brain", "versions", "announce", "behaviors", "side-channel",
                  "flip", "insert", "delete", "truncate", "varint", "overwrite")  # fmt: skip


def _mutate_message(message: pb.UnityMessageProto, mutation: Mutation) -> None:
    kind, a, b, payload = mutation
    output = message.unity_output
    infos = output.rl_output.agentInfos
    names = sorted(infos)
    brains = output.rl_initialization_output.brain_parameters
    if kind in ("agent", "image") and names:
        agents = infos[_pick(names, b)].value
        if agents:
            agent = agents[(b // 7) % len(agents)]
            mutate_agent(agent, a, b // 31, payload) if kind == "agent" else mutate_image(agent.observations, a, b // 31, payload)
    elif kind == "brain" and brains:
        mutate_brain(brains[b % len(brains)], a, b // 7, payload)
    elif kind == "versions":
        init = output.rl_initialization_output
        which = a % 3
        if which == 0:
            init.communication_version = _pick(EDGE_VERSIONS, b)
        elif which == 1:
            init.package_version = _pick(EDGE_VERSIONS, b)
        else:
            for k, f in enumerate(init.capabilities.DESCRIPTOR.fields):
                setattr(init.capabilities, f.name, bool(b >> k & 1))
    elif kind == "announce":
        how = a % 4
        if how == 0 and brains:
            del brains[b % len(brains)]
        elif how == 1 and brains:
            brains.add().CopyFrom(brains[b % len(brains)])
        elif how == 2:
            brains.add(brain_name="Ghost?team=0")
        else:
            output.ClearField("rl_initialization_output")
    elif kind == "behaviors" and names:
        how = a % 3
        source = list(infos[_pick(names, b)].value)  # a copy: the target may be the source
        if how == 0:
            infos["Ghost?team=0"].value.extend(source)
        elif how == 1:
            del infos[_pick(names, b)]
        elif len(names) > 1:
            infos[_pick(names, b + 1)].value.extend(source)
    elif kind == "side-channel":
        output.rl_output.side_channel = mutate_side_channels(_side_channel_messages(b), [(_pick(SIDE_MUTATIONS, a), a // 7, b, payload)])


def mutate_message(data: bytes, mutations: Sequence[Mutation]) -> bytes:
    """Field-level mutations on the parsed message, then byte-level ones on its bytes."""
    message = pb.UnityMessageProto.FromString(data)
    for m in mutations:
        if m[0] not in BYTE_MUTATIONS:
            _mutate_message(message, m)
    out = message.SerializeToString()
    prefixes = _varint_positions(out, depth=6, limit=64)
    for m in mutations:
        if m[0] in BYTE_MUTATIONS:
            if m[0] == "varint":
                if not prefixes:
                    continue
                buf = bytearray(out)
                put_varint(buf, _pick(prefixes, m[2]), _pick(BIG_LENGTHS, m[1]) if m[1] & 1 else m[1] % 300)
                out = bytes(buf)
            else:
                out = _mutate_bytes(out, [0, len(out)], prefixes, m)
    return out


_SENSORS_ON_THE_WIRE = st.lists(
    st.one_of(_VECTOR, st.builds(lambda h, w, c, png: Sensor((h, w, c), png), st.integers(1, 5), st.integers(1, 5),
                                 st.sampled_from([1, 2, 3, 4, 7]), st.booleans())),
    max_size=3,
).map(tuple)  # fmt: skip
_BEHAVIOR = st.builds(BehaviorRecipe, _SENSORS_ON_THE_WIRE, st.integers(0, 3), st.lists(st.integers(1, 4), max_size=3).map(tuple),
                      st.integers(1, 4), st.integers(0, 2**16 - 1), st.booleans())  # fmt: skip
#: Messages with one to three behaviors of vectors, PNG images (1-7 channels: several PNGs
#: and channel mappings), raw-float images, masks and hybrid actions, from Unity 1.x to 4.x.
MESSAGE_RECIPES = st.builds(MessageRecipe, st.lists(_BEHAVIOR, min_size=1, max_size=3).map(tuple),
                            st.sampled_from(["2.3.0", "3.0.0", "4.0.2", "1.9.1"]), st.integers(0, 2), st.integers(0, 2**16))  # fmt: skip
_LINK_MUTATION_LISTS = mutations(LINK_MUTATIONS)
_IMAGE_FORMATS = st.sampled_from(["hwc_uint8", "chw_float"])


def _link_case(built: BuiltMessages, later: bool, muts: Sequence[Mutation], image_format: str) -> Case:
    options = {"image_format": image_format, "channels_first": built.channels_first}
    data, expected = (built.second, built.expected_second) if later else (built.first, built.expected_first)
    prior = built.first if later else None
    if not muts:
        return Case("link", data, "valid message", options, prior, expected)
    origin = f"{'second' if later else 'first'} message, mutations {[(k, a, b, p.hex()) for k, a, b, p in muts]}"
    return Case("link", mutate_message(data, muts), origin, options, prior)


@st.composite
def link_cases(draw: st.DrawFn, *, extra: int = 0) -> list[Case]:
    """Messages of Unity, mutated (a few left valid): the first of a session (with the
    handshake), or a later one decoded with the behaviors of a valid first message. One case
    drawn by hypothesis, then ``extra`` with numpy-drawn mutations (as :func:`demo_cases`)."""
    built = build_messages(draw(MESSAGE_RECIPES))
    valid = draw(_ONE_IN_TWENTY)
    cases = [_link_case(built, draw(st.booleans()), [] if valid else draw(_LINK_MUTATION_LISTS), draw(_IMAGE_FORMATS))]
    if extra:
        rng = np.random.default_rng(draw(_INTS))
        formats = ("hwc_uint8", "chw_float")
        for _ in range(extra):
            cases.append(_link_case(built, bool(rng.integers(2)), random_mutations(rng, LINK_MUTATIONS), formats[rng.integers(2)]))
    return cases


# ---------------------------------------------------------------------------------- one agent, both roads

#: Changes to the one agent decoded on both roads.
AGENT_MUTATIONS = ("agent", "agent", "agent", "image")


def demo_of_agent_infos(spec: BehaviorSpec, infos: Sequence[pb.AgentInfoProto]) -> bytes:
    """A closed 4.x `.demo` file whose records hold ``infos`` (each with a zero action of ``spec``)."""
    act = spec.action_spec
    action = pb.AgentActionProto(continuous_actions=[0.0] * act.continuous_size, discrete_actions=[0] * act.discrete_size)
    records = tuple(pb.AgentInfoActionPairProto(agent_info=info, action_info=action).SerializeToString() for info in infos)
    meta = _meta("agents", len(records), 1 + sum(info.done for info in infos), 0.0)
    brain = brain_parameters_to_proto(spec, is_training=False).SerializeToString()
    return join_demo(DemoParts(meta, brain, records, meta, False))[0]


def _verdict(decode: Callable[[], dict[str, object]]) -> dict[str, object] | GymUnityILError:
    try:
        return decode()
    except GymUnityILError as exc:
        return exc


def _run_agents(case: Case, workdir: Path) -> None:
    """Decodes the second agent of the message's behavior as the link does and as the `.demo`
    reader does (a file of the behavior's first two agents); raises WrongResult unless both
    give the same arrays or both an error (then the link's error)."""
    image_format: ImageFormat = case.options.get("image_format", "hwc_uint8")  # type: ignore[assignment]
    output = parse_unity_message(case.data).unity_output
    brain = output.rl_initialization_output.brain_parameters[0]
    first, agent = output.rl_output.agentInfos[brain.brain_name].value
    spec = behavior_spec_from_proto(brain, first)  # as the reader builds it from the first record
    path = workdir / "agents.demo"
    path.write_bytes(demo_of_agent_infos(spec, [first, agent]))
    agent.group_reward = 0.0  # the reader reads no group reward

    def on_the_link() -> dict[str, object]:
        decision, terminal = decode_agent_infos([agent], spec, image_format)
        batch = terminal if len(terminal) else decision
        return {"obs": tuple(o[0] for o in batch.obs), "reward": batch.reward[0], "agent_id": batch.agent_id[0]}

    def in_a_file() -> dict[str, object]:
        demo = read_demo(path, image_format=image_format)
        return {"obs": tuple(o[1] for o in demo.observations), "reward": demo.rewards[1], "agent_id": demo.agent_ids[1]}

    link, demo = _verdict(on_the_link), _verdict(in_a_file)
    if isinstance(link, GymUnityILError) != isinstance(demo, GymUnityILError):
        raise WrongResult(f"the link gives {link!r}, the .demo reader {demo!r}")
    if isinstance(link, GymUnityILError):
        raise link
    pairs = zip(link["obs"], demo["obs"])  # type: ignore[index]
    same = [np.array_equal(a, b) and np.asarray(a).dtype == np.asarray(b).dtype for a, b in pairs]
    if not all(same) or link["reward"] != demo["reward"] or link["agent_id"] != demo["agent_id"]:  # type: ignore[index]
        raise WrongResult(f"the link decodes {link!r}, the .demo reader {demo!r}")


def _agents_case(built: BuiltMessages, muts: Sequence[Mutation], image_format: str) -> Case:
    """The first message of ``built`` with the first two agents of its first behavior, the
    second one mutated."""
    message = pb.UnityMessageProto.FromString(built.first)
    output = message.unity_output
    del output.rl_initialization_output.brain_parameters[1:]
    name = output.rl_initialization_output.brain_parameters[0].brain_name
    for other in [n for n in output.rl_output.agentInfos if n != name]:
        del output.rl_output.agentInfos[other]
    infos = output.rl_output.agentInfos[name].value
    del infos[2:]
    for kind, a, b, payload in muts:
        mutate_agent(infos[1], a, b, payload) if kind == "agent" else mutate_image(infos[1].observations, a, b, payload)
    origin = f"mutations {[(k, a, b, p.hex()) for k, a, b, p in muts]}" if muts else "valid agent"
    return Case("agents", message.SerializeToString(), origin, {"image_format": image_format})


_TWO_AGENTS = st.builds(BehaviorRecipe, _SENSORS_ON_THE_WIRE, st.integers(0, 3), st.lists(st.integers(1, 4), max_size=3).map(tuple),
                        st.integers(2, 4), st.just(0), st.booleans())  # fmt: skip
AGENT_RECIPES = st.builds(MessageRecipe, _TWO_AGENTS.map(lambda b: (b,)), st.sampled_from(["2.3.0", "3.0.0"]), st.just(0),
                          st.integers(0, 2**16))  # fmt: skip
_AGENT_MUTATION_LISTS = mutations(AGENT_MUTATIONS, min_size=0)


@st.composite
def agent_cases(draw: st.DrawFn, *, extra: int = 0) -> list[Case]:
    """One agent of a message of Unity, mutated or not, for both roads (:func:`_run_agents`):
    the link's decoding and the `.demo` reader must agree on it. One case drawn by hypothesis,
    then ``extra`` with numpy-drawn mutations."""
    built = build_messages(draw(AGENT_RECIPES))
    cases = [_agents_case(built, draw(_AGENT_MUTATION_LISTS), draw(_IMAGE_FORMATS))]
    if extra:
        rng = np.random.default_rng(draw(_INTS))
        formats = ("hwc_uint8", "chw_float")
        cases += [_agents_case(built, random_mutations(rng, AGENT_MUTATIONS), formats[rng.integers(2)]) for _ in range(extra)]
    return cases


# ---------------------------------------------------------------------------------- side channels

SIDE_MUTATIONS = ("int32", "int32", "length", "cut", "append", "flip", "insert", "delete", "truncate")


def _side_channel_messages(seed: int) -> list[tuple[uuid.UUID, bytes]]:
    """Messages of every kind the built-in channels read or write, framed as Unity frames them."""
    rng = np.random.default_rng(seed)
    params = EnvironmentParametersChannel()
    params.set_float_parameter("gravity", float(rng.normal()))
    params.set_uniform_sampler_parameters("mass", 0.5, 2.0, int(rng.integers(1000)))
    params.set_gaussian_sampler_parameters("size", 1.0, 0.1, 3)
    params.set_multirangeuniform_sampler_parameters("len", [(0.0, 1.0), (2.0, 3.5)], 4)
    out = [(ENVIRONMENT_PARAMETERS_CHANNEL_ID, p) for p in params.take_outgoing()]
    for setting in EngineSetting:
        out.append((ENGINE_CONFIGURATION_CHANNEL_ID, PayloadWriter().write_int32(setting).write_int32(2).write_int32(3).to_bytes()))
    out += [(STATS_CHANNEL_ID, StatsSideChannel.encode(f"s{k}", float(rng.normal()), k % 4)) for k in range(3)]
    out.append((uuid.UUID(int=int(rng.integers(2**62))), rng.bytes(int(rng.integers(0, 12)))))
    order = rng.permutation(len(out))[: 1 + int(rng.integers(len(out)))]
    return [out[i] for i in order]


def mutate_side_channels(messages: list[tuple[uuid.UUID, bytes]], muts: Sequence[Mutation]) -> bytes:
    """Field-level changes (an int32 of a payload: a string length, a count, a type; a
    frame's length) and byte-level ones, on framed side-channel messages."""
    messages = list(messages)
    lengths: dict[int, int] = {}
    for kind, a, b, payload in muts:
        if not messages:
            break
        k = b % len(messages)
        cid, body = messages[k]
        if kind == "int32" and len(body) >= 4:
            at = 4 * ((a // 5) % (len(body) // 4)) if a & 1 else (a // 5) % (len(body) - 3)
            body = body[:at] + struct.pack("<i", _pick(EDGE_INTS, a >> 3)) + body[at + 4 :]
        elif kind == "length":
            lengths[k] = _pick(EDGE_INTS + (len(body) + 1, len(body) - 1), a)
        elif kind == "cut":
            body = body[: a % (len(body) + 1)]
        elif kind == "append":
            body += payload
        messages[k] = (cid, body)
    framed = b"".join(struct.pack("<16si", cid.bytes_le, lengths.get(k, len(body))) + body for k, (cid, body) in enumerate(messages))
    for m in muts:
        if m[0] in BYTE_MUTATIONS:
            framed = _mutate_bytes(framed, [0, len(framed)], [], m)
    return framed


def _run_side_channels(case: Case, workdir: Path) -> None:
    stats = StatsSideChannel()
    SideChannelManager([EngineConfigurationChannel(), EnvironmentParametersChannel(), stats]).process_incoming(case.data)
    stats.take_stats()
    for channel_id, payload in split_messages(case.data):  # what the built-in scene player reads from the trainer
        if channel_id == ENGINE_CONFIGURATION_CHANNEL_ID:
            EngineConfigurationChannel.parse(payload)
        elif channel_id == ENVIRONMENT_PARAMETERS_CHANNEL_ID:
            EnvironmentParametersChannel.parse(payload)


_SIDE_MUTATION_LISTS = mutations(SIDE_MUTATIONS, max_size=4)


def _side_channel_case(seed: int, muts: Sequence[Mutation]) -> Case:
    data = mutate_side_channels(_side_channel_messages(seed), muts)
    return Case("side-channels", data, f"messages of seed {seed}, mutations {[(k, a, b, p.hex()) for k, a, b, p in muts]}")


@st.composite
def side_channel_cases(draw: st.DrawFn, *, extra: int = 0) -> list[Case]:
    """Side-channel bytes of every kind of message, mutated, or random bytes; one case drawn
    by hypothesis, then ``extra`` with numpy-drawn mutations (as :func:`demo_cases`)."""
    seed = draw(st.integers(0, 2**16))
    if draw(st.integers(0, 9)) == 0:
        cases = [Case("side-channels", draw(st.binary(max_size=64)), "random bytes")]
    else:
        cases = [_side_channel_case(seed, draw(_SIDE_MUTATION_LISTS))]
    if extra:
        rng = np.random.default_rng(draw(_INTS))
        cases += [_side_channel_case(seed, random_mutations(rng, SIDE_MUTATIONS, 4)) for _ in range(extra)]
    return cases


# ---------------------------------------------------------------------------------- hostile messages


def message_bytes(announce: Sequence[bytes], agents: dict[bytes, Sequence[bytes]], *, handshake: bool = False) -> bytes:
    """A UnityMessageProto (status 200) from serialized BrainParametersProtos and, per behavior
    name, serialized AgentInfoProtos, with the handshake's fields when ``handshake``: built
    from bytes, since protobuf objects for a million agents take long to make."""
    rl_output = b"".join(delimited(2, delimited(1, name) + delimited(2, b"".join(delimited(1, a) for a in infos))) for name, infos in agents.items())
    init = b"".join(delimited(5, b) for b in announce)  # brain_parameters
    if handshake:
        init = delimited(2, COMMUNICATION_VERSION.encode()) + delimited(7, b"3.0.0") + init  # communication and package versions
    output = delimited(1, rl_output) + (delimited(2, init) if init else b"")
    return HEADER_OK + delimited(2, output)  # header { status: 200 }, unity_output


def brain_bytes(name: str, *, continuous: int = 1, branches: Sequence[int] = ()) -> bytes:
    """A serialized BrainParametersProto."""
    brain = pb.BrainParametersProto(brain_name=name)
    brain.action_spec.num_continuous_actions = continuous
    brain.action_spec.num_discrete_actions = len(branches)
    brain.action_spec.discrete_branch_sizes.extend(branches)
    return brain.SerializeToString()


def agent_bytes(ids: Sequence[int], sensors: Sequence[int] = (1,)) -> list[bytes]:
    """Serialized AgentInfoProtos with these ids and vector sensors of the given sizes (zeros)."""
    info = pb.AgentInfoProto()
    for size in sensors:
        info.observations.add(shape=[size]).float_data.CopyFrom(float_data_from_array(np.zeros(size, np.float32)))
    rest = info.SerializeToString()
    return [b"\x50" + encode_varint(i) + rest for i in ids]  # id: field 10, then the sensors


def _one_sensor(shape: Sequence[int], values: int) -> list[bytes]:
    info = pb.AgentInfoProto()
    info.observations.add(shape=shape).float_data.CopyFrom(float_data_from_array(np.zeros(values, np.float32)))
    return [info.SerializeToString()]


_B = b"B?team=0"


def _after_announcement(agents: Sequence[bytes], sensors: Sequence[int] = (1,)) -> Case:
    """A message of ``agents`` of behavior B, after a handshake announcing B with ``sensors``."""
    prior = message_bytes([brain_bytes("B?team=0")], {_B: agent_bytes([0], sensors)}, handshake=True)
    return Case("link", message_bytes([], {_B: agents}), prior=prior)


def _first(announce: Sequence[bytes], agents: dict[bytes, Sequence[bytes]]) -> Case:
    return Case("link", message_bytes(announce, agents, handshake=True))


#: Messages found to make the decoder allocate far more than their size, raise foreign
#: errors, or make long error messages; each must give a UnityProtocolError matching the
#: pattern. Build one with :func:`hostile_link_case`.
HOSTILE_LINK_CASES = {
    "100k behaviors announced": "100000 behaviors, more than the 1024",
    "1M agents": "1000000 agents in .* bytes: too many agents for its size",
    "1M agents without sensors": "1000000 agents in .* bytes: too many agents for its size",
    "10^6 discrete branches": "1000000 discrete branches, more than the 65536",
    "100 dimensions": "100 dimensions, more than the 8",
    "10^6 dimensions": "1000000 dimensions, more than the 8",
    "10^5 sensors": "100000 sensors, more than the 256",
    "1 MB behavior name": r"'B{199}\.\.\. \(1000000 characters\) was announced without any agent data",
    "duplicate agent ids": "agent 3 of 'B\\?team=0' appears twice among the decision steps",
    "re-announced with another spec": r"announced again with another spec: .*obs_0\[1\].* before, .*obs_0\[2\].* now",
}


def hostile_link_case(label: str) -> Case:
    """The message of :data:`HOSTILE_LINK_CASES` named ``label`` (``prior``, when set, is the
    handshake announcing the behavior the message then abuses)."""
    builders = {
        "100k behaviors announced": lambda: _first([brain_bytes(f"B{i}") for i in range(100_000)],
                                                   {b"B%d" % i: agent_bytes([0]) for i in range(100_000)}),  # fmt: skip
        "1M agents": lambda: _after_announcement(agent_bytes(range(1_000_000))),
        "1M agents without sensors": lambda: _after_announcement(agent_bytes(range(1_000_000), ()), ()),
        "10^6 discrete branches": lambda: _first([brain_bytes("B?team=0", branches=[2] * 1_000_000)], {_B: agent_bytes([0])}),
        "100 dimensions": lambda: _first([brain_bytes("B?team=0")], {_B: _one_sensor([1] * 100, 1)}),
        "10^6 dimensions": lambda: _first([brain_bytes("B?team=0")], {_B: _one_sensor([1] * 1_000_000, 1)}),
        "10^5 sensors": lambda: _first([brain_bytes("B?team=0")], {_B: agent_bytes([0], [1] * 100_000)}),
        "1 MB behavior name": lambda: _first([brain_bytes("B" * 1_000_000)], {}),
        "duplicate agent ids": lambda: _after_announcement(agent_bytes([3, 4, 3])),
        "re-announced with another spec": lambda: dataclasses.replace(
            _after_announcement([]), data=message_bytes([brain_bytes("B?team=0")], {_B: agent_bytes([0], (2,))})
        ),
    }
    return dataclasses.replace(builders[label](), origin=label)
