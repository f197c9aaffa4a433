"""The scene player as an ML-Agents 0.4 ... 0.11 Unity player (scenes/legacy_player.py).

Three levels: the wire driven in-process and read back with the trainer's codec
(protocol/legacy.py), for every era; the player process against a tiny trainer on the era's
method path (a plain gRPC server in the test); and the player against the seed-era libraries
themselves, mlagents-envs 0.11.0 (``SEED_ERA_PYTHON``) and 0.10.1 (``SEED10_ERA_PYTHON``), each
in its own interpreter: those tests are skipped when the variable does not name a Python
(unityagents 0.4.0 against the 0.4 player: tests/link/test_older_eras.py).
"""

from __future__ import annotations

import io
import json
import math
import os
import queue
import subprocess
import sys
from concurrent import futures
from pathlib import Path

import grpc
import numpy as np
import pytest
from PIL import Image

from gym_unity_il.errors import ConfigError
from gym_unity_il.link.launcher import ChildProcess, environment_with_import_path
from gym_unity_il.proto import legacy_pb2 as lpb
from gym_unity_il.protocol import legacy
from gym_unity_il.protocol.channels import SEED_PARAMETER
from gym_unity_il.protocol.images import encode_jpeg
from gym_unity_il.scenes.ball import BallExpert, BallScene
from gym_unity_il.scenes.base import AgentBatch
from gym_unity_il.scenes.grid import GridScene
from gym_unity_il.scenes.hybrid import HybridScene
from gym_unity_il.scenes.legacy_player import LegacyBrain, LegacyWire, merge_episode_ends
from gym_unity_il.scenes.registry import scene_command
from gym_unity_il.spec import ActionSpec, BehaviorSpec, ObservationSpec

CLOSING = lpb.UnityMessageProto(header=lpb.HeaderProto(status=400)).SerializeToString()
ERAS = list(legacy.LEGACY_ERAS.values())
ERA_IDS = [era.release for era in ERAS]
#: The eras whose handshake lists the brains (Player brains visible): 0.4 ... 0.10.
HANDSHAKE_ERAS = [era for era in ERAS if era.brains_at_handshake]


# -- The wire in-process, read back with the trainer's codec


class InProcess:
    """A LegacyWire and its scene driven directly, as the player does, without gRPC."""

    def __init__(
        self, era: legacy.LegacyEra, scene_class: type, kwargs: dict, *, stacked: int = 1, seed: int = 0, academy_max_steps: int = 0
    ) -> None:
        self.era = era
        self.wire = LegacyWire.for_scene(era, scene_class, kwargs, stacked=stacked, academy_max_steps=academy_max_steps)
        self.handshake = legacy.read_legacy_handshake(self.wire.hello().SerializeToString())
        self.specs = dict(self.handshake.specs)
        self.scene = scene_class(seed=seed, **kwargs)
        self.wire.scene_built(self.scene)
        self.scene.reset()
        self.wire.scene_reset()
        self.message = self.wire.output(self.scene)
        self.decoded()  # 0.11: the brains are announced with their first agents

    def decoded(self) -> dict:
        return legacy.decode_legacy_output(self.message.unity_output, self.specs, self.era)

    def infos(self, brain: str) -> list[lpb.AgentInfoProto]:
        return list(self.message.unity_output.rl_output.agentInfos[brain].value)

    def step(self, rl_input: lpb.UnityRLInputProto) -> None:
        self.scene.act(self.wire.actions(rl_input, self.scene))
        self.message = self.wire.output(self.scene)


def _step_input(actions: dict, specs: dict, trained: frozenset | None) -> lpb.UnityRLInputProto:
    return lpb.UnityMessageProto.FromString(legacy.encode_legacy_step(actions, specs, trained)).unity_input.rl_input


def _sent_pixels(images: np.ndarray, era: legacy.LegacyEra) -> np.ndarray:
    """What the era's images hold once decoded: the images themselves (PNG), or Pillow's decoding of
    their JPEG (0.4), gray as the rounded mean of the RGB channels."""
    if not era.jpeg_images:
        return images
    decoded = np.stack([np.asarray(Image.open(io.BytesIO(encode_jpeg(image)))) for image in images])
    return decoded if images.shape[-1] == 3 else np.rint(decoded.mean(axis=-1, keepdims=True)).astype(np.uint8)


