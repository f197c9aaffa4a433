"""Fuzzing the decoding of Unity's messages, a fast subset of ``benchmarks/fuzz_inputs.py``:
mutated messages (bytes and fields) and side-channel bytes give a result or a
UnityProtocolError / UnityVersionError and nothing else; valid messages decode to the arrays
the scene player encoded; and every bug the fuzzing found keeps its reproducer here."""

from __future__ import annotations

import collections
import logging
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gym_unity_il.errors import QUOTE_CHARS, UnityProtocolError, quote
from gym_unity_il.proto import communicator_pb2 as pb
from gym_unity_il.protocol import agents, images, observations, specs
from gym_unity_il.protocol.channels import STATS_CHANNEL_ID, StatsSideChannel
from gym_unity_il.protocol.side_channels import SideChannelManager, frame_messages
from gym_unity_il.spec import ActionSpec, BehaviorSpec, ObservationSpec
from gym_unity_il.testing import fuzz_cases as fc

FAST = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
ACCEPTED = {"result", "UnityProtocolError", "UnityVersionError"}


@pytest.fixture(autouse=True)
def _quiet_side_channels(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="gym_unity_il.protocol.side_channels")  # unknown channels are logged, by design


@settings(FAST, max_examples=100)
@given(cases=fc.link_cases(extra=2))
def test_mutated_messages_give_a_result_or_a_protocol_error(tmp_path: Path, cases: list[fc.Case]) -> None:
    for case in cases:
        assert fc.run_case(case, tmp_path) in ACCEPTED, case.origin


@settings(FAST, max_examples=40)
@given(recipe=fc.MESSAGE_RECIPES, image_format=st.sampled_from(["hwc_uint8", "chw_float"]))
def test_valid_messages_decode_to_the_arrays_sent(tmp_path: Path, recipe: fc.MessageRecipe, image_format: str) -> None:
    """The first message (handshake, announcements) and a later one, as the player encodes them."""
    built = fc.build_messages(recipe)
    options = {"image_format": image_format}
    assert fc.run_case(fc.Case("link", built.first, "first", options, expected=built.expected_first), tmp_path) == "result"
    later = fc.Case("link", built.second, "second", options, prior=built.first, expected=built.expected_second)
    assert fc.run_case(later, tmp_path) == "result"


@settings(FAST, max_examples=150)
@given(cases=fc.side_channel_cases(extra=2))
def test_mutated_side_channels_give_a_result_or_a_protocol_error(tmp_path: Path, cases: list[fc.Case]) -> None:
    for case in cases:
        assert fc.run_case(case, tmp_path) in {"result", "UnityProtocolError"}, case.origin


def test_mutations_reach_the_observation_decoders(tmp_path: Path) -> None:
    """Guards the generators: mutated messages fail in many different places (PNG data,
    channel mappings, shapes, announcements), and some still decode."""
    recipe = fc.MessageRecipe((fc.BehaviorRecipe((fc.Sensor((3, 4, 3)), fc.Sensor((2,)), fc.Sensor((3, 3, 7))), 1, (2,), 2, masks=True),
                               fc.BehaviorRecipe((fc.Sensor((2, 2, 1), png=False),), 0, (3,), 1)), "3.0.0", 1, 7)  # fmt: skip
    built = fc.build_messages(recipe)
    rng = np.random.default_rng(0)
    results, problems = 0, collections.Counter()
    for _ in range(300):
        data = fc.mutate_message(built.second, fc.random_mutations(rng, fc.LINK_MUTATIONS))
        specs: dict[str, BehaviorSpec] = {}
        fc.decode_message(built.first, specs, handshake=True, channels_first=False, image_format="hwc_uint8")
        try:
            fc.decode_message(data, specs, handshake=False, channels_first=True, image_format="hwc_uint8")
            results += 1
        except UnityProtocolError as exc:
            problems[" ".join(str(exc).split()[:4])] += 1
    assert results > 30
    assert len(problems) > 15, problems
    assert any("PNG" in p for p in problems) and any("channel mapping" in p for p in problems)


# ---------------------------------------------------------------------------------- regressions


def _observation(data: bytes) -> pb.ObservationProto:
    return pb.ObservationProto.FromString(data)


