"""Hostile and mutated ML-Agents 0.10 / 0.11 messages through the legacy codec: a result or a
UnityProtocolError / UnityVersionError, within the same memory bound as the modern decoder."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gym_unity_il.errors import UnityProtocolError, UnityVersionError
from gym_unity_il.proto import legacy_pb2 as lpb
from gym_unity_il.protocol import legacy
from gym_unity_il.protocol.images import encode_png
from gym_unity_il.testing import fuzz_cases as fc

FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=150)
#: What decoding one hostile message may allocate at its peak, whatever it declares.
MEMORY_BOUND = 64 << 20


def _hello(version: str = "API-10", *, camera: tuple[int, int] = (6, 4)) -> lpb.UnityMessageProto:
    message = lpb.UnityMessageProto(header=lpb.HeaderProto(status=200))
    init = message.unity_output.rl_initialization_output
    init.version = version
    brain = init.brain_parameters.add(brain_name="B", is_training=True, vector_observation_size=3, num_stacked_vector_observations=2)
    brain.vector_action_size.extend([3, 2])
    brain.vector_action_space_type = lpb.discrete
    brain.camera_resolutions.add(height=camera[0], width=camera[1], gray_scale=False)
    return message


def _output(agents: int = 3) -> lpb.UnityMessageProto:
    message = lpb.UnityMessageProto(header=lpb.HeaderProto(status=200))
    infos = message.unity_output.rl_output.agentInfos["B"].value
    png = encode_png(np.full((6, 4, 3), 90, np.uint8))[0]
    for k in range(agents):
        infos.add(id=k, reward=0.5, done=k == 1, stacked_vector_observation=[k] * 6, stored_vector_actions=[2, 1],
                  visual_observations=[png], action_mask=[False, True, False, False, True])  # fmt: skip
    return message


def _run(first: bytes, later: bytes) -> str:
    """Opens a codec from ``first`` and decodes ``later``: ``"result"`` or the error's class name."""
    try:
        codec = legacy.LegacyCodec(first)
        specs: dict = {}
        codec.decode(codec.parse(later), specs, "hwc_uint8")
    except (UnityProtocolError, UnityVersionError) as exc:
        return type(exc).__name__
    return "result"


def _bounded(first: bytes, later: bytes) -> str:
    tracemalloc.start()
    try:
        outcome = _run(first, later)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BOUND, f"decoding allocated {peak >> 20} MB"
    return outcome


def test_the_valid_pair_decodes() -> None:
    assert _run(_hello().SerializeToString(), _output().SerializeToString()) == "result"


@FAST
@given(data=st.data(), which=st.sampled_from(["first", "later"]))
def test_mutated_bytes_give_a_result_or_a_protocol_error(data: st.DataObject, which: str) -> None:
    first, later = bytearray(_hello().SerializeToString()), bytearray(_output().SerializeToString())
    target = first if which == "first" else later
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(target) - 1))
        kind = data.draw(st.sampled_from(["flip", "varint", "cut"]))
        if kind == "flip":
            target[at] ^= data.draw(st.integers(1, 255))
        elif kind == "varint":
            fc.put_varint(target, at, data.draw(st.sampled_from([0, 1, 127, 1 << 20, (1 << 31) - 1, 1 << 40])))
        else:
            del target[at:]
            break
    assert _bounded(bytes(first), bytes(later)) in {"result", "UnityProtocolError", "UnityVersionError"}


@pytest.mark.parametrize(
    "case",
    ["a million empty agents", "a camera of 10^5 x 10^5", "a PNG bomb", "a NaN observation", "a stored action outside its branch",
     "a brain announced twice", "an image of another size"],
)  # fmt: skip
def test_hostile_messages_are_refused_within_the_bound(case: str) -> None:
    first, later = _hello(), _output()
    infos = later.unity_output.rl_output.agentInfos["B"].value
    if case == "a million empty agents":
        del infos[:]
        infos.extend([lpb.AgentInfoProto()] * 1_000_000)
    elif case == "a camera of 10^5 x 10^5":
        first = _hello(camera=(100_000, 100_000))
    elif case == "a PNG bomb":
        infos[0].visual_observations[0] = fc.png_bomb(20_000, 20_000)
    elif case == "a NaN observation":
        infos[2].stacked_vector_observation[0] = float("nan")
    elif case == "a stored action outside its branch":
        infos[0].stored_vector_actions[:] = [7, 0]
    elif case == "a brain announced twice":
        first.unity_output.rl_initialization_output.brain_parameters.append(first.unity_output.rl_initialization_output.brain_parameters[0])
    else:
        infos[0].visual_observations[0] = encode_png(np.zeros((7, 4, 3), np.uint8))[0]
    assert _bounded(first.SerializeToString(), later.SerializeToString()) == "UnityProtocolError"
