"""The side channels a trainer needs, and the one of the built-in scenes.

* :class:`EngineConfigurationChannel` (trainer -> Unity): time scale, screen size,
  quality level, target and capture frame rates;
* :class:`EnvironmentParametersChannel` (trainer -> Unity): float parameters and samplers
  that a scene reads with ``Academy.Instance.EnvironmentParameters``;
* :class:`StatsSideChannel` (Unity -> trainer): values a scene records with
  ``Academy.Instance.StatsRecorder``;
* :class:`ScenePictureChannel` (both ways, built-in scenes only): an RGB picture of one
  agent's area, drawn when the trainer asks for it.

Each channel also has the parsing (or encoding) the other side needs, used by the
built-in scene player. The framing and the payload primitives are in
:mod:`gym_unity_il.protocol.side_channels`.
"""

from __future__ import annotations

import enum
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np

from gym_unity_il.errors import ConfigError, UnityProtocolError
from gym_unity_il.protocol.images import decode_png_images, encode_png
from gym_unity_il.protocol.side_channels import PayloadReader, PayloadWriter, SideChannel

logger = logging.getLogger(__name__)

ENGINE_CONFIGURATION_CHANNEL_ID = uuid.UUID("e951342c-4f7e-11ea-b238-784f4387d1f7")
ENVIRONMENT_PARAMETERS_CHANNEL_ID = uuid.UUID("534c891e-810f-11ea-a9d0-822485860400")
STATS_CHANNEL_ID = uuid.UUID("a1d8f7b7-cec8-50f9-b78b-d3e165a78520")
#: gym_unity_il's own channel: built-in scenes answer it, Unity builds do not know it.
SCENE_PICTURE_CHANNEL_ID = uuid.UUID("855e3f95-92dc-4367-bf68-0ec69c13a2b3")
#: The largest side, in pixels, of a scene picture that may be asked for.
MAX_PICTURE_SIDE = 1024

#: Environment parameter that reseeds a scene before the RESET that follows it. The value is
#: the seed modulo 2**24 (so that it is exact as a float32). Built-in scenes honour it; a
#: Unity build may read it with ``Academy.Instance.EnvironmentParameters.GetWithDefault``.
SEED_PARAMETER = "gym_unity_il.seed"
SEED_MODULUS = 2**24


class EngineSetting(enum.IntEnum):
    """Message types of the EngineConfigurationChannel (protocol.md §10.3)."""

    SCREEN_RESOLUTION = 0
    QUALITY_LEVEL = 1
    TIME_SCALE = 2
    TARGET_FRAME_RATE = 3
    CAPTURE_FRAME_RATE = 4