def test_float_data_holding_only_unknown_fields_has_no_values() -> None:
    """Found by fuzzing: the payload of FloatData was taken from its serialized bytes assuming
    they start with field 1, so unknown fields became values (or a ValueError)."""
    unknown_len = _observation(b"\x0a\x01\x01" + b"\x22\x06" + b"\x12\x04\x00\x00\x80\x3f")  # shape [1]; FloatData {2: bytes}
    unknown_fixed = _observation(b"\x0a\x01\x01" + b"\x22\x05" + b"\x15\x01\x02\x03\x04")  # FloatData {2: fixed32}
    spec = ObservationSpec(shape=(1,))
    for obs in (unknown_len, unknown_fixed):
        with pytest.raises(UnityProtocolError, match="0 floats"):
            observations.decode_observation(obs, spec)
    both = _observation(b"\x0a\x01\x01" + b"\x22\x09" + b"\x12\x01\x07" + b"\x0a\x04\x00\x00\x80\x3f")  # unknown field first
    assert observations.decode_observation(both, spec).tolist() == [1.0]


def _announce(brain: pb.BrainParametersProto, agent: pb.AgentInfoProto) -> pb.UnityOutputProto:
    output = pb.UnityOutputProto()
    brain.brain_name = "B?team=0"
    output.rl_initialization_output.brain_parameters.append(brain)
    output.rl_output.agentInfos["B?team=0"].value.append(agent)
    return output


@pytest.mark.parametrize(
    ("branches", "shape", "match"),
    [([7, -1], [3], r"branches \(7, -1\)"), ([0], [3], r"branches \(0,\)"), ([2], [4, 3, -2], "negative dimension"),
     ([2**31 - 1], [3], "more than the 65536"), ([2], [100_000, 100_000, 3], r"\[100000, 100000, 3\]")],
)  # fmt: skip
def test_announcements_with_impossible_sizes_are_protocol_errors(branches: list[int], shape: list[int], match: str) -> None:
    """Found by fuzzing: negative sizes escaped as ValueError; absurd ones went on to allocate."""
    brain = pb.BrainParametersProto()
    brain.action_spec.num_discrete_actions = len(branches)
    brain.action_spec.discrete_branch_sizes.extend(branches)
    agent = pb.AgentInfoProto()
    agent.observations.add(shape=shape)
    tracemalloc.start()
    try:
        with pytest.raises(UnityProtocolError, match=match):
            agents.decode_unity_output(_announce(brain, agent), {})
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 16 << 20


def test_many_agents_without_data_cannot_make_gigabytes_of_masks() -> None:
    """Each AgentInfoProto without data is a few bytes of the message but a row of the mask array."""
    spec = BehaviorSpec("B?team=0", (), ActionSpec(0, (65_536,)))
    output = pb.UnityOutputProto()
    output.rl_output.agentInfos["B?team=0"].value.extend([pb.AgentInfoProto(id=i) for i in range(20_000)])
    tracemalloc.start()
    try:
        with pytest.raises(UnityProtocolError, match="20000 agents would decode to more than 1024 MB"):
            agents.decode_unity_output(output, {"B?team=0": spec})
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 64 << 20
    del output.rl_output.agentInfos["B?team=0"].value[100:]
    decision, _ = agents.decode_unity_output(output, {"B?team=0": spec})["B?team=0"]
    assert decision.action_mask.shape == (100, 65_536) and decision.action_mask.all()


@pytest.mark.parametrize(("width", "height"), [(100_000, 100_000), (2**31 - 1, 1), (4, 4)])
def test_png_declaring_more_pixels_than_its_shape_is_a_protocol_error_before_decoding(width: int, height: int) -> None:
    """Found by fuzzing: Pillow's DecompressionBombError escaped; any PNG larger than the
    observation's shape is now refused from its header."""
    obs = pb.ObservationProto(shape=[2, 3, 3], compression_type=pb.PNG, compressed_data=fc.png_bomb(height, width, inflated=16 << 20))
    tracemalloc.start()
    try:
        with pytest.raises(UnityProtocolError, match=f"declares {width}x{height} pixels, more than the 6 expected"):
            observations.decode_observation(obs, specs.observation_spec_from_proto(obs))
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 64 << 20
    with pytest.raises(UnityProtocolError, match="more than the 89478485 expected"):
        images.decode_png(fc.png_bomb(100_000, 100_000, inflated=16 << 20))


def test_png_inflating_far_past_its_header_is_not_inflated() -> None:
    """The fast PNG path inflated all of a PNG's data before checking its size (256 MB here)."""
    tracemalloc.start()
    try:
        pixels = images.decode_png(fc.png_bomb(2, 3))
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert pixels.shape == (2, 3, 3) and not pixels.any()
    assert peak < 64 << 20


