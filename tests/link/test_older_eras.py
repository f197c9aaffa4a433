"""Sessions with ML-Agents 0.4 ... 0.9 builds (API-4 ... API-9, protocol-legacy.md §9).

Three levels: a hand-made Unity over real gRPC sending each era's bytes (what the trainer reads
from them and puts on the wire); ``UnityIL-v0`` on the built-in ball served as a 0.4 and a 0.9
player; and the era's own library against that player: unityagents 0.4.0
(``SEED4_ERA_PYTHON``, a Python 3.11 with ``unityagents==0.4.0`` installed without its pinned
dependencies, then protobuf 3.20.3, grpcio 1.49.1, numpy 1.23.5 and pillow) and mlagents-envs
0.10.1 (``SEED10_ERA_PYTHON``), each in its own interpreter; those tests are skipped when the
variable does not name a Python.
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
from concurrent import futures
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from hand_unity import CLOSE, play_unity

import gym_unity_il  # noqa: F401  (registers UnityIL-v0)
from gym_unity_il.link.launcher import ChildProcess, environment_with_import_path
from gym_unity_il.link.session import UnitySession
from gym_unity_il.proto import legacy_pb2 as lpb
from gym_unity_il.protocol import legacy
from gym_unity_il.scenes.ball import BallExpert
from gym_unity_il.scenes.grid import GridScene

# -- A hand-made Unity of each era


def _hello(era: legacy.LegacyEra, brains: list[bytes]) -> lpb.LegacyHandshakeProto:
    message = lpb.LegacyHandshakeProto(header=lpb.HeaderProto(status=200))
    init = message.unity_output.rl_initialization_output
    init.name, init.version = "Academy", era.version
    init.brain_parameters.extend(brains)
    init.environment_parameters.float_parameters["gravity"] = 9.81
    return message


def _brain(era: legacy.LegacyEra, name: str, *, trained: bool) -> bytes:
    brain = lpb.BrainParametersProto(brain_name=name, is_training=trained, vector_observation_size=2, num_stacked_vector_observations=1)
    brain.vector_action_size.append(3)
    brain.vector_action_space_type = lpb.discrete
    return legacy.write_brain(brain, era)


def _ok() -> lpb.UnityMessageProto:
    return lpb.UnityMessageProto(header=lpb.HeaderProto(status=200))


def _output(agents: dict[str, list[tuple[int, float, bool, bool, float]]], *, global_done: bool = False) -> lpb.UnityMessageProto:
    """Per brain, (id, reward, done, max_step_reached, stored action) per agent; observation [id, reward]."""
    message = _ok()
    message.unity_output.rl_output.global_done = global_done
    for name, rows in agents.items():
        infos = message.unity_output.rl_output.agentInfos[name].value
        for agent, reward, done, max_step, stored in rows:
            infos.add(id=agent, stacked_vector_observation=[agent, reward], reward=reward, done=done, max_step_reached=max_step,
                      stored_vector_actions=[stored])  # fmt: skip
    return message


def test_a_0_5_build_whose_academy_is_done(free_port: int, assert_released) -> None:
    """API-5: brain types at field 8 (Python trains the External one only, read from the bytes as
    they came); global_done ends every episode and the session goes on with STEP (§9.1)."""
    era = legacy.API_5
    brains = [_brain(era, "Player", trained=False), _brain(era, "Learner", trained=True)]
    messages = [
        _hello(era, brains),
        _ok(),
        _output({"Player": [(0, 0.0, False, False, 0)], "Learner": [(1, 0.0, False, False, 0), (2, 0.0, False, False, 0)]}),
        # The Academy reached its Max Steps: every agent done with max_step_reached, already in its new episode.
        _output({"Player": [(0, 0.5, True, True, 0)], "Learner": [(1, 0.25, True, True, 0), (2, -1.0, True, True, 0)]}, global_done=True),
        _output({"Player": [(0, 0.1, False, False, 1)], "Learner": [(1, 0.1, False, False, 2), (2, 0.1, False, False, 1)]}),
        _ok(),
    ]
    with futures.ThreadPoolExecutor(1) as pool:
        unity = play_unity(pool, free_port, messages, path=era.method_path)
        session = UnitySession(editor=True, base_port=free_port, timeout_wait=20)
        assert session.unity_info.communication_version == "API-5" and session.unity_info.package_version == "0.5"
        session.reset()
        assert list(session.behavior_specs) == ["Player", "Learner"]
        assert not session.takes_actions("Player") and session.takes_actions("Learner")
        steps = session.step({"Learner": (np.zeros((2, 0), np.float32), np.array([[2], [1]], np.int32))})
        for name, ids in (("Player", [0]), ("Learner", [1, 2])):
            decision, terminal = steps[name]
            assert decision.agent_id.tolist() == terminal.agent_id.tolist() == ids and terminal.interrupted.all()
        assert steps["Learner"][1].reward.tolist() == [0.25, -1.0]
        steps = session.step({"Learner": (np.zeros((2, 0), np.float32), np.array([[2], [1]], np.int32))})  # no reset needed
        assert steps["Learner"][1].agent_id.tolist() == [] and steps["Learner"][0].stored_actions[1].tolist() == [[2], [1]]
        session.close()
        answers = unity.result(timeout=20)
    inputs = [lpb.UnityMessageProto.FromString(a).unity_input.rl_input for a in answers[1:5]]
    assert [i.command for i in inputs] == [lpb.RESET, lpb.STEP, lpb.STEP, lpb.STEP] and answers[-1] == CLOSE
    assert [list(inputs[2].agent_actions)] == [["Learner"]]  # never an action for the Player brain
    assert_released(free_port)


def test_a_0_4_build_is_told_why_its_first_reset_parameters_are_lost(free_port: int, assert_released, caplog) -> None:
    era = legacy.API_4
    messages = [_hello(era, [_brain(era, "Banana", trained=True)]), _ok(), _output({"Banana": [(0, 0.0, False, False, 0)]}),
                _output({"Banana": [(0, 0.0, False, False, 0)]}), _ok()]  # fmt: skip
    with futures.ThreadPoolExecutor(1) as pool:
        unity = play_unity(pool, free_port, messages, path=era.method_path)
        with caplog.at_level(logging.WARNING):
            session = UnitySession(editor=True, base_port=free_port, timeout_wait=20, env_parameters={"gravity": 3.0})
            session.reset()
            assert session.behavior_specs["Banana"].action_spec.discrete_branches == (3,)
            assert "does not apply the first reset's parameters (gravity)" in caplog.text
            caplog.clear()
            session.reset(env_parameters={"gravity": 2.0})
            assert not caplog.records
        session.close()
        answers = unity.result(timeout=20)
    sent = [dict(lpb.UnityMessageProto.FromString(a).unity_input.rl_input.environment_parameters.float_parameters) for a in answers[1:3]]
    assert sent == [{"gravity": 3.0}, {"gravity": 2.0}]  # sent as the reference library did: the build ignores the first
    assert_released(free_port)


# -- The built-in ball as a 0.4 and a 0.9 player


@pytest.mark.parametrize("era", ["0.4", "0.9"])
def test_the_env_steps_and_resets_with_a_parameter(era: str, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        env = gym.make("UnityIL-v0", scene="ball", scene_kwargs={"protocol": era, "max_steps": 8}, env_parameters={"gravity": 0.0})
    try:
        assert env.unwrapped.session.unity_info.communication_version == f"API-{era[2:]}"
        assert ("does not apply the first reset's parameters (gravity)" in caplog.text) == (era == "0.4")

        def rolls(options: dict | None) -> bool:
            env.reset(seed=1, options=options)
            for _ in range(4):
                obs, *_ = env.step(np.ones(2, np.float32))
            return bool(np.abs(obs[5:8]).max() > 0.01)

        assert rolls(None) == (era == "0.4")  # 0.4 never applied the constructor's gravity 0 (its first reset's)
        assert not rolls({"env_parameters": {"gravity": 0.0}})  # every later reset applies its parameters
        assert rolls({"env_parameters": {"gravity": 9.81}})
        expert = BallExpert()
        obs, _ = env.reset(seed=2)
        for t in range(20):
            obs, reward, terminated, truncated, info = env.step(expert.predict(obs)[0])
            if terminated or truncated:
                break
        assert t == 7 and truncated and not terminated and math.isclose(reward, 0.1, rel_tol=1e-6)  # the scene cuts at its 8th action
    finally:
        env.close()


# -- The eras' own libraries against the player

SEED4_PYTHON = os.environ.get("SEED4_ERA_PYTHON", "")
SEED10_PYTHON = os.environ.get("SEED10_ERA_PYTHON", "")

_UNITYAGENTS_SCRIPT = r"""
import json, sys
import numpy as np
from unityagents import UnityEnvironment
from unityagents.exception import UnityActionException

