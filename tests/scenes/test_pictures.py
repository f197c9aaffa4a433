"""The pictures built-in scenes draw of themselves (``Scene.render``): RGB ``uint8`` of the
asked size that follow the state, and that reach the trainer through a real session."""

from __future__ import annotations

import numpy as np
import pytest

from gym_unity_il.envs.source import open_session
from gym_unity_il.scenes import SCENES, make_scene
from gym_unity_il.scenes.ball import ARROW_COLOUR, BALL_COLOUR, ROLL_DIRECTION, VIEW
from gym_unity_il.scenes.grid import AGENT, COLOURS, KIND_COLOUR, TARGET_FRAME
from gym_unity_il.scenes.hybrid import AGENT_COLOUR, ARENA, MARKER


def _centre(picture: np.ndarray, colour) -> np.ndarray:
    """``(row, col)`` centre of the pixels of one colour."""
    rows, cols = np.nonzero((picture == np.asarray(colour, np.uint8)).all(axis=2))
    assert rows.size, f"no pixel of colour {colour}"
    return np.array([rows.mean(), cols.mean()])


def _world(centre: np.ndarray, size: int, half_extent: float) -> np.ndarray:
    """``(x, y)`` of a pixel position in a square picture of the square [-half_extent, half_extent]^2."""
    row, col = centre
    return np.array([(col + 0.5) / size * 2 - 1, 1 - (row + 0.5) / size * 2]) * half_extent


@pytest.mark.parametrize("name", sorted(SCENES))
def test_every_scene_draws_rgb_uint8_of_the_asked_size(name: str) -> None:
    scene = make_scene(name, num_agents=2, seed=0)
    for size in [(160, 160), (48, 90), (9, 9)]:
        picture = scene.render(1, *size)
        assert picture.dtype == np.uint8 and picture.shape == (*size, 3)
    assert scene.render(2, 160, 160) is None  # no such agent


def test_the_ball_picture_follows_the_ball_and_the_tilt() -> None:
    scene = make_scene("ball", num_agents=1, seed=3, max_steps=0)
    behavior = "3DBall?team=0"
    size = 160
    pixel = 2 * VIEW / size
    for step in range(40):
        obs = scene.observe()[behavior].observations[0][-1]
        picture = scene.render(0, size, size)
        ball = _world(_centre(picture, BALL_COLOUR), size, VIEW)
        np.testing.assert_allclose(ball, obs[[2, 4]], atol=pixel)  # ball x, z in the picture
        downhill = np.sin(obs[0:2]) * ROLL_DIRECTION
        if np.linalg.norm(downhill) > 0.1:  # the arrow points the way the ball accelerates
            arrow = _world(_centre(picture, ARROW_COLOUR), size, VIEW)
            assert np.dot(arrow, downhill) / (np.linalg.norm(arrow) * np.linalg.norm(downhill)) > 0.95
        scene.act({behavior: (np.array([[1.0, -0.5]], np.float32), np.zeros((1, 0), np.int32))})
    assert np.linalg.norm(obs[[2, 4]] - scene.observe()[behavior].observations[0][-1][[2, 4]]) > 0  # it moved


def test_the_hybrid_picture_follows_the_agent() -> None:
    scene = make_scene("hybrid", num_agents=1, seed=1, max_steps=0)
    behavior = "Hybrid?team=0"
    size = 120
    half = ARENA + 2 * MARKER
    seen = []
    for _ in range(6):
        obs = scene.observe()[behavior].observations[0][-1]
        agent = _world(_centre(scene.render(0, size, size), AGENT_COLOUR), size, half)
        np.testing.assert_allclose(agent, obs[0:2], atol=2 * half / size)
        seen.append(agent)
        scene.act({behavior: (np.array([[0.7, -0.4]], np.float32), np.zeros((1, 1), np.int32))})
    assert np.linalg.norm(seen[-1] - seen[0]) > 0.3


