"""Teachers for online behavioral cloning and DAgger: scripted, saved models, a human at the keyboard.

A teacher is anything with SB3's ``predict(observations, state, episode_start,
deterministic=True)`` over a batch of env observations; a teacher with memory (a saved
recurrent model, the "hallway" expert) returns its state and gets it back at its next call,
which :class:`CarriedState` does for DAgger and online BC, for the students too. :func:`make_teacher` builds one from the config's ``teacher``
key: ``expert`` (the built-in scene's scripted expert), ``human`` (:class:`HumanTeacher`)
or the path of a saved SB3 model (a ``results/<run-id>/model.zip``, or any SB3 ``.zip``).

:class:`HumanTeacher` opens a small pygame window (``pip install gym_unity_il[human]``)
showing the scene as the teacher agent sees it, and turns held keys into actions. With a
built-in scene it shows the scene's own picture of the teacher agent's area (the ball on
its plate, the grid with the target framed), which online BC asks the scene for at every
step; otherwise the agent's camera, or bars of its vector observation. Under the picture:
the recording state (REC / PAUSED), the buffer size and the keys. The Teacher Helper's
keys work in the window: **R** toggles recording of the buffer it is attached to, **C**
clears that buffer; Escape or closing the window stops the run like Ctrl+C (the policy is
saved).
"""

from __future__ import annotations

import contextlib
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gym_unity_il.errors import ConfigError
from gym_unity_il.export.saved import load_policy
from gym_unity_il.extras import require
from gym_unity_il.scenes import EXPERTS, expert_policy
from gym_unity_il.scenes.evaluate import Predictor
from gym_unity_il.spec import ActionSpec, BehaviorSpec
from gym_unity_il.train.config import TrainerSettings
from gym_unity_il.train.runner import check_trainer

#: Continuous default: arrows drive the first two actions, W/S and A/D the next two.
CONTINUOUS_KEYS: dict[str, tuple[int, float]] = {
    "right": (0, 1.0), "left": (0, -1.0), "up": (1, 1.0), "down": (1, -1.0),
    "d": (2, 1.0), "a": (2, -1.0), "w": (3, 1.0), "s": (3, -1.0),
}  # fmt: skip
#: Discrete default: number keys choose the value of the first branch (nothing held: 0).
DISCRETE_KEYS: dict[str, tuple[int, float]] = {str(k): (0, float(k)) for k in range(10)}
#: Keys of the built-in scenes: the ball rolls the way the arrow points (as with Unity's
#: 3DBall heuristic), the grid's agent steps the way the arrow points.
SCENE_KEYS: dict[str, dict[str, tuple[int, float]]] = {
    "ball": {"right": (0, -1.0), "left": (0, 1.0), "up": (1, 1.0), "down": (1, -1.0)},
    "grid": {"up": (0, 1.0), "down": (0, 2.0), "left": (0, 3.0), "right": (0, 4.0)},
}
#: The view (picture, camera or bars) is VIEW_SIZE pixels square; the status lines go below it.
VIEW_SIZE = 320
#: Window size in pixels: the view, then three lines of status.
WINDOW_SIZE = (VIEW_SIZE, VIEW_SIZE + 60)
#: The size of the scene picture the window asks for (shown scaled to the view).
PICTURE_SIZE = (160, 160)


def default_key_map(action_spec: ActionSpec) -> dict[str, tuple[int, float]]:
    """The key map :class:`HumanTeacher` uses unless given one: only keys that fit the spec."""
    if action_spec.continuous_size:
        return {k: v for k, v in CONTINUOUS_KEYS.items() if v[0] < action_spec.continuous_size}
    return {k: v for k, v in DISCRETE_KEYS.items() if v[1] < action_spec.discrete_branches[0]}