plan = json.load(sys.stdin)
env = UnityEnvironment(file_name=None, base_port=plan["port"], seed=plan["seed"])
rng = np.random.RandomState(0)
result = {"external": list(env.external_brain_names), "parameters": sorted(env._resetParameters), "steps": [], "sent": [],
          "refused": [], "academy": env.academy_name,
          "brains": {n: {"size": b.vector_observation_space_size, "stack": b.num_stacked_vector_observations,
                         "actions": b.vector_action_space_size, "type": b.vector_action_space_type,
                         "observations": b.vector_observation_space_type, "cameras": b.camera_resolutions}
                     for n, b in env.brains.items()}}

def record(info):
    result["steps"].append({"global_done": bool(env.global_done), **{name: {
        "agents": list(b.agents), "vector": np.asarray(b.vector_observations).tolist(), "reward": [float(r) for r in b.rewards],
        "done": [bool(d) for d in b.local_done], "max": [bool(m) for m in b.max_reached], "prev": np.asarray(b.previous_vector_actions).tolist(),
        "visual": [np.asarray(v).tolist() for v in b.visual_observations] if plan.get("visual") else [],
    } for name, b in info.items()}})

for op in plan["ops"]:
    if op[0] == "reset":
        record(env.reset(train_mode=True, config=op[1]))
    elif op[0] == "refused":
        try:
            env.step()
        except UnityActionException as exc:
            result["refused"].append(str(exc))
    else:
        for _ in range(op[1]):
            actions = {}
            for name in env.external_brain_names:
                brain, n = env.brains[name], len(result["steps"][-1][name]["agents"])
                if brain.vector_action_space_type == "continuous":
                    actions[name] = rng.uniform(-1, 1, (n, brain.vector_action_space_size))
                else:
                    actions[name] = rng.randint(0, brain.vector_action_space_size, n).astype(float)
            result["sent"].append({k: v.tolist() for k, v in actions.items()})
            record(env.step(actions))
