"""The "hallway" scene: remember a colour seen at the start, choose it at the end, like Hallway.

Each agent walks down its own corridor of ``length`` cells from cell 0 to the end cell. At
the start of every episode a cue is drawn uniformly, red (0) or green (1), and shown in the
episode's first observation only; at the end cell the agent chooses a colour. Nothing the
agent can do shows the cue again (observations hold no time, and before the end cell only
walking forward does anything), so a policy without memory can only guess: the task tests
recurrent policies and memory in imitation.

* Behavior ``Hallway?team=0``, ``num_agents`` agents (default 1).
* Observations, one sensor:

  - ``HallwaySensor`` (default, ``camera=False``): float32 ``[4]``, ``[red, green,
    position / length, at_end]``: the cue one-hot in the episode's first observation
    (zeros in every later one), the agent's cell over ``length`` and 1.0 at the end cell;
  - ``CameraSensor`` (``camera=True``): the corridor from above, ``uint8`` ``(camera_height,
    camera_width, 3)`` (or ``1`` channel with ``grayscale``: the mean of R, G and B),
    declared HWC (``channels_first=False``, dimension properties ``[2, 2, 1]``). The
    ``length`` cells run left to right along the middle third of the image (floor, the end
    cell on the right in a light orange, the agent's cell in blue); the top and bottom
    thirds are the corridor's walls, red or green in the episode's first observation (the
    cue) and dark grey afterwards. The image needs at least ``length`` pixels across and 3
    down.

* Actions: discrete ``[3]``: 0 forward, 1 choose red, 2 choose green. The action mask
  allows only 0 before the end cell and only 1 and 2 at it; a forbidden action that is
  sent anyway does nothing (the step passes).
* Reward (as Unity's Hallway): -0.01 per step; at the end cell, choosing the cue's colour
  pays +1 and the other colour -0.1 instead, and either choice ends the episode.
  ``max_steps`` (default 50) cuts the episode.
* Environment parameters: ``gym_unity_il.seed``.
* Picture (:meth:`~gym_unity_il.scenes.base.Scene.render`): the agent's corridor in colour,
  drawn like the camera, with the walls always in the cue's colour (which only the first
  observation tells the agent).
* ML-Agents 0.x players (``protocol``): with ``stacked_vectors`` N above 1 the stacked
  vector observation carries the first observation, cue included, for N decisions; the
  default of 1 keeps the task.

:class:`HallwayExpert` walks forward and, at the end cell, chooses the cue it saw: it keeps
recurrent state (SB3's ``predict(observation, state, episode_start)``), as any policy that
solves the task must. :class:`GuessPolicy` is the best a policy without memory can do:
forward to the end cell, then a colour at random.

Returns with one agent and the defaults (corridor of 12 cells, ``max_steps=50``; mean +-
std over 20 episodes, :func:`gym_unity_il.scenes.evaluate.evaluate_in_process`, seed 0):
expert 0.890 +- 0.000 (12 steps, always the cue's colour), guess 0.450 +- 0.539 (the best
without memory: 12 right of 20; half of all episodes in the long run), random 0.266 +-
0.521 (35.9 steps). With ``camera=True`` (24 x 24 colour images) the same: expert 0.890
+- 0.000, guess 0.450 +- 0.539, random 0.266 +- 0.521.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from gym_unity_il.scenes.academy import AcademyScene, require_int
from gym_unity_il.scenes.expert import ScriptedPolicy, to_hwc_uint8
from gym_unity_il.spec import ActionSpec, BehaviorSpec, DimensionProperty, ImageFormat, ObservationSpec, check_image_format

STEP_REWARD = -0.01
RIGHT_REWARD = 1.0
WRONG_REWARD = -0.1

BEHAVIOR = "Hallway?team=0"
HALLWAY_SENSOR = "HallwaySensor"
CAMERA_SENSOR = "CameraSensor"
ACTION_SPEC = ActionSpec.create_discrete((3,))
#: The actions.
FORWARD, CHOOSE_RED, CHOOSE_GREEN = range(3)
#: The cues, and the state of an expert that has not seen one.
RED, GREEN = 0, 1
UNKNOWN = -1

# Pixel kinds of the camera image.
WALL, RED_WALL, GREEN_WALL, FLOOR, END, AGENT = range(6)
#: The colour of each pixel kind. Their grey levels (mean of R, G and B: 55, 97, 150,
#: 225, 200, 127) differ too, so grayscale images stay readable.
COLOURS = np.array(
    [
        [50, 55, 60],  # wall, once the cue is gone
        [230, 30, 30],  # wall showing the red cue
        [90, 240, 120],  # wall showing the green cue
        [220, 225, 230],  # floor
        [250, 210, 140],  # end cell
        [40, 90, 250],  # agent
    ],
    np.uint8,
)
#: The wall's pixel kind for no cue (-1), red (0) and green (1): ``CUE_WALL[cue + 1]``.
CUE_WALL = np.array([WALL, RED_WALL, GREEN_WALL])


def _grey(colours: np.ndarray) -> np.ndarray:
    """Unity's grayscale: the mean of R, G and B, keeping a channel axis of 1."""
    return np.rint(colours.astype(np.float64).mean(axis=-1, keepdims=True)).astype(np.uint8)