@pytest.mark.parametrize("era", ERAS, ids=ERA_IDS)
def test_output_decodes_back_to_the_scene_records(era: legacy.LegacyEra) -> None:
    """One info per agent: the terminal record and the new episode's decision record become one done info."""
    rng = np.random.default_rng(3)
    sensors = (ObservationSpec((2,)), ObservationSpec((5, 4, 3)), ObservationSpec((3,)), ObservationSpec((5, 4, 1)))
    branches = (5,) if era.brain_layout == 4 else (3, 2)  # a 0.4 brain has one branch
    spec = BehaviorSpec("Learner?team=0", sensors, ActionSpec.create_discrete(branches))
    n = 3  # agent 7 ends its episode (terminal, then decision), agent 2 decides
    observations = [
        rng.normal(size=(n, 2)).astype(np.float32),
        rng.integers(0, 256, (n, 5, 4, 3), dtype=np.uint8),
        rng.normal(size=(n, 3)).astype(np.float32),
        rng.integers(0, 256, (n, 5, 4, 1), dtype=np.uint8),
    ]
    mask = rng.random((n, 5)) < 0.7
    batch = AgentBatch(
        agent_ids=np.array([7, 7, 2], np.int32),
        observations=observations,
        rewards=np.array([0.5, 0.0, 0.25], np.float32),
        done=np.array([True, False, False]),
        max_step_reached=np.array([True, False, False]),
        action_mask=mask,
    )
    merged, rows = merge_episode_ends(batch)
    assert merged.agent_ids.tolist() == [7, 2] and rows.tolist() == [0, 1]
    alone = AgentBatch(np.array([5, 3]), [np.arange(2.0)[:, None]], np.array([1.0, 0.0]), np.array([True, False]), np.array([False, False]))
    merged, rows = merge_episode_ends(alone)  # an agent that ended without a new episode comes after those deciding
    assert merged.agent_ids.tolist() == [3, 5] and merged.done.tolist() == [False, True] and rows.tolist() == [0]
    wire = LegacyWire(era, {spec.name: LegacyBrain.of(spec, stacked=1, trained=True)}, {})
    specs = dict(legacy.read_legacy_handshake(wire.hello().SerializeToString()).specs)
    assert list(specs) == (["Learner"] if era.brains_at_handshake else [])
    decision, terminal = legacy.decode_legacy_output(wire.build({spec.name: batch}).unity_output, specs, era)["Learner"]
    assert [o.shape for o in specs["Learner"].observation_specs] == [(5, 4, 3), (5, 4, 1), (5,)]
    new = [1, 2]  # the decision records: the new episode's observations
    assert decision.agent_id.tolist() == [7, 2]
    np.testing.assert_array_equal(decision.obs[0], _sent_pixels(observations[1][new], era))
    np.testing.assert_array_equal(decision.obs[1], _sent_pixels(observations[3][new], era))  # gray: RGB of equal channels, averaged back
    np.testing.assert_array_equal(decision.obs[2], np.concatenate([observations[0], observations[2]], axis=1)[new])
    np.testing.assert_array_equal(decision.action_mask, mask[new] if era.action_masks else np.ones((2, 5), bool))  # 0.4: no masks
    assert decision.reward.tolist() == [0.0, 0.25]
    assert terminal.agent_id.tolist() == [7] and terminal.reward.tolist() == [0.5] and terminal.interrupted.tolist() == [True]
    np.testing.assert_array_equal(terminal.obs[0], decision.obs[0][[0]])  # the era sends the next episode's first observation
    assert decision.stored_actions[1].tolist() == [[0] * len(branches)] * 2  # nothing carried out yet
    info = wire.build({spec.name: batch}).unity_output.rl_output.agentInfos["Learner"].value[1]
    assert len(info.action_mask) == (5 if era.action_masks else 0)
    image = info.compressed_observations[0].data if era.compressed_images else info.visual_observations[0]
    assert image.startswith(b"\xff\xd8\xff" if era.jpeg_images else b"\x89PNG")


