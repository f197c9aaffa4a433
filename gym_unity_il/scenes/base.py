"""The contract between a built-in scene's simulation and the player that serves it.

A scene is a plain numpy simulation, vectorised over its agents. It knows nothing of
gRPC: :mod:`gym_unity_il.scenes.player` runs it in its own process and speaks Unity's
protocol for it, exactly like a Unity player does.

The step cycle mirrors Unity's Academy:

1. :meth:`Scene.observe` returns, per behavior, the agents that have data now: agents
   whose episode just ended (``done``) and agents requesting a decision. An agent whose
   episode ended and that immediately starts a new one appears twice, terminal first.
2. :meth:`Scene.act` receives one action per *non-done* agent of the last ``observe()``,
   in the same order, applies them and simulates (several engine steps when the decision
   period is above 1) until at least one agent has data again.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np

from gym_unity_il.spec import BehaviorSpec


@dataclass
class AgentBatch:
    """The agents of one behavior that have data at this step, as arrays over agents.

    Attributes:
        agent_ids: ``int32 [n]`` agent ids, stable across episodes.
        observations: one array per sensor, ``[n, *shape]``, sensors in the order of the
            behavior's ``observation_specs``. Images are ``uint8`` HWC, other sensors
            ``float32``.
        rewards: ``float32 [n]`` reward since the agent's previous decision.
        done: ``bool [n]`` the record ends the agent's episode.
        max_step_reached: ``bool [n]`` with ``done``: the episode was cut by the step limit.
        action_mask: ``bool [n, sum(branches)]`` with True = action allowed, or None when
            every action is allowed.
    """

    agent_ids: np.ndarray
    observations: list[np.ndarray]
    rewards: np.ndarray
    done: np.ndarray
    max_step_reached: np.ndarray
    action_mask: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.agent_ids)


class Scene(abc.ABC):
    """A built-in scene. Subclasses take keyword-only constructor arguments and a ``seed``."""

    #: The name used by ``gymnasium.make("UnityIL-v0", scene=...)`` and the command line.
    name: str = ""

    @abc.abstractmethod
    def behavior_specs(self) -> dict[str, BehaviorSpec]:
        """The behaviors of the scene, keyed by fully qualified name (``Name?team=0``)."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Resets every agent (Unity's RESET command)."""

    @abc.abstractmethod
    def observe(self) -> dict[str, AgentBatch]:
        """The agents that have data now, per behavior (behaviors without agents may be left out)."""

    @abc.abstractmethod
    def act(self, actions: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        """Applies ``(continuous float32 [n, c], discrete int32 [n, d])`` per behavior for the
        non-done agents of the last :meth:`observe`, then simulates until an agent has data.
        A behavior missing from ``actions`` keeps its agents' previous actions."""

    def set_parameter(self, key: str, value: float) -> None:
        """Receives an environment parameter (EnvironmentParametersChannel); ignored by default."""

    def render(self, agent_id: int, height: int, width: int) -> np.ndarray | None:
        """A picture of one agent's area as it is now, for people (the human teacher's window,
        ``render()``): ``uint8 (height, width, 3)`` RGB, or None when the scene draws none
        (the default). The player calls it when the trainer asks
        (:class:`~gym_unity_il.protocol.channels.ScenePictureChannel`)."""
        return None
