"""The human teacher's pygame window, headless (``SDL_VIDEODRIVER=dummy``): injected key
events produce the mapped actions, R and C act on the buffer, Escape stops a run."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from gymnasium import spaces

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # before pygame opens a display
pygame = pytest.importorskip("pygame")

from gym_unity_il.errors import ConfigError  # noqa: E402
from gym_unity_il.spec import ActionSpec  # noqa: E402
from gym_unity_il.train import parse_config  # noqa: E402
from gym_unity_il.train.online import TeacherBuffer, train_online  # noqa: E402
from gym_unity_il.envs.source import open_session  # noqa: E402
from gym_unity_il.scenes import make_scene  # noqa: E402
from gym_unity_il.train.teacher import PICTURE_SIZE, VIEW_SIZE, WINDOW_SIZE, HumanTeacher, default_key_map, make_teacher  # noqa: E402


def _key(kind: int, name: str) -> None:
    pygame.event.post(pygame.event.Event(kind, key=pygame.key.key_code(name)))


@pytest.fixture
def window():
    teachers: list[HumanTeacher] = []

    def make(**kwargs) -> HumanTeacher:
        teacher = HumanTeacher(fps=0, **kwargs)
        teachers.append(teacher)
        return teacher

    yield make
    for teacher in teachers:
        teacher.close()


def test_continuous_keys_add_up_and_release(window) -> None:
    teacher = window(action_spec=ActionSpec.create_continuous(2))
    obs = np.zeros((2, 8), np.float32)
    assert np.array_equal(teacher.predict(obs)[0], np.zeros((2, 2), np.float32))
    _key(pygame.KEYDOWN, "right")
    _key(pygame.KEYDOWN, "up")
    actions, _ = teacher.predict(obs)
    assert actions.shape == (2, 2) and np.array_equal(actions, [[1.0, 1.0], [1.0, 1.0]])
    _key(pygame.KEYDOWN, "left")  # right + left cancel
    assert np.array_equal(teacher.predict(obs)[0][0], [0.0, 1.0])
    _key(pygame.KEYUP, "right")
    _key(pygame.KEYUP, "up")
    assert np.array_equal(teacher.predict(obs)[0][0], [-1.0, 0.0])
    assert pygame.display.get_surface().get_size() == WINDOW_SIZE


def test_discrete_custom_key_map_and_camera_view(window) -> None:
    grid_keys = {"up": (0, 1), "down": (0, 2), "left": (0, 3), "right": (0, 4)}
    teacher = window(action_spec=ActionSpec(0, (5,)), key_map=grid_keys)
    obs = {"CameraSensor": np.full((1, 12, 12, 3), 200, np.uint8), "GoalSensor": np.array([[1.0, 0.0]], np.float32)}
    assert teacher.predict(obs)[0].tolist() == [0]  # nothing held: 0
    _key(pygame.KEYDOWN, "left")
    assert teacher.predict(obs)[0].tolist() == [3]
    _key(pygame.KEYDOWN, "down")  # the last pressed wins
    assert teacher.predict(obs)[0].tolist() == [2]
    _key(pygame.KEYUP, "down")
    assert teacher.predict(obs)[0].tolist() == [3]
    assert pygame.display.get_surface().get_at((160, 100))[:3] == (200, 200, 200)  # the camera fills the view
    assert default_key_map(ActionSpec(0, (3,))) == {"0": (0, 0.0), "1": (0, 1.0), "2": (0, 2.0)}


def test_r_and_c_toggle_recording_and_clear_the_buffer(window) -> None:
    teacher = window(action_spec=ActionSpec.create_continuous(2))
    buffer = TeacherBuffer(observation_space=spaces.Box(-1, 1, (8,), np.float32), action_space=spaces.Box(-1, 1, (2,), np.float32))
    teacher.attach(buffer)
    obs = np.zeros((1, 8), np.float32)
    buffer.add(obs, teacher.predict(obs)[0])
    _key(pygame.KEYDOWN, "r")
    _key(pygame.KEYUP, "r")
    actions, _ = teacher.predict(obs)
    assert not buffer.recording and buffer.add(obs, actions) == 0 and len(buffer) == 1
    _key(pygame.KEYDOWN, "r")
    teacher.predict(obs)
    assert buffer.recording
    _key(pygame.KEYDOWN, "c")
    teacher.predict(obs)
    assert len(buffer) == 0


def test_bad_key_maps(window) -> None:
    spec = ActionSpec(0, (5,))
    with pytest.raises(ConfigError, match="'r' is the Teacher Helper's key"):
        window(action_spec=spec, key_map={"r": (0, 1)})
    with pytest.raises(ConfigError, match="'not a key' is not a pygame key name"):
        window(action_spec=spec, key_map={"not a key": (0, 1)})
    with pytest.raises(ConfigError, match=r"'up' -> branch 0 value 7 is outside the discrete branches \[5\]"):
        window(action_spec=spec, key_map={"up": (0, 7)})
    with pytest.raises(ConfigError, match="'up' drives action 2, the behavior has 2 continuous actions"):
        window(action_spec=ActionSpec.create_continuous(2), key_map={"up": (2, 1.0)})


def test_escape_stops_an_online_run_and_saves(tmp_path: Path, window) -> None:
    teacher = window(action_spec=ActionSpec.create_continuous(2))
    config = parse_config({"Student": {"trainer": "online_bc", "brain_to_imitate": "Teacher", "max_steps": 10**6, "hidden_units": 16}})
    _key(pygame.KEYDOWN, "right")
    _key(pygame.KEYDOWN, "escape")  # read at the first decision: the run stops there
    result = train_online(config, run_id="human", results_dir=tmp_path, scene="ball", scene_kwargs={"teacher_student": True, "num_agents": 2}, teacher=teacher, progress=False)
    assert result.interrupted and result.model_path.is_file() and teacher.closed
    assert teacher.pictures.pictures[0].shape == (*PICTURE_SIZE, 3)  # the run showed the scene's picture of the teacher (agent 0)


def test_make_teacher_from_the_config_key(tmp_path: Path) -> None:
    from gym_unity_il.scenes.ball import BallScene

    spec = BallScene(teacher_student=True, num_agents=1)._behavior_layout()[0][0]
    human = make_teacher("human", spec=spec)
    try:
        assert isinstance(human, HumanTeacher) and human.key_map["left"] == (0, -1.0)  # the default keys
    finally:
        human.close()
    human = make_teacher("human", spec=spec, scene="ball")
    try:
        assert human.key_map["left"] == (0, 1.0) and human.key_map["up"] == (1, 1.0)  # the ball rolls the way the arrow points
    finally:
        human.close()
    from gym_unity_il.scenes.grid import GridScene

    grid_spec = GridScene(teacher_student=True, num_agents=1)._behavior_layout()[0][0]
    human = make_teacher("human", spec=grid_spec, scene="grid")
    try:
        assert human.key_map == {"up": (0, 1.0), "down": (0, 2.0), "left": (0, 3.0), "right": (0, 4.0)}
    finally:
        human.close()
    assert make_teacher("expert", spec=spec, scene="ball").predict(np.zeros(8, np.float32))[0].shape == (2,)
    with pytest.raises(ConfigError, match="'expert' is the scripted expert of a built-in scene"):
        make_teacher(None, spec=spec, scene=None)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ConfigError, match="is not a saved SB3 model"):
        make_teacher(str(tmp_path / "notes.txt"), spec=spec)


def _view(surface) -> np.ndarray:
    """The window's pixels, ``[H, W, 3]``."""
    return np.swapaxes(pygame.surfarray.array3d(surface), 0, 1)