@pytest.mark.parametrize("era", ERAS, ids=ERA_IDS)
def test_stacked_vectors_episode_ends_and_stored_actions(era: legacy.LegacyEra) -> None:
    game = InProcess(era, BallScene, {"num_agents": 2, "max_steps": 3}, stacked=3, seed=4)
    trained = game.handshake.trained
    announced = game.message.unity_output.rl_initialization_output.brain_parameters
    assert [b.num_stacked_vector_observations for b in announced] == ([] if era.brains_at_handshake else [3])  # 0.10: in the handshake
    (spec,) = game.specs.values()
    assert spec.name == "3DBall" and spec.observation_specs[0].shape == (24,)
    stacks = {agent: [] for agent in (0, 1)}
    rng = np.random.default_rng(0)
    sent = np.zeros((2, 2), np.float32)
    ended = 0
    for step in range(10):
        records = game.scene.observe()["3DBall?team=0"]
        for agent, obs, done in zip(records.agent_ids.tolist(), records.observations[0], records.done):
            stacks[agent] = [] if done else stacks[agent] + [obs]  # a terminal record: the stack starts again
        infos = game.infos("3DBall")
        assert [i.id for i in infos] == [0, 1]
        for info in infos:
            frames = stacks[info.id][-3:]
            expected = np.concatenate([np.zeros((3 - len(frames)) * 8, np.float32), *frames])
            np.testing.assert_array_equal(np.float32(info.stacked_vector_observation), expected)
            zeroed = info.done and era.keeps_stored_actions is not True  # before 0.8.2 the agent's reset zeroes its action
            np.testing.assert_array_equal(np.float32(info.stored_vector_actions), 0.0 * sent[info.id] if zeroed else sent[info.id])
            if info.done:
                ended += 1
                assert info.max_step_reached and math.isclose(info.reward, 0.1, rel_tol=1e-6) and len(stacks[info.id]) == 1
        sent = rng.uniform(-1, 1, (2, 2)).astype(np.float32)
        game.step(_step_input({"3DBall": (sent, np.zeros((2, 0), np.int32))}, game.specs, trained))
    assert ended == 6  # both agents after 3, 6 and 9 actions


@pytest.mark.parametrize("era", HANDSHAKE_ERAS, ids=[era.release for era in HANDSHAKE_ERAS])
def test_the_teacher_is_a_player_brain_decided_in_the_player_through_0_10(era: legacy.LegacyEra) -> None:
    game = InProcess(era, BallScene, {"num_agents": 2, "teacher_student": True, "max_steps": 4}, seed=1)
    assert game.handshake.trained == frozenset({"Student"})
    raw = game.wire.hello().unity_output.rl_initialization_output.brain_parameters
    brains = {brain.brain_name: brain.is_training for brain in (legacy.read_brain(data, era) for data in raw)}
    assert brains == {"Teacher": False, "Student": True}
    if era.brain_layout < 6:  # 0.4 / 0.5: a brain_type, Player for the teacher, External for the student
        layout = lpb.BrainParameters4Proto if era.brain_layout == 4 else lpb.BrainParameters5Proto
        assert [layout.FromString(data).brain_type for data in raw] == [lpb.Player, lpb.External]
    expert = BallExpert()
    for _ in range(6):
        seen = np.float32([i.stacked_vector_observation for i in game.infos("Teacher")])
        rl_input = _step_input({"Student": (np.ones((2, 2)), np.zeros((2, 0)))}, game.specs, game.handshake.trained)
        rl_input.agent_actions["Teacher"].value.add(vector_actions=[-1.0, -1.0])  # the trainer cannot drive a Player brain
        game.step(rl_input)
        (teacher,) = game.infos("Teacher")
        zeroed = teacher.done and era.keeps_stored_actions is not True  # an episode's end (max_steps 4) before 0.8.2
        played = expert.predict(seen[0])[0]
        np.testing.assert_allclose(teacher.stored_vector_actions, 0 * played if zeroed else played, rtol=1e-6)
        assert [list(i.stored_vector_actions) for i in game.infos("Student")] == [[0.0, 0.0] if zeroed else [1.0, 1.0]] * 2
    eleven = InProcess(legacy.API_11, BallScene, {"num_agents": 2, "teacher_student": True})
    assert eleven.handshake.trained is None  # 0.11: every brain is trained (announced with is_training true)
    assert all(b.is_training for b in eleven.message.unity_output.rl_initialization_output.brain_parameters)