class HumanTeacher:
    """A human at the keyboard, through a pygame window, as a teacher.

    The key map sends pygame key names (``"left"``, ``"a"``, ``"space"``) to ``(index,
    value)``: for continuous actions, held keys add ``value`` to action ``index`` (the sum
    is clipped to [-1, 1]; nothing held: 0); for discrete actions, a held key sets branch
    ``index`` to ``value`` (the last pressed wins; nothing held: 0). R and C are the
    Teacher Helper's keys and cannot be mapped.

    Events are read from pygame's queue at each :meth:`predict`, so key events posted
    with ``pygame.event.post`` act like real key presses (headless with ``SDL_VIDEODRIVER=dummy``).
    After :meth:`show_scene` (online BC calls it for built-in scenes) the window shows the
    scene's picture of the teacher agent instead of its observation.

    Args:
        action_spec: the teacher behavior's actions (continuous or discrete, not hybrid).
        key_map: key name -> (action index or branch, value); default :func:`default_key_map`.
        fps: the most decisions per second (the window waits between them so a human can
            follow); 0 for no limit.
        title: the window's title.

    Raises:
        MissingExtraError: pygame is missing (the human extra).
        ConfigError: an unknown key name, R or C mapped, an index or value outside the spec.
    """

    def __init__(self, *, action_spec: ActionSpec, key_map: Mapping[str, tuple[int, float]] | None = None, fps: float = 30.0, title: str = "gym_unity_il teacher") -> None:
        pygame = require("pygame", "human", "the human teacher")
        if action_spec.is_hybrid:
            raise ConfigError("the human teacher maps keys to continuous or to discrete actions, not both (hybrid)")
        self._pg = pygame
        self.action_spec = action_spec
        self.key_map: dict[str, tuple[int, float]] = dict(key_map if key_map is not None else default_key_map(action_spec))
        self._codes: dict[int, tuple[int, float]] = {}
        pygame.display.init()
        for name, (index, value) in self.key_map.items():
            if name.lower() in ("r", "c"):
                raise ConfigError(f"key map: {name!r} is the Teacher Helper's key (R records, C clears); map another key")
            try:
                code = pygame.key.key_code(name)
            except ValueError:
                raise ConfigError(f"key map: {name!r} is not a pygame key name (examples: 'left', 'a', 'space', 'return')") from None
            self._check(name, int(index), value)
            self._codes[code] = (int(index), float(value))
        self.fps = fps
        self.buffer: Any = None
        self.held: list[int] = []  # key codes held, in press order
        self.pictures: Any = None  # a ScenePictureChannel, after show_scene()
        self.agent_id = -1
        pygame.font.init()
        self.screen = pygame.display.set_mode(WINDOW_SIZE)
        pygame.display.set_caption(title)
        self._font = pygame.font.Font(None, 20)
        self._clock = pygame.time.Clock()
        self.closed = False

    def _check(self, name: str, index: int, value: float) -> None:
        act = self.action_spec
        if act.continuous_size:
            if not 0 <= index < act.continuous_size:
                raise ConfigError(f"key map: {name!r} drives action {index}, the behavior has {act.continuous_size} continuous actions")
        else:
            branches = act.discrete_branches
            if not 0 <= index < len(branches) or not (float(value).is_integer() and 0 <= value < branches[index]):
                raise ConfigError(f"key map: {name!r} -> branch {index} value {value} is outside the discrete branches {list(branches)}")

    def attach(self, buffer: Any) -> None:
        """The buffer R and C act on (online BC attaches its :class:`~gym_unity_il.train.online.TeacherBuffer`)."""
        self.buffer = buffer

    def show_scene(self, pictures: Any, agent_id: int) -> None:
        """Shows a built-in scene's picture of one agent's area instead of its observation.

        Args:
            pictures: the session's :class:`~gym_unity_il.protocol.channels.ScenePictureChannel`
                (``session.scene_pictures``); the window asks it for a picture before every
                step, and the first one now (it travels with the next message).
            agent_id: the teacher agent.
        """
        self.pictures = pictures
        self.agent_id = int(agent_id)
        pictures.request(agent_id=self.agent_id, size=PICTURE_SIZE)

    def poll(self) -> None:
        """Handles the window's events: held keys, R, C, Escape and closing.

        Raises:
            KeyboardInterrupt: Escape or the window was closed (the run stops and saves).
        """
        pg = self._pg
        for event in pg.event.get():
            if event.type == pg.QUIT or (event.type == pg.KEYDOWN and event.key == pg.K_ESCAPE):
                raise KeyboardInterrupt("the teacher window was closed")
            if event.type == pg.KEYDOWN:
                if event.key == pg.K_r and self.buffer is not None:
                    self.buffer.toggle_recording()
                elif event.key == pg.K_c and self.buffer is not None:
                    self.buffer.clear()
                elif event.key in self._codes and event.key not in self.held:
                    self.held.append(event.key)
            elif event.type == pg.KEYUP and event.key in self.held:
                self.held.remove(event.key)

    def action(self) -> tuple[np.ndarray, np.ndarray]:
        """The action of the keys held now: ``(continuous float32 [c], discrete int32 [d])``."""
        act = self.action_spec
        continuous = np.zeros(act.continuous_size, np.float32)
        discrete = np.zeros(act.discrete_size, np.int32)
        for code in self.held:
            index, value = self._codes[code]
            if act.continuous_size:
                continuous[index] += value
            else:
                discrete[index] = int(value)
        return np.clip(continuous, -1.0, 1.0), discrete

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True) -> tuple[np.ndarray, None]:
        """Shows the first observation of the batch, reads the keys, returns the same action for every row."""
        self.poll()
        first = next(iter(observation.values())) if isinstance(observation, Mapping) else observation
        self.draw(observation)
        if self.pictures is not None:
            self.pictures.request(agent_id=self.agent_id, size=PICTURE_SIZE)  # the picture after this step
        continuous, discrete = self.action()
        n = len(first)
        if self.action_spec.continuous_size:
            actions = np.repeat(continuous[None], n, axis=0)
        elif len(self.action_spec.discrete_branches) == 1:
            actions = np.full(n, discrete[0], np.int64)
        else:
            actions = np.repeat(discrete[None].astype(np.int64), n, axis=0)
        if self.fps:
            self._clock.tick(self.fps)
        return actions, None

    def draw(self, observation: Any) -> None:
        """Draws the view (the scene's picture of the teacher agent, else the first agent's
        camera, else bars of its vector observation) and the status lines under it."""
        pg = self._pg
        sensors = list(observation.values()) if isinstance(observation, Mapping) else [observation]
        self.screen.fill((24, 24, 28))
        image = self.pictures.pictures.get(self.agent_id) if self.pictures is not None else None
        if image is None:
            image = next((np.asarray(s[0]) for s in sensors if np.asarray(s).ndim == 4), None)
        if image is not None:
            if image.dtype != np.uint8:  # chw_float
                image = np.rint(np.moveaxis(image, 0, -1) * 255).clip(0, 255).astype(np.uint8)
            if image.shape[-1] == 1:
                image = np.repeat(image, 3, axis=-1)
            surface = pg.surfarray.make_surface(np.ascontiguousarray(np.swapaxes(image[..., :3], 0, 1)))
            self.screen.blit(pg.transform.scale(surface, (VIEW_SIZE, VIEW_SIZE)), (0, 0))
        else:
            values = np.concatenate([np.asarray(s[0], np.float64).reshape(-1) for s in sensors])
            scale = max(1.0, float(np.abs(values).max()))
            width = VIEW_SIZE / max(1, len(values))
            middle = VIEW_SIZE / 2
            for i, v in enumerate(values):
                h = v / scale * middle
                pg.draw.rect(self.screen, (90, 160, 230), pg.Rect(i * width + 2, middle - max(h, 0), width - 4, abs(h)))
        for row, (text, colour) in enumerate(self.status_lines()):
            self.screen.blit(self._font.render(text, True, colour), (6, VIEW_SIZE + 4 + 19 * row))
        pg.display.flip()

    def status_lines(self) -> list[tuple[str, tuple[int, int, int]]]:
        """The status under the view, ``(text, colour)`` per line: recording state and
        buffer size, the action keys, the Teacher Helper's keys."""
        recording = self.buffer is None or self.buffer.recording
        size = "" if self.buffer is None else f"   buffer {len(self.buffer)}"
        keys = " ".join(self.key_map)
        return [
            (f"{'REC' if recording else 'PAUSED'}{size}", (235, 70, 70) if recording else (200, 200, 200)),
            (f"act: {keys}" if keys else "act: no keys mapped", (200, 200, 200)),
            ("R: record on/off   C: clear   Esc: stop", (200, 200, 200)),
        ]

    def close(self) -> None:
        """Closes the window (idempotent)."""
        if not self.closed:
            self.closed = True
            self._pg.display.quit()


