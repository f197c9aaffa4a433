"""Templates decode repeated messages exactly as the full decoder does, or not at all: the
same arrays for any floats and pictures in a known layout, nothing for a message whose
layout differs (or whose floats are not finite, or whose pictures do not decode), whatever
bytes are changed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gym_unity_il.errors import UnityProtocolError
from gym_unity_il.proto import communicator_pb2 as pb
from gym_unity_il.protocol import templates
from gym_unity_il.protocol.agents import StepBatch, decode_unity_output
from gym_unity_il.protocol.eras import open_codec
from gym_unity_il.protocol.modern import KNOWN
from gym_unity_il.protocol.observations import encode_observation
from gym_unity_il.protocol.templates import VALUE, MessageTemplates, holes
from gym_unity_il.spec import ActionSpec, BehaviorSpec, ImageFormat, ObservationSpec

#: A vector, a colour camera and a grey one; pictures of 12x10 pixels take 100 to 400 bytes as
#: PNGs, their lengths two-byte varints.
LOOKER = BehaviorSpec(
    "Looker?team=0",
    (ObservationSpec((3,), name="Vector"), ObservationSpec((12, 10, 3), name="Camera"), ObservationSpec((12, 10, 1), name="Grey")),
    ActionSpec(0, (2,)),
)


def behavior(name: str, sensors: tuple[int, ...], branches: tuple[int, ...]) -> BehaviorSpec:
    return BehaviorSpec(name, tuple(ObservationSpec((size,), name=f"Vector{j}") for j, size in enumerate(sensors)), ActionSpec(2, branches))


SPECS = {
    "Walker?team=0": behavior("Walker?team=0", (3, 5), (3,)),
    "Pusher?team=1": behavior("Pusher?team=1", (4,), ()),
}


def message(agents: dict[str, list[dict]], side_channel: bytes = b"") -> bytes:
    """A message of Unity: per behavior, one dict per agent (id, reward, group_reward, done,
    obs: one array per sensor, mask)."""
    out = pb.UnityMessageProto(header=pb.HeaderProto(status=200))
    rl = out.unity_output.rl_output
    rl.side_channel = side_channel
    for name, infos in agents.items():
        spec = SPECS[name] if name in SPECS else LOOKER
        for agent in infos:
            info = rl.agentInfos[name].value.add(
                id=agent["id"], reward=agent["reward"], group_reward=agent.get("group_reward", 0.0), done=agent.get("done", False)
            )
            info.observations.extend(encode_observation(v, o, compress=agent.get("png", True)) for v, o in zip(agent["obs"], spec.observation_specs))
            info.action_mask.extend(agent.get("mask", []))
    return out.SerializeToString()


def agents_of(rng: np.random.Generator, n: dict[str, int], *, zero_rewards: bool = False) -> dict[str, list[dict]]:
    return {
        name: [
            {
                "id": 10 * k + 3,
                "reward": 0.0 if zero_rewards else float(rng.normal()),
                "group_reward": float(rng.normal()) if k % 2 else 0.0,
                "obs": [rng.normal(size=o.shape).astype(np.float32) for o in SPECS[name].observation_specs],
                "mask": [bool(m) for m in rng.integers(0, 2, sum(SPECS[name].action_spec.discrete_branches))],
            }
            for k in range(count)
        ]
        for name, count in n.items()
    }


def lookers(rng: np.random.Generator, n: int, noisy_rows: int) -> dict[str, list[dict]]:
    """``n`` agents of LOOKER whose pictures are noise in their first ``noisy_rows`` rows and
    flat below (more noisy rows, longer PNGs)."""
    def picture(channels: int) -> np.ndarray:
        image = np.full((12, 10, channels), 90, np.uint8)
        image[:noisy_rows] = rng.integers(0, 256, (noisy_rows, 10, channels), dtype=np.uint8)
        return image

    return {LOOKER.name: [{"id": k + 1, "reward": float(rng.normal()), "obs": [rng.normal(size=3).astype(np.float32), picture(3), picture(1)]}
                         for k in range(n)]}  # fmt: skip


def pictures_of(data: bytes) -> list[bytes]:
    return [o.compressed_data for i in pb.UnityMessageProto.FromString(data).unity_output.rl_output.agentInfos[LOOKER.name].value for o in i.observations[1:]]


def full_decode(data: bytes, specs: dict[str, BehaviorSpec], image_format: ImageFormat = "hwc_uint8"):  # type: ignore[no-untyped-def]
    return decode_unity_output(pb.UnityMessageProto.FromString(data).unity_output, specs, image_format=image_format)


def learned(data: bytes, specs: dict[str, BehaviorSpec], image_format: ImageFormat = "hwc_uint8") -> MessageTemplates:
    known = MessageTemplates()
    known.learn(data, full_decode(data, specs, image_format), b"", specs, image_format, announced=False)
    return known


def assert_same_steps(got, want) -> None:  # type: ignore[no-untyped-def]
    assert set(got) == set(want)
    for name in want:
        for a, b in zip(got[name], want[name]):
            assert isinstance(a, StepBatch)
            for field in ("agent_id", "reward", "interrupted", "group_id", "group_reward"):
                np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=f"{name} {field}")
                assert getattr(a, field).dtype == getattr(b, field).dtype
            assert (a.action_mask is None) == (b.action_mask is None)
            if a.action_mask is not None:
                np.testing.assert_array_equal(a.action_mask, b.action_mask)
            assert len(a.obs) == len(b.obs)
            for x, y in zip(a.obs, b.obs):
                assert x.shape == y.shape and x.dtype == y.dtype
                np.testing.assert_array_equal(x, y)


@settings(deadline=None, max_examples=60)
@given(walkers=st.integers(0, 6), pushers=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_a_message_of_a_known_layout_decodes_as_the_full_decoder_does(walkers: int, pushers: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    counts = {"Walker?team=0": walkers, "Pusher?team=1": pushers}
    specs = dict(SPECS)
    known = learned(message(agents_of(rng, counts)), specs)
    for _ in range(3):  # other floats, the same layout
        data = message(agents_of(rng, counts))
        got = known.decode(data, specs, "hwc_uint8")
        assert got is not None
        assert got[1] == b""
        assert_same_steps(got[0], full_decode(data, specs))
    assert known.hits == 3


def test_other_layouts_agents_ids_or_flags_go_to_the_full_decoder() -> None:
    rng = np.random.default_rng(0)
    counts = {"Walker?team=0": 2, "Pusher?team=1": 3}
    first = agents_of(rng, counts)
    known = learned(message(first), dict(SPECS))
    others = {
        "an agent more": agents_of(rng, {"Walker?team=0": 3, "Pusher?team=1": 3}),
        "a reward of zero (no field)": agents_of(rng, counts, zero_rewards=True),
        "another id": {**first, "Pusher?team=1": [{**first["Pusher?team=1"][0], "id": 4}, *first["Pusher?team=1"][1:]]},
        "an episode end": {**first, "Pusher?team=1": [{**first["Pusher?team=1"][0], "done": True}, *first["Pusher?team=1"][1:]]},
        "an agent without its mask": {**first, "Walker?team=0": [{**first["Walker?team=0"][0], "mask": []}, *first["Walker?team=0"][1:]]},
    }
    for what, agents in others.items():
        assert known.decode(message(agents), dict(SPECS), "hwc_uint8") is None, what
    assert known.decode(message(first, side_channel=b"\x01"), dict(SPECS), "hwc_uint8") is None
    assert known.decode(message(first), dict(SPECS), "chw_float") is None
    assert known.decode(message(first), {**SPECS, "New?team=0": SPECS["Pusher?team=1"]}, "hwc_uint8") is None
    assert known.decode(message(first), dict(SPECS), "hwc_uint8") is not None


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_not_finite_floats_are_left_to_the_full_decoder_which_names_them(value: float) -> None:
    rng = np.random.default_rng(1)
    counts = {"Pusher?team=1": 2}
    known = learned(message(agents_of(rng, counts)), dict(SPECS))
    agents = agents_of(rng, counts)
    agents["Pusher?team=1"][1]["obs"][0][2] = value
    assert known.decode(message(agents), dict(SPECS), "hwc_uint8") is None
    agents = agents_of(rng, counts)
    agents["Pusher?team=1"][0]["reward"] = value
    assert known.decode(message(agents), dict(SPECS), "hwc_uint8") is None


@settings(deadline=None, max_examples=200)
@given(seed=st.integers(0, 2**32 - 1), flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), min_size=1, max_size=3),
       pictures=st.booleans())
def test_changed_bytes_decode_as_the_full_decoder_decodes_them_or_not_at_all(seed: int, flips: list[tuple[float, int]], pictures: bool) -> None:
    """Whatever bytes change, a template answers only when the full decoder gives the same
    arrays; on the bytes the full decoder refuses, it never answers."""
    rng = np.random.default_rng(seed)
    specs = {LOOKER.name: LOOKER} if pictures else dict(SPECS)
    data = message(lookers(rng, 2, 8) if pictures else agents_of(rng, {"Walker?team=0": 2, "Pusher?team=1": 2}))
    known = learned(data, specs)
    changed = bytearray(data)
    for where, xor in flips:
        changed[int(where * len(changed))] ^= xor
    got = known.decode(bytes(changed), specs, "hwc_uint8")
    if got is None:
        return
    assert_same_steps(got[0], full_decode(bytes(changed), specs))


def test_holes_are_the_fixed_width_values_of_the_message() -> None:
    rng = np.random.default_rng(2)
    data = message(agents_of(rng, {"Pusher?team=1": 2}))
    found = [(offset, size, path) for offset, size, path, kind in holes(data) if kind == VALUE]
    # Per agent: the reward, the packed floats of its sensor, a group reward for the second.
    assert [(size, path[-1]) for _, size, path in found] == [(4, ("reward", 0)), (16, ("data", 0)), (4, ("reward", 0)), (16, ("data", 0)),
                                                             (4, ("group_reward", 0))]  # fmt: skip
    assert {path[2] for _, _, path in found} == {("agentInfos", b"Pusher?team=1")}
    assert [path[4] for _, _, path in found] == [("value", 0)] * 2 + [("value", 1)] * 3
    first_reward = np.frombuffer(data, np.uint8, 4, found[0][0]).view("<f4")[0]
    assert first_reward == np.float32(full_decode(data, dict(SPECS))["Pusher?team=1"][0].reward[0])


@settings(deadline=None, max_examples=30)
@given(agents=st.integers(1, 4), seed=st.integers(0, 2**32 - 1), image_format=st.sampled_from(["hwc_uint8", "chw_float"]))
def test_pictures_of_other_lengths_decode_as_the_full_decoder_does(agents: int, seed: int, image_format: ImageFormat) -> None:
    rng = np.random.default_rng(seed)
    specs = {LOOKER.name: LOOKER}
    first = message(lookers(rng, agents, 4))
    known = learned(first, specs, image_format)
    for rows in (6, 9, 12):  # longer pictures, of lengths that differ from agent to agent
        data = message(lookers(rng, agents, rows))
        assert [len(p) for p in pictures_of(data)] != [len(p) for p in pictures_of(first)]
        got = known.decode(data, specs, image_format)
        assert got is not None
        assert_same_steps(got[0], full_decode(data, specs, image_format))
    assert known.hits == 3


def test_pictures_that_change_the_framing_or_do_not_decode_go_to_the_full_decoder() -> None:
    rng = np.random.default_rng(6)
    specs = {LOOKER.name: LOOKER}
    known = learned(message(lookers(rng, 2, 12)), specs)
    short = message(lookers(rng, 2, 0))  # flat pictures: PNGs under 128 bytes, their lengths one-byte varints
    assert min(len(p) for p in pictures_of(short)) < 128 <= min(len(p) for p in pictures_of(message(lookers(rng, 2, 12))))
    assert known.decode(short, specs, "hwc_uint8") is None
    data = message(lookers(rng, 2, 12))
    picture = pictures_of(data)[1]
    damaged = data.replace(picture, picture[:60] + bytes([picture[60] ^ 0x55]) + picture[61:])  # its IDAT's checksum fails
    assert known.decode(damaged, specs, "hwc_uint8") is None
    with pytest.raises(UnityProtocolError, match="PNG"):
        full_decode(damaged, specs)
    assert known.decode(data, specs, "hwc_uint8") is not None


def test_raw_float_images_are_never_templates() -> None:
    specs = {LOOKER.name: LOOKER}
    agents = lookers(np.random.default_rng(7), 1, 3)
    agents[LOOKER.name][0]["png"] = False
    data = message(agents)
    known = learned(data, specs)
    assert len(known) == 0 and known.decode(data, specs, "hwc_uint8") is None


def test_results_are_arrays_of_their_own_and_the_shared_ones_are_read_only() -> None:
    rng = np.random.default_rng(3)
    counts = {"Walker?team=0": 2}
    specs = dict(SPECS)
    known = learned(message(agents_of(rng, counts)), specs)
    data = message(agents_of(rng, counts))
    first = known.decode(data, specs, "hwc_uint8")
    assert first is not None
    decision = first[0]["Walker?team=0"][0]
    decision.obs[0][:] = 7.0
    decision.reward[:] = 7.0
    again = known.decode(data, specs, "hwc_uint8")
    assert again is not None
    assert_same_steps(again[0], full_decode(data, specs))
    with pytest.raises(ValueError):
        again[0]["Walker?team=0"][0].agent_id[0] = 5  # shared with the template: read-only


def test_learning_stops_where_templates_do_not_pay() -> None:
    rng = np.random.default_rng(4)
    known = MessageTemplates()
    specs = dict(SPECS)
    layouts = [message(agents_of(rng, {"Pusher?team=1": k})) for k in range(1, 2 * templates.FREE_LEARNINGS + 2)]
    for i, data in enumerate(layouts):  # each layout comes once, then its message once more
        known.learn(data, full_decode(data, specs), b"", specs, "hwc_uint8", announced=False)
        assert (known.decode(data, specs, "hwc_uint8") is not None) == (i < templates.FREE_LEARNINGS)
    assert known.learned == templates.FREE_LEARNINGS
    assert known.hits == templates.FREE_LEARNINGS
    assert len(known) == templates.MAX_TEMPLATES


def test_a_new_layout_of_the_same_size_replaces_the_old_one() -> None:
    """Agents renumbered (same sizes): the new layout becomes the template of that size."""
    rng = np.random.default_rng(5)
    specs = dict(SPECS)
    first = agents_of(rng, {"Pusher?team=1": 2})
    renumbered = {"Pusher?team=1": [{**agent, "id": agent["id"] + 1} for agent in first["Pusher?team=1"]]}
    known = learned(message(first), specs)
    data = message(renumbered)
    assert len(data) == len(message(first)) and known.decode(data, specs, "hwc_uint8") is None
    known.learn(data, full_decode(data, specs), b"", specs, "hwc_uint8", announced=False)
    assert len(known) == 1
    assert_same_steps(known.decode(data, specs, "hwc_uint8")[0], full_decode(data, specs))  # type: ignore[index]
    assert known.decode(message(first), specs, "hwc_uint8") is None


def test_a_codec_told_the_specs_decodes_known_messages_without_parsing_them() -> None:
    """After expect(), parse() answers a message a template knows with the stand-in KNOWN (its
    header, status 200) and decode() with the template's decode; other messages, and decodes
    for other specs, go the full way with the same results."""
    hello = pb.UnityMessageProto(header=pb.HeaderProto(status=200))
    hello.unity_output.rl_initialization_output.communication_version = "1.5.0"
    hello.unity_output.rl_initialization_output.package_version = "2.0.0"
    codec = open_codec(hello.SerializeToString())
    specs = dict(SPECS)
    codec.expect(specs, "hwc_uint8")
    rng = np.random.default_rng(8)
    counts = {"Walker?team=0": 2, "Pusher?team=1": 1}
    first = message(agents_of(rng, counts))
    parsed = codec.parse(first)
    assert parsed is not KNOWN  # nothing learned yet
    assert_same_steps(codec.decode(parsed, specs, "hwc_uint8")[0], full_decode(first, specs))
    data = message(agents_of(rng, counts))
    parsed = codec.parse(data)
    assert parsed is KNOWN and parsed.header.status == 200
    assert_same_steps(codec.decode(parsed, specs, "hwc_uint8")[0], full_decode(data, specs))
    other = dict(SPECS)  # another mapping: the message is decoded again, for it
    assert_same_steps(codec.decode(codec.parse(data), other, "hwc_uint8")[0], full_decode(data, other))
    closing = pb.UnityMessageProto.FromString(data)
    closing.header.status = 400
    assert codec.parse(closing.SerializeToString()).header.status == 400  # another header: not a template's
