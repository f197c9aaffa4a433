"""UnitySession against a hand-made ML-Agents 0.10 / 0.11 Unity over real gRPC, on each era's method path.

The hand-made Unity sends the messages of protocol-legacy.md and keeps the trainer's raw
answers, so each test reads what the trainer put on the wire: the seed, reset parameters,
train mode, actions only for brains Python controls.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent import futures

import numpy as np
import pytest

from gym_unity_il.errors import ConfigError, SpecMismatchError, UnityVersionError
from gym_unity_il.link.session import UnitySession
from gym_unity_il.proto import legacy_pb2 as lpb
from gym_unity_il.protocol import legacy
from gym_unity_il.protocol.channels import SEED_PARAMETER, EngineConfig
from gym_unity_il.protocol.side_channels import SideChannel
from hand_unity import CLOSE, play_unity

def _brain(name: str, *, training: bool, size: int = 2) -> lpb.BrainParametersProto:
    brain = lpb.BrainParametersProto(brain_name=name, is_training=training, vector_observation_size=size, num_stacked_vector_observations=1)
    brain.vector_action_size.append(2)
    brain.vector_action_space_type = lpb.continuous
    return brain


def _hello(version: str = "API-10", brains: Sequence[lpb.BrainParametersProto] = ()) -> lpb.UnityMessageProto:
    message = lpb.UnityMessageProto(header=lpb.HeaderProto(status=200))
    init = message.unity_output.rl_initialization_output
    init.name, init.version = "Academy", version
    init.brain_parameters.extend(brains)
    init.environment_parameters.float_parameters["gravity"] = 9.81
    return message


def _ok() -> lpb.UnityMessageProto:
    return lpb.UnityMessageProto(header=lpb.HeaderProto(status=200))


def _output(agents: dict[str, list[tuple[int, list[float], float, bool, list[float]]]], announce: Sequence[lpb.BrainParametersProto] = ()) -> lpb.UnityMessageProto:
    """A step output: per brain, (id, observation, reward, done, stored action) per agent."""
    message = _ok()
    for name, rows in agents.items():
        infos = message.unity_output.rl_output.agentInfos[name].value
        for agent_id, obs, reward, done, stored in rows:
            infos.add(id=agent_id, stacked_vector_observation=obs, reward=reward, done=done, stored_vector_actions=stored)
    message.unity_output.rl_initialization_output.brain_parameters.extend(announce)
    return message


def _inputs(answers: list[bytes]) -> list[lpb.UnityRLInputProto]:
    return [lpb.UnityMessageProto.FromString(a).unity_input.rl_input for a in answers]


def test_a_0_10_build_with_a_player_teacher_brain(free_port: int, assert_released) -> None:
    teacher, student = _brain("Teacher", training=False), _brain("Student", training=True)
    messages = [
        _hello("API-10", [teacher, student]),
        _ok(),
        _output({"Teacher": [(0, [1, 1], 0.0, False, [0, 0])], "Student": [(1, [2, 2], 0.0, False, [0, 0]), (2, [3, 3], 0.0, False, [0, 0])]}),
        # the teacher played (0.5, -0.5); student 2's episode ended: its info holds the next episode's first observation
        _output({"Teacher": [(0, [1.5, 1], 0.1, False, [0.5, -0.5])], "Student": [(1, [2.5, 2], 0.1, False, [0.25, 0.25]), (2, [9, 9], -1.0, True, [0.75, 0.75])]}),
        _ok(),
    ]
    with futures.ThreadPoolExecutor(1) as pool:
        unity = play_unity(pool, free_port, path=legacy.API_10.method_path, messages=messages)
        session = UnitySession(editor=True, base_port=free_port, timeout_wait=20, seed=7, env_parameters={"gravity": 3.0})
        assert session.unity_info is not None and session.unity_info.communication_version == "API-10"
        assert session.scene_pictures is None  # no side channels in 0.x
        steps = session.reset()
        assert list(session.behavior_specs) == ["Teacher", "Student"]
        assert not session.takes_actions("Teacher") and session.takes_actions("Student")
        decision, terminal = steps["Student"]
        assert decision.agent_id.tolist() == [1, 2] and len(terminal) == 0
        student_actions = np.array([[0.25, 0.25], [0.75, 0.75]], np.float32)
        steps = session.step({"Student": (student_actions, np.zeros((2, 0), np.int32)), "Teacher": (np.ones((1, 2), np.float32), np.zeros((1, 0), np.int32))})
        teacher, _ = steps["Teacher"]
        np.testing.assert_array_equal(teacher.stored_actions[0], [[0.5, -0.5]])  # what the Player brain did
        decision, terminal = steps["Student"]
        assert decision.agent_id.tolist() == [1, 2] and decision.reward.tolist() == [pytest.approx(0.1), 0.0]
        np.testing.assert_array_equal(decision.obs[0][1], [9, 9])  # the new episode's first observation
        assert terminal.agent_id.tolist() == [2] and terminal.reward.tolist() == [-1.0]
        np.testing.assert_array_equal(terminal.obs[0], [[3, 3]])  # the last observation of the ended episode seen
        session.step()
        session.close()
        answers = unity.result(timeout=20)
    handshake = lpb.UnityMessageProto.FromString(answers[0]).unity_input.rl_initialization_input
    assert handshake.seed == 7
    reset, step, _ = _inputs(answers[1:4])
    assert reset.command == lpb.RESET and reset.is_training and dict(reset.environment_parameters.float_parameters) == {"gravity": 3.0}
    assert step.command == lpb.STEP and list(step.agent_actions) == ["Student"]  # never an action for the Player brain
    sent = np.array([list(a.vector_actions) for a in step.agent_actions["Student"].value], np.float32)
    np.testing.assert_array_equal(sent, student_actions)
    assert answers[-1] == CLOSE
    assert_released(free_port)


def test_a_0_11_build_announces_its_brains_with_their_first_agents(free_port: int, assert_released, caplog) -> None:
    brain = _brain("Ball", training=True)
    messages = [_hello("API-11"), _ok(), _output({"Ball": [(0, [1, 2], 0.0, False, [])]}, announce=[brain]), _output({"Ball": [(0, [1, 3], 0.5, False, [0.1, 0.2])]}), _ok()]
    with futures.ThreadPoolExecutor(1) as pool:
        unity = play_unity(pool, free_port, path=legacy.API_11.method_path, messages=messages)
        config = EngineConfig(time_scale=1.0, width=80, height=60)
        with caplog.at_level(logging.WARNING):
            session = UnitySession(editor=True, base_port=free_port, timeout_wait=20, engine_config=config)
        assert "width=80" in caplog.text and "Academy" in caplog.text  # what a 0.x build cannot take is named
        assert session.behavior_specs == {}
        steps = session.reset(seed=3)  # the build announces no seed parameter: not sent, with a warning
        assert "seed" in caplog.text
        assert list(session.behavior_specs) == ["Ball"] and session.takes_actions("Ball")
        np.testing.assert_array_equal(steps["Ball"][0].stored_actions[0], [[0.0, 0.0]])  # none yet
        with pytest.raises(SpecMismatchError):
            session.step({"Ball": (np.zeros((2, 2), np.float32), np.zeros((2, 0), np.int32))})
        assert not session.closed  # nothing was sent: the session goes on
        session.step({"Ball": (np.ones((1, 2), np.float32), np.zeros((1, 0), np.int32))})
        session.close()
        answers = unity.result(timeout=20)
    reset = _inputs(answers[1:2])[0]
    assert not reset.is_training  # time_scale 1 chose the Academy's inference configuration
    assert SEED_PARAMETER not in reset.environment_parameters.float_parameters
    assert_released(free_port)


@pytest.mark.parametrize("version", ["API-3", "API-12"])
def test_an_era_not_spoken_is_a_version_error_naming_both(free_port: int, assert_released, version: str) -> None:
    with futures.ThreadPoolExecutor(1) as pool:
        unity = play_unity(pool, free_port, path=legacy.API_10.method_path, messages=[_hello(version, [_brain("B", training=True)]), _ok()])
        with pytest.raises(UnityVersionError, match=rf"'{version}'.*API-4, API-5, API-6, API-7, API-8, API-9, API-10, API-11.*1\.5\.0"):
            UnitySession(editor=True, base_port=free_port, timeout_wait=20)
        answers = unity.result(timeout=20)
    assert answers[-1] == CLOSE
    assert_released(free_port)


def test_an_unknown_reset_parameter_and_side_channels_are_refused(free_port: int, assert_released) -> None:
    with futures.ThreadPoolExecutor(1) as pool:
        unity = play_unity(pool, free_port, path=legacy.API_10.method_path, messages=[_hello("API-10", [_brain("B", training=True)]), _ok()])
        session = UnitySession(editor=True, base_port=free_port, timeout_wait=20)
        with pytest.raises(ConfigError, match=r"'wind'.*\['gravity'\]"):
            session.reset(env_parameters={"wind": 1.0})
        assert not session.closed  # nothing was sent: the session goes on, without the refused parameter
        session.close()
        unity.result(timeout=20)
    assert_released(free_port)

    class Channel(SideChannel):
        channel_id = __import__("uuid").uuid4()

        def on_message_received(self, payload: bytes) -> None:
            pass

    with futures.ThreadPoolExecutor(1) as pool:
        unity = play_unity(pool, free_port, path=legacy.API_10.method_path, messages=[_hello("API-10", [_brain("B", training=True)]), _ok()])
        with pytest.raises(ConfigError, match="no side channels"):
            UnitySession(editor=True, base_port=free_port, timeout_wait=20, side_channels=[Channel()])
        unity.result(timeout=20)
    assert_released(free_port)


def test_the_editor_is_awaited_on_the_port_of_every_era(assert_released) -> None:
    """With editor=True and no base_port the trainer listens on 5004 and, when free, 5005 (0.10's Editor port)."""
    from gym_unity_il.link.launch import LaunchSettings

    assert LaunchSettings(editor=True).extra_ports() == (5005,) and LaunchSettings(editor=True, base_port=6000).extra_ports() == ()
    assert LaunchSettings(file_name="x").extra_ports() == ()
    try:
        from gym_unity_il.link.server import check_port_free

        check_port_free("127.0.0.1", 5004)
        check_port_free("127.0.0.1", 5005)
    except Exception as exc:  # another program holds a default port on this machine
        pytest.skip(f"the Editor's default ports are taken here: {exc}")
    with futures.ThreadPoolExecutor(1) as pool:
        unity = play_unity(pool, 5005, path=legacy.API_10.method_path, messages=[_hello("API-10", [_brain("B", training=True)]), _ok(), _ok()])
        session = UnitySession(editor=True, timeout_wait=20)
        assert session.unity_info.communication_version == "API-10"
        session.close()
        unity.result(timeout=20)
    assert_released(5004)
    assert_released(5005)
