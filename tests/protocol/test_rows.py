"""Agent rows read a behavior's agents from their bytes exactly as decoding them one by one
does, or not at all: the same arrays for any ids, rewards, flags, masks and values of laid-out
agents, and the one-by-one decoder (with its errors) for anything else."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gym_unity_il.errors import UnityProtocolError
from gym_unity_il.proto import communicator_pb2 as pb
from gym_unity_il.protocol import rows as rows_module
from gym_unity_il.protocol.agents import ROWS_FROM, StepBatch, decode_agent_infos, decode_unity_output
from gym_unity_il.protocol.observations import float_data_from_array
from gym_unity_il.protocol.rows import AgentRows
from gym_unity_il.spec import ActionSpec, BehaviorSpec, ObservationSpec

WALKER = BehaviorSpec("Walker?team=0", (ObservationSpec((3,), name="Body"), ObservationSpec((2, 2), name="Feet")), ActionSpec(1, (3, 2)))
#: Ids of every varint width, the widths rows read and the ones they leave to the one-by-one decoder.
EDGE_IDS = st.sampled_from([0, 127, 128, 16383, 16384, 2**21 + 7, 2**28 - 1, 2**28, 2**31 - 1, -1, -300])
IDS = st.one_of(st.integers(0, 300), st.integers(0, 300), EDGE_IDS)
FLOATS = st.sampled_from([0.0, 1.0, -2.5, 1e-30, 3e38, -0.0])


def agent(draw: st.DrawFn, spec: BehaviorSpec, agent_id: int) -> pb.AgentInfoProto:
    info = pb.AgentInfoProto(id=agent_id, reward=draw(FLOATS), group_reward=draw(FLOATS), group_id=draw(st.sampled_from([0, 0, 3, 200])))
    info.done = draw(st.booleans())
    info.max_step_reached = info.done and draw(st.booleans())
    for o in spec.observation_specs:
        values = np.array(draw(st.lists(FLOATS, min_size=int(np.prod(o.shape)), max_size=int(np.prod(o.shape)))), np.float32)
        info.observations.add(shape=o.shape, float_data=float_data_from_array(values), name=o.name)
    total = sum(spec.action_spec.discrete_branches)
    length = draw(st.sampled_from([0, total, total, total + 1]))  # none, the behavior's, one of another length
    info.action_mask.extend(draw(st.lists(st.booleans(), min_size=length, max_size=length)))
    return info


@st.composite
def agent_lists(draw: st.DrawFn, spec: BehaviorSpec = WALKER) -> pb.UnityRLOutputProto.ListAgentInfoProto:
    ids = draw(st.lists(IDS, min_size=ROWS_FROM, max_size=24))
    return pb.UnityRLOutputProto.ListAgentInfoProto(value=[agent(draw, spec, i) for i in ids])


def output_of(infos: pb.UnityRLOutputProto.ListAgentInfoProto, spec: BehaviorSpec = WALKER) -> pb.UnityOutputProto:
    output = pb.UnityOutputProto()
    output.rl_output.agentInfos[spec.name].CopyFrom(infos)
    return output


def outcome(decode):  # type: ignore[no-untyped-def]
    try:
        return decode()
    except UnityProtocolError as exc:
        return exc


def assert_same(got: tuple[StepBatch, StepBatch] | Exception, want: tuple[StepBatch, StepBatch] | Exception) -> None:
    if isinstance(want, Exception):
        assert type(got) is type(want) and str(got) == str(want)
        return
    assert not isinstance(got, Exception), got
    for a, b in zip(got, want):
        for field in ("agent_id", "reward", "interrupted", "group_id", "group_reward"):
            x, y = getattr(a, field), getattr(b, field)
            assert x.dtype == y.dtype and x.shape == y.shape, field
            np.testing.assert_array_equal(x, y, err_msg=field)
        assert (a.action_mask is None) == (b.action_mask is None)
        if a.action_mask is not None:
            np.testing.assert_array_equal(a.action_mask, b.action_mask)
        for x, y in zip(a.obs, b.obs, strict=True):
            assert x.dtype == y.dtype and x.shape == y.shape and x.flags.c_contiguous and x.flags.writeable
            np.testing.assert_array_equal(x, y)


@settings(deadline=None, max_examples=150)
@given(first=agent_lists(), second=agent_lists())
def test_agents_read_from_their_bytes_decode_as_one_by_one(first: pb.UnityRLOutputProto.ListAgentInfoProto, second: pb.UnityRLOutputProto.ListAgentInfoProto) -> None:
    specs = {WALKER.name: dataclasses.replace(WALKER)}  # a spec of its own: layouts learned from this example only
    for infos in (first, second, first):  # layouts learned from the first list serve the others
        got = outcome(lambda: decode_unity_output(output_of(infos), specs)[WALKER.name])  # noqa: B023
        assert_same(got, outcome(lambda: decode_agent_infos(infos.value, WALKER)))  # noqa: B023


def rows_of(infos: pb.UnityRLOutputProto.ListAgentInfoProto, spec: BehaviorSpec = WALKER) -> AgentRows:
    reader = AgentRows(spec)
    assert reader.read(infos.SerializeToString()) is not None
    return reader


def steady(n: int, *, done: tuple[int, ...] = ()) -> pb.UnityRLOutputProto.ListAgentInfoProto:
    rng = np.random.default_rng(n)
    infos = pb.UnityRLOutputProto.ListAgentInfoProto()
    for k in range(n):
        info = infos.value.add(id=k + 1, reward=float(rng.normal()), done=k in done)
        for o in WALKER.observation_specs:
            info.observations.add(shape=o.shape, float_data=float_data_from_array(rng.normal(size=o.shape)), name=o.name)
        info.action_mask.extend([False, True, False, True, True])
    return infos


def test_a_list_of_agents_that_ended_and_decide_is_read_in_one_go_decisions_first() -> None:
    infos = steady(6, done=(1, 4))
    reader = rows_of(infos)
    rows = reader.read(infos.SerializeToString())
    assert rows is not None and rows.decisions == 4
    assert rows.agent_id.tolist() == [1, 3, 4, 6, 2, 5]
    assert rows.mask is not None and rows.mask[0].tolist() == [True, False, True, False, False]
    np.testing.assert_array_equal(rows.obs[1][0], np.array(infos.value[0].observations[1].float_data.data, np.float32).reshape(2, 2))


@pytest.mark.parametrize(
    "change, why",
    [
        (lambda info: info.observations.add(shape=[3]), "an extra sensor"),
        (lambda info: info.observations[0].float_data.data.append(1.0), "a sensor with a value more"),
        (lambda info: setattr(info, "id", -4), "a negative id"),
        (lambda info: info.observations[0].float_data.data.__setitem__(0, float("nan")), "a NaN"),
    ],
)
def test_an_agent_that_does_not_read_so_makes_the_list_decode_one_by_one(change, why: str) -> None:  # type: ignore[no-untyped-def]
    infos = steady(5)
    reader = rows_of(infos)
    change(infos.value[2])
    assert reader.read(infos.SerializeToString()) is None, why
    want = outcome(lambda: decode_agent_infos(infos.value, WALKER))
    assert_same(outcome(lambda: decode_unity_output(output_of(infos), {WALKER.name: WALKER})[WALKER.name]), want)


def test_an_unknown_field_or_a_repeated_one_is_never_learned() -> None:
    info = steady(4).value[0].SerializeToString()
    for body in (info + b"\x10\x05", info + b"\x50\x07"):  # field 2 (reserved: unknown); the id again (protobuf keeps the last)
        assert AgentRows(WALKER).read(b"\x0a" + bytes([len(body)]) + body) is None


def test_two_layouts_of_one_size_in_a_list_are_not_mixed_up() -> None:
    infos = steady(4)
    reader = rows_of(infos)
    other = infos.value[2]
    size = other.ByteSize()
    other.ClearField("id")  # two bytes less ...
    other.done = True  # ... and two more: the others' size, another layout
    assert other.ByteSize() == size
    assert reader.read(infos.SerializeToString()) is None
    assert_same(decode_unity_output(output_of(infos), {WALKER.name: WALKER})[WALKER.name], decode_agent_infos(infos.value, WALKER))


def test_learning_stops_where_layouts_do_not_pay() -> None:
    reader = AgentRows(WALKER)
    for k in range(3 * rows_module.FREE_LEARNINGS):
        infos = steady(4)
        for info in infos.value:
            info.observations[0].name = "x" * k  # a new size every time
        reader.read(infos.SerializeToString())
    assert reader.learned == rows_module.FREE_LEARNINGS + reader.reads // rows_module.READS_PER_LEARNING


def test_images_are_never_read_as_rows() -> None:
    with pytest.raises(ValueError, match="vector observations only"):
        AgentRows(BehaviorSpec("Looker", (ObservationSpec((8, 8, 3), name="Camera"),), ActionSpec(1, ())))


def test_agents_without_the_mask_of_a_wide_behavior_are_not_gathered_cell_by_cell() -> None:
    """Absent masks take no bytes of the list but a cell per flag: they would make the gather
    far larger than the message, so such lists decode one by one (masks all allowed)."""
    spec = BehaviorSpec("Wide", (ObservationSpec((2,), name="V"),), ActionSpec(0, (65_536,)))
    infos = pb.UnityRLOutputProto.ListAgentInfoProto()
    for k in range(200):
        infos.value.add(id=k + 1, reward=1.0).observations.add(shape=[2], float_data=float_data_from_array(np.ones(2)))
    assert AgentRows(spec).read(infos.SerializeToString()) is None
    decision, _ = decode_unity_output(output_of(infos, spec), {spec.name: spec})[spec.name]
    assert decision.action_mask is not None and decision.action_mask.shape == (200, 65_536) and decision.action_mask.all()
    narrow = BehaviorSpec("Narrow", spec.observation_specs, ActionSpec(0, (5,)))
    assert AgentRows(narrow).read(infos.SerializeToString()) is not None