class CarriedState:
    """Drives a predictor over a fixed batch of rows (the sub-envs of a VecEnv, the agent
    slots of a behavior) with its recurrent state carried, as SB3's recurrent policies take it.

    The state each ``predict`` returns goes into the next call; ``episode_start`` is True
    for the rows :meth:`restart` named since, so a row starts from a fresh state where its
    episode begins (the first call starts every row). Policies without memory return None
    and are driven as before.

    Args:
        predictor: anything with SB3's ``predict`` (a student's policy, a teacher).
        rows: the batch size of every call.
    """

    def __init__(self, predictor: Predictor, rows: int) -> None:
        self.predictor = predictor
        self.state: Any = None
        self.starts = np.ones(rows, bool)

    def restart(self, rows: np.ndarray | None = None) -> None:
        """Marks the rows whose next observation begins an episode (a bool mask or indices; None: every row)."""
        if rows is None:
            self.starts[:] = True
        else:
            self.starts[rows] = True

    def predict(self, observation: Any, deterministic: bool) -> Any:
        """The predictor's actions for a batch of observations, its state carried."""
        actions, self.state = self.predictor.predict(observation, state=self.state, episode_start=self.starts.copy(), deterministic=deterministic)
        self.starts[:] = False
        return actions


def make_teacher(name: str | None, *, spec: BehaviorSpec, scene: str | None = None, where: str = "teacher", image_format: str = "hwc_uint8") -> Any:
    """The teacher named by the config's ``teacher`` key.

    Args:
        name: ``"expert"`` or None (the scripted expert of the built-in ``scene``),
            ``"human"`` (:class:`HumanTeacher` with the keys of the built-in ``scene``,
            :data:`SCENE_KEYS`, else the default keys), or the path of a
            saved SB3 model or policy (loaded with :func:`~gym_unity_il.export.saved.load_policy`;
            pickles: load only files you trust).
        spec: the teacher behavior's spec.
        scene: the built-in scene's name, for ``expert``.
        where: names the config key in errors.
        image_format: the layout of image observations the teacher will receive.

    Raises:
        ConfigError: no built-in scene for ``expert``, or a path that is not a saved model.
    """
    if name in (None, "expert"):
        if scene not in EXPERTS:
            raise ConfigError(f"{where}: 'expert' is the scripted expert of a built-in scene ({sorted(EXPERTS)}); with {scene!r} give 'human' or a saved model's path")
        return expert_policy(scene, image_format=image_format)  # type: ignore[arg-type]
    if name == "human":
        return HumanTeacher(action_spec=spec.action_spec, key_map=SCENE_KEYS.get(scene or ""))
    path = Path(name)
    if not path.is_file():
        raise ConfigError(f"{where}: {name!r} is neither 'expert', 'human' nor an existing saved model file")
    if not zipfile.is_zipfile(path):
        raise ConfigError(f"{where}: {path} is not a saved SB3 model (.zip); save the teacher with model.save(...)")
    return load_policy(path, spec.observation_space(image_format))  # type: ignore[arg-type]