def test_handshake_parameters_and_reset_input() -> None:
    wire = LegacyWire.for_scene(legacy.API_11, BallScene, {})
    hello = wire.hello().unity_output.rl_initialization_output
    assert hello.version == "API-11" and list(hello.brain_parameters) == []
    floats = dict(hello.environment_parameters.float_parameters)
    assert math.isclose(floats["gravity"], 9.81, rel_tol=1e-6) and math.isnan(floats[SEED_PARAMETER])
    reset = lpb.UnityMessageProto.FromString(legacy.encode_legacy_reset({"gravity": 2.0}, train_mode=True, announced=floats))
    rl_input = reset.unity_input.rl_input
    rl_input.environment_parameters.float_parameters[SEED_PARAMETER] = math.nan  # what the era's library sends back
    assert wire.read_input(rl_input) == [("gravity", 2.0)]
    rl_input.environment_parameters.float_parameters[SEED_PARAMETER] = 5.0
    assert sorted(wire.read_input(rl_input)) == [("gravity", 2.0), (SEED_PARAMETER, 5.0)]
    rl_input.command = lpb.STEP
    assert wire.read_input(rl_input) == []  # a 0.x Academy applies reset parameters on RESET only


def test_a_0_4_academy_applies_the_first_resets_seed_only() -> None:
    """§9.2: the first input's reset parameters are not applied by a 0.4 Academy; this player's seed is."""
    reset = lpb.UnityRLInputProto(command=lpb.RESET)
    reset.environment_parameters.float_parameters.update({"gravity": 2.0, SEED_PARAMETER: 5.0})
    for era, first in ((legacy.API_4, [(SEED_PARAMETER, 5.0)]), (legacy.API_5, [("gravity", 2.0), (SEED_PARAMETER, 5.0)])):
        wire = LegacyWire.for_scene(era, BallScene, {})
        assert sorted(wire.read_input(reset)) == first
        assert sorted(wire.read_input(reset)) == [("gravity", 2.0), (SEED_PARAMETER, 5.0)]  # every later RESET applies them


@pytest.mark.parametrize("era", [legacy.API_4, legacy.API_9], ids=["0.4", "0.9"])
def test_academy_max_steps_end_every_episode_with_global_done(era: legacy.LegacyEra) -> None:
    """§9.2: M actions after its reset the Academy is done: global_done, every agent done with
    max_step_reached and its last reward, the scene reset (stacks start again); the trainer's next STEP goes on."""
    game = InProcess(era, BallScene, {"num_agents": 2, "teacher_student": True}, stacked=2, seed=3, academy_max_steps=4)
    trained = game.handshake.trained
    sent = np.float32([[0.5, -0.5], [0.25, 0.75]])
    for _ in range(2):
        for step in range(4):
            game.step(_step_input({"Student": (sent, np.zeros((2, 0)))}, game.specs, trained))
            assert game.message.unity_output.rl_output.global_done == (step == 3)
        first = game.scene.observe()  # the reset scene: every agent's first observation
        for brain in ("Teacher", "Student"):
            infos = game.infos(brain)
            assert all(i.done and i.max_step_reached and math.isclose(i.reward, 0.1, rel_tol=1e-6) for i in infos)  # the ball stayed up
            stacks = np.float32([i.stacked_vector_observation for i in infos])
            assert not stacks[:, :8].any()  # a fresh stack: zeros, then the new episode's first frame
            np.testing.assert_array_equal(stacks[:, 8:], first[f"{brain}?team=0"].observations[0])
        stored = np.float32([i.stored_vector_actions for i in game.infos("Student")])
        np.testing.assert_array_equal(stored, sent if era.keeps_stored_actions else 0 * sent)
        decision, terminal = game.decoded()["Student"]
        assert decision.agent_id.tolist() == terminal.agent_id.tolist() == [1, 2] and terminal.interrupted.all()


def test_scenes_0_x_cannot_serve_are_refused() -> None:
    with pytest.raises(ConfigError, match="continuous and discrete"):
        LegacyWire.for_scene(legacy.API_10, HybridScene, {})
    with pytest.raises(ConfigError, match="stacked_vectors"):
        LegacyWire.for_scene(legacy.API_10, BallScene, {}, stacked=0)
    two = BehaviorSpec("Two?team=0", (ObservationSpec((2,)),), ActionSpec.create_discrete((3, 2)))
    with pytest.raises(ConfigError, match="0.4 brain has one"):
        LegacyWire(legacy.API_4, {two.name: LegacyBrain.of(two, stacked=1, trained=True)}, {})
    LegacyWire(legacy.API_5, {two.name: LegacyBrain.of(two, stacked=1, trained=True)}, {})  # branches from 0.5 on
    for era in (legacy.API_10, legacy.API_11):
        with pytest.raises(ConfigError, match="no Max Steps"):
            LegacyWire.for_scene(era, BallScene, {}, academy_max_steps=5)
    with pytest.raises(ConfigError, match="integer >= 0"):
        LegacyWire.for_scene(legacy.API_9, BallScene, {}, academy_max_steps=-1)


