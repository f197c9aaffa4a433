"""The 0.x codec (protocol/legacy.py): versions, brains to specs, agent infos to batches, actions and resets to bytes,
for 0.10 / 0.11 and, further down, what differs in API-4 ... API-9 (§9)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from gym_unity_il.errors import UnityProtocolError, UnityVersionError
from gym_unity_il.proto import legacy_pb2 as lpb
from gym_unity_il.protocol import legacy
from gym_unity_il.protocol.agents import MAX_DECODED_BYTES
from gym_unity_il.protocol.images import encode_png
from gym_unity_il.protocol.specs import MAX_BEHAVIORS
from gym_unity_il.spec import CameraResolution

RNG = np.random.default_rng(7)


def _png(hwc: np.ndarray) -> bytes:
    return encode_png(hwc)[0]


def _brain(name: str = "Learner", *, training: bool = True, cameras=((8, 6, False), (4, 5, True)), size=3, stack=2,
           branches=(3, 2), continuous: int = 0) -> lpb.BrainParametersProto:  # fmt: skip
    brain = lpb.BrainParametersProto(brain_name=name, is_training=training, vector_observation_size=size, num_stacked_vector_observations=stack)
    if continuous:
        brain.vector_action_size.append(continuous)
        brain.vector_action_space_type = lpb.continuous
    else:
        brain.vector_action_size.extend(branches)
        brain.vector_action_space_type = lpb.discrete
    for h, w, gray in cameras:
        brain.camera_resolutions.add(height=h, width=w, gray_scale=gray)
    return brain


def _handshake_10(*brains: lpb.BrainParametersProto) -> lpb.UnityMessageProto:
    message = lpb.UnityMessageProto(header=lpb.HeaderProto(status=200))
    init = message.unity_output.rl_initialization_output
    init.name, init.version, init.log_path = "Academy", "API-10", "/tmp/player.log"
    init.brain_parameters.extend(brains)
    init.environment_parameters.float_parameters["gravity"] = 9.81
    return message


def _images(k: int) -> tuple[np.ndarray, np.ndarray]:
    colour = np.random.default_rng(k).integers(0, 256, (8, 6, 3), dtype=np.uint8)
    gray = np.full((4, 5, 1), 10 * k, np.uint8)
    return colour, gray


SPOKEN = "API-4, API-5, API-6, API-7, API-8, API-9, API-10, API-11"


def test_exact_version_checks() -> None:
    for n in range(4, 12):
        assert legacy.detect_era(f"API-{n}") is legacy.LEGACY_ERAS[f"API-{n}"]
    assert legacy.detect_era("API-10") is legacy.API_10 and legacy.detect_era("API-4") is legacy.API_4
    assert legacy.detect_era("1.5.0") is None  # the modern codec's
    for version in ("API-3", "API-12", "API-10 ", "API-10.1", "API-1", "API-04", "API-4a"):
        with pytest.raises(UnityVersionError) as info:
            legacy.detect_era(version)
        assert repr(version) in str(info.value) and SPOKEN in str(info.value) and "1.5.0" in str(info.value)
    first = _handshake_10(_brain())
    first.unity_output.rl_initialization_output.version = "API-3"
    with pytest.raises(UnityVersionError, match="'API-3'"):
        legacy.read_legacy_handshake(first.SerializeToString())
    with pytest.raises(UnityProtocolError, match="initialization output"):
        legacy.read_legacy_handshake(b"")
    with pytest.raises(UnityProtocolError, match="not an ML-Agents 0.x handshake"):
        legacy.read_legacy_handshake(b"\x0a\xff\xff\xff\xff\x0f")


def test_era_facts() -> None:
    assert legacy.API_10.method_path == "/communicator_objects.UnityToExternal/Exchange" and legacy.API_10.editor_port == 5005
    assert legacy.API_11.method_path == "/communicator_objects.UnityToExternalProto/Exchange" and legacy.API_11.editor_port == 5004


def test_spaces_equal_camera_resolutions_and_stacked_vector() -> None:
    hs = legacy.read_legacy_handshake(_handshake_10(_brain(), _brain("Teacher", training=False, cameras=(), continuous=2)).SerializeToString())
    assert hs.era is legacy.API_10 and hs.name == "Academy" and hs.log_path == "/tmp/player.log"
    assert hs.trained == {"Learner"} and hs.reset_parameters == pytest.approx({"gravity": 9.81})
    learner, teacher = hs.specs["Learner"], hs.specs["Teacher"]
    assert learner.name == "Learner"
    cameras = [o.camera_resolution for o in learner.observation_specs if o.is_visual]
    assert cameras == [CameraResolution(8, 6, False), CameraResolution(4, 5, True)]
    shapes = [o.space().shape for o in learner.observation_specs]
    assert shapes == [(8, 6, 3), (4, 5, 1), (6,)]  # cameras first, then 3 floats x 2 stacked
    assert [o.space().dtype for o in learner.observation_specs[:2]] == [np.uint8, np.uint8]
    assert learner.action_spec.discrete_branches == (3, 2) and learner.action_space().nvec.tolist() == [3, 2]
    assert teacher.action_spec.continuous_size == 2 and [o.shape for o in teacher.observation_specs] == [(6,)]


def _info_10(k: int, *, done: bool = False, max_step: bool = False, mask=None) -> lpb.AgentInfoProto:
    colour, gray = _images(k)
    info = lpb.AgentInfoProto(id=k, reward=0.5 * k, done=done, max_step_reached=max_step, stacked_vector_observation=[k, 1, 2, 3, 4, 5 + k],
                              stored_vector_actions=[1.0, 0.0], visual_observations=[_png(colour), _png(gray)])  # fmt: skip
    if mask is not None:
        info.action_mask.extend(mask)
    return info


def test_agent_infos_to_batches_with_masks_and_done() -> None:
    hs = legacy.read_legacy_handshake(_handshake_10(_brain()).SerializeToString())
    specs = dict(hs.specs)
    output = lpb.UnityOutputProto()
    infos = output.rl_output.agentInfos["Learner"].value
    infos.extend([_info_10(0, mask=[False, True, False, True, False]), _info_10(1, done=True, max_step=True, mask=[True]), _info_10(2, done=True)])
    data = output.SerializeToString()
    batches = legacy.decode_legacy_output(lpb.UnityOutputProto.FromString(data), specs, legacy.API_10)
    decision, terminal = batches["Learner"]
    assert decision.agent_id.tolist() == [0, 1, 2]  # every info asks for an action, in order
    assert decision.reward.tolist() == [0.0, 0.0, 0.0]  # done agents' rewards end their episode
    assert terminal.agent_id.tolist() == [1, 2] and terminal.reward.tolist() == [0.5, 1.0]
    assert terminal.interrupted.tolist() == [True, False] and terminal.action_mask is None
    for k in range(3):
        colour, gray = _images(k)
        np.testing.assert_array_equal(decision.obs[0][k], colour)
        np.testing.assert_array_equal(decision.obs[1][k], gray)
    assert decision.obs[0].dtype == np.uint8 and decision.obs[1].shape == (3, 4, 5, 1)
    np.testing.assert_array_equal(decision.obs[2][2], np.float32([2, 1, 2, 3, 4, 7]))
    np.testing.assert_array_equal(terminal.obs[2], decision.obs[2][1:])  # the next episode's first observation (§7.1)
    assert decision.action_mask.tolist()[0] == [True, False, True, False, True]
    assert decision.action_mask.tolist()[1] == [True] * 5  # a mask of another length is ignored, as the era did
    # A brain with no agents in the message: empty batches shaped for its spec.
    empty = legacy.decode_legacy_output(lpb.UnityOutputProto(), specs, legacy.API_10)["Learner"]
    assert len(empty[0]) == len(empty[1]) == 0 and empty[0].obs[0].shape == (0, 8, 6, 3)


def test_gray_camera_is_the_mean_of_rgb() -> None:
    hs = legacy.read_legacy_handshake(_handshake_10(_brain(cameras=((2, 2, True),), size=0, branches=(2,))).SerializeToString())
    rgb = np.array([[[0, 30, 60], [90, 90, 90]], [[255, 255, 255], [3, 0, 0]]], np.uint8)
    output = lpb.UnityOutputProto()
    output.rl_output.agentInfos["Learner"].value.add(id=4, visual_observations=[_png(rgb)])
    decision, _ = legacy.decode_legacy_output(output, dict(hs.specs), legacy.API_10)["Learner"]
    assert decision.obs[0][0, :, :, 0].tolist() == [[30, 90], [255, 1]] and len(decision.obs) == 1


def _output_11(announce: bool, *, agents: int = 2) -> lpb.UnityOutputProto:
    output = lpb.UnityOutputProto()
    if announce:
        brain = _brain("Ball", cameras=(), size=4, stack=1, continuous=2)
        brain.ClearField("camera_resolutions")  # reserved in 0.11
        output.rl_initialization_output.brain_parameters.append(brain)
        output.rl_initialization_output.brain_parameters.append(_brain("Silent", cameras=()))  # no agents: ignored
    for k in range(agents):
        info = output.rl_output.agentInfos["Ball"].value.add(id=k, reward=1.0, stacked_vector_observation=[k, k, k, k])
        for shape in ((6, 4, 3), (6, 4, 1)):
            image = np.full(shape, 40 + k, np.uint8)
            info.compressed_observations.add(shape=shape, compression_type=lpb.PNG, data=_png(image))
    return output


def test_api_11_brains_are_announced_with_their_first_agents() -> None:
    first = lpb.UnityMessageProto()
    first.unity_output.rl_initialization_output.version = "API-11"
    hs = legacy.read_legacy_handshake(first.SerializeToString())
    assert hs.era is legacy.API_11 and hs.specs == {} and hs.trained is None
    specs: dict = {}
    with pytest.raises(UnityProtocolError, match="before the brain was announced"):
        legacy.decode_legacy_output(_output_11(False), specs, legacy.API_11)
    decision, terminal = legacy.decode_legacy_output(_output_11(True), specs, legacy.API_11)["Ball"]
    assert list(specs) == ["Ball"]
    assert [o.camera_resolution for o in specs["Ball"].observation_specs[:2]] == [CameraResolution(6, 4, False), CameraResolution(6, 4, True)]
    assert decision.obs[1].shape == (2, 6, 4, 1) and int(decision.obs[0][1].max()) == 41 and len(terminal) == 0
    assert decision.action_mask is None
    again = legacy.decode_legacy_output(_output_11(False, agents=1), specs, legacy.API_11)["Ball"][0]
    np.testing.assert_array_equal(again.obs[2], np.zeros((1, 4), np.float32))
    bad = _output_11(False)
    bad.rl_output.agentInfos["Ball"].value[0].compressed_observations[0].shape[:] = [6, 5, 3]
    with pytest.raises(UnityProtocolError, match="shape"):
        legacy.decode_legacy_output(bad, specs, legacy.API_11)


def test_step_actions_round_trip() -> None:
    hs = legacy.read_legacy_handshake(_handshake_10(_brain(), _brain("Teacher", training=False, cameras=(), continuous=2)).SerializeToString())
    data = legacy.encode_legacy_step({"Learner": (np.zeros((2, 0)), np.array([[2, 1], [0, 0]]))}, hs.specs, hs.trained)
    message = lpb.UnityMessageProto.FromString(data)
    assert message.header.status == 200 and message.unity_input.rl_input.command == lpb.STEP
    actions = message.unity_input.rl_input.agent_actions
    assert list(actions) == ["Learner"] and [list(a.vector_actions) for a in actions["Learner"].value] == [[2.0, 1.0], [0.0, 0.0]]
    with pytest.raises(ValueError, match="Teacher"):
        legacy.encode_legacy_step({"Teacher": (np.zeros((1, 2)), np.zeros((1, 0)))}, hs.specs, hs.trained)
    with pytest.raises(ValueError, match="shapes"):
        legacy.encode_legacy_step({"Learner": (np.zeros((2, 0)), np.zeros((2, 3)))}, hs.specs, hs.trained)
    cont = np.float32([[0.25, -1.0]])
    data = legacy.encode_legacy_step({"Teacher": (cont, np.zeros((1, 0)))}, hs.specs, None)  # 0.11: every brain is trained
    assert list(lpb.UnityMessageProto.FromString(data).unity_input.rl_input.agent_actions["Teacher"].value[0].vector_actions) == [0.25, -1.0]


def test_reset_and_handshake_response() -> None:
    data = legacy.encode_legacy_reset({"gravity": 2.5}, train_mode=False, announced={"gravity": 9.81, "size": 1.0})
    rl_input = lpb.UnityMessageProto.FromString(data).unity_input.rl_input
    assert rl_input.command == lpb.RESET and not rl_input.is_training and dict(rl_input.environment_parameters.float_parameters) == {"gravity": 2.5}
    assert lpb.UnityMessageProto.FromString(legacy.encode_legacy_reset({}, train_mode=True, announced={})).unity_input.rl_input.is_training
    with pytest.raises(ValueError, match="announced"):
        legacy.encode_legacy_reset({"wind": 1.0}, train_mode=True, announced={"gravity": 9.81})
    for value in (float("nan"), "1.0", None):
        with pytest.raises(ValueError, match="finite number"):
            legacy.encode_legacy_reset({"gravity": value}, train_mode=True, announced={"gravity": 9.81})
    assert lpb.UnityMessageProto.FromString(legacy.legacy_handshake_response(-7)).unity_input.rl_initialization_input.seed == -7
    with pytest.raises(ValueError, match="int32"):
        legacy.legacy_handshake_response(1 << 31)


def test_hostile_sizes_are_refused_before_allocating() -> None:
    for brain, match in (
        (_brain(cameras=((100_000, 100_000, False),)), "values accepted"),
        (_brain(cameras=((4, 4, False),) * 300), "cameras"),
        (_brain(cameras=((0, 4, False),)), "positive"),
        (_brain(size=-3), "negative"),
        (_brain(size=1 << 30, stack=1 << 30), "values accepted"),
        (_brain(branches=(0, 2)), "announced with"),
    ):
        with pytest.raises(UnityProtocolError, match=match):
            legacy.read_legacy_handshake(_handshake_10(brain).SerializeToString())
    with pytest.raises(UnityProtocolError, match="brains"):
        legacy.read_legacy_handshake(_handshake_10(*[_brain(f"b{i}") for i in range(MAX_BEHAVIORS + 1)]).SerializeToString())
    hs = legacy.read_legacy_handshake(_handshake_10(_brain(cameras=((2048, 2048, False),), size=0)).SerializeToString())
    output = lpb.UnityOutputProto()
    output.rl_output.agentInfos["Learner"].value.extend(lpb.AgentInfoProto() for _ in range(MAX_DECODED_BYTES // (2048 * 2048 * 3 * 2) + 1))
    with pytest.raises(UnityProtocolError, match="MB of arrays"):
        legacy.decode_legacy_output(output, dict(hs.specs), legacy.API_10)
    many = lpb.UnityOutputProto()
    for i in range(MAX_BEHAVIORS + 1):
        many.rl_output.agentInfos[f"b{i}"].value.add()
    with pytest.raises(UnityProtocolError, match="brains"):
        legacy.decode_legacy_output(many, {}, legacy.API_10)
    small = legacy.read_legacy_handshake(_handshake_10(_brain(cameras=((2, 2, False),), size=1, stack=1)).SerializeToString())
    output = lpb.UnityOutputProto()
    info = output.rl_output.agentInfos["Learner"].value.add(stacked_vector_observation=[1.0], visual_observations=[_png(np.zeros((64, 64, 3), np.uint8))])
    with pytest.raises(UnityProtocolError, match="pixels"):  # a PNG larger than its camera is not inflated
        legacy.decode_legacy_output(output, dict(small.specs), legacy.API_10)
    info.visual_observations[0] = _png(np.zeros((2, 2, 3), np.uint8))
    info.stacked_vector_observation.append(float("inf"))
    with pytest.raises(UnityProtocolError, match="floats"):
        legacy.decode_legacy_output(output, dict(small.specs), legacy.API_10)
    info.stacked_vector_observation[:] = [float("nan")]
    with pytest.raises(UnityProtocolError, match="NaN"):
        legacy.decode_legacy_output(output, dict(small.specs), legacy.API_10)
    with pytest.raises(UnityProtocolError, match="not an ML-Agents 0.x message"):
        legacy.parse_legacy_message(b"\x0a\xff\xff\xff\xff\x0f")


# -- Cross-check against the seed-era library (mlagents-envs 0.11.0), run in its own interpreter.

SEED_PYTHON = os.environ.get("SEED_ERA_PYTHON", "")
_SEED_SCRIPT = r"""
import json, sys
import numpy as np
from mlagents.envs.brain import BrainInfo, BrainParameters
from mlagents.envs.communicator_objects.unity_message_pb2 import UnityMessageProto
from mlagents.envs.communicator_objects.unity_output_pb2 import UnityOutputProto
from mlagents.envs.environment import UnityEnvironment