class TeacherTrainer:
    """What the trainers that learn from a live teacher (``online_bc``, ``dagger``) share: the
    teacher (the one given, else the config's ``teacher``), the settings they refuse, and
    no checkpoint (Ctrl+C saves the policy so far)."""

    names: tuple[str, ...] = ()
    resumable = False

    def __init__(self, teacher: Predictor | None = None) -> None:
        self.teacher = teacher

    def check(self, settings: TrainerSettings, where: str) -> None:
        """Refuses another trainer's settings, and what a run with a live teacher cannot use:
        it drives its one Unity process itself and learns without demos to take statistics from."""
        check_trainer(settings, self, where)
        if settings.max_restarts:
            raise ConfigError(
                f"{where}.max_restarts: trainer {settings.trainer!r} drives its Unity process with a live teacher and does not restart it; "
                "remove max_restarts (or set it to 0)"
            )
        if settings.brain_to_imitate is None and settings.trainer == "online_bc":
            raise ConfigError(f"{where}.brain_to_imitate: trainer 'online_bc' needs the teacher's behavior name (e.g. Teacher)")
        if settings.normalize:
            raise ConfigError(f"{where}.normalize: trainer {settings.trainer!r} learns live, without demos to take statistics from; set normalize: false")

    def open_teacher(self, settings: TrainerSettings, spec: BehaviorSpec, *, scene: str | None, where: str,
                     teaching: contextlib.ExitStack) -> Predictor:  # fmt: skip
        """The teacher of the behavior ``spec`` (see :func:`make_teacher`); one that closes
        (a window) is closed with ``teaching``."""
        teacher = self.teacher or make_teacher(settings.teacher, spec=spec, scene=scene, where=f"{where}.teacher")
        close = getattr(teacher, "close", None)
        if callable(close):
            teaching.callback(close)
        return teacher