# -- Registry and command line


def test_scene_kwargs_choose_the_protocol() -> None:
    argv = scene_command("ball", {"protocol": "0.10", "stacked_vectors": 3, "num_agents": 2}).argv
    assert argv[argv.index("--scene-kwargs") + 1] == '{"num_agents": 2}'
    assert argv[-4:] == ("--protocol", "0.10", "--stacked-vectors", "3")
    assert "--protocol" not in scene_command("ball", {}).argv
    for release in ("0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "0.11"):
        assert scene_command("ball", {"protocol": release}).argv[-2:] == ("--protocol", release)
    with pytest.raises(ConfigError, match="'0.4', '0.5', '0.6', '0.7', '0.8', '0.9', '0.10', '0.11'"):
        scene_command("ball", {"protocol": "1.x"})
    with pytest.raises(ConfigError, match="'0.4'"):
        scene_command("ball", {"protocol": "0.3"})
    with pytest.raises(ConfigError, match="0.x players only"):
        scene_command("ball", {"stacked_vectors": 2})
    with pytest.raises(ConfigError, match="integer >= 1"):
        scene_command("ball", {"protocol": "0.11", "stacked_vectors": True})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ball"], "--mlagents-port N"),
        (["ball", "--port", "1", "--stacked-vectors", "2"], "0.x only"),
        (["hybrid", "--port", "1", "--protocol", "0.10"], "continuous and discrete"),
    ],
)
def test_bad_player_arguments_stop_it_with_a_message(args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gym_unity_il.scenes", *args], capture_output=True, text=True, timeout=60, env=environment_with_import_path()
    )
    assert result.returncode == 2 and message in result.stderr


# -- The player process against a tiny trainer on the era's method path