def _pixel_cells(pixels: int, cells: int) -> np.ndarray:
    """For each pixel along one axis, the cell its centre falls in (every cell gets a pixel when ``pixels >= cells``)."""
    return np.floor((np.arange(pixels) + 0.5) * cells / pixels).astype(np.int64)


class _Corridor:
    """Draws corridors of ``length`` cells at one image size: pixel kinds, then colours."""

    def __init__(self, height: int, width: int, length: int, *, grayscale: bool) -> None:
        band = _pixel_cells(height, 3)  # 0: top wall, 1: floor, 2: bottom wall
        self.walls = band != 1
        self.floor_rows = np.flatnonzero(band == 1)
        self.cell = _pixel_cells(width, length)  # the corridor cell of each column
        self.length = length
        self.palette = _grey(COLOURS) if grayscale else COLOURS
        self.shape = (height, width, self.palette.shape[1])

    def draw(self, cues: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """``uint8 [k, H, W, C]``: corridors whose walls show ``cues`` (-1: none) with agents at ``positions``."""
        k = len(cues)
        height, width, _ = self.shape
        kinds = np.empty((k, height, width), np.int64)
        kinds[:] = CUE_WALL[np.asarray(cues) + 1][:, None, None]
        floor = np.where(self.cell == self.length - 1, END, FLOOR)[None, :]  # [1, W]
        floor = np.where(self.cell[None, :] == np.asarray(positions)[:, None], AGENT, floor)  # [k, W]
        kinds[:, self.floor_rows, :] = floor[:, None, :]
        return self.palette[kinds]


class HallwayScene(AcademyScene):
    """Agents carrying a colour cue down a corridor (see the module docstring).

    Args:
        num_agents: number of agents, each in its own corridor.
        length: cells of the corridor (at least 2), the agent's start and the end cell included.
        camera: the camera sensor instead of the vector one (see the module docstring).
        camera_height: image height in pixels (with ``camera``; at least 3).
        camera_width: image width in pixels (with ``camera``; at least ``length``).
        grayscale: one grey channel instead of RGB (with ``camera``).
        max_steps: Academy steps per episode before it is cut (0: no limit).
        decision_period: Academy steps between decisions.
        seed: seed of the scene's random generator.
    """

    name = "hallway"

    def __init__(
        self,
        *,
        num_agents: int = 1,
        length: int = 12,
        camera: bool = False,
        camera_height: int = 24,
        camera_width: int = 24,
        grayscale: bool = False,
        max_steps: int = 50,
        decision_period: int = 1,
        seed: int = 0,
    ) -> None:
        self.length = require_int(self.name, "length", length, 2)
        self.camera = bool(camera)
        self.camera_height = require_int(self.name, "camera_height", camera_height, 1)
        self.camera_width = require_int(self.name, "camera_width", camera_width, 1)
        self.grayscale = bool(grayscale)
        if self.camera and (self.camera_height < 3 or self.camera_width < self.length):
            raise ValueError(
                f"scene 'hallway': a {self.camera_height}x{self.camera_width} image cannot show a corridor of {self.length} cells "
                f"between its walls; use camera_height >= 3 and camera_width >= {self.length}"
            )
        self._corridor = _Corridor(self.camera_height, self.camera_width, self.length, grayscale=self.grayscale) if self.camera else None
        self._picture_corridor: _Corridor | None = None  # the corridor of the last picture's size
        super().__init__(num_agents=num_agents, max_steps=max_steps, decision_period=decision_period, seed=seed)

    def _behavior_layout(self) -> list[tuple[BehaviorSpec, int]]:
        if self.camera:
            edge = DimensionProperty.TRANSLATIONAL_EQUIVARIANCE
            channels = 1 if self.grayscale else 3
            sensor = ObservationSpec(
                (self.camera_height, self.camera_width, channels), (edge, edge, DimensionProperty.NONE), name=CAMERA_SENSOR
            )
        else:
            sensor = ObservationSpec((4,), (DimensionProperty.NONE,), name=HALLWAY_SENSOR)
        return [(BehaviorSpec(BEHAVIOR, (sensor,), ACTION_SPEC), self.num_agents)]

    def _create_state(self) -> None:
        n = self.num_agents
        self._position = np.zeros(n, np.int64)
        self._cue = np.zeros(n, np.int64)
        self._first = np.zeros(n, bool)  # the next observation is the episode's first: it shows the cue

    def _begin_episodes(self, agents: np.ndarray) -> None:
        self._position[agents] = 0
        self._cue[agents] = self._rng.integers(0, 2, len(agents))
        self._first[agents] = True

    def _physics_step(self, continuous: np.ndarray, discrete: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        action = discrete[:, 0]
        at_end = self._position == self.length - 1
        self._position += live & ~at_end & (action == FORWARD)
        chose = live & at_end & (action != FORWARD)
        right = action - CHOOSE_RED == self._cue
        self._first &= ~live
        reward = np.where(chose, np.where(right, RIGHT_REWARD, WRONG_REWARD), STEP_REWARD)
        return reward.astype(np.float32), chose

    def _shown_cues(self, agents: np.ndarray) -> np.ndarray:
        """The cue each agent's observation shows now: its cue in the episode's first observation, else -1."""
        return np.where(self._first[agents], self._cue[agents], UNKNOWN)

    def _observations(self, agents: np.ndarray) -> list[np.ndarray]:
        cues, positions = self._shown_cues(agents), self._position[agents]
        if self._corridor is not None:
            return [self._corridor.draw(cues, positions)]
        obs = np.zeros((len(agents), 4), np.float32)
        shown = cues >= 0
        obs[shown.nonzero()[0], cues[shown]] = 1.0
        obs[:, 2] = positions / self.length
        obs[:, 3] = positions == self.length - 1
        return [obs]

    def _action_mask(self, agents: np.ndarray) -> np.ndarray:
        at_end = self._position[agents] == self.length - 1
        return np.column_stack([~at_end, at_end, at_end])

    def _picture(self, agent: int, height: int, width: int) -> np.ndarray:
        size = (max(height, 3), max(width, self.length))  # at least a pixel per cell and band, then scaled down
        if self._picture_corridor is None or self._picture_corridor.shape[:2] != size:
            self._picture_corridor = _Corridor(*size, self.length, grayscale=False)
        image = self._picture_corridor.draw(self._cue[agent : agent + 1], self._position[agent : agent + 1])[0]
        return image[np.arange(height) * size[0] // height][:, np.arange(width) * size[1] // width]


def _kinds(images: np.ndarray) -> np.ndarray:
    """The pixel kind of every pixel of ``uint8 [B, H, W, C]`` images: the nearest colour, ``[B, H, W]``."""
    palette = _grey(COLOURS) if images.shape[-1] == 1 else COLOURS
    distance = np.abs(images[..., None, :].astype(np.int16) - palette.astype(np.int16)).sum(axis=-1)
    return distance.argmin(axis=-1)


def read_observation(observation: Any, image_format: ImageFormat = "hwc_uint8") -> tuple[np.ndarray, np.ndarray, bool]:
    """What one hallway observation or a batch of them shows, as the env returns them.

    The vector sensor and the camera are both read: a bare array (``[4]``, ``[B, 4]``, an
    image or a batch of images in ``image_format``) or a dict of the one sensor (keyed by its
    name, or ``obs_0`` as 0.x players' unnamed sensors are; imitation's ``DictObs`` too).
    From an image, the cue is the walls' colour (when red or green cover a quarter of the
    image) and the agent is at the end cell when it covers the image's right-most column.

    Args:
        observation: the observation(s).
        image_format: the layout of images, ``"hwc_uint8"`` or ``"chw_float"``.

    Returns:
        ``(cue int [B], at_end bool [B], single)``: the cue shown (red 0, green 1, none -1),
        whether the agent is at the end cell, and whether one observation came without a batch axis.

    Raises:
        ValueError: an observation of another shape, or a dict of another sensor.
    """
    if hasattr(observation, "unwrap") and not isinstance(observation, np.ndarray):
        observation = observation.unwrap()  # imitation's DictObs
    if isinstance(observation, Mapping):
        keys = [k for k in (HALLWAY_SENSOR, CAMERA_SENSOR, "obs_0") if k in observation]
        if len(observation) != 1 or not keys:
            raise ValueError(f"a hallway observation has one sensor, {HALLWAY_SENSOR!r} or {CAMERA_SENSOR!r}; got the keys {list(observation)}")
        observation = observation[keys[0]]
    array = np.asarray(observation)
    if array.ndim in (1, 2) and array.shape[-1] == 4:
        vectors = array.reshape(-1, 4)
        shown = vectors[:, :2].max(axis=1) > 0.5
        cue = np.where(shown, vectors[:, :2].argmax(axis=1), UNKNOWN)
        return cue, vectors[:, 3] > 0.5, array.ndim == 1
    if array.ndim not in (3, 4):
        raise ValueError(f"a hallway observation is a vector of 4 or an image; got shape {array.shape}")
    single = array.ndim == 3
    kinds = _kinds(to_hwc_uint8(array[None] if single else array, image_format))
    pixels = kinds.shape[1] * kinds.shape[2]
    red, green = (kinds == RED_WALL).sum(axis=(1, 2)), (kinds == GREEN_WALL).sum(axis=(1, 2))
    cue = np.select([(red >= pixels / 4) & (red > green), (green >= pixels / 4) & (green > red)], [RED, GREEN], default=UNKNOWN)
    last_column = kinds[:, :, -1]
    at_end = (last_column == AGENT).sum(axis=1) > (last_column == END).sum(axis=1)
    return cue, at_end, single


def _actions(discrete: np.ndarray, single: bool) -> np.ndarray:
    """Actions in the scene's gymnasium form (``Discrete(3)``): one integer per row, or one."""
    discrete = np.asarray(discrete, np.int64)
    return np.asarray(discrete[0]) if single else discrete


class HallwayExpert(ScriptedPolicy):
    """Walks forward to the end cell and chooses the cue it saw at the episode's start.

    The cue is gone by then, so the expert keeps recurrent state, as SB3's recurrent policies
    do: ``predict`` takes and returns ``state``, the remembered cue of each row (``int [B]``:
    red 0, green 1, unknown -1). A row whose ``episode_start`` is true forgets its cue; an
    observation that shows a cue stores it (so passing the returned state back is enough when
    the expert sees every episode's first observation). At the end cell with no cue
    remembered it chooses red. It reads both sensors (see :func:`read_observation`; its
    ``observation_ranks`` name the vector sensor only).

    Args:
        image_format: the layout of the images it receives (with ``camera=True``).
    """

    def __init__(self, *, image_format: ImageFormat = "hwc_uint8") -> None:
        super().__init__(action_spec=ACTION_SPEC, observation_ranks={HALLWAY_SENSOR: 1}, image_format=image_format)

    def predict(
        self,
        observation: Any,
        state: np.ndarray | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The actions for one observation or a batch, and the cues remembered after them.

        Args:
            observation: one observation or a batch (leading axis), as the env returns them.
            state: the state the previous call returned, one cue per row; None: nothing remembered.
            episode_start: ``bool [B]`` (or one bool), rows starting an episode, which forget
                their cue; None: no row does.
            deterministic: unused (the expert is deterministic); accepted as SB3's.

        Returns:
            ``(actions, state)``: the actions in the env's form and ``int64 [B]`` remembered cues
            (``[1]`` for a single observation).

        Raises:
            ValueError: an observation the expert cannot read, or a state of another batch size.
        """
        cue, at_end, single = read_observation(observation, self.image_format)
        rows = len(cue)
        remembered = np.full(rows, UNKNOWN, np.int64)
        if state is not None:
            given = np.asarray(state).reshape(-1)
            if given.shape != (rows,):
                raise ValueError(f"state holds {given.size} cues for {rows} observations; pass the state predict returned for this batch, or None")
            remembered = given.astype(np.int64)
        if episode_start is not None:
            remembered[np.broadcast_to(np.asarray(episode_start, bool).reshape(-1), (rows,))] = UNKNOWN
        remembered = np.where(cue >= 0, cue, remembered)
        return _actions(self._choose(remembered, at_end), single), remembered

    def _decide(self, observations: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The decision from these observations alone, as if nothing were remembered."""
        cue, at_end, _ = read_observation(observations[HALLWAY_SENSOR], self.image_format)
        return np.zeros((len(cue), 0), np.float32), self._choose(cue, at_end)[:, None]

    @staticmethod
    def _choose(cue: np.ndarray, at_end: np.ndarray) -> np.ndarray:
        """Forward before the end cell; there, the remembered cue's colour (red when none)."""
        return np.where(at_end, np.where(cue == GREEN, CHOOSE_GREEN, CHOOSE_RED), FORWARD).astype(np.int64)


class GuessPolicy:
    """The best policy without memory: forward to the end cell, then a colour at random.

    It is right half the time, whichever the cue; :func:`~gym_unity_il.scenes.evaluate.evaluate_in_process`
    measures it against :class:`HallwayExpert`.

    Args:
        image_format: the layout of the images it receives (with ``camera=True``).
        seed: seed of its coin.
    """

    def __init__(self, *, image_format: ImageFormat = "hwc_uint8", seed: int = 0) -> None:
        check_image_format(image_format)
        self.image_format = image_format
        self._rng = np.random.default_rng(seed)

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True) -> tuple[np.ndarray, None]:
        """Forward, or at the end cell a random colour, for one observation or a batch; no state."""
        _, at_end, single = read_observation(observation, self.image_format)
        colour = self._rng.integers(CHOOSE_RED, CHOOSE_GREEN + 1, len(at_end))
        return _actions(np.where(at_end, colour, FORWARD), single), None
