"""Dynamics and Academy cycle of the "ball" scene: falls, step limits, decision periods, restarts."""

from __future__ import annotations

import numpy as np
import pytest

from gym_unity_il.errors import UnityProtocolError
from gym_unity_il.scenes import expert_policy, make_scene
from gym_unity_il.scenes.base import AgentBatch

BEHAVIOR = "3DBall?team=0"
NO_DISCRETE = np.zeros((1, 0), np.int32)


def act(scene, continuous, behavior: str = BEHAVIOR) -> AgentBatch:
    continuous = np.asarray(continuous, np.float32).reshape(-1, 2)
    scene.act({behavior: (continuous, np.zeros((len(continuous), 0), np.int32))})
    return scene.observe()[behavior]


def run_until_done(scene, continuous, limit: int = 2000) -> list[AgentBatch]:
    """Repeats one action for the single agent until its episode ends; all messages."""
    messages = []
    for _ in range(limit):
        batch = act(scene, continuous)
        messages.append(batch)
        if batch.done.any():
            return messages
    raise AssertionError("the episode never ended")


def test_falling_off_ends_the_episode_with_minus_one():
    scene = make_scene("ball", num_agents=1, max_steps=0, seed=3)
    messages = run_until_done(scene, [1.0, 0.0])  # keep lifting +x: the ball rolls off at -x
    *alive, last = messages
    assert len(alive) > 10
    assert all(m.rewards.tolist() == pytest.approx([0.1]) and not m.done.any() for m in alive)
    assert last.done.tolist() == [True, False]
    assert last.max_step_reached.tolist() == [False, False]
    assert last.rewards[0] == pytest.approx(-1.0)
    assert last.observations[0][0, 2] < -3.0  # the terminal record shows the ball off the plate
    assert last.rewards[1] == 0.0
    restart = last.observations[0][1]
    assert np.all(np.abs(restart[[2, 4]]) <= 1.5) and np.all(restart[5:] == 0.0)


def test_max_steps_cuts_the_episode_with_max_step_reached():
    scene = make_scene("ball", num_agents=1, max_steps=30, seed=0)
    expert = expert_policy("ball")
    rewards = []
    for step in range(30):
        obs = scene.observe()[BEHAVIOR].observations[0][-1]
        batch = act(scene, expert.predict(obs)[0])
        rewards.append(batch.rewards[0])
        assert batch.done[0] == (step == 29)
    assert batch.max_step_reached[0]
    assert sum(rewards) == pytest.approx(3.0)


def test_decision_period_repeats_the_action_and_adds_rewards():
    fine = make_scene("ball", num_agents=1, max_steps=0, decision_period=1, seed=5)
    coarse = make_scene("ball", num_agents=1, max_steps=0, decision_period=5, seed=5)
    np.testing.assert_array_equal(fine.observe()[BEHAVIOR].observations[0], coarse.observe()[BEHAVIOR].observations[0])
    for action in ([0.3, -0.2], [-0.5, 0.1], [0.0, 0.4]):
        for _ in range(5):
            fine_batch = act(fine, action)
        coarse_batch = act(coarse, action)
        assert coarse_batch.rewards.tolist() == pytest.approx([0.5])
        np.testing.assert_allclose(coarse_batch.observations[0], fine_batch.observations[0], rtol=1e-6, atol=1e-6)


