"""How a policy takes the env's observations: the one description of it, which training saves
with a model and the trainers, the policy loader and export read.

The env returns one array per sensor (a bare array for a single sensor, else a dict keyed by
sensor), images as its ``image_format`` says: ``uint8`` HWC (``hwc_uint8``) or ``float32``
CHW in [0, 1] (``chw_float``); every other sensor ``float32``. A policy takes them either

* sensor by sensor (one array, or a Dict with the same keys), each image channels first or
  last as the policy was built, its values as the env gives them (bytes for ``hwc_uint8``,
  which SB3 scales itself), or
* ``packed``: every sensor flattened into one ``float32`` vector in sensor order, images
  channels first and in [0, 1] (`imitation`'s GAIL and DAgger take arrays only).

:class:`ObservationLayout` says which, sensor by sensor (:class:`SensorLayout`), and turns
env observations into the policy's (:meth:`~ObservationLayout.to_policy`) and back
(:meth:`~ObservationLayout.to_env`). Only numpy and gymnasium: loading a policy or checking
a model does not import torch for it.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces

from gym_unity_il.spec import ImageFormat, check_image_format

#: Key of the single sensor when the env's observation is one array, not a Dict.
SINGLE_KEY = "obs"


def sensor_spaces(space: spaces.Space) -> OrderedDict[str, spaces.Box]:
    """The env's Box per sensor key (:data:`SINGLE_KEY` for a lone Box).

    Raises:
        TypeError: neither a Box nor a Dict of Boxes.
    """
    if isinstance(space, spaces.Dict):
        return OrderedDict(space.spaces)
    if not isinstance(space, spaces.Box):
        raise TypeError(f"observation space {space} is neither a Box nor a Dict of Boxes")
    return OrderedDict([(SINGLE_KEY, space)])


@dataclasses.dataclass(frozen=True)
class SensorLayout:
    """One sensor as the policy takes it.

    Attributes:
        key: the sensor's key in the env's Dict observation (:data:`SINGLE_KEY` for a lone Box).
        shape: its shape as the policy takes it (without the batch).
        is_image: whether it is an image (rank 3).
        channels_first: for an image, whether the policy takes it channels first (CHW).
    """

    key: str
    shape: tuple[int, ...]
    is_image: bool
    channels_first: bool = True

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclasses.dataclass(frozen=True)
class ObservationLayout:
    """How env observations of ``image_format`` become a policy's observations.

    Attributes:
        sensors: every sensor, in the behavior's sensor order.
        image_format: the env's image format the policy was trained on.
        packed: every sensor flattened into one ``float32`` vector (images in [0, 1]).
    """

    sensors: tuple[SensorLayout, ...]
    image_format: ImageFormat = "hwc_uint8"
    packed: bool = False

    @classmethod
    def from_env_space(cls, space: spaces.Space, *, pack: bool = False) -> ObservationLayout:
        """The layout ``gym-unity-il train`` gives a policy of an env with ``space``: images
        channels first, and with ``pack`` a Dict packed into one vector (a Box stays as it is)."""
        boxes = sensor_spaces(space)
        float_images = [box for box in boxes.values() if len(box.shape) == 3 and box.dtype != np.uint8]
        image_format: ImageFormat = "chw_float" if float_images else "hwc_uint8"
        sensors = []
        for key, box in boxes.items():
            is_image = len(box.shape) == 3
            shape = tuple(int(n) for n in box.shape)
            if is_image and image_format == "hwc_uint8":
                shape = (shape[2], shape[0], shape[1])
            sensors.append(SensorLayout(key, shape, is_image))
        return cls(tuple(sensors), image_format, pack and isinstance(space, spaces.Dict))

    @property
    def is_identity(self) -> bool:
        """Whether the policy takes the env's observations unchanged."""
        return not self.packed and all(self._move(s) is None for s in self.sensors)

    def _move(self, sensor: SensorLayout) -> tuple[int, int] | None:
        """The axis move ``(from, to)`` bringing an image from the env's layout to the policy's, if it needs one."""
        if not sensor.is_image or sensor.channels_first == (self.image_format == "chw_float"):
            return None
        return (-1, -3) if sensor.channels_first else (-3, -1)

    def policy_space(self, env_space: spaces.Space) -> spaces.Space:
        """The policy's observation space for an env whose space is ``env_space``."""
        if self.packed:
            return spaces.Box(-np.inf, np.inf, (sum(s.size for s in self.sensors),), np.float32)
        boxes = sensor_spaces(env_space)
        moved = OrderedDict()
        for sensor in self.sensors:
            box, move = boxes[sensor.key], self._move(sensor)
            moved[sensor.key] = box if move is None else spaces.Box(np.moveaxis(box.low, *move), np.moveaxis(box.high, *move), dtype=box.dtype)
        return spaces.Dict(moved) if len(moved) > 1 else moved[self.sensors[0].key]

    def _parts(self, observation: Any) -> Mapping[str, Any]:
        return observation if isinstance(observation, Mapping) else {self.sensors[0].key: observation}

    def _keyed(self, parts: Mapping[str, np.ndarray]) -> Any:
        return OrderedDict(parts) if len(self.sensors) > 1 else parts[self.sensors[0].key]

    def to_policy(self, observation: Any) -> Any:
        """One env observation or a batch (an array, or a mapping by sensor key) as the policy
        takes it. Moved image axes are views of the env's arrays (a learner copies what it keeps)."""
        parts = self._parts(observation)
        out = OrderedDict()
        for sensor in self.sensors:
            value, move = np.asarray(parts[sensor.key]), self._move(sensor)
            out[sensor.key] = value if move is None else np.moveaxis(value, *move)
        if not self.packed:
            return self._keyed(out)
        pieces = []
        for sensor, value in zip(self.sensors, out.values()):
            lead = value.shape[: value.ndim - len(sensor.shape)]
            value = value.astype(np.float32)
            if sensor.is_image and self.image_format == "hwc_uint8":
                value = value / np.float32(255.0)
            pieces.append(value.reshape(*lead, -1))
        return np.concatenate(pieces, axis=-1)

    def to_env(self, observation: Any) -> Any:
        """Policy observations (one or a batch) back as the env gives them: what :meth:`to_policy` took."""
        if self.packed:
            flat = np.asarray(observation, np.float32)
            pieces = np.split(flat, np.cumsum([s.size for s in self.sensors])[:-1], axis=-1)
            parts = {}
            for sensor, piece in zip(self.sensors, pieces):
                value = piece.reshape(*flat.shape[:-1], *sensor.shape)
                if sensor.is_image and self.image_format == "hwc_uint8":
                    value = np.rint(value * 255.0).clip(0, 255).astype(np.uint8)
                parts[sensor.key] = value
        else:
            parts = self._parts(observation)
        out = OrderedDict()
        for sensor in self.sensors:
            value, move = np.asarray(parts[sensor.key]), self._move(sensor)
            out[sensor.key] = value if move is None else np.moveaxis(value, move[1], move[0])
        return self._keyed(out)

    def to_dict(self) -> dict[str, Any]:
        """The layout as JSON data (what a saved model holds)."""
        sensors = [{"key": s.key, "shape": list(s.shape), "image": s.is_image, "channels_first": s.channels_first} for s in self.sensors]
        return {"image_format": self.image_format, "packed": self.packed, "sensors": sensors}

    @classmethod
    def from_dict(cls, data: Any) -> ObservationLayout:
        """The layout :meth:`to_dict` wrote.

        Raises:
            ValueError: anything else.
        """
        try:
            check_image_format(data["image_format"])
            sensors = tuple(
                SensorLayout(str(s["key"]), tuple(int(n) for n in s["shape"]), bool(s["image"]), bool(s["channels_first"])) for s in data["sensors"]
            )
            packed = data["packed"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not an observation layout ({type(exc).__name__}: {exc})") from None
        if not sensors or not isinstance(packed, bool):
            raise ValueError("not an observation layout (no sensors, or 'packed' is not true or false)")
        if packed and not all(s.channels_first for s in sensors if s.is_image):
            raise ValueError("not an observation layout (packed images are channels first)")
        return cls(sensors, data["image_format"], packed)