def test_the_grid_picture_shows_the_agents_cell_and_frames_the_target() -> None:
    scene = make_scene("grid", num_agents=1, seed=4, grayscale=True, max_steps=0)
    behavior = "GridWorld?team=0"
    side = scene.grid_size + 2
    size = 10 * side
    agent_colour = COLOURS[KIND_COLOUR[AGENT]]
    for action in [1, 4, 2, 3, 3]:
        batch = scene.observe()[behavior]
        camera, goal = batch.observations[0][-1], batch.observations[1][-1]
        picture = scene.render(0, size, size)  # in colour though the camera is grey
        cell = np.floor(_centre(picture, agent_colour) / 10).astype(int)
        camera_cell = np.floor(np.argwhere(camera[:, :, 0] == np.rint(agent_colour.mean()))[0] * side / camera.shape[0]).astype(int)
        assert cell.tolist() == camera_cell.tolist()
        frame = np.floor(_centre(picture, TARGET_FRAME) / 10).astype(int)
        target = scene._goals[0, int(np.argmax(goal))] + 1
        assert frame.tolist() == target.tolist()
        scene.act({behavior: (np.zeros((1, 0), np.float32), np.array([[action]], np.int32))})


def test_the_grid_offers_a_teacher_and_students() -> None:
    scene = make_scene("grid", num_agents=2, teacher_student=True)
    assert {name: len(batch) for name, batch in scene.observe().items()} == {"Teacher?team=0": 1, "Student?team=0": 2}
    assert scene.behavior_specs()["Teacher?team=0"].observation_specs == scene.behavior_specs()["Student?team=0"].observation_specs


def test_the_picture_crosses_the_process_boundary(assert_released) -> None:
    kwargs = {"num_agents": 3, "max_steps": 0}
    reference = make_scene("ball", seed=5, **kwargs)  # the same scene, simulated here
    reference.reset()  # as the player does at the first RESET
    actions = np.array([[0.5, -1.0], [-1.0, 0.2], [1.0, 1.0]], np.float32)
    with open_session(scene="ball", scene_kwargs=kwargs, seed=5, timeout_wait=20) as session:
        pictures = session.scene_pictures
        pictures.request(behavior="3DBall", size=(64, 80))  # -1: the first deciding agent
        session.reset()
        np.testing.assert_array_equal(pictures.pictures[0], reference.render(0, 64, 80))
        for _ in range(3):
            pictures.request(agent_id=2, size=(50, 50))
            session.step({"3DBall?team=0": (actions, np.zeros((3, 0), np.int32))})
            reference.act({"3DBall?team=0": (actions, np.zeros((3, 0), np.int32))})
            np.testing.assert_array_equal(pictures.pictures[2], reference.render(2, 50, 50))
        before = pictures.pictures[2]
        session.step({"3DBall?team=0": (actions, np.zeros((3, 0), np.int32))})  # nobody asked: nothing drawn
        assert pictures.pictures[2] is before and set(pictures.pictures) == {0, 2}
        port = session.port
    assert_released(port)


def test_the_channel_decodes_only_what_it_asked_for() -> None:
    from gym_unity_il.errors import ConfigError, UnityProtocolError
    from gym_unity_il.protocol.channels import ScenePictureChannel

    channel = ScenePictureChannel()
    picture = np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3)
    with pytest.raises(UnityProtocolError, match="nobody asked for"):
        channel.on_message_received(ScenePictureChannel.encode_picture(4, picture))
    channel.request(agent_id=4, size=(20, 30))
    assert ScenePictureChannel.parse_request(channel.take_outgoing()[0]) == ("", 4, 20, 30)
    channel.on_message_received(ScenePictureChannel.encode_picture(4, picture))
    np.testing.assert_array_equal(channel.pictures[4], picture)
    channel.on_message_received(ScenePictureChannel.encode_picture(5, None))  # a scene that draws nothing
    assert channel.pictures[5] is None
    with pytest.raises(UnityProtocolError, match="more than the 600"):  # larger than anything asked for
        channel.on_message_received(ScenePictureChannel.encode_picture(4, np.zeros((21, 30, 3), np.uint8)))
    with pytest.raises(ConfigError, match="each side must be 1 to 1024"):
        channel.request(size=(2000, 10))


def test_the_same_request_twice_before_a_message_is_sent_once() -> None:
    from gym_unity_il.protocol.channels import ScenePictureChannel

    channel = ScenePictureChannel()
    channel.request(agent_id=1)
    channel.request(agent_id=1)
    channel.request(agent_id=2)
    assert [ScenePictureChannel.parse_request(p)[1] for p in channel.take_outgoing()] == [1, 2]
