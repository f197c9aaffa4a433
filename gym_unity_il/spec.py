"""Behavior, observation and action specs, and the gymnasium spaces they map to.

These frozen dataclasses describe one behavior of a Unity scene the same way whether it
was announced over the live link or read from a `.demo` file, so a policy trained on
demonstrations sees exactly the observations the env returns.

Visual observations (rank 3) are exposed in one of two layouts, chosen by the user:

* ``"hwc_uint8"`` (default): ``uint8`` images shaped ``(height, width, channels)``, the
  layout SB3's ``CnnPolicy`` takes as it is;
* ``"chw_float"``: ``float32`` in ``[0, 1]`` shaped ``(channels, height, width)``, the
  layout of ML-Agents' own trainers and of Unity's ONNX model inputs.

Vector (rank 1) and buffer (rank 2) observations are always ``float32``.
"""

from __future__ import annotations

import enum
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import numpy as np
from gymnasium import spaces

ImageFormat = Literal["hwc_uint8", "chw_float"]
IMAGE_FORMATS: tuple[str, ...] = ("hwc_uint8", "chw_float")


def check_image_format(image_format: str) -> None:
    """Raises ``ValueError`` naming the choices when ``image_format`` is not one of them."""
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image_format={image_format!r} is not supported; use one of {IMAGE_FORMATS}")


class DimensionProperty(enum.IntFlag):
    """Per-dimension flags Unity attaches to an observation (``ObservationProto.dimension_properties``)."""

    UNSPECIFIED = 0
    NONE = 1
    TRANSLATIONAL_EQUIVARIANCE = 2
    VARIABLE_SIZE = 4


class ObservationType(enum.IntEnum):
    """What an observation is for (``ObservationProto.observation_type``)."""

    DEFAULT = 0
    GOAL_SIGNAL = 1


@dataclass(frozen=True)
class CameraResolution:
    """The size of a camera image: height and width in pixels, grayscale or colour."""

    height: int
    width: int
    grayscale: bool = False

    def __post_init__(self) -> None:
        if self.height <= 0 or self.width <= 0:
            raise ValueError(f"CameraResolution needs a positive height and width, got {self.height}x{self.width}")

    @property
    def channels(self) -> int:
        """1 for grayscale, 3 for colour."""
        return 1 if self.grayscale else 3


def _default_properties(shape: tuple[int, ...], channels_first: bool) -> tuple[DimensionProperty, ...]:
    """The dimension properties Unity sends for a sensor of this rank and layout."""
    te, none = DimensionProperty.TRANSLATIONAL_EQUIVARIANCE, DimensionProperty.NONE
    if len(shape) == 3:
        return (none, te, te) if channels_first else (te, te, none)
    if len(shape) == 2:
        return (DimensionProperty.VARIABLE_SIZE, none)
    return (none,) * len(shape)


