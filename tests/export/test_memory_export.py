"""Recurrent policies (sb3-contrib's RecurrentPPO) export with their memory: ``recurrent_in`` /
``recurrent_out`` ``[batch, 1, memory_size]`` holding the LSTM's (h, c), agreeing with torch over
sequences where the memory is carried and reset; the checker, OnnxPolicy, the loader and the
export command handle such models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import onnx
import pytest
import torch
from export_helpers import BALL_KWARGS, GRID_KWARGS, Trained, make_env
from onnx import numpy_helper
from sb3_contrib import RecurrentPPO
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from stable_baselines3 import PPO

from gym_unity_il.cli import main
from gym_unity_il.errors import ConfigError
from gym_unity_il.export import (
    ExportParityError,
    ObservationLayout,
    OnnxPolicy,
    behavior_spec_from_scene,
    check_model,
    export_onnx,
    load_policy,
    save_model,
)
from gym_unity_il.export.adapters import prepare_parts
from gym_unity_il.export.parity import parity_check, parity_inputs
from gym_unity_il.spec import ActionSpec, BehaviorSpec, ObservationSpec

BALL = behavior_spec_from_scene("ball", BALL_KWARGS)
GRID = behavior_spec_from_scene("grid", GRID_KWARGS)
MULTI = BehaviorSpec("Multi?team=0", (ObservationSpec((5,), name="VectorSensor_size5"),), ActionSpec.create_discrete((3, 2)))
HIDDEN = 16


class _SpecEnv(gym.Env):
    """Random observations of given spaces: enough to build an SB3 model on."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space) -> None:
        self.observation_space = observation_space
        self.action_space = action_space

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[Any, dict]:
        return self.observation_space.sample(), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        return self.observation_space.sample(), 0.0, False, False, {}


def _recurrent(spec: BehaviorSpec, *, action_space: gym.Space | None = None, use_sde: bool = False, **policy_kwargs: Any) -> RecurrentPPO:
    """A RecurrentPPO with seeded random weights for ``spec``."""
    policy = "MultiInputLstmPolicy" if len(spec.observation_specs) > 1 else "MlpLstmPolicy"
    env = _SpecEnv(spec.observation_space(), action_space or spec.action_space())
    torch.manual_seed(0)
    kwargs = {"lstm_hidden_size": HIDDEN, **policy_kwargs}
    return RecurrentPPO(policy, env, n_steps=8, batch_size=8, use_sde=use_sde, policy_kwargs=kwargs, seed=0, device="cpu")


def _sequence(n: int, steps: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Ball observations ``[steps, n, 8]`` and episode starts ``[steps, n]`` (all at step 0, some later)."""
    rng = np.random.default_rng(seed)
    starts = rng.random((steps, n)) < 0.2
    starts[0] = True
    return rng.normal(size=(steps, n, 8)).astype(np.float32), starts


@pytest.fixture(scope="module")
def ball_recurrent() -> Trained:
    """RecurrentPPO trained briefly on "ball" through UnityILEnv."""
    env = make_env("ball", BALL_KWARGS)
    try:
        model = RecurrentPPO("MlpLstmPolicy", env, n_steps=64, batch_size=32, n_epochs=1, policy_kwargs={"lstm_hidden_size": HIDDEN, "net_arch": [16]},
                             seed=0, device="cpu")  # fmt: skip
        model.learn(128)
    finally:
        env.close()
    return Trained(model, BALL, "ball", BALL_KWARGS)


@pytest.fixture(scope="module")
def ball_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[RecurrentPPO, Path]:
    """A RecurrentPPO on "ball" and its exported model; its action head is scaled up from
    SB3's small initial weights so that actions show the memory."""
    model = _recurrent(BALL)
    with torch.no_grad():
        model.policy.action_net.weight.normal_(0.0, 0.5)
    path = tmp_path_factory.mktemp("memory") / "ball.onnx"
    export_onnx(model, path, BALL, parity_check=False)
    return model, path


@pytest.mark.parametrize("case", ["ball", "grid", "multi", "ball_sde"])
def test_recurrent_policies_export_with_their_memory(case: str, tmp_path: Path) -> None:
    spec = {"ball": BALL, "grid": GRID, "multi": MULTI, "ball_sde": BALL}[case]
    model = _recurrent(spec, use_sde=True) if case == "ball_sde" else _recurrent(spec)
    report = export_onnx(model, tmp_path / "m.onnx", spec)
    masks = ("action_masks",) if spec.action_spec.discrete_branches else ()
    assert report.inputs == (*[f"obs_{i}" for i in range(len(spec.observation_specs))], *masks, "recurrent_in")
    assert report.outputs[:2] == ("version_number", "memory_size") and report.outputs[-1] == "recurrent_out"
    parity = report.parity
    assert parity.steps == 50 and parity.batch == 32 and parity.episode_starts > 0
    assert parity.memory_max_abs_diff < 1e-5
    if spec.action_spec.continuous_size:
        assert parity.max_abs_diff < 1e-5
    else:
        assert parity.discrete_mismatches == 0
    assert "32 agents over 50 steps, memory carried" in report.summary()

    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    assert constants["memory_size_value"].tolist() == [2.0 * HIDDEN]
    shapes = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in [*graph.input, *graph.output]}
    assert shapes["recurrent_in"] == shapes["recurrent_out"] == ["batch", 1, 2 * HIDDEN]
    assert "LSTM" in {n.op_type for n in graph.node}
    assert check_model(tmp_path / "m.onnx", spec) == []


