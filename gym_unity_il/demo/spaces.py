"""What a gymnasium env's spaces become in a `.demo` file: a :class:`~gym_unity_il.spec.BehaviorSpec`.

Shared by the recorder (an env without a spec of its own) and the Minari conversion (a
dataset made elsewhere).
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from gym_unity_il.spec import ActionSpec, BehaviorSpec, DimensionProperty, ImageFormat, ObservationSpec

_NONE, _TE = DimensionProperty.NONE, DimensionProperty.TRANSLATIONAL_EQUIVARIANCE
_FLATTEN_FIX = "wrap the env in gymnasium.wrappers.FlattenObservation (or pass behavior_spec=)"


def _sensor(space: spaces.Space, name: str) -> tuple[ObservationSpec, ImageFormat | None]:
    """The ObservationSpec of one Box, and the image format its images imply (None if not an image)."""
    if not isinstance(space, spaces.Box):
        raise ValueError(f"observation {name!r}: {space} cannot be stored in a .demo file (only Box spaces can); {_FLATTEN_FIX}")
    shape = space.shape
    if len(shape) in (1, 2):
        props = (_NONE,) if len(shape) == 1 else ()
        return ObservationSpec(shape=shape, dimension_property=props, name=name), None
    if len(shape) == 3 and space.dtype == np.uint8:
        return ObservationSpec(shape=shape, dimension_property=(_TE, _TE, _NONE), name=name), "hwc_uint8"
    if len(shape) == 3 and np.issubdtype(space.dtype, np.floating) and np.all(space.low >= 0) and np.all(space.high <= 1):
        return ObservationSpec(shape=shape, dimension_property=(_NONE, _TE, _TE), name=name, channels_first=True), "chw_float"
    raise ValueError(
        f"observation {name!r}: {space} is neither a vector, nor a uint8 HWC image, nor a float CHW image in [0, 1]; {_FLATTEN_FIX}"
    )


def sensors_of(observation_space: spaces.Space) -> tuple[list[ObservationSpec], ImageFormat]:
    if isinstance(observation_space, spaces.Dict):
        found = [_sensor(sub, key) for key, sub in observation_space.spaces.items()]
    else:
        shape = getattr(observation_space, "shape", None) or ()
        found = [_sensor(observation_space, f"VectorSensor_size{shape[0]}" if len(shape) == 1 else "CameraSensor")]
    formats = {fmt for _, fmt in found if fmt is not None}
    if len(formats) > 1:
        raise ValueError(f"{observation_space} mixes uint8 HWC and float CHW images; a .demo file holds one image layout")
    return [o for o, _ in found], formats.pop() if formats else "hwc_uint8"


def behavior_spec_from_spaces(observation_space: spaces.Space, action_space: spaces.Space, *, name: str = "GymEnv?team=0") -> BehaviorSpec:
    """A BehaviorSpec for a plain gymnasium env.

    Observations: a ``Box`` (or a ``Dict`` of them, one sensor per key, in the space's
    order, named by the key) of rank 1 or 2 (float vectors), rank 3 ``uint8`` (HWC images)
    or rank 3 float in [0, 1] (CHW images). Actions: ``Box`` of rank 1 (continuous),
    ``Discrete`` / ``MultiDiscrete`` starting at 0 (discrete branches), or
    ``Dict(continuous=Box, discrete=MultiDiscrete)`` (hybrid).

    Raises:
        ValueError: a space that a `.demo` file cannot hold, naming it and the fix.
    """
    observations, _ = sensors_of(observation_space)
    return BehaviorSpec(name=name, observation_specs=tuple(observations), action_spec=_action_spec(action_space))


def _action_spec(space: spaces.Space) -> ActionSpec:
    if isinstance(space, spaces.Box) and len(space.shape) == 1:
        return ActionSpec(space.shape[0], ())
    if isinstance(space, spaces.Discrete) and int(space.start) == 0:
        return ActionSpec(0, (int(space.n),))
    if isinstance(space, spaces.MultiDiscrete) and space.nvec.ndim == 1 and not np.any(space.start):
        return ActionSpec(0, tuple(int(b) for b in space.nvec))
    if isinstance(space, spaces.Dict) and set(space.spaces) == {"continuous", "discrete"}:
        cont, disc = _action_spec(space["continuous"]), _action_spec(space["discrete"])
        if cont.is_continuous and disc.is_discrete:
            return ActionSpec(cont.continuous_size, disc.discrete_branches)
    raise ValueError(
        f"action space {space} cannot be stored in a .demo file; use a rank-1 Box, a Discrete or MultiDiscrete starting at 0, "
        "or Dict(continuous=Box, discrete=MultiDiscrete) (gymnasium.wrappers.FlattenAction can help)"
    )
