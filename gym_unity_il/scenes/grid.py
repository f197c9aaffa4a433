"""The "grid" scene: reach the goal the goal signal names, seen from above, like GridWorld.

Each agent has its own ``grid_size`` x ``grid_size`` field inside a ring of wall, with two
goals on random cells: a green one marked with a plus and a red one marked with a cross.
A one-hot goal signal says which of them is the target this episode.

* Behavior ``GridWorld?team=0``, ``num_agents`` agents (default 1); with
  ``teacher_student=True`` two behaviors instead: ``Teacher?team=0`` (agent 0) and
  ``Student?team=0`` (``num_agents`` more agents), for online behavioral cloning.
* Observations, sensors in Unity's name order:

  - ``CameraSensor``: the whole field from above, ``uint8`` ``(camera_height,
    camera_width, 3)`` (or ``1`` channel with ``grayscale``: the mean of R, G and B),
    wall ring included; declared HWC (``channels_first=False``, dimension properties
    ``[2, 2, 1]``);
  - ``GoalSensor``: float32 ``[2]``, one-hot ``[plus, cross]`` target, observation type
    GOAL_SIGNAL;
  - with ``camera=False``, ``PositionSensor`` in place of the camera: float32
    ``[grid_size * grid_size]``, the agent's cell one-hot, row by row (quick to learn from;
    the scripted expert needs the camera).

* Actions: discrete ``[5]``: 0 stay, 1 up, 2 down, 3 left, 4 right. The action mask
  forbids moving into the wall (a forbidden move that is sent anyway leaves the agent in
  place).
* Reward: -0.01 per step; stepping on a goal ends the episode with +1 (the target) or -1
  (the other one) instead. ``max_steps`` (default 100) cuts the episode.
* ``sparse=True``: a sparse-reward exploration task. Every episode starts the agent in the
  top-left cell with the target goal in the bottom-right cell and the other goal in the
  top-right one (which one is the target still varies, as the goal signal says); only
  reaching the target pays (+1), every other step pays 0 and the other goal ends the
  episode with 0. With ``grid_size=10``, ``max_steps=30`` and ``camera=False``, a random
  walk reaches the target in 1 episode of 14,000; in 150,000 steps of 8 agents, SB3's PPO
  learned to reach it from the env's reward alone in 2 seeds of 6, with a curiosity reward
  (strength 0.02) in all 6.
* Environment parameters: ``gym_unity_il.seed``.
* Picture (:meth:`~gym_unity_il.scenes.base.Scene.render`): the agent's field in colour,
  drawn like the camera, with a yellow frame around the target goal (which only the goal
  signal tells the agent).

Returns with one agent and the defaults (5 x 5 field, 84 x 84 colour images; mean +- std
over 20 episodes, :func:`gym_unity_il.scenes.evaluate.evaluate_in_process`, seed 0):
expert 0.975 +- 0.010 (3.5 steps, always the target), random -0.329 +- 0.980.
"""

from __future__ import annotations

import numpy as np

from gym_unity_il.scenes.academy import AcademyScene, require_int
from gym_unity_il.scenes.expert import ScriptedPolicy, to_hwc_uint8
from gym_unity_il.spec import ActionSpec, BehaviorSpec, DimensionProperty, ImageFormat, ObservationSpec, ObservationType

STEP_REWARD = -0.01
TARGET_REWARD = 1.0
WRONG_GOAL_REWARD = -1.0

CAMERA_SENSOR = "CameraSensor"
GOAL_SENSOR = "GoalSensor"
POSITION_SENSOR = "PositionSensor"
ACTION_SPEC = ActionSpec.create_discrete((5,))
#: Row and column change of each action: stay, up, down, left, right.
MOVES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]], np.int64)