@dataclass(frozen=True)
class ObservationSpec:
    """One sensor of an agent.

    Attributes:
        shape: the shape as the sender declared it on the wire. For rank-3 observations
            this is ``(H, W, C)`` or ``(C, H, W)`` depending on ``channels_first``.
        dimension_property: one flag per dimension; when none are given, the ones Unity
            sends for this rank and layout.
        observation_type: DEFAULT or GOAL_SIGNAL.
        name: the sensor name (Unity sorts sensors by it); may be empty in old files.
        channels_first: for rank-3 observations, whether the sender's ``shape`` is CHW
            (Unity 3.0+) rather than HWC (Unity 2.x and older). Ignored for other ranks.
    """

    shape: tuple[int, ...]
    dimension_property: tuple[DimensionProperty, ...] = ()
    observation_type: ObservationType = ObservationType.DEFAULT
    name: str = ""
    channels_first: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        props = tuple(DimensionProperty(int(p)) for p in self.dimension_property) or _default_properties(self.shape, self.channels_first)
        object.__setattr__(self, "dimension_property", props)
        object.__setattr__(self, "observation_type", ObservationType(int(self.observation_type)))
        if len(self.dimension_property) != len(self.shape):
            raise ValueError(f"observation {self.name!r}: {len(self.dimension_property)} dimension properties for shape {self.shape}")
        if any(s < 0 for s in self.shape):
            raise ValueError(f"observation {self.name!r}: negative dimension in shape {self.shape}")

    @property
    def is_visual(self) -> bool:
        """Rank-3 observations are images."""
        return len(self.shape) == 3

    @property
    def hwc(self) -> tuple[int, int, int]:
        """(height, width, channels) of a visual observation."""
        if not self.is_visual:
            raise ValueError(f"observation {self.name!r} with shape {self.shape} is not visual")
        if self.channels_first:
            c, h, w = self.shape
        else:
            h, w, c = self.shape
        return h, w, c

    @property
    def camera_resolution(self) -> CameraResolution | None:
        """The CameraResolution of a 1- or 3-channel visual observation, else None."""
        if not self.is_visual:
            return None
        h, w, c = self.hwc
        return CameraResolution(h, w, grayscale=c == 1) if c in (1, 3) and h and w else None

    def output_shape(self, image_format: ImageFormat = "hwc_uint8") -> tuple[int, ...]:
        """The shape of this observation as the env and the demo reader return it."""
        if not self.is_visual:
            return self.shape
        h, w, c = self.hwc
        return (h, w, c) if image_format == "hwc_uint8" else (c, h, w)

    def output_dtype(self, image_format: ImageFormat = "hwc_uint8") -> np.dtype:
        """``uint8`` for images in ``hwc_uint8``, else ``float32``."""
        return np.dtype(np.uint8 if self.is_visual and image_format == "hwc_uint8" else np.float32)

    def space(self, image_format: ImageFormat = "hwc_uint8") -> spaces.Box:
        """The gymnasium space of this observation."""
        check_image_format(image_format)
        shape = self.output_shape(image_format)
        if self.is_visual and image_format == "hwc_uint8":
            return spaces.Box(0, 255, shape, np.uint8)
        if self.is_visual:
            return spaces.Box(0.0, 1.0, shape, np.float32)
        return spaces.Box(-np.inf, np.inf, shape, np.float32)


class ActionPair(NamedTuple):
    """Actions split by kind, as Unity takes them: ``continuous`` float32 and ``discrete``
    int32 arrays (``[c]`` and ``[d]`` for one agent, ``[n, c]`` and ``[n, d]`` for a batch)."""

    continuous: np.ndarray
    discrete: np.ndarray