def test_fall_inside_a_decision_period_is_reported_at_the_next_decision():
    returns, counts = [], []
    for period in (1, 5):
        scene = make_scene("ball", num_agents=1, max_steps=0, decision_period=period, seed=11)
        messages = run_until_done(scene, [-1.0, 0.5])
        returns.append(sum(float(m.rewards[0]) for m in messages))
        counts.append(len(messages))
    assert returns[0] == pytest.approx(returns[1], abs=1e-4)
    assert counts[1] == -(-counts[0] // 5)  # the same Academy steps, one decision every 5
    assert returns[0] == pytest.approx(0.1 * (counts[0] - 1) - 1.0, abs=1e-4)


def test_decision_period_sets_the_step_limit_in_academy_steps():
    scene = make_scene("ball", num_agents=2, max_steps=50, decision_period=5, seed=0)
    expert = expert_policy("ball")
    for decision in range(10):
        batch = scene.observe()[BEHAVIOR]
        obs = batch.observations[0][~batch.done]
        batch = act(scene, expert.predict(obs)[0])
        assert batch.done.any() == (decision == 9)
    assert batch.done.tolist() == [True, True, False, False]
    assert batch.max_step_reached[:2].all()
    assert batch.rewards[:2] == pytest.approx([0.5, 0.5])


def test_agents_end_at_different_times_terminal_first_then_restart():
    scene = make_scene("ball", num_agents=4, max_steps=0, seed=2)
    expert = expert_policy("ball")
    ended_at: dict[int, list[int]] = {0: [], 1: [], 2: [], 3: []}
    for message in range(400):
        batch = scene.observe()[BEHAVIOR]
        decisions = ~batch.done
        assert batch.agent_ids[decisions].tolist() == [0, 1, 2, 3]
        actions = expert.predict(batch.observations[0][decisions])[0]
        actions[0] = [1.0, 0.0]  # agent 0 tilts hard along x, agent 1 slowly along z
        actions[1] = [0.0, 0.3]
        batch = act(scene, actions)
        n_done = int(batch.done.sum())
        assert batch.done.tolist() == [True] * n_done + [False] * 4  # terminal records first
        for agent in batch.agent_ids[:n_done]:
            ended_at[int(agent)].append(message)
            assert batch.rewards[n_done + agent] == 0.0  # the new episode's first decision
    assert ended_at[2] == [] and ended_at[3] == []  # the expert's agents keep their balls
    assert len(ended_at[0]) >= 2 and len(ended_at[1]) >= 2
    assert set(ended_at[0]) != set(ended_at[1])


def test_a_behavior_left_out_keeps_its_previous_actions():
    scene = make_scene("ball", num_agents=1, max_steps=0, seed=1)
    start = scene.observe()[BEHAVIOR].observations[0][0, 0]
    act(scene, [0.5, 0.0])
    scene.act({})
    after = scene.observe()[BEHAVIOR].observations[0][0, 0]
    assert after - start == pytest.approx(2 * np.radians(1.0), abs=1e-6)


def test_a_wrong_number_of_actions_is_rejected():
    scene = make_scene("ball", num_agents=3, seed=0)
    with pytest.raises(UnityProtocolError, match="one per decision record"):
        act(scene, np.zeros((2, 2)))
    with pytest.raises(UnityProtocolError, match="no behavior"):
        act(scene, np.zeros((3, 2)), behavior="Other?team=0")


def test_gravity_parameter_changes_the_dynamics():
    scene = make_scene("ball", num_agents=1, max_steps=0, seed=4)
    scene.set_parameter("gravity", 0.0)
    for _ in range(100):
        batch = act(scene, [1.0, -1.0])
    assert not batch.done.any()
    np.testing.assert_array_equal(batch.observations[0][0, 5:], 0.0)  # the ball never moves


def test_teacher_student_layout_serves_two_behaviors():
    scene = make_scene("ball", num_agents=3, teacher_student=True, seed=0)
    specs = scene.behavior_specs()
    assert list(specs) == ["Teacher?team=0", "Student?team=0"]
    assert specs["Teacher?team=0"].is_compatible(specs["Student?team=0"])
    batches = scene.observe()
    assert batches["Teacher?team=0"].agent_ids.tolist() == [0]
    assert batches["Student?team=0"].agent_ids.tolist() == [1, 2, 3]
    # Each behavior acts for its own agents; the teacher alone can be driven.
    teacher_before = batches["Teacher?team=0"].observations[0][0, 0]
    students_before = batches["Student?team=0"].observations[0][:, 0]
    scene.act({"Teacher?team=0": (np.array([[1.0, 0.0]], np.float32), NO_DISCRETE)})
    after = scene.observe()
    assert after["Teacher?team=0"].observations[0][0, 0] - teacher_before == pytest.approx(np.radians(2.0), abs=1e-6)
    np.testing.assert_allclose(after["Student?team=0"].observations[0][:, 0], students_before, atol=1e-7)