# Cell kinds on the rendered board.
FLOOR, WALL, AGENT, PLUS, CROSS = range(5)
#: Every colour drawn, with the cell kind it belongs to. Their grey levels (mean of R, G
#: and B: 225, 25, 185, 145, 115, 85, 55) differ too, so grayscale images stay readable.
COLOURS = np.array(
    [
        [220, 225, 230],  # floor
        [20, 25, 30],  # wall
        [130, 180, 245],  # agent
        [90, 235, 110],  # plus goal
        [30, 200, 115],  # plus mark
        [200, 35, 20],  # cross goal
        [130, 20, 15],  # cross mark
    ],
    np.uint8,
)
COLOUR_KIND = np.array([FLOOR, WALL, AGENT, PLUS, PLUS, CROSS, CROSS])
#: The base colour of each kind, and the colours of the marks on the goals (rows of COLOURS).
KIND_COLOUR = np.array([0, 1, 2, 3, 5])
PLUS_MARK, CROSS_MARK = 4, 6
#: Texels per side of one cell's tile.
TILE = 16
#: The frame the picture (not the camera) draws around the target goal.
TARGET_FRAME = (250, 220, 60)


def _tiles() -> np.ndarray:
    """``uint8 [5, TILE * TILE, 3]``: the texture of each cell kind."""
    tiles = np.broadcast_to(COLOURS[KIND_COLOUR, None, None, :], (5, TILE, TILE, 3)).copy()
    centre = np.arange(TILE) + 0.5 - TILE / 2
    y, x = np.meshgrid(centre, centre, indexing="ij")
    inside = np.maximum(abs(y), abs(x)) < 0.35 * TILE
    plus = inside & ((abs(y) < TILE / 10) | (abs(x) < TILE / 10))
    cross = inside & ((abs(y - x) < TILE / 12) | (abs(y + x) < TILE / 12))
    tiles[PLUS][plus] = COLOURS[PLUS_MARK]
    tiles[CROSS][cross] = COLOURS[CROSS_MARK]
    return tiles.reshape(5, TILE * TILE, 3)


def _grey(colours: np.ndarray) -> np.ndarray:
    """Unity's grayscale: the mean of R, G and B, keeping a channel axis of 1."""
    return np.rint(colours.astype(np.float64).mean(axis=-1, keepdims=True)).astype(np.uint8)


class _Board:
    """Draws fields of ``cells`` x ``cells`` (wall ring included) at one image size."""

    def __init__(self, height: int, width: int, cells: int, *, grayscale: bool) -> None:
        row_cell, row_texel = self._pixel_map(height, cells)
        col_cell, col_texel = self._pixel_map(width, cells)
        tiles = _grey(_tiles()) if grayscale else _tiles()
        # Every cell kind drawn over the whole image: [5, H, W, C]. A cell of kind k at
        # some place shows the pixels of kind_images[k] at that place.
        self.kind_images = tiles[:, row_texel[:, None] * TILE + col_texel[None, :]]
        board = np.full((cells, cells), WALL)
        board[1:-1, 1:-1] = FLOOR
        kinds = board[row_cell[:, None], col_cell[None, :]]
        self.background = self.kind_images[kinds, np.arange(height)[:, None], np.arange(width)]
        self.row_spans = self._cell_spans(row_cell, cells)
        self.col_spans = self._cell_spans(col_cell, cells)

    @staticmethod
    def _pixel_map(pixels: int, cells: int) -> tuple[np.ndarray, np.ndarray]:
        """For each pixel along one axis, the cell it shows and the texel within that cell."""
        where = (np.arange(pixels) + 0.5) * cells / pixels
        cell = np.floor(where).astype(np.int64)
        texel = np.floor((where - cell) * TILE).astype(np.int64)
        return cell, texel

    @staticmethod
    def _cell_spans(pixel_cell: np.ndarray, cells: int) -> list[slice]:
        """The pixels of each cell along one axis, as slices (a cell's pixels are contiguous)."""
        ends = np.cumsum(np.bincount(pixel_cell, minlength=cells)).tolist()
        return [slice(start, end) for start, end in zip([0, *ends[:-1]], ends)]

    def draw(self, image: np.ndarray, goals: list[list[int]], position: list[int]) -> None:
        """Draws the goals and the agent (walkable-field coordinates) on a copy of :attr:`background`."""
        # Each cell is a block of pixels: one slice assignment per drawn cell, the agent last.
        for kind, (row, col) in ((PLUS, goals[0]), (CROSS, goals[1]), (AGENT, position)):
            rows, cols = self.row_spans[row + 1], self.col_spans[col + 1]
            image[rows, cols] = self.kind_images[kind, rows, cols]