def _text_pixels(teacher: HumanTeacher, text: str, colour) -> np.ndarray:
    """The pixels of one line of status text as the window draws it, on the window's background."""
    line = pygame.Surface(teacher._font.size(text))
    line.fill((24, 24, 28))
    line.blit(teacher._font.render(text, True, colour), (0, 0))
    return _view(line)


def test_the_window_shows_the_scene_picture_and_the_status(window, assert_released) -> None:
    teacher = window(action_spec=ActionSpec.create_continuous(2))
    buffer = TeacherBuffer(observation_space=spaces.Box(-np.inf, np.inf, (8,), np.float32), action_space=spaces.Box(-1, 1, (2,), np.float32))
    teacher.attach(buffer)
    kwargs = {"teacher_student": True, "num_agents": 2, "max_steps": 0}
    reference = make_scene("ball", seed=3, **kwargs)  # the same scene, simulated here
    reference.reset()
    scale = VIEW_SIZE // PICTURE_SIZE[0]
    with open_session(scene="ball", scene_kwargs=kwargs, seed=3, timeout_wait=20) as session:
        teacher.show_scene(session.scene_pictures, agent_id=0)
        steps = session.reset()
        for step in range(3):
            obs = steps["Teacher?team=0"][0].obs[0]
            _key(pygame.KEYDOWN, "right")
            actions, _ = teacher.predict(obs)
            buffer.add(obs, actions)
            shown = _view(pygame.display.get_surface())
            # The view is the scene's picture of the teacher's area, scaled up: every pixel a block.
            np.testing.assert_array_equal(shown[:VIEW_SIZE:scale, :VIEW_SIZE:scale], reference.render(0, *PICTURE_SIZE))
            np.testing.assert_array_equal(shown[scale - 1 : VIEW_SIZE : scale, scale - 1 : VIEW_SIZE : scale], reference.render(0, *PICTURE_SIZE))
            both = {"Teacher?team=0": (actions, np.zeros((1, 0), np.int32)), "Student?team=0": (np.zeros((2, 2), np.float32), np.zeros((2, 0), np.int32))}
            steps = session.step(both)
            reference.act(both)
        port = session.port
    assert_released(port)
    assert len(buffer) == 3
    for row, (text, colour) in enumerate([("REC   buffer 2", (235, 70, 70)), ("act: right left up down", (200, 200, 200)), ("R: record on/off   C: clear   Esc: stop", (200, 200, 200))]):
        expected = _text_pixels(teacher, text, colour)
        top = VIEW_SIZE + 4 + 19 * row
        np.testing.assert_array_equal(shown[top : top + expected.shape[0], 6 : 6 + expected.shape[1]], expected)
    _key(pygame.KEYDOWN, "r")
    teacher.predict(obs)  # no session now: the last picture stays, the status says PAUSED
    shown = _view(pygame.display.get_surface())
    expected = _text_pixels(teacher, "PAUSED   buffer 3", (200, 200, 200))
    np.testing.assert_array_equal(shown[VIEW_SIZE + 4 : VIEW_SIZE + 4 + expected.shape[0], 6 : 6 + expected.shape[1]], expected)
    assert not (shown[VIEW_SIZE:] == (235, 70, 70)).all(axis=2).any()  # no red REC any more