@dataclass(frozen=True)
class ActionSpec:
    """The action space of a behavior: continuous size and discrete branch sizes."""

    continuous_size: int = 0
    discrete_branches: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "continuous_size", int(self.continuous_size))
        object.__setattr__(self, "discrete_branches", tuple(int(b) for b in self.discrete_branches))
        if self.continuous_size < 0 or any(b <= 0 for b in self.discrete_branches):
            raise ValueError(f"invalid action spec: continuous {self.continuous_size}, branches {self.discrete_branches}")

    @classmethod
    def create_continuous(cls, size: int) -> ActionSpec:
        return cls(size, ())

    @classmethod
    def create_discrete(cls, branches: tuple[int, ...]) -> ActionSpec:
        return cls(0, tuple(branches))

    @property
    def discrete_size(self) -> int:
        """Number of discrete branches."""
        return len(self.discrete_branches)

    @property
    def is_continuous(self) -> bool:
        return self.continuous_size > 0 and not self.discrete_branches

    @property
    def is_discrete(self) -> bool:
        return self.continuous_size == 0 and bool(self.discrete_branches)

    @property
    def is_hybrid(self) -> bool:
        return self.continuous_size > 0 and bool(self.discrete_branches)

    def space(self) -> spaces.Space:
        """``Box(-1, 1)`` for continuous, ``Discrete`` for one branch, ``MultiDiscrete`` for
        several, and ``Dict(continuous=Box, discrete=MultiDiscrete)`` for hybrid actions."""
        box = spaces.Box(-1.0, 1.0, (self.continuous_size,), np.float32)
        multi = spaces.MultiDiscrete(np.array(self.discrete_branches, dtype=np.int64))
        if self.is_hybrid:
            return spaces.Dict(OrderedDict(continuous=box, discrete=multi))
        if self.is_continuous:
            return box
        if len(self.discrete_branches) == 1:
            return spaces.Discrete(self.discrete_branches[0])
        if self.discrete_branches:
            return multi
        return spaces.Box(-1.0, 1.0, (0,), np.float32)

    def split(self, action: object) -> ActionPair:
        """Splits one action in this spec's gymnasium form into its continuous and discrete arrays."""
        if self.is_hybrid:
            if not isinstance(action, dict) or set(action) != {"continuous", "discrete"}:
                raise ValueError(f"hybrid action must be a dict with keys 'continuous' and 'discrete', got {action!r}")
            cont, disc = action["continuous"], action["discrete"]
        elif self.continuous_size:
            cont, disc = action, ()
        else:
            cont, disc = (), action
        cont = np.asarray(cont, dtype=np.float32).reshape(self.continuous_size)
        if not self.discrete_branches:
            return ActionPair(cont, np.zeros(0, np.int32))
        disc = np.asarray(disc).reshape(self.discrete_size)
        values = disc.tolist()  # a few numbers: checked in Python
        whole = disc.dtype.kind in "biu" or (disc.dtype.kind == "f" and all(math.isfinite(v) and v == int(v) for v in values))
        if not whole:
            raise ValueError(f"discrete action must hold whole numbers, got {disc}")
        if not all(0 <= v < b for v, b in zip(values, self.discrete_branches)):
            raise ValueError(f"discrete action {disc.tolist()} outside branch sizes {self.discrete_branches}")
        return ActionPair(cont, disc.astype(np.int32))


@dataclass(frozen=True)
class BehaviorSpec:
    """One behavior of a scene: its fully qualified name, its sensors and its action spec."""

    name: str
    observation_specs: tuple[ObservationSpec, ...]
    action_spec: ActionSpec
    observation_keys: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "observation_specs", tuple(self.observation_specs))
        names = [o.name for o in self.observation_specs]
        keys = tuple(n if n and names.count(n) == 1 else f"obs_{i}" for i, n in enumerate(names))
        object.__setattr__(self, "observation_keys", keys)

    @property
    def behavior_name(self) -> str:
        """The name without the ``?team=N`` suffix."""
        return self.name.split("?team=")[0]

    @property
    def team_id(self) -> int:
        """The team id from ``?team=N`` (0 when absent)."""
        _, _, team = self.name.partition("?team=")
        return int(team) if team.lstrip("-").isdigit() else 0

    def observation_space(self, image_format: ImageFormat = "hwc_uint8") -> spaces.Space:
        """The Box of the only sensor, or a Dict keyed by :attr:`observation_keys`."""
        if len(self.observation_specs) == 1:
            return self.observation_specs[0].space(image_format)
        return spaces.Dict(OrderedDict((k, o.space(image_format)) for k, o in zip(self.observation_keys, self.observation_specs)))

    def action_space(self) -> spaces.Space:
        return self.action_spec.space()

    def describe(self) -> str:
        """A one-line human-readable summary, used in mismatch errors."""
        obs = ", ".join(f"{k}{list(o.shape)}" for k, o in zip(self.observation_keys, self.observation_specs))
        act = self.action_spec
        return f"{self.name}: observations [{obs}], actions continuous={act.continuous_size} discrete={list(act.discrete_branches)}"

    def is_compatible(self, other: BehaviorSpec) -> bool:
        """True when observations (output shapes) and actions agree; names may differ."""
        return self.action_spec == other.action_spec and [o.output_shape() for o in self.observation_specs] == [
            o.output_shape() for o in other.observation_specs
        ]