class GridScene(AcademyScene):
    """Agents walking to the goal named by the goal signal (see the module docstring).

    The image must have at least ``grid_size + 2`` pixels per side (one per cell).

    Args:
        num_agents: number of agents, each on its own field.
        grid_size: cells per side of the walkable field (at least 3).
        camera_height: image height in pixels.
        camera_width: image width in pixels.
        grayscale: one grey channel instead of RGB.
        max_steps: Academy steps per episode before it is cut (0: no limit).
        decision_period: Academy steps between decisions.
        teacher_student: serve a ``Teacher`` behavior (1 agent) and a ``Student``
            behavior (``num_agents`` agents) instead of ``GridWorld``.
        camera: the camera sensor; False: the agent's position instead (see the module
            docstring), and the camera arguments are not used.
        sparse: the sparse-reward layout and rewards (see the module docstring).
        seed: seed of the scene's random generator.
    """

    name = "grid"

    def __init__(
        self,
        *,
        num_agents: int = 1,
        grid_size: int = 5,
        camera_height: int = 84,
        camera_width: int = 84,
        grayscale: bool = False,
        max_steps: int = 100,
        decision_period: int = 1,
        teacher_student: bool = False,
        camera: bool = True,
        sparse: bool = False,
        seed: int = 0,
    ) -> None:
        self.grid_size = require_int(self.name, "grid_size", grid_size, 3)
        self.camera_height = require_int(self.name, "camera_height", camera_height, 1)
        self.camera_width = require_int(self.name, "camera_width", camera_width, 1)
        self.grayscale = bool(grayscale)
        self.camera = bool(camera)
        self.sparse = bool(sparse)
        side = self.grid_size + 2
        if self.camera and min(self.camera_height, self.camera_width) < side:
            raise ValueError(
                f"scene 'grid': a {self.camera_height}x{self.camera_width} image cannot show {side}x{side} cells "
                f"(grid_size {self.grid_size} plus the wall); use camera_height and camera_width >= {side}"
            )
        self._camera = _Board(self.camera_height, self.camera_width, side, grayscale=self.grayscale) if self.camera else None
        self._picture_board: _Board | None = None  # the board of the last picture's size
        self.teacher_student = bool(teacher_student)
        num_agents = require_int(self.name, "num_agents", num_agents, 1)
        if self.teacher_student:
            num_agents += 1
        super().__init__(num_agents=num_agents, max_steps=max_steps, decision_period=decision_period, seed=seed)

    def _behavior_layout(self) -> list[tuple[BehaviorSpec, int]]:
        channels = 1 if self.grayscale else 3
        edge = DimensionProperty.TRANSLATIONAL_EQUIVARIANCE
        camera = ObservationSpec(
            (self.camera_height, self.camera_width, channels), (edge, edge, DimensionProperty.NONE), name=CAMERA_SENSOR
        )
        goal = ObservationSpec((2,), (DimensionProperty.NONE,), ObservationType.GOAL_SIGNAL, name=GOAL_SENSOR)
        position = ObservationSpec((self.grid_size**2,), (DimensionProperty.NONE,), name=POSITION_SENSOR)
        sensors = (camera, goal) if self.camera else (goal, position)  # Unity's name order
        if self.teacher_student:
            return [
                (BehaviorSpec("Teacher?team=0", sensors, ACTION_SPEC), 1),
                (BehaviorSpec("Student?team=0", sensors, ACTION_SPEC), self.num_agents - 1),
            ]
        return [(BehaviorSpec("GridWorld?team=0", sensors, ACTION_SPEC), self.num_agents)]

    def _create_state(self) -> None:
        n = self.num_agents
        self._position = np.zeros((n, 2), np.int64)
        self._goals = np.zeros((n, 2, 2), np.int64)  # [agent, plus/cross, row/col]
        self._target = np.zeros(n, np.int64)  # 0: plus, 1: cross

    def _begin_episodes(self, agents: np.ndarray) -> None:
        g, k = self.grid_size, len(agents)
        if self.sparse:
            target = self._rng.integers(0, 2, k)
            self._position[agents] = 0
            self._goals[agents, target] = g - 1
            self._goals[agents, 1 - target] = [0, g - 1]
            self._target[agents] = target
            return
        cells = self._rng.random((k, g * g)).argsort(axis=1)[:, :3]
        places = np.stack(np.divmod(cells, g), axis=-1)  # [k, 3, 2]
        self._position[agents] = places[:, 0]
        self._goals[agents] = places[:, 1:]
        self._target[agents] = self._rng.integers(0, 2, k)

    def _physics_step(self, continuous: np.ndarray, discrete: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        moved = np.clip(self._position + MOVES[discrete[:, 0]], 0, self.grid_size - 1)
        self._position = np.where(live[:, None], moved, self._position)
        on_goal = (self._position[:, None, :] == self._goals).all(axis=2)
        reached = on_goal.any(axis=1)
        right = on_goal[np.arange(self.num_agents), self._target]
        if self.sparse:
            reward = np.where(right, TARGET_REWARD, 0.0)
        else:
            reward = np.where(reached, np.where(right, TARGET_REWARD, WRONG_GOAL_REWARD), STEP_REWARD)
        return reward.astype(np.float32), reached

    def _observations(self, agents: np.ndarray) -> list[np.ndarray]:
        k = len(agents)
        goal = np.zeros((k, 2), np.float32)
        goal[np.arange(k), self._target[agents]] = 1.0
        if self._camera is None:
            cells = self._position[agents, 0] * self.grid_size + self._position[agents, 1]
            return [goal, np.eye(self.grid_size**2, dtype=np.float32)[cells]]
        image = np.broadcast_to(self._camera.background, (k, *self._camera.background.shape)).copy()
        goals, positions = self._goals[agents].tolist(), self._position[agents].tolist()
        for i in range(k):
            self._camera.draw(image[i], goals[i], positions[i])
        return [image, goal]

    def _picture(self, agent: int, height: int, width: int) -> np.ndarray:
        side = self.grid_size + 2
        size = (max(height, side), max(width, side))  # at least a pixel per cell, then scaled down
        if self._picture_board is None or self._picture_board.background.shape[:2] != size:
            self._picture_board = _Board(*size, side, grayscale=False)
        board = self._picture_board
        image = board.background.copy()
        board.draw(image, self._goals[agent].tolist(), self._position[agent].tolist())
        row, col = self._goals[agent, self._target[agent]] + 1
        rows, cols = board.row_spans[row], board.col_spans[col]
        frame = np.zeros(image.shape[:2], bool)
        frame[rows, cols] = True
        inner = max(1, min(rows.stop - rows.start, cols.stop - cols.start) // 8)
        frame[rows.start + inner : rows.stop - inner, cols.start + inner : cols.stop - inner] = False
        image[frame] = TARGET_FRAME
        return image[np.arange(height) * size[0] // height][:, np.arange(width) * size[1] // width]

    def _action_mask(self, agents: np.ndarray) -> np.ndarray:
        row, col = self._position[agents, 0], self._position[agents, 1]
        last = self.grid_size - 1
        return np.column_stack([np.ones(len(agents), bool), row > 0, row < last, col > 0, col < last])


class GridExpert(ScriptedPolicy):
    """Walks to the target goal along a shortest path that avoids the other goal.

    It reads only the image and the goal signal: pixels are sorted by colour (or grey
    level) into wall, agent and the two goals; the agent's blob gives the cell size in
    pixels, and the offsets of the goals from the agent, in cells, give the move.

    Args:
        image_format: the layout of the images it receives.
    """

    def __init__(self, *, image_format: ImageFormat = "hwc_uint8") -> None:
        super().__init__(action_spec=ACTION_SPEC, observation_ranks={CAMERA_SENSOR: 3, GOAL_SENSOR: 1}, image_format=image_format)

    @staticmethod
    def _kinds(images: np.ndarray) -> np.ndarray:
        """The cell kind of every pixel: ``[B, H, W]``."""
        palette = _grey(COLOURS) if images.shape[-1] == 1 else COLOURS
        distance = np.abs(images[..., None, :].astype(np.int16) - palette.astype(np.int16)).sum(axis=-1)
        return COLOUR_KIND[distance.argmin(axis=-1)]

    def _decide(self, observations: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        images = to_hwc_uint8(observations[CAMERA_SENSOR], self.image_format)
        goal = np.asarray(observations[GOAL_SENSOR])
        kinds = self._kinds(images)
        batch, height, width = kinds.shape
        index = np.arange(batch)

        def centre(kind: int) -> tuple[np.ndarray, np.ndarray]:
            mask = kinds == kind
            count = np.maximum(mask.sum(axis=(1, 2)), 1)
            rows = (mask.sum(axis=2) * np.arange(height)).sum(axis=1) / count
            cols = (mask.sum(axis=1) * np.arange(width)).sum(axis=1) / count
            return np.stack([rows, cols], axis=1), mask

        agent, agent_mask = centre(AGENT)
        cell = np.stack([agent_mask.any(axis=2).sum(axis=1), agent_mask.any(axis=1).sum(axis=1)], axis=1)
        cell = np.maximum(cell, 1)
        plus, _ = centre(PLUS)
        cross, _ = centre(CROSS)
        target_is_plus = (goal[:, 0] >= goal[:, 1])[:, None]
        to_target = np.rint((np.where(target_is_plus, plus, cross) - agent) / cell).astype(np.int64)
        to_other = np.rint((np.where(target_is_plus, cross, plus) - agent) / cell).astype(np.int64)

        main = (np.abs(to_target[:, 1]) > np.abs(to_target[:, 0])).astype(np.int64)  # 0: rows, 1: columns
        side = 1 - main
        main_step = np.zeros((batch, 2), np.int64)
        main_step[index, main] = np.sign(to_target[index, main])
        side_step = np.zeros((batch, 2), np.int64)
        side_step[index, side] = np.sign(to_target[index, side])
        # Around the other goal when it sits right on the way: across, away from the wall.
        detour = np.zeros((batch, 2), np.int64)
        detour[index, side] = 1
        probe = np.rint(agent + detour * cell).astype(np.int64)
        probe = np.clip(probe, 0, [height - 1, width - 1])
        detour[index, side] = np.where(kinds[index, probe[:, 0], probe[:, 1]] == WALL, -1, 1)

        def blocked(step: np.ndarray) -> np.ndarray:
            return (step == to_other).all(axis=1)

        step = np.where(
            blocked(main_step)[:, None],
            np.where((side_step.any(axis=1) & ~blocked(side_step))[:, None], side_step, detour),
            main_step,
        )
        action = np.select(
            [step[:, 0] == -1, step[:, 0] == 1, step[:, 1] == -1, step[:, 1] == 1], [1, 2, 3, 4], default=0
        )
        return np.zeros((batch, 0), np.float32), action[:, None]
