"""The "grid" scene: action masks, rendered images, goal rewards."""

from __future__ import annotations

import numpy as np
import pytest

from gym_unity_il.errors import ConfigError, UnityProtocolError
from gym_unity_il.scenes import expert_policy, make_scene
from gym_unity_il.scenes.grid import AGENT, CROSS, FLOOR, PLUS, WALL
from gym_unity_il.scenes.evaluate import evaluate_in_process
from gym_unity_il.spec import CameraResolution

BEHAVIOR = "GridWorld?team=0"


def move(scene, actions) -> None:
    actions = np.asarray(actions, np.int32).reshape(-1, 1)
    scene.act({BEHAVIOR: (np.zeros((len(actions), 0), np.float32), actions)})


def agent_cell(image: np.ndarray, cells: int) -> tuple[int, int]:
    """The agent's cell (wall ring included) read from an image by its colour."""
    agent_colour = np.array([130, 180, 245], np.uint8)
    rows, cols = np.nonzero((image == agent_colour).all(axis=-1))
    height, width = image.shape[:2]
    return int(rows.mean() * cells // height), int(cols.mean() * cells // width)


def test_masks_forbid_moving_into_the_wall():
    size = 4
    scene = make_scene("grid", num_agents=6, grid_size=size, max_steps=0, seed=0)
    rng = np.random.default_rng(0)
    forbidden_tries = 0
    for _ in range(300):
        batch = scene.observe()[BEHAVIOR]
        decisions = ~batch.done
        images, mask = batch.observations[0][decisions], batch.action_mask[decisions]
        assert mask.shape == (6, 5) and mask[:, 0].all()
        places = [agent_cell(image, size + 2) for image in images]
        for (row, col), allowed in zip(places, mask):
            assert allowed[1:].tolist() == [row > 1, row < size, col > 1, col < size]
        actions = rng.integers(0, 5, 6)
        forbidden = ~mask[np.arange(6), actions]
        forbidden_tries += forbidden.sum()
        move(scene, actions)
        after = scene.observe()[BEHAVIOR]
        # An agent that tried a forbidden move stays where it was (and cannot have ended).
        ended = set(after.agent_ids[after.done].tolist())
        current = after.observations[0][~after.done]
        for agent in np.flatnonzero(forbidden):
            assert agent not in ended
            assert agent_cell(current[agent], size + 2) == places[agent]
    assert forbidden_tries > 20


@pytest.mark.parametrize(("height", "width", "grayscale"), [(84, 84, False), (36, 60, True), (50, 20, False), (7, 7, True)])
def test_image_follows_the_camera_resolution(height, width, grayscale):
    scene = make_scene("grid", num_agents=2, camera_height=height, camera_width=width, grayscale=grayscale, seed=3)
    camera, goal = scene.behavior_specs()[BEHAVIOR].observation_specs
    assert camera.camera_resolution == CameraResolution(height, width, grayscale)
    image = scene.observe()[BEHAVIOR].observations[0]
    assert image.shape == (2, height, width, 1 if grayscale else 3) and image.dtype == np.uint8
    colour = make_scene("grid", num_agents=2, camera_height=height, camera_width=width, seed=3)
    rgb = colour.observe()[BEHAVIOR].observations[0].astype(np.float64)
    grey = np.rint(rgb.mean(axis=-1, keepdims=True)).astype(np.uint8)
    np.testing.assert_array_equal(image, grey if grayscale else rgb.astype(np.uint8))
    assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) >= 5  # wall, floor, agent, two goals


def test_too_small_an_image_is_refused():
    with pytest.raises(ConfigError, match="camera_height and camera_width >= 7"):
        make_scene("grid", grid_size=5, camera_height=6, camera_width=84)


def test_target_goal_pays_one_and_the_other_goal_minus_one():
    expert = expert_policy("grid")
    for wrong in (False, True):
        scene = make_scene("grid", num_agents=1, max_steps=0, seed=8)
        rewards = []
        for _ in range(50):
            batch = scene.observe()[BEHAVIOR]
            image, goal = batch.observations[0][-1], batch.observations[1][-1]
            if wrong:
                goal = goal[::-1]  # lead the expert to the other goal
            action, _ = expert.predict({"CameraSensor": image, "GoalSensor": goal})
            move(scene, [action])
            batch = scene.observe()[BEHAVIOR]
            rewards.append(float(batch.rewards[0]))
            if batch.done[0]:
                break
        assert batch.done[0] and not batch.max_step_reached[0]
        assert rewards[-1] == (-1.0 if wrong else 1.0)
        assert rewards[:-1] == pytest.approx([-0.01] * (len(rewards) - 1))