class LegacyTrainer:
    """A plain gRPC server answering one era's Exchange path: each call's bytes go to the test,
    which answers them with :meth:`answer` (the call waits for it)."""

    def __init__(self, era: legacy.LegacyEra) -> None:
        self._requests: queue.Queue[bytes] = queue.Queue()
        self._answers: queue.Queue[bytes] = queue.Queue()
        service, method = era.method_path.strip("/").split("/")
        handler = grpc.unary_unary_rpc_method_handler(self._exchange)
        self.server = grpc.server(futures.ThreadPoolExecutor(4))
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, {method: handler}),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def _exchange(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self._requests.put(request)
        return self._answers.get(timeout=60)

    def receive(self) -> bytes:
        return self._requests.get(timeout=60)

    def respond(self, data: bytes) -> None:
        """Answers the pending call."""
        self._answers.put(data)

    def answer(self, data: bytes) -> bytes:
        """Answers the pending call and returns the next one's bytes."""
        self.respond(data)
        return self.receive()


def _player(port: int, *args: str) -> ChildProcess:
    return ChildProcess(args=[sys.executable, "-m", "gym_unity_il.scenes", *args, "--port", str(port)], env=environment_with_import_path())


def test_0_10_player_serves_a_trainer_and_quits_like_unity(assert_released) -> None:
    trainer = LegacyTrainer(legacy.API_10)
    kwargs = {"num_agents": 2, "teacher_student": True}
    player = _player(trainer.port, "ball", "--protocol", "0.10", "--scene-kwargs", json.dumps(kwargs), "--fault", "quit-at-step:3")
    try:
        handshake = legacy.read_legacy_handshake(trainer.receive())
        assert handshake.era is legacy.API_10 and handshake.trained == frozenset({"Student"})
        assert sorted(handshake.specs) == ["Student", "Teacher"] and math.isnan(handshake.reset_parameters[SEED_PARAMETER])
        assert lpb.UnityMessageProto.FromString(trainer.answer(legacy.legacy_handshake_response(11))).header.status == 200
        specs = dict(handshake.specs)
        reset = legacy.encode_legacy_reset({SEED_PARAMETER: 5, "gravity": 9.81}, train_mode=True, announced=handshake.reset_parameters)
        output = legacy.parse_legacy_message(trainer.answer(reset)).unity_output
        expected = BallScene(seed=5, **kwargs)  # reseeded with 5, then reset
        expected.reset()
        scene = expected.observe()
        for brain in ("Teacher", "Student"):
            got = np.float32([i.stacked_vector_observation for i in output.rl_output.agentInfos[brain].value])
            np.testing.assert_array_equal(got, scene[f"{brain}?team=0"].observations[0])
        for _ in range(2):
            step = legacy.encode_legacy_step({"Student": (np.zeros((2, 2)), np.zeros((2, 0)))}, specs, handshake.trained)
            output = legacy.parse_legacy_message(trainer.answer(step)).unity_output
            assert sorted(output.rl_output.agentInfos) == ["Student", "Teacher"]
        goodbye = legacy.parse_legacy_message(trainer.answer(step))
        assert goodbye.header.status == 400
        trainer.respond(CLOSING)
        assert player.wait(30) == 0
    finally:
        player.stop()
        trainer.server.stop(None)
    assert_released(trainer.port)


def test_0_11_faults_use_the_era_path() -> None:
    trainer = LegacyTrainer(legacy.API_11)
    player = _player(trainer.port, "grid", "--protocol", "0.11", "--mlagents-port", "1", "--fault", "malformed-at-step:1")
    try:
        assert legacy.parse_legacy_message(trainer.receive()).unity_output.rl_initialization_output.version == "API-11"
        trainer.answer(legacy.legacy_handshake_response(0))
        output = legacy.parse_legacy_message(trainer.answer(legacy.encode_legacy_reset({}, train_mode=True, announced={})))
        assert [b.brain_name for b in output.unity_output.rl_initialization_output.brain_parameters] == ["GridWorld"]
        specs: dict = {}
        legacy.decode_legacy_output(output.unity_output, specs, legacy.API_11)
        bad = trainer.answer(legacy.encode_legacy_step({"GridWorld": (np.zeros((1, 0)), np.zeros((1, 1)))}, specs, None))
        assert bad.endswith(b"not a message")
        trainer.respond(CLOSING)
        assert player.wait(30) == 0
    finally:
        player.stop()
        trainer.server.stop(None)


def test_0_4_player_sends_its_brains_and_jpegs_as_0_4_does() -> None:
    trainer = LegacyTrainer(legacy.API_4)
    kwargs = {"num_agents": 2, "grayscale": False, "camera_height": 12, "camera_width": 10}
    player = _player(trainer.port, "grid", "--protocol", "0.4", "--scene-kwargs", json.dumps(kwargs))
    try:
        data = trainer.receive()
        (raw,) = lpb.LegacyHandshakeProto.FromString(data).unity_output.rl_initialization_output.brain_parameters
        brain = lpb.BrainParameters4Proto.FromString(raw)  # the 0.4 layout: one action size, name 8, type 9
        assert (brain.brain_name, brain.brain_type, brain.vector_action_size) == ("GridWorld", lpb.External, 5)
        assert brain.vector_observation_space_type == lpb.continuous and brain.vector_observation_size == 2
        handshake = legacy.read_legacy_handshake(data)
        assert handshake.era is legacy.API_4 and handshake.trained == frozenset({"GridWorld"})
        trainer.answer(legacy.legacy_handshake_response(6))
        specs = dict(handshake.specs)
        output = legacy.parse_legacy_message(trainer.answer(legacy.encode_legacy_reset({}, train_mode=True, announced={})))
        scene = GridScene(seed=6, **kwargs)
        scene.reset()
        records = scene.observe()["GridWorld?team=0"]
        infos = output.unity_output.rl_output.agentInfos["GridWorld"].value
        assert not output.unity_output.rl_output.global_done and all(len(i.action_mask) == 0 for i in infos)  # no masks in 0.4
        decision, _ = legacy.decode_legacy_output(output.unity_output, specs, legacy.API_4)["GridWorld"]
        np.testing.assert_array_equal(decision.obs[0], _sent_pixels(records.observations[0], legacy.API_4))
        assert np.abs(decision.obs[0].astype(int) - records.observations[0]).mean() < 20  # JPEG of quality 75, 12x10 pixels: near the picture
        step = legacy.encode_legacy_step({"GridWorld": (np.zeros((2, 0)), np.array([[1], [3]]))}, specs, handshake.trained)
        output = legacy.parse_legacy_message(trainer.answer(step)).unity_output
        assert [list(i.stored_vector_actions) for i in output.rl_output.agentInfos["GridWorld"].value] == [[1.0], [3.0]]
        trainer.respond(CLOSING)
        assert player.wait(30) == 0
    finally:
        player.stop()
        trainer.server.stop(None)


# -- Against the seed-era libraries

SEED11_PYTHON = os.environ.get("SEED_ERA_PYTHON", "")
SEED10_PYTHON = os.environ.get("SEED10_ERA_PYTHON", "")
_SEED_SCRIPT = r"""
import json, sys
import numpy as np
from mlagents.envs.environment import UnityEnvironment

plan = json.load(sys.stdin)
env = UnityEnvironment(file_name=None, base_port=plan["port"], seed=plan["seed"], timeout_wait=60)
rng = np.random.RandomState(0)
steps, sent = [], []

def record(info):
    steps.append({name: {
        "agents": [int(a.split("-")[1]) for a in b.agents], "vector": b.vector_observations.tolist(),
        "visual": [np.asarray(v).tolist() for v in b.visual_observations] if plan.get("visual") else [],
        "reward": [float(r) for r in b.rewards], "done": [bool(d) for d in b.local_done], "max": [bool(m) for m in b.max_reached],
        "prev": np.asarray(b.previous_vector_actions).tolist(), "mask": np.asarray(b.action_masks).tolist(),
    } for name, b in info.items()})

for op in plan["ops"]:
    if op[0] == "reset":
        info = env.reset(config=op[1], train_mode=True)
        record(info)
        continue
    for _ in range(op[1]):
        actions = {}
        for name in env.external_brain_names:
            brain, n = env.brains[name], len(info[name].agents)
            if brain.vector_action_space_type == "continuous":
                size = brain.vector_action_space_size[0]
                actions[name] = np.zeros((n, size)) if op[2] == "zeros" else rng.uniform(-1, 1, (n, size))
            else:
                masks = info[name].action_masks
                actions[name] = np.array([[rng.choice(np.flatnonzero(m))] for m in masks], float)
        sent.append({k: v.tolist() for k, v in actions.items()})
        info = env.step(actions)
        record(info)

def camera(c):
    return [c["height"], c["width"], 1 if c["blackAndWhite"] else 3] if isinstance(c, dict) else [c.height, c.width, c.num_channels]

brains = {name: {"size": b.vector_observation_space_size, "stack": b.num_stacked_vector_observations,
                 "actions": list(b.vector_action_space_size), "type": b.vector_action_space_type,
                 "cameras": [camera(c) for c in b.camera_resolutions]} for name, b in env.brains.items()}
result = {"brains": brains, "external": list(env.external_brain_names), "parameters": list(env.reset_parameters),
          "steps": steps, "sent": sent}
env.close()
json.dump(result, sys.stdout)
"""


def _with_seed_library(python: str, scene: str, kwargs: dict, plan: dict, *extra: str) -> dict:
    """Runs the seed-era library on ``plan`` against a player of ``scene``; the player must leave with the library."""
    with __import__("socket").socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    player = _player(port, scene, "--scene-kwargs", json.dumps(kwargs), *extra)
    try:
        env = dict(os.environ, PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION="python")
        plan = json.dumps({**plan, "port": port})
        run = subprocess.run([python, "-c", _SEED_SCRIPT], input=plan, capture_output=True, text=True, env=env, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
        assert player.wait(30) == 0
    finally:
        player.stop()
    return json.loads(run.stdout)


def _needs(python: str, version: str):
    return pytest.mark.skipif(not python or not Path(python).exists(), reason=f"set the variable to a Python with mlagents-envs {version}")


@_needs(SEED11_PYTHON, "0.11.0")
def test_mlagents_envs_0_11_steps_the_player() -> None:
    kwargs = {"num_agents": 3, "max_steps": 20}
    ops = [["reset", {"gravity": 0.0}], ["step", 5, "zeros"], ["reset", {"gravity": 9.81}], ["step", 300, "random"]]
    result = _with_seed_library(SEED11_PYTHON, "ball", kwargs, {"seed": 3, "ops": ops}, "--protocol", "0.11", "--stacked-vectors", "2")
    assert result["brains"] == {"3DBall": {"size": 8, "stack": 2, "actions": [2], "type": "continuous", "cameras": []}}
    assert result["external"] == ["3DBall"] and sorted(result["parameters"]) == ["gravity", SEED_PARAMETER]
    steps = [s["3DBall"] for s in result["steps"]]
    expected = BallScene(seed=3, **kwargs)  # the handshake's seed; the NaN seed the library sends back keeps it
    expected.reset()
    np.testing.assert_array_equal(np.float32(steps[0]["vector"])[:, 8:], expected.observe()["3DBall?team=0"].observations[0])
    for s in steps[:6]:  # gravity 0: the balls start at rest and stay so
        assert not np.float32(s["vector"])[:, [13, 14, 15]].any()
    assert np.float32(steps[7]["vector"])[:, [13, 15]].any()  # gravity back: they roll
    ended = cut = 0
    for before, s, actions in zip(steps[6:], steps[7:], result["sent"][5:]):
        assert s["agents"] == [0, 1, 2]
        np.testing.assert_allclose(s["prev"], actions["3DBall"], rtol=1e-6)
        vector = np.float32(s["vector"])
        np.testing.assert_array_equal(vector[~np.array(s["done"]), :8], np.float32(before["vector"])[~np.array(s["done"]), 8:])
        for k in np.flatnonzero(s["done"]):
            ended += 1
            cut += s["max"][k]
            assert not vector[k, :8].any() and not vector[k, [13, 14, 15]].any()  # the new episode: a fresh stack, a ball at rest
            assert math.isclose(s["reward"][k], 0.1 if s["max"][k] else -1.0, rel_tol=1e-6)
    assert len(steps) == 307 and cut >= 3


@_needs(SEED10_PYTHON, "0.10.1")
def test_mlagents_envs_0_10_sees_the_player_teacher() -> None:
    kwargs = {"num_agents": 2, "teacher_student": True, "max_steps": 30}
    ops = [["reset", None], ["step", 200, "random"]]
    result = _with_seed_library(SEED10_PYTHON, "ball", kwargs, {"seed": 2, "ops": ops}, "--protocol", "0.10")
    assert result["external"] == ["Student"] and sorted(result["brains"]) == ["Student", "Teacher"]
    assert result["brains"]["Teacher"] == {"size": 8, "stack": 1, "actions": [2], "type": "continuous", "cameras": []}
    expert = BallExpert()
    teacher = [s["Teacher"] for s in result["steps"]]
    assert teacher[0]["prev"] == [[0.0, 0.0]]
    for before, s in zip(teacher, teacher[1:]):
        np.testing.assert_allclose(s["prev"], expert.predict(np.float32(before["vector"]))[0], rtol=1e-5, atol=1e-7)
        assert not s["done"][0] or s["max"][0]  # the expert never drops the ball: only the step limit ends its episodes
    assert sum(s["done"][0] for s in teacher) == 200 // 30
    for s, actions in zip(result["steps"][1:], result["sent"]):
        np.testing.assert_allclose(s["Student"]["prev"], actions["Student"], rtol=1e-6)


@pytest.mark.parametrize(("python", "protocol"), [(SEED10_PYTHON, "0.10"), (SEED11_PYTHON, "0.11")], ids=["0.10", "0.11"])
def test_seed_era_libraries_read_cameras_and_masks(python: str, protocol: str) -> None:
    if not python or not Path(python).exists():
        pytest.skip("set SEED10_ERA_PYTHON / SEED_ERA_PYTHON to a Python with mlagents-envs 0.10.1 / 0.11.0")
    kwargs = {"num_agents": 2, "grayscale": True, "camera_height": 12, "camera_width": 10, "max_steps": 8}
    ops = [["reset", None], ["step", 40, "allowed"]]
    result = _with_seed_library(python, "grid", kwargs, {"seed": 6, "ops": ops, "visual": True}, "--protocol", protocol)
    assert result["brains"]["GridWorld"] == {"size": 2, "stack": 1, "actions": [5], "type": "discrete", "cameras": [[12, 10, 1]]}
    scene = GridScene(seed=6, **kwargs)
    scene.reset()
    records = scene.observe()["GridWorld?team=0"]
    first = result["steps"][0]["GridWorld"]
    np.testing.assert_allclose(np.array(first["visual"][0]) * 255.0, records.observations[0], atol=1e-3)
    np.testing.assert_array_equal(np.float32(first["vector"]), records.observations[1])
    np.testing.assert_array_equal(np.array(first["mask"]) == 1, records.action_mask)
    for before, s, actions in zip(result["steps"], result["steps"][1:], result["sent"]):
        assert s["GridWorld"]["agents"] == before["GridWorld"]["agents"]  # one order, step after step
        assert s["GridWorld"]["prev"] == actions["GridWorld"]
    assert any(any(s["GridWorld"]["done"]) for s in result["steps"])
