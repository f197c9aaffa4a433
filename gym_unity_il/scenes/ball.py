"""The "ball" scene: agents balance a ball on a tilting plate, like Unity's 3DBall.

Each agent owns a plate and a ball rolling on it (a rolling solid sphere: acceleration
``5/7 * gravity * sin(tilt)``, Academy step 0.02 s). Its two continuous actions in
[-1, 1] turn the plate by up to 2 degrees per Academy step about the z and x axes (tilt
limited to 25 degrees). The episode starts with the plate tilted up to 10 degrees and the
ball up to 1.5 from the centre, at rest.

* Behavior ``3DBall?team=0``; with ``teacher_student=True`` two behaviors instead:
  ``Teacher?team=0`` (agent 0) and ``Student?team=0`` (``num_agents`` more agents), for
  online behavioral cloning. Served as ML-Agents 0.10, the teacher is a Player brain that
  :class:`BallExpert` drives inside the player (:meth:`BallScene.player_decides`).
* Observation: one sensor ``VectorSensor_size8``, float32 ``[rot_z, rot_x, ball_x,
  ball_y, ball_z, vel_x, vel_y, vel_z]``: plate angles in radians (rotation about z tilts
  the plate along x), the ball's offset from the plate centre and its velocity.
* Actions: continuous 2 (``[turn about z, turn about x]``).
* Reward: +0.1 per Academy step with the ball on the plate; -1 and the episode ends when
  the ball leaves it (more than 3 from the centre along x or z). ``max_steps`` Academy
  steps cut the episode (``max_step_reached``).
* Environment parameters: ``gravity`` (9.81), and ``gym_unity_il.seed``.
* Picture (:meth:`~gym_unity_il.scenes.base.Scene.render`): the plate seen from above (x
  to the right, z up), shaded by height (lighter is higher), with a yellow arrow from its
  centre showing which way and how steeply it slopes down, and the ball as an orange disc.

Returns with one agent, ``max_steps=1000``, ``decision_period=1`` (mean +- std over 20
episodes, :func:`gym_unity_il.scenes.evaluate.evaluate_in_process`, seed 0):
expert 100.0 +- 0.0 (never drops the ball), random 9.24 +- 1.98 (about 103 steps).
Learnable at small budgets: SB3 PPO with 8 envs, ``max_steps=300`` and 12k steps scored
24 to 30 (of 30) over 8 training seeds against 10.3 for random, and behavioral cloning
from 20 expert episodes matched the expert (100).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np

from gym_unity_il.scenes import drawing
from gym_unity_il.scenes.academy import AcademyScene, require_int
from gym_unity_il.scenes.expert import ScriptedPolicy
from gym_unity_il.spec import ActionPair, ActionSpec, BehaviorSpec, DimensionProperty, ImageFormat, ObservationSpec

DT = 0.02
ROLLING = 5.0 / 7.0
TILT_STEP = np.radians(2.0)
MAX_TILT = np.radians(25.0)
START_TILT = np.radians(10.0)
START_OFFSET = 1.5
EDGE = 3.0
BALL_RADIUS = 0.5
ALIVE_REWARD = 0.1
FALL_REWARD = -1.0

#: Acceleration along (x, z) per unit push from the plate angles (about z, about x): turning
#: about z lifts the +x side (the ball rolls to -x); turning about x lowers +z.
ROLL_DIRECTION = np.array([-1.0, 1.0])
#: Height change along (x, z) per unit offset, per sine of the plate angles (about z, about x).
LIFT_DIRECTION = np.array([1.0, -1.0])

#: The picture shows the square of this half side around the plate centre.
VIEW = EDGE + 2 * BALL_RADIUS
PLATE_COLOUR = np.array([150.0, 170.0, 200.0])
BALL_COLOUR = (240, 110, 40)
ARROW_COLOUR = (250, 220, 60)

SENSOR_NAME = "VectorSensor_size8"
TEACHER = "Teacher?team=0"
ACTION_SPEC = ActionSpec.create_continuous(2)


def _vector_spec(size: int, name: str) -> ObservationSpec:
    return ObservationSpec((size,), (DimensionProperty.NONE,), name=name)


class BallScene(AcademyScene):
    """Agents balancing a ball on a plate (see the module docstring).

    Args:
        num_agents: number of agents (with ``teacher_student``, of students).
        max_steps: Academy steps per episode before it is cut (0: no limit).
        decision_period: Academy steps between decisions.
        teacher_student: serve a ``Teacher`` behavior (1 agent) and a ``Student``
            behavior (``num_agents`` agents) instead of ``3DBall``.
        seed: seed of the scene's random generator.
    """

    name = "ball"
    parameter_defaults: ClassVar[dict[str, float]] = {"gravity": 9.81}

    def __init__(
        self,
        *,
        num_agents: int = 12,
        max_steps: int = 1000,
        decision_period: int = 1,
        teacher_student: bool = False,
        seed: int = 0,
    ) -> None:
        self.teacher_student = bool(teacher_student)
        num_agents = require_int(self.name, "num_agents", num_agents, 1)
        total = num_agents + 1 if self.teacher_student else num_agents
        super().__init__(num_agents=total, max_steps=max_steps, decision_period=decision_period, seed=seed)

    def _create_state(self) -> None:
        n = self.num_agents
        self._tilt = np.zeros((n, 2))  # rotation about z, about x (radians)
        self._position = np.zeros((n, 2))  # ball x, z relative to the plate centre
        self._velocity = np.zeros((n, 2))

    def _behavior_layout(self) -> list[tuple[BehaviorSpec, int]]:
        observation = (_vector_spec(8, SENSOR_NAME),)
        if self.teacher_student:
            return [
                (BehaviorSpec(TEACHER, observation, ACTION_SPEC), 1),
                (BehaviorSpec("Student?team=0", observation, ACTION_SPEC), self.num_agents - 1),
            ]
        return [(BehaviorSpec("3DBall?team=0", observation, ACTION_SPEC), self.num_agents)]

    def player_decides(self, behavior: str) -> Callable[[list[np.ndarray]], ActionPair] | None:
        """The ``Teacher``'s policy, :class:`BallExpert` over the agents' observations, standing
        in for the person at the keyboard of an ML-Agents 0.x Player brain (the scene player
        serves the teacher so with ``protocol`` "0.4" ... "0.10"); None for the other behaviors."""
        if not self.teacher_student or behavior != TEACHER:
            return None
        expert = BallExpert()

        def decide(observations: list[np.ndarray]) -> ActionPair:
            continuous, _ = expert.predict(observations[0], deterministic=True)
            return ActionPair(continuous, np.zeros((len(continuous), 0), np.int32))

        return decide

    def _begin_episodes(self, agents: np.ndarray) -> None:
        k = len(agents)
        self._tilt[agents] = self._rng.uniform(-START_TILT, START_TILT, (k, 2))
        self._position[agents] = self._rng.uniform(-START_OFFSET, START_OFFSET, (k, 2))
        self._velocity[agents] = 0.0

    def _physics_step(self, continuous: np.ndarray, discrete: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        live2 = live[:, None]
        tilt = np.clip(self._tilt + TILT_STEP * continuous, -MAX_TILT, MAX_TILT)
        push = ROLLING * self.parameters["gravity"] * np.sin(tilt)
        velocity = self._velocity + DT * (push * ROLL_DIRECTION)
        position = self._position + DT * velocity
        np.copyto(self._tilt, tilt, where=live2)
        np.copyto(self._velocity, velocity, where=live2)
        np.copyto(self._position, position, where=live2)
        fell = np.abs(self._position).max(axis=1) > EDGE
        return np.where(fell, np.float32(FALL_REWARD), np.float32(ALIVE_REWARD)), fell

    def _picture(self, agent: int, height: int, width: int) -> np.ndarray:
        image = drawing.canvas(height, width)
        x, z = drawing.world_grid(height, width, VIEW)
        plate = (np.abs(x) <= EDGE) & (np.abs(z) <= EDGE)
        slope = np.sin(self._tilt[agent]) * LIFT_DIRECTION  # height change per unit along x, z
        lift = (x * slope[0] + z * slope[1]) / (EDGE * np.sin(MAX_TILT))  # -1 (lowest) .. 1 (highest)
        shade = np.clip(1.0 + 0.35 * lift[..., None], 0.0, 255.0 / PLATE_COLOUR.max()) * PLATE_COLOUR
        image[plate] = shade[plate].astype(np.uint8)
        drawing.paint(image, plate & ((np.abs(x) < 0.03 * EDGE) | (np.abs(z) < 0.03 * EDGE)), (110, 125, 150))  # centre lines
        downhill = np.sin(self._tilt[agent]) * ROLL_DIRECTION / np.sin(MAX_TILT)  # 1 at the steepest tilt
        tip = (float(downhill[0] * EDGE * 0.9), float(downhill[1] * EDGE * 0.9))
        drawing.paint(image, drawing.segment(x, z, (0.0, 0.0), tip, 0.12 * EDGE), ARROW_COLOUR)
        drawing.paint(image, drawing.disc(x, z, tip, 0.08 * EDGE), ARROW_COLOUR)
        ball = (float(self._position[agent, 0]), float(self._position[agent, 1]))
        drawing.paint(image, drawing.disc(x, z, ball, BALL_RADIUS), (60, 30, 20))
        drawing.paint(image, drawing.disc(x, z, ball, BALL_RADIUS * 0.85), BALL_COLOUR)
        return image

    def _observations(self, agents: np.ndarray) -> list[np.ndarray]:
        tilt, pos, vel = self._tilt[agents], self._position[agents], self._velocity[agents]
        lift = np.sin(tilt) * LIFT_DIRECTION
        obs = np.empty((len(agents), 8), np.float32)
        obs[:, 0:2] = tilt
        obs[:, 2] = pos[:, 0]
        obs[:, 3] = BALL_RADIUS + (pos * lift).sum(axis=1)  # height
        obs[:, 4] = pos[:, 1]
        obs[:, 5] = vel[:, 0]
        obs[:, 6] = (vel * lift).sum(axis=1)  # climbing speed
        obs[:, 7] = vel[:, 1]
        return [obs]


class BallExpert(ScriptedPolicy):
    """A PD controller: tilts the plate so the ball accelerates back to the centre.

    It reads only the observation: the wanted acceleration is ``-kp * offset - kd *
    velocity`` along x and z, turned into the plate angles that produce it and then into
    the turn that reaches those angles fastest.

    Args:
        image_format: unused (the scene has no image); accepted like every expert.
        stiffness: pull towards the centre (1/s^2).
        damping: braking of the ball's velocity (1/s).
        gravity: the gravity the controller assumes.
    """

    def __init__(self, *, image_format: ImageFormat = "hwc_uint8", stiffness: float = 2.0, damping: float = 3.0, gravity: float = 9.81) -> None:
        super().__init__(action_spec=ACTION_SPEC, observation_ranks={SENSOR_NAME: 1}, image_format=image_format)
        self.stiffness = stiffness
        self.damping = damping
        self.gravity = gravity

    def _decide(self, observations: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        obs = observations[SENSOR_NAME].astype(np.float64)
        tilt = obs[:, 0:2]
        offset = obs[:, [2, 4]]
        velocity = obs[:, [5, 7]]
        wanted = -self.stiffness * offset - self.damping * velocity  # acceleration along x, z
        ratio = np.clip(wanted / (ROLLING * self.gravity), -np.sin(MAX_TILT * 0.8), np.sin(MAX_TILT * 0.8))
        target = np.arcsin(ratio) * np.array([-1.0, 1.0])  # (about z, about x)
        turn = np.clip((target - tilt) / TILT_STEP, -1.0, 1.0)
        return turn.astype(np.float32), np.zeros((len(obs), 0), np.int32)