def test_only_a_sequence_finds_a_memory_that_is_not_carried_right(ball_model: tuple[RecurrentPPO, Path]) -> None:
    """A torch policy whose recurrent weights differ from the model's decides alike from zeros,
    so one step cannot tell them apart; the sequence can."""
    model, path = ball_model
    state = {k: v.clone() for k, v in model.policy.state_dict().items()}
    try:
        with torch.no_grad():
            model.policy.lstm_actor.weight_hh_l0.mul_(-1.0)
        parts = prepare_parts(model, BALL, image_format=None, vec_normalize=None)
        assert parity_check(path, parts, BALL, steps=1).max_abs_diff < 1e-5
        with pytest.raises(ExportParityError, match=r"deterministic_continuous_actions over 32 agents over 50 steps exceeds"):
            parity_check(path, parts, BALL)
    finally:
        model.policy.load_state_dict(state)


def test_the_checker_names_broken_memories(ball_model: tuple[RecurrentPPO, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, path = ball_model
    assert check_model(path, BALL) == []
    assert main(["check-model", str(path), "--scene", "ball"]) == 0
    capsys.readouterr()

    def broken(change: Any) -> list[str]:
        model = onnx.load(str(path))
        change(model.graph)
        return check_model(model, BALL)

    def memory_size(value: float) -> Any:
        def change(graph: Any) -> None:
            [t] = [t for t in graph.initializer if t.name == "memory_size_value"]
            t.CopyFrom(numpy_helper.from_array(np.array([value], np.float32), t.name))

        return change

    def drop_output(graph: Any) -> None:
        [out] = [o for o in graph.output if o.name == "recurrent_out"]
        graph.output.remove(out)

    def fixed_batch(graph: Any) -> None:
        [memory] = [i for i in graph.input if i.name == "recurrent_in"]
        memory.type.tensor_type.shape.dim[0].dim_value = 1

    mem = 2 * HIDDEN
    assert any(f"missing output 'recurrent_out': 'memory_size' is {mem}" in v for v in broken(drop_output))
    wrong = broken(memory_size(8.0))
    assert any(f"input 'recurrent_in' has shape [batch, 1, {mem}]; it must be [batch, 1, 8]" in v for v in wrong), wrong
    assert any(f"output 'recurrent_out' has shape [batch, 1, {mem}]; it must be [batch, 1, 8]" in v for v in wrong), wrong
    none = broken(memory_size(0.0))
    assert any("input 'recurrent_in' exists but 'memory_size' is 0" in v for v in none), none
    assert any("output 'recurrent_out' exists but 'memory_size' is 0" in v for v in none), none
    assert any("input 'recurrent_in' has a fixed batch dimension of 1" in v for v in broken(fixed_batch))


def test_onnx_policy_keeps_the_memory_and_resets_it_at_episode_starts(ball_model: tuple[RecurrentPPO, Path], tmp_path: Path) -> None:
    model, path = ball_model
    policy = OnnxPolicy(path, behavior_spec=BALL)
    assert policy.memory_size == 2 * HIDDEN and policy.memory is None
    observations, starts = _sequence(4, 12)
    state = None
    for obs, start in zip(observations, starts):  # against the torch policy, each keeping its own memory
        want, state = model.predict(obs, state, start, deterministic=True)
        got, memory = policy.predict(obs, episode_start=start)
        np.testing.assert_allclose(got, want, atol=1e-5)
        np.testing.assert_allclose(memory[:, 0], np.concatenate([state[0][0], state[1][0]], axis=-1), atol=1e-5)
        assert memory.shape == (4, 1, 2 * HIDDEN)

    # an agent whose episode starts decides like a fresh one; the others go on with their memory
    obs = observations[-1]
    kept = policy.memory.copy()
    actions, _ = policy.predict(obs, episode_start=[False, True, False, False])
    fresh, fresh_memory = OnnxPolicy(path, behavior_spec=BALL).predict(obs)
    np.testing.assert_allclose(actions[1], fresh[1], atol=1e-6)
    np.testing.assert_allclose(policy.memory[1], fresh_memory[1], atol=1e-6)
    assert np.abs(actions[[0, 2, 3]] - fresh[[0, 2, 3]]).min() > 1e-3
    assert np.abs(policy.memory[[0, 2, 3]] - fresh_memory[[0, 2, 3]]).max(axis=-1).min() > 1e-3

    # a state passed in overrides the kept memory
    again, _ = policy.predict(obs, state=kept, episode_start=[False, True, False, False])
    np.testing.assert_array_equal(again, actions)

    # reset() forgets; a batch of another size starts only where every agent starts an episode
    with pytest.raises(ConfigError, match=r"keeps the memory of 4 agent\(s\) but got a batch of 2: pass episode_start True for every agent"):
        policy.predict(obs[:2])
    pair, _ = policy.predict(obs[:2], episode_start=[True, True])
    np.testing.assert_allclose(pair, fresh[:2], atol=1e-6)
    policy.reset()
    assert policy.memory is None
    one, memory = policy.predict(obs[0])
    np.testing.assert_allclose(one, fresh[0], atol=1e-6)
    assert one.shape == (2,) and memory.shape == (1, 1, 2 * HIDDEN)
    with pytest.raises(ConfigError, match=r"state has shape \(3, 32\); the model's memory for 4 agent\(s\) is \[4, 1, 32\]"):
        policy.predict(obs, state=np.zeros((3, 32)))
    with pytest.raises(ConfigError, match=r"episode_start has 3 value\(s\) for a batch of 4"):
        policy.predict(obs, episode_start=[True, False, True])
    with pytest.raises(ConfigError, match=r"the model has memory: give 'recurrent_in'"):
        policy.run(parity_inputs(BALL, 2, np.random.default_rng(0)))

    # feed-forward models are as before: no memory, state None
    ppo = PPO("MlpPolicy", _SpecEnv(BALL.observation_space(), BALL.action_space()), n_steps=8, batch_size=8, device="cpu", seed=0)
    report = export_onnx(ppo, tmp_path / "ff.onnx", BALL, parity_check=False)
    assert "recurrent_in" not in report.inputs and "recurrent_out" not in report.outputs
    feed_forward = OnnxPolicy(tmp_path / "ff.onnx", behavior_spec=BALL)
    assert feed_forward.memory_size == 0 and feed_forward.predict(obs, episode_start=[True] * 4)[1] is None


def test_a_saved_recurrent_ppo_loads_and_exports(ball_recurrent: Trained, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = ball_recurrent.policy
    saved, plain = tmp_path / "model.zip", tmp_path / "plain.zip"
    save_model(model, saved, ObservationLayout.from_env_space(BALL.observation_space()))
    model.save(plain)
    observations, starts = _sequence(4, 6)
    truth, state = [], None
    for obs, start in zip(observations, starts):
        actions, state = model.predict(obs, state, start, deterministic=True)
        truth.append(actions)

    # the named algorithm, --algo recurrentppo, and a policy rebuilt from the file alone: state and episode starts reach it
    for loaded in (load_policy(saved), load_policy(plain, algo="recurrentppo"), load_policy(plain)):
        assert isinstance(loaded.policy, RecurrentActorCriticPolicy)
        state = None
        for obs, start, want in zip(observations, starts, truth):
            actions, state = loaded.predict(obs, state, start)
            np.testing.assert_allclose(actions, want, atol=1e-6)

    out = tmp_path / "ball.onnx"
    assert main(["export", str(saved), "--out", str(out), "--scene", "ball", "--scene-kwargs", json.dumps(BALL_KWARGS)]) == 0
    printed = capsys.readouterr().out
    assert "inputs   obs_0, recurrent_in" in printed and "recurrent_out" in printed and "over 50 steps, memory carried" in printed
    assert main(["check-model", str(out), "--scene", "ball"]) == 0
    assert main(["export", str(plain), "--out", str(tmp_path / "plain.onnx"), "--scene", "ball", "--algo", "recurrentppo"]) == 0
    assert main(["export", str(plain), "--out", str(tmp_path / "auto.onnx"), "--scene", "ball"]) == 0
    policy = OnnxPolicy(out, behavior_spec=BALL)
    for obs, start, want in zip(observations, starts, truth):
        np.testing.assert_allclose(policy.predict(obs, episode_start=start)[0], want, atol=1e-5)

    model.policy.save(str(tmp_path / "bare.pt"))
    with pytest.raises(ConfigError, match="is a bare recurrent policy, whose file does not record its LSTM's size"):
        load_policy(tmp_path / "bare.pt", algo="policy")


def test_recurrent_policies_that_cannot_be_exported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"has 2 LSTM layers; Unity keeps one memory vector per agent.*n_lstm_layers': 1"):
        export_onnx(_recurrent(BALL, n_lstm_layers=2), tmp_path / "m.onnx", BALL)
    hybrid = behavior_spec_from_scene("hybrid")
    parts = hybrid.action_space()
    discrete = PPO("MlpPolicy", _SpecEnv(hybrid.observation_space(), parts["discrete"]), n_steps=8, batch_size=8, device="cpu")
    mapping = {"continuous": _recurrent(hybrid, action_space=parts["continuous"]), "discrete": discrete}
    with pytest.raises(ConfigError, match="the continuous policy is recurrent: Unity keeps one memory vector per agent"):
        export_onnx(mapping, tmp_path / "m.onnx", hybrid)
    assert not (tmp_path / "m.onnx").exists()