def test_raw_float_images_with_nan_or_extreme_values() -> None:
    """Found by fuzzing: NaN pixels were cast with a RuntimeWarning (and became 0); values near
    the float32 maximum overflowed when scaled. NaN is refused, extremes are clipped, silently."""
    spec = ObservationSpec(shape=(1, 3, 1))
    extreme = pb.ObservationProto(shape=[1, 3, 1], float_data=observations.float_data_from_array(np.array([3.4e38, -3.4e38, 0.5], np.float32)))
    nan = pb.ObservationProto(shape=[1, 3, 1], float_data=observations.float_data_from_array(np.array([0.1, np.nan, 0.5], np.float32)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert observations.decode_observation(extreme, spec).ravel().tolist() == [255, 0, 128]
        with pytest.raises(UnityProtocolError, match="NaN"):
            observations.decode_observation(nan, spec)


def test_side_channel_lengths_past_the_data_are_protocol_errors() -> None:
    """A declared payload length past the data, or negative, is a protocol error."""
    good = frame_messages([(STATS_CHANNEL_ID, StatsSideChannel.encode("k", 1.5))])
    stats = StatsSideChannel()
    SideChannelManager([stats]).process_incoming(good + good)
    assert [v for v, _ in stats.take_stats()["k"]] == [1.5, 1.5]
    for length in (-1, 2**31 - 1, len(good)):
        damaged = good[:16] + length.to_bytes(4, "little", signed=True) + good[20:]
        with pytest.raises(UnityProtocolError, match="declares"):
            SideChannelManager([stats]).process_incoming(damaged)


# ---------------------------------------------------------------------------- hostile messages (issue: hardening the link)


@pytest.mark.parametrize("label", list(fc.HOSTILE_LINK_CASES))
def test_hostile_messages_are_protocol_errors_within_the_memory_bound_with_short_texts(label: str) -> None:
    """Found by probing: 100k behaviors in 4.6 MB took 753 MB and 20 s, 1M agents in 15 MB took
    687 MB; 101 dimensions raised numpy's ValueError; 10^6 branches made a 3 MB error message;
    a re-announced spec and duplicate agent ids were accepted. Each is now refused before the
    decoder builds anything from it, with at most DECODE_FIXED_BYTES + DECODE_BYTES_PER_BYTE
    times the message's size allocated (parse included), and a short message."""
    case = fc.hostile_link_case(label)
    specs: dict[str, BehaviorSpec] = {}
    channels_first = False
    if case.prior is not None:
        _, channels_first = fc.decode_message(case.prior, specs, handshake=True, channels_first=False, image_format="hwc_uint8")
    tracemalloc.start()
    try:
        with pytest.raises(UnityProtocolError, match=fc.HOSTILE_LINK_CASES[label]) as info:
            fc.decode_message(case.data, specs, handshake=case.prior is None, channels_first=channels_first, image_format="hwc_uint8")
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < agents.DECODE_FIXED_BYTES + agents.DECODE_BYTES_PER_BYTE * len(case.data)
    assert len(str(info.value)) < 2 * QUOTE_CHARS + 200


def test_an_agent_may_end_its_episode_and_ask_for_a_decision_in_one_message() -> None:
    """Not a duplicate: ML-Agents puts such an agent in both the terminal and the decision steps."""
    spec = BehaviorSpec("B?team=0", (ObservationSpec((1,)),), ActionSpec(1))
    infos = [pb.AgentInfoProto.FromString(raw) for raw in fc.agent_bytes([7, 8, 7])]
    infos[0].done = True
    decision, terminal = agents.decode_agent_infos(infos, spec)
    assert decision.agent_id.tolist() == [8, 7] and terminal.agent_id.tolist() == [7]
    infos[1].done = infos[2].done = True
    with pytest.raises(UnityProtocolError, match="agent 7 of 'B\\?team=0' appears twice among the terminal steps"):
        agents.decode_agent_infos(infos, spec)


@pytest.mark.parametrize(
    ("value", "text"),
    [("x" * 10, "'xxxxxxxxxx'"), ("é" * 1000, "'" + "é" * 199 + "... (1000 characters)"), (b"\x00" * 300, None),
     (list(range(10**6)), None), ((1, 2, 3), "[1, 2, 3]"), (3.5, "3.5")],
)  # fmt: skip
def test_quote_keeps_short_values_and_cuts_long_ones_saying_how_long(value: object, text: str | None) -> None:
    quoted = quote(value)
    assert len(quoted) < QUOTE_CHARS + 40
    if text is not None:
        assert quoted == text
    if isinstance(value, list):
        assert quoted.startswith("[0, 1, 2, ") and quoted.endswith(", ... (1000000 values)]")
    if isinstance(value, bytes):
        assert quoted.endswith("... (300 bytes)")
