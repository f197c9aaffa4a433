"""Specs and the gymnasium spaces they map to."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

from gym_unity_il.spec import ActionSpec, BehaviorSpec, CameraResolution, DimensionProperty, ObservationSpec


def test_camera_resolution_channels_and_validation() -> None:
    assert CameraResolution(84, 64).channels == 3
    assert CameraResolution(84, 64, grayscale=True).channels == 1
    with pytest.raises(ValueError, match="positive"):
        CameraResolution(0, 10)


@pytest.mark.parametrize("channels_first", [False, True])
def test_visual_spec_layouts(channels_first: bool) -> None:
    shape = (1, 40, 30) if channels_first else (40, 30, 1)
    spec = ObservationSpec(shape=shape, channels_first=channels_first, name="cam")
    assert spec.hwc == (40, 30, 1)
    assert spec.camera_resolution == CameraResolution(40, 30, grayscale=True)
    assert spec.space() == spaces.Box(0, 255, (40, 30, 1), np.uint8)
    assert spec.space("chw_float") == spaces.Box(0.0, 1.0, (1, 40, 30), np.float32)
    te, none = DimensionProperty.TRANSLATIONAL_EQUIVARIANCE, DimensionProperty.NONE
    assert spec.dimension_property == ((none, te, te) if channels_first else (te, te, none))
    with pytest.raises(ValueError, match="image_format"):
        spec.space("nchw")


def test_vector_spec_space_and_defaults() -> None:
    spec = ObservationSpec(shape=(8,), name="VectorSensor_size8")
    assert spec.dimension_property == (DimensionProperty.NONE,)
    assert spec.space() == spaces.Box(-np.inf, np.inf, (8,), np.float32)
    assert spec.camera_resolution is None
    with pytest.raises(ValueError, match="not visual"):
        _ = spec.hwc


@pytest.mark.parametrize(
    ("action_spec", "expected"),
    [
        (ActionSpec(2), spaces.Box(-1.0, 1.0, (2,), np.float32)),
        (ActionSpec(0, (5,)), spaces.Discrete(5)),
        (ActionSpec(0, (3, 2)), spaces.MultiDiscrete([3, 2])),
    ],
)
def test_action_spaces(action_spec: ActionSpec, expected: spaces.Space) -> None:
    assert action_spec.space() == expected


def test_hybrid_action_space_and_split() -> None:
    spec = ActionSpec(3, (2, 4))
    space = spec.space()
    assert isinstance(space, spaces.Dict) and list(space.spaces) == ["continuous", "discrete"]
    cont, disc = spec.split({"continuous": [0.1, 0.2, 0.3], "discrete": [1, 3]})
    assert cont.dtype == np.float32 and cont.tolist() == pytest.approx([0.1, 0.2, 0.3])
    assert disc.dtype == np.int32 and disc.tolist() == [1, 3]
    with pytest.raises(ValueError, match="outside branch sizes"):
        spec.split({"continuous": [0, 0, 0], "discrete": [2, 0]})
    with pytest.raises(ValueError, match="dict with keys"):
        spec.split([0, 0, 0, 1, 1])


def test_behavior_spec_names_keys_and_dict_space() -> None:
    obs = (ObservationSpec(shape=(84, 84, 3), name="CameraSensor"), ObservationSpec(shape=(4,), name="VectorSensor_size4"))
    spec = BehaviorSpec("GridWorld?team=1", obs, ActionSpec(0, (5,)))
    assert spec.behavior_name == "GridWorld" and spec.team_id == 1
    space = spec.observation_space()
    assert isinstance(space, spaces.Dict) and list(space.spaces) == ["CameraSensor", "VectorSensor_size4"]
    unnamed = BehaviorSpec("Old", (ObservationSpec(shape=(3,)), ObservationSpec(shape=(3,))), ActionSpec(1))
    assert unnamed.observation_keys == ("obs_0", "obs_1")
    assert "continuous=1" in unnamed.describe()
    assert spec.is_compatible(BehaviorSpec("Other?team=0", obs, ActionSpec(0, (5,))))
    assert not spec.is_compatible(BehaviorSpec("Other?team=0", obs, ActionSpec(0, (4,))))