@dataclass(frozen=True)
class EngineConfig:
    """Engine settings sent to Unity; a field left at None is not sent (Unity keeps its own).

    Attributes:
        width: screen width in pixels (sent together with ``height``).
        height: screen height in pixels (sent together with ``width``).
        quality_level: index into the project's quality settings.
        time_scale: simulation speed multiplier (Unity clamps it to at least 1).
        target_frame_rate: ``Application.targetFrameRate``; -1 = as fast as possible.
        capture_frame_rate: ``Time.captureFramerate``.
    """

    width: int | None = None
    height: int | None = None
    quality_level: int | None = None
    time_scale: float | None = None
    target_frame_rate: int | None = None
    capture_frame_rate: int | None = None

    def __post_init__(self) -> None:
        if (self.width is None) != (self.height is None):
            raise ValueError(f"EngineConfig: width and height go together, got width={self.width} height={self.height}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, float | int | None]) -> EngineConfig:
        """Builds a config from a dict such as ``{"time_scale": 20}``, naming unknown keys."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"EngineConfig: unknown setting(s) {unknown}; known settings are {sorted(known)}")
        return cls(**values)  # type: ignore[arg-type]


class EngineConfigurationChannel(SideChannel):
    """Sends engine settings to Unity (trainer -> Unity only)."""

    channel_id = ENGINE_CONFIGURATION_CHANNEL_ID

    def set_configuration(self, config: EngineConfig) -> None:
        """Queues one message per setting that is not None, in the order of §10.3."""
        if config.width is not None and config.height is not None:
            self.queue_message(
                PayloadWriter().write_int32(EngineSetting.SCREEN_RESOLUTION).write_int32(config.width).write_int32(config.height).to_bytes()
            )
        if config.quality_level is not None:
            self.queue_message(PayloadWriter().write_int32(EngineSetting.QUALITY_LEVEL).write_int32(config.quality_level).to_bytes())
        if config.time_scale is not None:
            self.queue_message(PayloadWriter().write_int32(EngineSetting.TIME_SCALE).write_float32(config.time_scale).to_bytes())
        if config.target_frame_rate is not None:
            self.queue_message(
                PayloadWriter().write_int32(EngineSetting.TARGET_FRAME_RATE).write_int32(config.target_frame_rate).to_bytes()
            )
        if config.capture_frame_rate is not None:
            self.queue_message(
                PayloadWriter().write_int32(EngineSetting.CAPTURE_FRAME_RATE).write_int32(config.capture_frame_rate).to_bytes()
            )

    @staticmethod
    def parse(payload: bytes) -> dict[str, float | int]:
        """Reads one message (the Unity side): returns the settings it carries, e.g. ``{"time_scale": 20.0}``.

        Raises:
            UnityProtocolError: unknown message type.
        """
        reader = PayloadReader(payload)
        kind = reader.read_int32(-1)
        if kind == EngineSetting.SCREEN_RESOLUTION:
            return {"width": reader.read_int32(), "height": reader.read_int32()}
        if kind == EngineSetting.QUALITY_LEVEL:
            return {"quality_level": reader.read_int32()}
        if kind == EngineSetting.TIME_SCALE:
            return {"time_scale": reader.read_float32()}
        if kind == EngineSetting.TARGET_FRAME_RATE:
            return {"target_frame_rate": reader.read_int32()}
        if kind == EngineSetting.CAPTURE_FRAME_RATE:
            return {"capture_frame_rate": reader.read_int32()}
        raise UnityProtocolError(f"engine configuration message of unknown type {kind} (known: 0-4, protocol.md §10.3)")


class SamplerType(enum.IntEnum):
    """Sampler kinds of the EnvironmentParametersChannel (protocol.md §10.4)."""

    UNIFORM = 0
    GAUSSIAN = 1
    MULTIRANGEUNIFORM = 2


@dataclass(frozen=True)
class Sampler:
    """A sampled environment parameter: Unity draws a new value each time the scene reads it.

    Attributes:
        sampler_type: the distribution.
        seed: the sampler's own seed.
        arguments: (min, max) for UNIFORM, (mean, std-dev) for GAUSSIAN, flattened
            (min, max) pairs for MULTIRANGEUNIFORM.
    """

    sampler_type: SamplerType
    seed: int
    arguments: tuple[float, ...]


class EnvironmentParametersChannel(SideChannel):
    """Sends environment parameters to Unity (trainer -> Unity only)."""

    channel_id = ENVIRONMENT_PARAMETERS_CHANNEL_ID
    _FLOAT = 0
    _SAMPLER = 1

    def set_float_parameter(self, key: str, value: float) -> None:
        """Queues ``key = value``; the scene reads it with ``EnvironmentParameters.GetWithDefault``."""
        self.queue_message(self.float_payload(key, value))

    @classmethod
    def float_payload(cls, key: str, value: float) -> bytes:
        """The payload of one message setting ``key = value``."""
        return PayloadWriter().write_string(key).write_int32(cls._FLOAT).write_float32(value).to_bytes()

    def set_uniform_sampler_parameters(self, key: str, min_value: float, max_value: float, seed: int) -> None:
        """Queues a parameter drawn uniformly from ``[min_value, max_value]``."""
        self._queue_sampler(key, seed, SamplerType.UNIFORM, PayloadWriter().write_float32(min_value).write_float32(max_value))

    def set_gaussian_sampler_parameters(self, key: str, mean: float, st_dev: float, seed: int) -> None:
        """Queues a parameter drawn from a normal distribution."""
        self._queue_sampler(key, seed, SamplerType.GAUSSIAN, PayloadWriter().write_float32(mean).write_float32(st_dev))

    def set_multirangeuniform_sampler_parameters(self, key: str, intervals: Sequence[tuple[float, float]], seed: int) -> None:
        """Queues a parameter drawn uniformly from the union of the ``(min, max)`` intervals."""
        flat = [float(v) for interval in intervals for v in interval]
        self._queue_sampler(key, seed, SamplerType.MULTIRANGEUNIFORM, PayloadWriter().write_float_list(flat))

    def set_parameter(self, key: str, value: float | Sampler) -> None:
        """Queues ``key`` as a number or as a :class:`Sampler` (the message :meth:`parse` reads back)."""
        if not isinstance(value, Sampler):
            self.set_float_parameter(key, value)
            return
        arguments = PayloadWriter()
        if value.sampler_type == SamplerType.MULTIRANGEUNIFORM:
            arguments.write_float_list(value.arguments)
        else:
            arguments.write_float32(value.arguments[0]).write_float32(value.arguments[1])
        self._queue_sampler(key, value.seed, value.sampler_type, arguments)

    def _queue_sampler(self, key: str, seed: int, kind: SamplerType, arguments: PayloadWriter) -> None:
        head = PayloadWriter().write_string(key).write_int32(self._SAMPLER).write_int32(seed).write_int32(kind)
        self.queue_message(head.to_bytes() + arguments.to_bytes())

    @classmethod
    def parse(cls, payload: bytes) -> tuple[str, float | Sampler]:
        """Reads one message (the Unity side): ``(key, float value or Sampler)``.

        Raises:
            UnityProtocolError: unknown data or sampler type.
        """
        reader = PayloadReader(payload)
        key = reader.read_string()
        kind = reader.read_int32(-1)
        if kind == cls._FLOAT:
            return key, reader.read_float32()
        if kind != cls._SAMPLER:
            raise UnityProtocolError(f"environment parameter {key!r}: unknown data type {kind} (0 = float, 1 = sampler)")
        seed = reader.read_int32()
        sampler = reader.read_int32(-1)
        if sampler == SamplerType.MULTIRANGEUNIFORM:
            arguments = tuple(reader.read_float_list())
        elif sampler in (SamplerType.UNIFORM, SamplerType.GAUSSIAN):
            arguments = (reader.read_float32(), reader.read_float32())
        else:
            raise UnityProtocolError(f"environment parameter {key!r}: unknown sampler type {sampler} (0-2, protocol.md §10.4)")
        return key, Sampler(SamplerType(sampler), seed, arguments)


class StatsAggregationMethod(enum.IntEnum):
    """How the trainer should aggregate a stat over a summary period (protocol.md §10.5)."""

    AVERAGE = 0
    MOST_RECENT = 1
    SUM = 2
    HISTOGRAM = 3


class StatsSideChannel(SideChannel):
    """Collects the stats Unity records (Unity -> trainer only)."""

    channel_id = STATS_CHANNEL_ID

    def __init__(self) -> None:
        super().__init__()
        self._stats: dict[str, list[tuple[float, StatsAggregationMethod]]] = {}

    def on_message_received(self, payload: bytes) -> None:
        reader = PayloadReader(payload)
        key = reader.read_string()
        value = reader.read_float32()
        method = reader.read_int32()
        try:
            aggregation = StatsAggregationMethod(method)
        except ValueError:
            logger.warning("stat %r has unknown aggregation method %d; treating it as AVERAGE", key, method)
            aggregation = StatsAggregationMethod.AVERAGE
        self._stats.setdefault(key, []).append((value, aggregation))

    def take_stats(self) -> dict[str, list[tuple[float, StatsAggregationMethod]]]:
        """Returns and clears the stats received since the last call: key -> [(value, aggregation), ...]."""
        stats, self._stats = self._stats, {}
        return stats

    @staticmethod
    def encode(key: str, value: float, aggregation: StatsAggregationMethod = StatsAggregationMethod.AVERAGE) -> bytes:
        """One stats message (the Unity side)."""
        return PayloadWriter().write_string(key).write_float32(value).write_int32(aggregation).to_bytes()


class ScenePictureChannel(SideChannel):
    """Pictures of a built-in scene, for people: the human teacher's window and ``render()``.

    The trainer asks with :meth:`request`; the request travels with the next message to
    the scene, which draws the agent's area after applying that message and sends the
    picture with its answer. One request, one picture: nothing is drawn unless asked for.

    Payloads (this package's own channel, in the primitives of protocol.md §10.2):

    * trainer -> scene: ``string behavior, int32 agent_id, int32 height, int32 width``;
      ``agent_id`` -1 means the first agent of ``behavior`` asking for a decision (an
      empty ``behavior``: of the first behavior with one);
    * scene -> trainer: ``int32 agent_id`` followed by the picture as an RGB PNG, or by
      nothing when the scene draws no picture.

    Attributes:
        pictures: agent id -> its latest picture, ``uint8 (height, width, 3)``, or None
            when the scene answered that it draws no picture.
    """

    channel_id = SCENE_PICTURE_CHANNEL_ID

    def __init__(self) -> None:
        super().__init__()
        self.pictures: dict[int, np.ndarray | None] = {}
        self._max_pixels = 0  # the largest picture asked for: bounds what is decoded

    def request(self, *, agent_id: int = -1, behavior: str = "", size: tuple[int, int] = (160, 160)) -> None:
        """Asks for a ``size = (height, width)`` picture of one agent's area with the next message.

        Raises:
            ConfigError: a side below 1 or above :data:`MAX_PICTURE_SIDE`.
        """
        height, width = (int(v) for v in size)
        if not (1 <= height <= MAX_PICTURE_SIDE and 1 <= width <= MAX_PICTURE_SIDE):
            raise ConfigError(f"a scene picture of {height}x{width} pixels: each side must be 1 to {MAX_PICTURE_SIDE}")
        self._max_pixels = max(self._max_pixels, height * width)
        payload = PayloadWriter().write_string(behavior).write_int32(agent_id).write_int32(height).write_int32(width).to_bytes()
        if payload not in self._outgoing:  # asked twice before the next message: drawn once
            self.queue_message(payload)

    def on_message_received(self, payload: bytes) -> None:
        agent_id = PayloadReader(payload).read_int32(-1)
        png = payload[4:]
        if not png:
            self.pictures[agent_id] = None
            return
        if not self._max_pixels:
            raise UnityProtocolError("the scene sent a picture nobody asked for (scene picture channel)")
        images = decode_png_images(png, max_pixels=self._max_pixels)
        if len(images) != 1 or images[0].ndim != 3 or images[0].shape[2] != 3:
            raise UnityProtocolError(f"the scene picture of agent {agent_id} is not one RGB PNG")
        self.pictures[agent_id] = images[0]

    @staticmethod
    def parse_request(payload: bytes) -> tuple[str, int, int, int]:
        """``(behavior, agent_id, height, width)`` of a request (the scene side), sides clipped to 1..:data:`MAX_PICTURE_SIDE`."""
        reader = PayloadReader(payload)
        behavior, agent_id = reader.read_string(), reader.read_int32(-1)
        height, width = (min(max(reader.read_int32(1), 1), MAX_PICTURE_SIDE) for _ in range(2))
        return behavior, agent_id, height, width

    @staticmethod
    def encode_picture(agent_id: int, picture: np.ndarray | None) -> bytes:
        """The answer to a request (the scene side): ``uint8 (H, W, 3)`` RGB, or None for no picture."""
        head = PayloadWriter().write_int32(agent_id).to_bytes()
        return head if picture is None else head + encode_png(np.ascontiguousarray(picture, np.uint8))[0]
