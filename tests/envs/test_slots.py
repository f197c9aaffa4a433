"""AgentSlots and the batch helpers of gym_unity_il.envs.slots on messages built by hand:
no Unity process, no socket. Each message is the decision and terminal steps of one
behavior, as the session decodes them; each test plays a sequence of messages through
the slots as the worker does (absorb, then answer with ``actions()``)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from gym_unity_il.envs.slots import AgentSlots, SlotBatch, cut_episodes, join_batches, split_batch_actions
from gym_unity_il.errors import SpecMismatchError
from gym_unity_il.protocol.agents import StepBatch
from gym_unity_il.spec import ActionSpec, BehaviorSpec, ObservationSpec

SPEC = BehaviorSpec("Walker?team=0", (ObservationSpec((2,)),), ActionSpec(continuous_size=1))
MASKED = BehaviorSpec("Picker?team=0", (ObservationSpec((2,)),), ActionSpec(discrete_branches=(3,)))
NOBODY = ([], [])


def steps(ids, obs=None, reward=None, cut=None, mask=None) -> StepBatch:
    """One behavior's agents ``ids`` in one message; the first observation value is the
    agent id and the second ``obs`` (default 0), so tests can tell whose observation a slot holds."""
    ids = np.asarray(ids, np.int32)
    n = len(ids)
    second = np.zeros(n) if obs is None else np.asarray(obs, float)
    values = np.stack([ids.astype(np.float32), second.astype(np.float32)], axis=1).reshape(n, 2)
    return StepBatch(
        agent_id=ids,
        obs=(values,),
        reward=np.zeros(n, np.float32) if reward is None else np.asarray(reward, np.float32),
        interrupted=np.zeros(n, bool) if cut is None else np.asarray(cut, bool),
        action_mask=None if mask is None else np.asarray(mask, bool),
        group_id=np.zeros(n, np.int32),
        group_reward=np.zeros(n, np.float32),
    )


def message(slots: AgentSlots, decision=NOBODY, terminal=NOBODY) -> tuple[np.ndarray, np.ndarray] | None:
    """Absorbs one message (``decision``/``terminal``: ``(ids, obs)`` or a StepBatch) and returns the answer."""
    as_steps = [d if isinstance(d, StepBatch) else steps(*d) for d in (decision, terminal)]
    slots.absorb(*as_steps)
    return slots.actions()


def reset(slots: AgentSlots, ids) -> None:
    slots.begin_reset()
    message(slots, (ids, None))


def test_slots_follow_the_first_agents_and_deliver_each_action_to_its_agent() -> None:
    slots = AgentSlots(spec=SPEC, agent_ids=np.array([7, 3, 5]))
    reset(slots, [7, 3, 5])
    assert slots.ready() and len(slots) == 3
    slots.begin_step(np.array([[0.1], [0.2], [0.3]], np.float32), np.zeros((3, 0), np.int32))
    assert not slots.ready()
    answer = message(slots, steps([5, 7, 3], obs=[1, 1, 1], reward=[0.5, 1.0, 2.0]))  # Unity's order need not be the slots'
    assert answer is not None
    np.testing.assert_array_equal(answer[0][:, 0], np.float32([0.3, 0.1, 0.2]))
    assert slots.ready() is False  # the agents decided before their actions were delivered
    message(slots, steps([7, 3, 5], obs=[2, 2, 2], reward=[1.0, 1.0, 1.0]))
    assert slots.ready()
    batch = slots.result()
    np.testing.assert_array_equal(batch.agent_id, [7, 3, 5])
    np.testing.assert_array_equal(batch.obs[0], [[7, 2], [3, 2], [5, 2]])
    np.testing.assert_allclose(batch.reward, [2.0, 3.0, 1.5])
    assert not batch.done.any() and batch.terminal_rows.size == 0 and batch.action_mask is None


def test_an_agent_that_decides_again_early_gets_its_action_once_more_and_its_rewards_add_up() -> None:
    slots = AgentSlots(spec=SPEC, agent_ids=np.array([0, 1]))
    reset(slots, [0, 1])
    slots.begin_step(np.array([[0.5], [-0.5]], np.float32), np.zeros((2, 0), np.int32))
    message(slots, steps([0, 1]))  # the reset's decisions are answered with this step's actions
    answer = message(slots, steps([0], obs=[1], reward=[1.0]))  # agent 0 decides every message, agent 1 every other
    assert not slots.ready() and slots.unready_agents() == [1]
    np.testing.assert_array_equal(answer[0], [[0.5]])  # agent 0 repeats its action
    message(slots, steps([0, 1], obs=[2, 2], reward=[1.0, 3.0]))
    assert slots.ready()
    batch = slots.result()
    np.testing.assert_allclose(batch.reward, [2.0, 3.0])
    np.testing.assert_array_equal(batch.obs[0][:, 1], [2, 2])  # the latest observations


def test_an_episode_end_reports_the_end_and_the_first_observation_of_the_next_episode() -> None:
    slots = AgentSlots(spec=SPEC, agent_ids=np.array([0, 1]))
    reset(slots, [0, 1])
    slots.begin_step(*slots.zero_actions())
    message(slots, steps([0, 1]))
    # agent 1 ends (cut by the step limit) and starts again in the same message; agent 0 goes on
    message(slots, steps([0, 1], obs=[1, 9], reward=[1.0, 5.0]), steps([1], obs=[8], reward=[2.0], cut=[True]))
    assert slots.ready()
    batch = slots.result()
    np.testing.assert_array_equal(batch.done, [False, True])
    np.testing.assert_array_equal(batch.truncated, [False, True])
    np.testing.assert_array_equal(batch.terminal_rows, [1])
    np.testing.assert_array_equal(batch.terminal_obs[0], [[1, 8]])  # the last observation of the ended episode
    np.testing.assert_array_equal(batch.obs[0][1], [1, 9])  # the first of the next one
    np.testing.assert_allclose(batch.reward, [1.0, 2.0])  # what the new episode earned before the step ended is dropped
    np.testing.assert_array_equal(batch.agent_id, [0, 1])


def test_a_second_end_within_one_step_is_left_out() -> None:
    slots = AgentSlots(spec=SPEC, agent_ids=np.array([0, 1]))
    reset(slots, [0, 1])
    slots.begin_step(*slots.zero_actions())
    message(slots, steps([0, 1]))
    message(slots, steps([1], obs=[5]), steps([1], obs=[4], reward=[1.0]))  # agent 0 has not decided yet
    message(slots, NOBODY, steps([1], obs=[6], reward=[7.0]))  # agent 1 ends again, a one-message episode
    message(slots, steps([0, 1], obs=[1, 7]))
    batch = slots.result()
    np.testing.assert_array_equal(batch.terminal_obs[0], [[1, 4]])  # the first end
    np.testing.assert_allclose(batch.reward, [0.0, 1.0])
    np.testing.assert_array_equal(batch.obs[0][1], [1, 7])


def test_a_slot_whose_agent_vanishes_turns_vacant_and_a_newcomer_takes_it_over() -> None:
    slots = AgentSlots(spec=SPEC, agent_ids=np.array([0, 1]), vacant_after=2)
    slots.begin_reset()
    message(slots, steps([0], obs=[3]))  # agent 1 does not come back after the reset
    assert not slots.ready()
    message(slots, steps([0]))
    message(slots, steps([0]))  # the third message without it: vacant
    assert slots.ready()
    batch = slots.result()
    np.testing.assert_array_equal(batch.agent_id, [0, -1])
    np.testing.assert_array_equal(batch.obs[0][1], [0, 0])  # a slot that never saw its agent keeps zeros
    slots.begin_step(*slots.zero_actions())
    answer = message(slots, steps([0, 4], obs=[1, 2], reward=[1.0, 9.0]))  # agent 4 appears
    np.testing.assert_array_equal(answer[0], [[0.0], [0.0]])  # the newcomer's slot had no action for it
    batch = slots.result()
    np.testing.assert_array_equal(batch.agent_id, [0, 4])
    np.testing.assert_array_equal(batch.obs[0][1], [4, 2])
    np.testing.assert_allclose(batch.reward, [1.0, 0.0])  # the newcomer's rewards before it had a slot are dropped


def test_an_ended_agent_that_does_not_come_back_leaves_its_last_observation() -> None:
    slots = AgentSlots(spec=SPEC, agent_ids=np.array([0, 1]), vacant_after=1)
    reset(slots, [0, 1])
    slots.begin_step(*slots.zero_actions())
    message(slots, steps([0, 1]))
    message(slots, steps([0]), steps([1], obs=[6]))
    message(slots, steps([0]))  # agent 1 waited for one message
    message(slots, steps([0]))  # two: vacant, reporting its final observation
    batch = slots.result()
    np.testing.assert_array_equal(batch.agent_id, [0, -1])
    np.testing.assert_array_equal(batch.obs[0][1], [1, 6])
    assert batch.done[1]


def test_agents_without_a_slot_get_zero_actions_and_one_warning(caplog) -> None:
    slots = AgentSlots(spec=SPEC, agent_ids=np.array([0]))
    reset(slots, [0])
    slots.begin_step(np.array([[0.7]], np.float32), np.zeros((1, 0), np.int32))
    with caplog.at_level(logging.WARNING, logger="gym_unity_il.envs.slots"):
        answer = message(slots, steps([0, 1, 2]))
        message(slots, steps([0, 1, 2]))
    np.testing.assert_array_equal(answer[0][:, 0], np.float32([0.7, 0.0, 0.0]))
    assert len([r for r in caplog.records if "more agents than slots" in r.message]) == 1
    np.testing.assert_array_equal(slots.result().agent_id, [0])


def test_a_newcomer_in_a_repeated_list_of_agents_takes_the_slot_that_frees_later() -> None:
    """The same deciding agents message after message: agent 2 has no slot until agent 1's
    slot turns vacant (agent 1 never comes back after the reset), then takes it over."""
    slots = AgentSlots(spec=SPEC, agent_ids=np.array([0, 1]), vacant_after=2)
    slots.begin_reset()
    for k in range(3):
        message(slots, steps([0, 2], obs=[k, k]))
        expected = ([0, -1], True) if k == 2 else ([0, 1], False)  # vacant after two messages without agent 1
        assert (slots.result().agent_id.tolist(), slots.ready()) == expected
    slots.begin_step(np.array([[0.1], [0.2]], np.float32), np.zeros((2, 0), np.int32))
    answer = message(slots, steps([0, 2], obs=[3, 7], reward=[1.0, 5.0]))
    np.testing.assert_array_equal(answer[0][:, 0], np.float32([0.1, 0.2]))  # agent 2 in slot 1, with its action
    batch = slots.result()
    np.testing.assert_array_equal(batch.agent_id, [0, 2])
    np.testing.assert_array_equal(batch.obs[0], [[0, 3], [2, 7]])
    np.testing.assert_allclose(batch.reward, [1.0, 0.0])  # a newcomer's first rewards are dropped


def test_without_auto_reset_an_agent_leaves_its_slot_for_good() -> None:
    slots = AgentSlots(spec=SPEC, agent_ids=np.array([0, 1]), auto_reset=False, adopt=False)
    reset(slots, [0, 1])
    slots.begin_step(*slots.zero_actions())
    message(slots, steps([0, 1]))
    message(slots, steps([0, 1], obs=[1, 9]), steps([1], obs=[5], reward=[2.0]))
    assert slots.ready()
    batch = slots.result()
    np.testing.assert_array_equal(batch.agent_id, [0, -1])
    np.testing.assert_array_equal(batch.obs[0][1], [1, 5])  # its final observation, not the next episode's
    assert batch.done[1] and batch.reward[1] == 2.0
    slots.begin_step(*slots.zero_actions())
    answer = message(slots, steps([0, 1, 3]))  # the agent is back, and a newcomer: neither takes the slot
    np.testing.assert_array_equal(answer[0], np.zeros((3, 1), np.float32))
    message(slots, steps([0, 1, 3]))
    assert slots.ready()
    np.testing.assert_array_equal(slots.result().agent_id, [0, -1])


def test_action_masks_follow_the_decisions_and_a_reset_forgets_the_actions() -> None:
    slots = AgentSlots(spec=MASKED, agent_ids=np.array([0, 1]))
    slots.begin_reset()
    slots.absorb(steps([0, 1], mask=[[True, False, True], [False, True, True]]), steps([]))
    np.testing.assert_array_equal(slots.result().action_mask, [[True, False, True], [False, True, True]])
    slots.begin_step(np.zeros((2, 0), np.float32), np.array([[2], [1]], np.int32))
    slots.begin_reset()
    slots.absorb(steps([0, 1]), steps([]))
    np.testing.assert_array_equal(slots.actions()[1], [[0], [0]])


def test_batches_of_several_processes_join_over_their_slots() -> None:
    parts = []
    for ids, done in (([0, 1], [False, True]), ([0], [True])):
        slots = AgentSlots(spec=SPEC, agent_ids=np.array(ids))
        reset(slots, ids)
        slots.begin_step(*slots.zero_actions())
        ended = [i for i, d in zip(ids, done) if d]
        message(slots, steps(ids, obs=[1] * len(ids)), steps(ended, obs=[4] * len(ended)))
        parts.append(slots.result())
    joined = join_batches(parts, np.array([0, 2, 3]))
    np.testing.assert_array_equal(joined.terminal_rows, [1, 2])
    np.testing.assert_array_equal(joined.terminal_obs[0], [[1, 4], [0, 4]])
    np.testing.assert_array_equal(joined.agent_id, [0, 1, 0])
    np.testing.assert_array_equal(joined.done, [False, True, True])
    assert join_batches(parts[:1], np.array([0, 2])) is parts[0]


def test_a_restart_cuts_every_episode_of_its_process() -> None:
    first = SlotBatch(
        obs=(np.ones((2, 2), np.float32),), reward=np.ones(2, np.float32), done=np.zeros(2, bool), truncated=np.zeros(2, bool),
        terminal_rows=np.zeros(0, np.intp), terminal_obs=(np.zeros((0, 2), np.float32),), action_mask=None, agent_id=np.array([3, 4]),
    )  # fmt: skip
    last = np.full((2, 2), 5.0, np.float32)
    cut = cut_episodes(first, [last])
    assert cut.done.all() and cut.truncated.all() and not cut.reward.any()
    np.testing.assert_array_equal(cut.terminal_rows, [0, 1])
    np.testing.assert_array_equal(cut.terminal_obs[0], last)
    assert cut.terminal_obs[0] is not last and cut.obs is first.obs
    np.testing.assert_array_equal(cut.agent_id, [3, 4])


def test_batch_actions_are_split_and_checked_against_the_spec() -> None:
    hybrid = BehaviorSpec("H", (ObservationSpec((1,)),), ActionSpec(continuous_size=2, discrete_branches=(3, 2)))
    cont, disc = split_batch_actions({"continuous": np.zeros((2, 2)), "discrete": [[2, 1], [0, 0]]}, hybrid, 2)
    assert cont.dtype == np.float32 and cont.shape == (2, 2) and disc.dtype == np.int32
    np.testing.assert_array_equal(disc, [[2, 1], [0, 0]])
    rows = [{"continuous": [0.5, 0.5], "discrete": [1, 1]}] * 2
    np.testing.assert_array_equal(split_batch_actions(rows, hybrid, 2)[1], [[1, 1], [1, 1]])
    np.testing.assert_array_equal(split_batch_actions(np.array([2.0, 0.0]), MASKED, 2)[1], [[2], [0]])
    with pytest.raises(SpecMismatchError, match="hybrid actions"):
        split_batch_actions(np.zeros((2, 4)), hybrid, 2)
    with pytest.raises(SpecMismatchError, match="Walker"):
        split_batch_actions(np.zeros((3, 1)), SPEC, 2)
    with pytest.raises(SpecMismatchError, match="whole numbers"):
        split_batch_actions(np.array([0.5, 1.0]), MASKED, 2)
    with pytest.raises(SpecMismatchError, match="branch sizes"):
        split_batch_actions(np.array([3, 0]), MASKED, 2)