@pytest.mark.parametrize("image_format", ["hwc_uint8", "chw_float"])
@pytest.mark.parametrize("scene_kwargs", [{}, {"camera_height": 24, "camera_width": 40, "grayscale": True, "grid_size": 7}])
def test_expert_reads_every_image_layout(image_format, scene_kwargs):
    result = evaluate_in_process("grid", "expert", episodes=30, seed=4, image_format=image_format, **scene_kwargs)
    assert min(result.returns) > 0.8  # always the target goal, on a shortest path


def test_actions_outside_the_branch_are_rejected():
    scene = make_scene("grid", num_agents=2, seed=0)
    with pytest.raises(UnityProtocolError, match=r"outside the branch sizes \(5,\)"):
        move(scene, [0, 5])


@pytest.mark.parametrize(("num_agents", "height", "width"), [(1, 84, 84), (5, 23, 41)])
def test_each_pixel_shows_what_is_in_its_cell(num_agents, height, width):
    """The renderer against its definition, pixel by pixel: a pixel shows the texture of the
    thing in its cell (the agent over a goal, a goal over the floor) at that place."""
    scene = make_scene("grid", num_agents=num_agents, camera_height=height, camera_width=width, max_steps=0, seed=2)
    rng = np.random.default_rng(0)
    side = scene.grid_size + 2
    row_cell, _ = scene._camera._pixel_map(height, side)
    col_cell, _ = scene._camera._pixel_map(width, side)
    for _ in range(25):
        images = scene.observe()[BEHAVIOR].observations[0][-num_agents:]  # the decision records
        for agent, image in enumerate(images):
            kinds = np.full((side, side), WALL)
            kinds[1:-1, 1:-1] = FLOOR
            (plus_row, plus_col), (cross_row, cross_col) = scene._goals[agent]
            kinds[plus_row + 1, plus_col + 1] = PLUS
            kinds[cross_row + 1, cross_col + 1] = CROSS
            row, col = scene._position[agent]
            kinds[row + 1, col + 1] = AGENT
            pixel_kinds = kinds[row_cell[:, None], col_cell[None, :]]
            expected = scene._camera.kind_images[pixel_kinds, np.arange(height)[:, None], np.arange(width)[None, :]]
            np.testing.assert_array_equal(image, expected)
        move(scene, rng.integers(0, 5, num_agents))


def test_sparse_task_starts_far_from_the_target_and_pays_only_for_it():
    size = 5
    scene = make_scene("grid", num_agents=2, grid_size=size, camera=False, sparse=True, max_steps=0, seed=3)
    goal_spec, position_spec = scene.behavior_specs()[BEHAVIOR].observation_specs
    assert (goal_spec.name, position_spec.name, position_spec.shape) == ("GoalSensor", "PositionSensor", (size * size,))
    # Agent 0 walks along the top row onto the other goal, agent 1 down the left column and
    # along the bottom row onto the target.
    plans = [[4] * (size - 1), [2] * (size - 1) + [4] * (size - 1)]
    rewards: list[list[float]] = [[], []]
    ends: list[list[int]] = [[], []]
    batch = scene.observe()[BEHAVIOR]
    assert batch.observations[1].argmax(axis=1).tolist() == [0, 0] and (batch.observations[1].sum(axis=1) == 1).all()
    for step in range(2 * (size - 1)):
        move(scene, [plans[0][step % (size - 1)], plans[1][step]])
        batch = scene.observe()[BEHAVIOR]
        for agent in (0, 1):
            row = batch.agent_ids.tolist().index(agent)  # its terminal record when its episode ended, else its decision
            rewards[agent].append(float(batch.rewards[row]))
            if batch.done[row]:
                ends[agent].append(step)
        if step == 0:
            assert batch.observations[1][-2:].argmax(axis=1).tolist() == [1, size]  # one cell right, one cell down
    assert ends == [[size - 2, 2 * size - 3], [2 * size - 3]]
    assert rewards[0] == [0.0] * len(rewards[0])  # the other goal ends the episode with 0, steps pay 0
    assert rewards[1] == [0.0] * (2 * size - 3) + [1.0]  # only the target pays


def test_sparse_task_keeps_the_camera_unless_told_and_the_expert_solves_it():
    result = evaluate_in_process("grid", "expert", episodes=10, seed=5, sparse=True, grid_size=6, camera_height=8, camera_width=8, grayscale=True)
    assert result.returns == [1.0] * 10  # the target is always the far corner, and only it pays