ours = json.load(sys.stdin)
output = UnityOutputProto.FromString(bytes.fromhex(ours["output"]))
brain = output.rl_initialization_output.brain_parameters[0]
infos = output.rl_output.agentInfos[brain.brain_name].value
params = BrainParameters.from_proto(brain, infos[0])
info = BrainInfo.from_agent_proto(0, list(infos), params)
env = UnityEnvironment.__new__(UnityEnvironment)
env._n_agents = {brain.brain_name: len(infos)}
n = len(infos)
step = env._generate_step_input({brain.brain_name: ours["actions"]}, {brain.brain_name: []}, {brain.brain_name: [""] * n}, {},
                                {brain.brain_name: [None] * n})
reset = env._generate_reset_input(False, {"gravity": 2.5}, None)
response = UnityMessageProto.FromString(bytes.fromhex(ours["handshake_response"]))
our_step = UnityMessageProto.FromString(bytes.fromhex(ours["step"]))
json.dump({
    "cameras": [[c.height, c.width, c.num_channels] for c in params.camera_resolutions],
    "vector": info.vector_observations.tolist(), "visual": [np.array(v).tolist() for v in info.visual_observations],
    "mask": info.action_masks.tolist(), "rewards": info.rewards, "done": info.local_done, "max": info.max_reached,
    "step": step.SerializeToString().hex(), "reset": reset.SerializeToString().hex(), "seed": response.unity_input.rl_initialization_input.seed,
    "our_actions": [list(a.vector_actions) for a in our_step.unity_input.rl_input.agent_actions[brain.brain_name].value],
}, sys.stdout)
"""


@pytest.mark.skipif(not SEED_PYTHON or not Path(SEED_PYTHON).exists(), reason="set SEED_ERA_PYTHON to a Python with mlagents-envs 0.11.0")
def test_encoding_matches_the_seed_era_library() -> None:
    output = lpb.UnityOutputProto()
    output.rl_initialization_output.brain_parameters.add(brain_name="Grid", vector_observation_size=2, num_stacked_vector_observations=2,
                                                         vector_action_size=[3, 2], vector_action_space_type=lpb.discrete, is_training=True)  # fmt: skip
    pictures = [RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8) for _ in range(2)]
    for k in range(2):
        info = output.rl_output.agentInfos["Grid"].value.add(id=k, reward=0.25 * k, done=k == 1, max_step_reached=k == 1,
                                                              stacked_vector_observation=[k, 1, 2, 3], action_mask=[k == 0] * 3 + [False] * 2)  # fmt: skip
        info.compressed_observations.add(shape=[5, 7, 3], compression_type=lpb.PNG, data=_png(pictures[k]))
        info.compressed_observations.add(shape=[5, 7, 1], compression_type=lpb.PNG, data=_png(pictures[k]))
    specs: dict = {}
    decision, terminal = legacy.decode_legacy_output(output, specs, legacy.API_11)["Grid"]
    actions = np.array([[2, 1], [0, 1]])
    step = legacy.encode_legacy_step({"Grid": (np.zeros((2, 0)), actions)}, specs, None)
    ours = {"output": output.SerializeToString().hex(), "handshake_response": legacy.legacy_handshake_response(1234).hex(), "step": step.hex(),
            "actions": actions.astype(float).ravel().tolist()}  # fmt: skip
    env = dict(os.environ, PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION="python")
    run = subprocess.run([SEED_PYTHON, "-c", _SEED_SCRIPT], input=json.dumps(ours), capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    theirs = json.loads(run.stdout)
    assert theirs["cameras"] == [list(o.shape) for o in specs["Grid"].observation_specs if o.is_visual]
    np.testing.assert_array_equal(np.float32(theirs["vector"]), decision.obs[2])
    for j in range(2):  # theirs: floats in [0, 1], gray as the RGB mean; ours: uint8 of the same pixels
        np.testing.assert_allclose(np.array(theirs["visual"][j]) * 255.0, decision.obs[j], atol=0.5)
    np.testing.assert_array_equal(np.array(theirs["mask"]) == 1, decision.action_mask)
    assert theirs["done"] == [False, True] and theirs["max"] == [False, True]
    assert theirs["rewards"] == [0.0, 0.25] and terminal.reward.tolist() == [0.25]
    assert theirs["seed"] == 1234 and theirs["our_actions"] == [[2.0, 1.0], [0.0, 1.0]]
    ours_step_input = lpb.UnityMessageProto.FromString(step).unity_input.SerializeToString()
    assert ours_step_input.hex() == theirs["step"]
    reset = legacy.encode_legacy_reset({"gravity": 2.5}, train_mode=False, announced={"gravity": 1.0})
    assert lpb.UnityMessageProto.FromString(reset).unity_input.SerializeToString().hex() == theirs["reset"]


def _codec(*brains: lpb.BrainParametersProto) -> legacy.LegacyCodec:
    return legacy.LegacyCodec(_handshake_10(*brains).SerializeToString())


def _vector_output(rows) -> lpb.UnityMessageProto:
    """(id, first float, done, stored actions) per agent of brain "Learner" (3 floats x 2 stacked)."""
    message = lpb.UnityMessageProto()
    infos = message.unity_output.rl_output.agentInfos["Learner"].value
    for agent, value, done, stored in rows:
        infos.add(id=agent, done=done, stacked_vector_observation=[value, 0, 0, 0, 0, 0], stored_vector_actions=stored)
    return message


def test_the_codec_gives_terminal_steps_the_last_observation_seen_and_reads_stored_actions() -> None:
    codec = _codec(_brain(cameras=(), branches=(3, 2)))
    specs: dict = {}
    steps, side = codec.decode(_vector_output([(0, 1.0, False, []), (1, 2.0, False, [])]), specs, "hwc_uint8")
    assert side == b"" and list(specs) == ["Learner"]
    np.testing.assert_array_equal(steps["Learner"][0].stored_actions[1], [[0, 0], [0, 0]])  # nothing carried out yet
    # Agent 1 sends nothing this time (it decides less often); agent 0's episode ends.
    steps, _ = codec.decode(_vector_output([(0, 9.0, True, [2, 1])]), specs, "hwc_uint8")
    decision, terminal = steps["Learner"]
    assert terminal.obs[0][:, 0].tolist() == [1.0] and decision.obs[0][:, 0].tolist() == [9.0]
    assert decision.stored_actions[1].tolist() == [[2, 1]] and terminal.stored_actions[1].tolist() == [[2, 1]]
    steps, _ = codec.decode(_vector_output([(0, 5.0, False, [0, 0]), (1, 4.0, True, [1, 1])]), specs, "hwc_uint8")
    assert steps["Learner"][1].obs[0][:, 0].tolist() == [2.0]  # agent 1's last observation, from two messages ago
    with pytest.raises(UnityProtocolError, match="outside its branches"):
        codec.decode(_vector_output([(0, 1.0, False, [3, 0])]), specs, "hwc_uint8")
    with pytest.raises(UnityProtocolError, match="outside its branches"):
        codec.decode(_vector_output([(0, 1.0, False, [0.5, 0])]), specs, "hwc_uint8")


def test_train_mode_comes_from_the_time_scale() -> None:
    from gym_unity_il.protocol.channels import EngineConfig

    assert legacy.train_mode_of(None) and legacy.train_mode_of(EngineConfig(time_scale=20))
    assert not legacy.train_mode_of(EngineConfig(time_scale=1)) and legacy.train_mode_of(EngineConfig(quality_level=0))


# -- API-4 ... API-9 (protocol-legacy.md §9): what differs, driven by each era's LegacyEra.

OLDER = [legacy.API_4, legacy.API_5, legacy.API_6, legacy.API_7, legacy.API_8, legacy.API_9]


def test_the_era_table() -> None:
    assert [(e.version, e.release) for e in legacy.LEGACY_ERAS.values()] == [(f"API-{n}", f"0.{n}") for n in range(4, 12)]
    for era in OLDER:
        assert era.method_path == legacy.API_10.method_path == "/communicator_objects.UnityToExternal/Exchange"
        assert era.editor_port == 5005 and era.brains_at_handshake and not era.compressed_images and era.global_done
    assert not legacy.API_10.global_done and not legacy.API_11.global_done
    assert [e.brain_layout for e in OLDER] == [4, 5, 6, 6, 6, 6]
    assert [e.jpeg_images for e in OLDER] == [True] + [False] * 5 and not legacy.API_10.jpeg_images
    assert [e.action_masks for e in OLDER] == [False] + [True] * 5
    assert [e.keeps_stored_actions for e in OLDER] == [False, False, False, False, None, True]  # API-8: 0.8.0/0.8.1 zero, 0.8.2 keeps
    assert [e.applies_first_reset for e in OLDER] == [False] + [True] * 5


def _old_brain(era: legacy.LegacyEra, name: str, brain_type: int, *, branches=(4,), continuous: int = 0, discrete_states: int = 0) -> bytes:
    """A brain as ``era``'s handshake carries it, written field by field with that era's message."""
    size, space = (continuous, lpb.continuous) if continuous else (branches[0], lpb.discrete)
    common = {"num_stacked_vector_observations": 3, "vector_action_space_type": space, "brain_name": name}
    if era.brain_layout == 4:
        observation_space = lpb.discrete if discrete_states else lpb.continuous
        return lpb.BrainParameters4Proto(vector_observation_size=discrete_states or 5, vector_observation_space_type=observation_space,
                                         vector_action_size=size, brain_type=brain_type, **common).SerializeToString()  # fmt: skip
    sizes = [continuous] if continuous else list(branches)
    if era.brain_layout == 5:
        return lpb.BrainParameters5Proto(vector_observation_size=5, vector_action_size=sizes, brain_type=brain_type, **common).SerializeToString()
    brain = lpb.BrainParametersProto(vector_observation_size=5, vector_action_size=sizes, is_training=brain_type == lpb.External, **common)
    return brain.SerializeToString()


def _old_handshake(era: legacy.LegacyEra, brains: list[bytes]) -> bytes:
    message = lpb.LegacyHandshakeProto(header=lpb.HeaderProto(status=200))
    init = message.unity_output.rl_initialization_output
    init.name, init.version = "Academy", era.version
    init.brain_parameters.extend(brains)
    init.environment_parameters.float_parameters["gravity"] = 9.81
    return message.SerializeToString()


def test_api_4_and_api_5_brains_have_their_own_layout() -> None:
    # API-4: action size a plain varint at 3 (tag 0x18), observation space type 7, name 8 (tag 0x42), type 9 (tag 0x48).
    four = _old_brain(legacy.API_4, "B", lpb.External, branches=(6,))
    assert b"\x18\x06" in four and b"\x42\x01B" in four and four.endswith(b"\x48\x02")
    # API-5: repeated sizes (packed at 3), name 7 (tag 0x3a), type 8 (tag 0x40).
    five = _old_brain(legacy.API_5, "B", lpb.External, branches=(3, 2))
    assert b"\x1a\x02\x03\x02" in five and b"\x3a\x01B" in five and five.endswith(b"\x40\x02")
    # Each era's classes misread another's layout without an error (§9.2): only the era decides.
    assert lpb.BrainParametersProto.FromString(four).brain_name == ""
    assert lpb.BrainParametersProto.FromString(five).is_training  # brain_type 2 read as a bool
    for era, raw in ((legacy.API_4, four), (legacy.API_5, five)):
        brain = legacy.read_brain(raw, era)
        assert brain.brain_name == "B" and brain.is_training  # External: trained by Python
        assert legacy.read_brain(legacy.write_brain(brain, era), era) == brain
    assert list(legacy.read_brain(four, legacy.API_4).vector_action_size) == [6]
    assert list(legacy.read_brain(five, legacy.API_5).vector_action_size) == [3, 2]
    with pytest.raises(ValueError, match="0.4 brain has one"):
        legacy.write_brain(legacy.read_brain(five, legacy.API_5), legacy.API_4)


@pytest.mark.parametrize("era", OLDER, ids=[e.release for e in OLDER])
def test_handshake_brains_and_who_trains_them(era: legacy.LegacyEra) -> None:
    """0.4 / 0.5: Python trains External brains only (Player, Heuristic, Internal are visible); 0.6 on: is_training."""
    kinds = {"Person": lpb.Player, "Rules": lpb.Heuristic, "Learner": lpb.External, "Model": lpb.Internal}
    brains = [_old_brain(era, name, kind, continuous=2 if name == "Model" else 0) for name, kind in kinds.items()]
    data = _old_handshake(era, brains)
    codec = legacy.LegacyCodec(data)
    assert codec.unity.communication_version == era.version and codec.unity.package_version == era.release
    specs: dict = {}
    codec.decode(lpb.UnityMessageProto(), specs, "hwc_uint8")
    assert list(specs) == ["Person", "Rules", "Learner", "Model"]
    assert [codec.takes_actions(name) for name in specs] == [False, False, True, False]
    assert specs["Learner"].action_spec.discrete_branches == (4,) and specs["Model"].action_spec.continuous_size == 2
    assert specs["Learner"].observation_specs[0].shape == (15,)  # 5 floats x 3 stacked
    # What the bytes say survives only if they are read as they came (a modern parse re-encodes 0.4 / 0.5 brains).
    from gym_unity_il.proto import communicator_pb2 as pb

    reencoded = pb.UnityMessageProto.FromString(data).SerializeToString()
    if era.brain_layout == 4:  # the action size, a plain varint, comes back packed: 0.4 classes skip it
        with pytest.raises(UnityProtocolError, match="branches"):
            legacy.read_legacy_handshake(reencoded)
    else:  # 0.5: brain types 1, 2 and 3 come back as the bool true, 1 (Heuristic): nothing is External; 0.6 on: nothing lost
        trained = legacy.read_legacy_handshake(reencoded).trained
        assert trained == (set() if era.brain_layout == 5 else {"Learner"})


def test_api_4_discrete_vector_observations_are_one_state_index_per_frame() -> None:
    hs = legacy.read_legacy_handshake(_old_handshake(legacy.API_4, [_old_brain(legacy.API_4, "Grid", lpb.External, discrete_states=20)]))
    spec = hs.specs["Grid"]
    assert [o.shape for o in spec.observation_specs] == [(3,)] and spec.action_spec.discrete_branches == (4,)
    output = lpb.UnityOutputProto()
    output.rl_output.agentInfos["Grid"].value.add(id=0, stacked_vector_observation=[0, 7, 12], stored_vector_actions=[3])
    decision, _ = legacy.decode_legacy_output(output, dict(hs.specs), legacy.API_4)["Grid"]
    assert decision.obs[0].tolist() == [[0, 7, 12]] and decision.stored_actions[1].tolist() == [[3]]


def _jpeg_brain_handshake(gray: bool) -> legacy.LegacyHandshake:
    brain = lpb.BrainParameters4Proto(brain_name="Eye", brain_type=lpb.External, vector_action_size=3)
    brain.vector_observation_space_type = lpb.continuous  # discrete would be 1 float per frame
    brain.camera_resolutions.add(height=16, width=12, gray_scale=gray)
    return legacy.read_legacy_handshake(_old_handshake(legacy.API_4, [brain.SerializeToString()]))


def test_api_4_images_are_jpeg_bounded_like_png() -> None:
    from gym_unity_il.protocol.images import encode_jpeg

    columns, rows = np.meshgrid(np.linspace(0, 250, 12), np.linspace(0, 200, 16))
    smooth = np.stack([columns, rows, np.full((16, 12), 90.0)], axis=2).astype(np.uint8)
    for gray in (False, True):
        hs = _jpeg_brain_handshake(gray)
        output = lpb.UnityOutputProto()
        output.rl_output.agentInfos["Eye"].value.add(id=1, visual_observations=[encode_jpeg(smooth)], action_mask=[True, False, True])
        decision, _ = legacy.decode_legacy_output(output, dict(hs.specs), legacy.API_4)["Eye"]
        expected = smooth.mean(axis=2, keepdims=True) if gray else smooth
        assert decision.obs[0].shape == (1, 16, 12, 1 if gray else 3) and decision.obs[0].dtype == np.uint8
        assert np.abs(decision.obs[0][0].astype(float) - expected).mean() < 6  # lossy, close on a smooth picture
        assert decision.action_mask.all()  # 0.4 has no action masks: a field 11 is not read
        chw = legacy.decode_legacy_output(output, dict(hs.specs), legacy.API_4, image_format="chw_float")["Eye"][0]
        np.testing.assert_allclose(chw.obs[0][0], decision.obs[0][0].transpose(2, 0, 1) / 255.0, atol=1 / 255)
    hs = _jpeg_brain_handshake(False)
    for image, match in (
        (encode_png(smooth)[0], "not JPEG"),  # PNG is API-5's
        (encode_jpeg(np.zeros((64, 64, 3), np.uint8)), "64x64 pixels"),  # never decoded beyond the camera's size
        (encode_jpeg(smooth)[:40], "cannot decode"),
    ):
        output = lpb.UnityOutputProto()
        output.rl_output.agentInfos["Eye"].value.add(id=1, visual_observations=[image])
        with pytest.raises(UnityProtocolError, match=match):
            legacy.decode_legacy_output(output, dict(hs.specs), legacy.API_4)


@pytest.mark.parametrize("era", [*OLDER, legacy.API_10], ids=[e.release for e in [*OLDER, legacy.API_10]])
def test_global_done_ends_every_episode(era: legacy.LegacyEra) -> None:
    """§9.2: with global_done every info is done (the Academy reset them); max_step_reached as each info says. 0.10 never sets it."""
    hs = legacy.read_legacy_handshake(_old_handshake(era, [_old_brain(era, "B", lpb.External, continuous=2)]))
    output = lpb.UnityOutputProto()
    output.rl_output.global_done = True
    infos = output.rl_output.agentInfos["B"].value
    infos.add(id=0, reward=0.5, done=True, max_step_reached=True, stacked_vector_observation=[1] * 15, stored_vector_actions=[0, 0])
    infos.add(id=1, reward=0.25, stacked_vector_observation=[2] * 15, stored_vector_actions=[0.5, 0.5])
    decision, terminal = legacy.decode_legacy_output(output, dict(hs.specs), era)["B"]
    assert decision.agent_id.tolist() == [0, 1] and decision.reward.tolist() == [0.0, (0.0 if era.global_done else 0.25)]
    if era.global_done:
        assert terminal.agent_id.tolist() == [0, 1] and terminal.reward.tolist() == [0.5, 0.25] and terminal.interrupted.tolist() == [True, False]
    else:
        assert terminal.agent_id.tolist() == [0]
    # A done info's stored action before 0.8.2 is zeros (the agent's reset replaced it): decoded as sent.
    assert terminal.stored_actions[0][0].tolist() == [0.0, 0.0]


@pytest.mark.parametrize("era", OLDER, ids=[e.release for e in OLDER])
def test_action_masks_from_api_5(era: legacy.LegacyEra) -> None:
    hs = legacy.read_legacy_handshake(_old_handshake(era, [_old_brain(era, "B", lpb.External, branches=(3,))]))
    output = lpb.UnityOutputProto()
    output.rl_output.agentInfos["B"].value.add(id=0, stacked_vector_observation=[0] * 15, action_mask=[False, True, False])
    decision, _ = legacy.decode_legacy_output(output, dict(hs.specs), era)["B"]
    assert decision.action_mask.tolist() == [[True, not era.action_masks, True]]


def test_api_4_warns_that_the_first_resets_parameters_are_not_applied(caplog) -> None:
    from gym_unity_il.protocol.channels import SEED_PARAMETER

    for era, warns in ((legacy.API_4, True), (legacy.API_5, False)):
        data = lpb.LegacyHandshakeProto.FromString(_old_handshake(era, [_old_brain(era, "B", lpb.External)]))
        data.unity_output.rl_initialization_output.environment_parameters.float_parameters[SEED_PARAMETER] = float("nan")
        codec = legacy.LegacyCodec(data.SerializeToString(), who="Unity executable Banana.x86_64")
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            codec.encode(legacy.RESET, {}, parameters={SEED_PARAMETER: 3})  # the seed alone: the player's, not the Academy's
            assert not caplog.records
            sent = codec.encode(legacy.RESET, {}, parameters={"gravity": 2.0})  # a second RESET applies them: no warning either
            assert not caplog.records
        codec = legacy.LegacyCodec(data.SerializeToString(), who="Unity executable Banana.x86_64")
        with caplog.at_level(logging.WARNING):
            sent = codec.encode(legacy.RESET, {}, parameters={"gravity": 2.0, SEED_PARAMETER: 3})
        assert dict(lpb.UnityMessageProto.FromString(sent).unity_input.rl_input.environment_parameters.float_parameters)["gravity"] == 2.0
        assert ("does not apply the first reset's parameters (gravity)" in caplog.text) == warns
        assert ("Banana.x86_64" in caplog.text and "0.4" in caplog.text) == warns