env.close()
json.dump(result, sys.stdout)
"""

#: A 0.4 player of the ball whose Academy has Max Steps (no command-line flag: a LegacyWire option).
_ACADEMY_PLAYER = r"""
import sys
from gym_unity_il.protocol.legacy import API_4
from gym_unity_il.scenes.ball import BallScene
from gym_unity_il.scenes.legacy_player import LegacyWire
from gym_unity_il.scenes.player import ScenePlayer
kwargs = {"num_agents": 2, "teacher_student": True, "max_steps": 0}
wire = LegacyWire.for_scene(API_4, BallScene, kwargs, academy_max_steps=5)
sys.exit(ScenePlayer(scene_class=BallScene, scene_kwargs=kwargs, port=int(sys.argv[1]), wire=wire).run())
"""


def _port() -> int:
    with __import__("socket").socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_library(python: str, script: str, plan: dict, player_args: list[str]) -> subprocess.CompletedProcess:
    """Runs ``script`` (the plan on stdin) with the library's Python against a player started with
    ``player_args`` and the port; the player must leave with the library."""
    port = _port()
    player = ChildProcess(args=[sys.executable, *player_args, str(port)], env=environment_with_import_path())
    try:
        env = dict(os.environ, PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION="python")
        plan = {**plan, "port": port}
        run = subprocess.run([python, "-c", script], input=json.dumps(plan), capture_output=True, text=True, env=env, timeout=300)
        assert player.wait(30) == 0
    finally:
        player.stop()
    return run


def _unityagents(scene: str, kwargs: dict, plan: dict) -> dict:
    run = _run_library(SEED4_PYTHON, _UNITYAGENTS_SCRIPT, plan, ["-m", "gym_unity_il.scenes", scene, "--protocol", "0.4",
                                                              "--scene-kwargs", json.dumps(kwargs), "--port"])  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def _needs(python: str, what: str):
    return pytest.mark.skipif(not python or not Path(python).exists(), reason=f"set the variable to a Python with {what}")


@_needs(SEED4_PYTHON, "unityagents 0.4.0")
def test_unityagents_0_4_plays_the_0_4_player_with_a_player_teacher() -> None:
    kwargs = {"num_agents": 2, "teacher_student": True, "max_steps": 6}
    ops = [["reset", {"gravity": 0.0}], ["step", 3], ["reset", {"gravity": 0.0}], ["step", 3], ["reset", {"gravity": 9.81}], ["step", 20]]
    result = _unityagents("ball", kwargs, {"seed": 4, "ops": ops})
    brain = {"size": 8, "stack": 1, "actions": 2, "type": "continuous", "observations": "continuous", "cameras": []}
    assert result["brains"] == {"Teacher": brain, "Student": brain} and result["external"] == ["Student"]  # the Player brain is not External
    assert result["parameters"] == ["gravity", "gym_unity_il.seed"] and result["academy"] == "Academy"
    steps = result["steps"]
    student = [s["Student"] for s in steps]
    velocity = [np.abs(np.float32(s["vector"])[:, 5:8]).max() for s in student]
    assert velocity[3] > 0.01  # the first reset's gravity 0 was not applied, as in 0.4
    assert velocity[7] == 0.0  # the second one's was
    assert velocity[-1] > 0.01
    expert = BallExpert()
    ended = 0
    for before, after, sent in zip(steps[8:], steps[9:], result["sent"][6:]):  # the 20 steps after the third reset
        teacher = after["Teacher"]
        played = expert.predict(np.float32(before["Teacher"]["vector"]))[0]
        for k in range(2):
            zeroed = after["Student"]["done"][k]  # 0.4: a reset agent's stored action is zeros
            np.testing.assert_allclose(after["Student"]["prev"][k], [0.0, 0.0] if zeroed else sent["Student"][k], rtol=1e-6)
        np.testing.assert_allclose(teacher["prev"], 0 * played if teacher["done"][0] else played, rtol=1e-5, atol=1e-7)
        ended += teacher["done"][0]
        assert not after["global_done"]
    assert ended == 20 // 6  # the expert keeps its ball up: only the scene's max_steps 6 ends its episodes


@_needs(SEED4_PYTHON, "unityagents 0.4.0")
def test_unityagents_0_4_reads_the_jpeg_cameras() -> None:
    kwargs = {"num_agents": 2, "grayscale": True, "camera_height": 12, "camera_width": 10, "max_steps": 5}
    result = _unityagents("grid", kwargs, {"seed": 6, "ops": [["reset", None], ["step", 12]], "visual": True})
    assert result["brains"]["GridWorld"] == {"size": 2, "stack": 1, "actions": 5, "type": "discrete", "observations": "continuous",
                                             "cameras": [{"height": 12, "width": 10, "blackAndWhite": True}]}  # fmt: skip
    scene = GridScene(seed=6, **kwargs)
    scene.reset()
    records = scene.observe()["GridWorld?team=0"]
    first = result["steps"][0]["GridWorld"]
    theirs = np.array(first["visual"][0]) * 255.0  # their Pillow decoding of our JPEG, gray as the RGB mean
    assert theirs.shape == (2, 12, 10, 1) and np.abs(theirs - records.observations[0]).mean() < 20
    np.testing.assert_array_equal(np.float32(first["vector"]), records.observations[1])
    for s, sent in zip(result["steps"][1:], result["sent"]):
        grid = s["GridWorld"]
        np.testing.assert_array_equal(grid["prev"], [[0.0] if d else [a] for d, a in zip(grid["done"], sent["GridWorld"])])


@_needs(SEED4_PYTHON, "unityagents 0.4.0")
def test_unityagents_0_4_sees_the_academy_done() -> None:
    ops = [["reset", None], ["step", 5], ["refused"], ["reset", None], ["step", 2]]
    run = _run_library(SEED4_PYTHON, _UNITYAGENTS_SCRIPT, {"seed": 1, "ops": ops}, ["-c", _ACADEMY_PLAYER])
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout)
    done = [s["global_done"] for s in result["steps"]]
    assert done == [False, False, False, False, False, True, False, False, False]  # after 5 actions since the reset
    final = result["steps"][5]
    assert all(final[b]["done"] == final[b]["max"] == [True] * len(final[b]["done"]) for b in ("Teacher", "Student"))
    assert result["refused"] == ["The episode is completed. Reset the environment with 'reset()'"]  # the library, not us


@_needs(SEED10_PYTHON, "mlagents-envs 0.10.1")
def test_mlagents_envs_0_10_refuses_the_0_9_player_with_its_own_version_error() -> None:
    script = (
        "import json, sys\nfrom mlagents.envs.environment import UnityEnvironment\nplan = json.load(sys.stdin)\n"
        "UnityEnvironment(file_name=None, base_port=plan['port'], timeout_wait=60)\n"
    )
    run = _run_library(SEED10_PYTHON, script, {}, ["-m", "gym_unity_il.scenes", "ball", "--protocol", "0.9", "--port"])
    assert run.returncode != 0 and "UnityEnvironmentException" in run.stderr
    assert "Python API : API-10, Unity API : API-9" in run.stderr  # the shared path reached its version check (§9.1)
