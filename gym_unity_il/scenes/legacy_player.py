"""The scene player's legacy wire: a built-in scene served as an ML-Agents 0.4 ... 0.11 Unity player.

:class:`LegacyWire` is what :class:`~gym_unity_il.scenes.player.ScenePlayer` speaks with
``--protocol 0.4`` ... ``--protocol 0.11`` (communication API ``API-4`` ... ``API-11``), so the
trainer's support of those builds is tested without Unity. The facts are protocol-legacy.md's
(section numbers below); :mod:`gym_unity_il.protocol.legacy` is the trainer's codec that reads
what this wire sends, and its :class:`~gym_unity_il.protocol.legacy.LegacyEra` says what
differs between eras. What a 0.x player does and this one does too:

* Handshake (§4, §9): the era's version string on the era's method path; through 0.10 it lists
  every brain in the era's BrainParametersProto layout (0.4 / 0.5: with a ``brain_type``,
  External or Player; 0.6 on: ``is_training``), 0.11 none (each brain is announced,
  ``is_training`` true, in the first output holding its agents). The reset parameters are the
  scene's ``parameter_defaults`` and ``gym_unity_il.seed``, announced as NaN, which means
  "keep the seed": the era's library sends back every announced parameter at every reset, and
  a finite seed rebuilds the scene.
* Brains: a behavior is the brain named by the part of its name before ``?`` (0.x brains
  have no team). Its image sensors are the cameras (HWC; PNG, 0.4: JPEG of quality 75; a gray
  camera as an RGB image of equal channels, which the era's library averages back to one); the
  other sensors, flattened and concatenated in their order, make the vector observation (0.4:
  a continuous vector observation space), of which each info carries the last ``stacked``
  frames, oldest first (a reset zeroes the stack before the new episode's first frame goes
  in). Hybrid actions have no 0.x brain, nor several discrete branches a 0.4 one.
* RESET (§5.1) applies ``environment_parameters.float_parameters``, then resets the scene (0.4:
  the first RESET's parameters are not applied, as its Academy's first reset does not read
  them, §9.2; the seed, which is this player's and no Academy's, is); STEP (§5.2) takes one
  ``AgentActionProto`` per info of the last output, in order: continuous values, or one branch
  index per branch as a float.
* Outputs (§7.1): one info per agent per output, in the order of the scene's decision
  records (the same at every step). An agent whose episode ended sends one done info with
  the ended episode's reward and ``max_step_reached`` but the new episode's first observation
  (the scene's terminal record and its next decision record, merged), and the action the
  trainer sends for it is the new episode's first. ``stored_vector_actions`` is the action the
  agent carried out last (zeros before the first); an agent's reset keeps it from 0.8.2 on
  and replaces it by zeros before (API-8 is served as 0.8.0, which zeroes it). ``action_mask``
  (API-5 on, when the scene gives one) is true for actions NOT allowed. Through 0.10 the
  output lists every brain, with agents or not; 0.11 lists the brains with agents.
* ``global_done`` (through 0.9): the built-in scenes end episodes per agent (their
  ``max_steps``), as an Academy without Max Steps does, so it stays false; with
  ``academy_max_steps`` M (:class:`LegacyWire`, no command-line flag) the Academy is done
  after every M actions since its last reset, as a 0.x Academy's Max Steps (§9.2): that output
  has ``global_done``, every agent's info is done with ``max_step_reached`` and the reward of
  its last action, and the scene has been reset (its parameters kept).
* Player brains (through 0.10: 0.11 has none): a behavior for which the scene's
  ``player_decides(behavior)`` returns a policy is a brain Python does not train
  (``is_training`` false; 0.4 / 0.5: ``brain_type`` Player), whose actions the policy decides
  inside the player, as the person at the keyboard of a Unity Player brain would; its infos are
  sent like any other's (stored actions included) and actions the trainer sends for it are
  ignored. The policy takes the behavior's sensor arrays of the agents asking for a decision
  and returns ``(continuous [n, c], discrete [n, d])``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from gym_unity_il.errors import ConfigError, UnityProtocolError
from gym_unity_il.proto import legacy_pb2 as lpb
from gym_unity_il.protocol.channels import SEED_PARAMETER
from gym_unity_il.protocol.images import encode_jpeg, encode_png
from gym_unity_il.protocol.legacy import LEGACY_ERAS, LegacyEra, write_brain
from gym_unity_il.protocol.messages import STATUS_OK
from gym_unity_il.scenes.base import AgentBatch, Scene
from gym_unity_il.spec import ActionSpec, BehaviorSpec

#: The legacy eras the player speaks, by the ``--protocol`` value (the ML-Agents release), oldest first.
LEGACY_PROTOCOLS: dict[str, LegacyEra] = {era.release: era for era in LEGACY_ERAS.values()}
#: The Academy name the handshake reports.
ACADEMY_NAME = "Academy"

#: What ``Scene.player_decides`` returns for a behavior decided inside the player.
PlayerPolicy = Callable[[list[np.ndarray]], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class LegacyBrain:
    """How one behavior of a scene is served as a 0.x brain.

    Attributes:
        spec: the behavior as the scene declares it.
        name: the brain name: the behavior name before ``?``.
        cameras: indices of the image sensors (``uint8`` HWC, 1 or 3 channels), in order.
        vectors: indices of the other sensors, flattened and concatenated into one vector frame.
        vector_size: floats of one vector frame (``vector_observation_size``).
        stacked: frames each info carries (``num_stacked_vector_observations``).
        trained: whether the trainer decides the brain's actions (false: a Player brain).
    """

    spec: BehaviorSpec
    name: str
    cameras: tuple[int, ...]
    vectors: tuple[int, ...]
    vector_size: int
    stacked: int
    trained: bool

    @classmethod
    def of(cls, spec: BehaviorSpec, *, stacked: int, trained: bool) -> LegacyBrain:
        """The brain of ``spec``.

        Raises:
            ConfigError: hybrid actions, or an image of other than 1 or 3 channels.
        """
        if spec.action_spec.is_hybrid:
            raise ConfigError(f"behavior {spec.name!r} has continuous and discrete actions, which no ML-Agents 0.x brain has")
        observations = spec.observation_specs
        cameras = tuple(i for i, o in enumerate(observations) if o.is_visual)
        for i in cameras:
            if observations[i].hwc[2] not in (1, 3):
                channels = observations[i].hwc[2]
                raise ConfigError(f"behavior {spec.name!r}: an image of {channels} channels; ML-Agents 0.x cameras have 1 or 3")
        vectors = tuple(i for i in range(len(observations)) if i not in cameras)
        size = sum(math.prod(observations[i].shape) for i in vectors)
        return cls(spec, spec.name.split("?")[0], cameras, vectors, size, stacked, trained)

    @property
    def action_width(self) -> int:
        """Floats of one action in ``vector_actions`` and ``stored_vector_actions``."""
        return self.spec.action_spec.continuous_size + self.spec.action_spec.discrete_size

    def parameters(self, era: LegacyEra) -> lpb.BrainParametersProto:
        """The brain's BrainParametersProto in the API-6 layout (§6.3; the handshake of older eras
        carries it through :func:`~gym_unity_il.protocol.legacy.write_brain`); camera
        resolutions through 0.10."""
        act = self.spec.action_spec
        brain = lpb.BrainParametersProto(
            brain_name=self.name,
            is_training=self.trained,
            vector_observation_size=self.vector_size,
            num_stacked_vector_observations=self.stacked,
        )
        if act.discrete_branches:
            brain.vector_action_size.extend(act.discrete_branches)
            brain.vector_action_space_type = lpb.discrete
        else:
            brain.vector_action_size.append(act.continuous_size)
            brain.vector_action_space_type = lpb.continuous
        if not era.compressed_images:
            for i in self.cameras:
                height, width, channels = self.spec.observation_specs[i].hwc
                brain.camera_resolutions.add(width=width, height=height, gray_scale=channels == 1)
        return brain

    def vector_frames(self, batch: AgentBatch) -> np.ndarray:
        """``float32 [n, vector_size]``: each agent's vector sensors, flattened and concatenated."""
        n = len(batch)
        parts = [np.asarray(batch.observations[i], np.float32).reshape(n, -1) for i in self.vectors]
        return np.concatenate(parts, axis=1) if parts else np.zeros((n, 0), np.float32)


def merge_episode_ends(batch: AgentBatch) -> tuple[AgentBatch, np.ndarray]:
    """One record per agent, as a 0.x agent sends them (§7.1), from a scene's records, where an
    agent whose episode ended appears twice: its terminal record and its new episode's first
    decision record.

    Such an agent's record is done, with the terminal record's reward and ``max_step_reached``
    and the decision record's observations and action mask; an agent with one record keeps it.
    The agents asking for a decision come first, in the order of their decision records (so
    the order stays the same from step to step), then any agent whose episode ended without a
    new one.

    Returns:
        The merged batch, and for each record of ``batch`` that asks for a decision (not
        done), in order, its row in the merged batch: the rows whose actions :meth:`Scene.act` takes.

    Raises:
        UnityProtocolError: an agent with two terminal or two decision records.
    """
    if not np.any(batch.done):  # no episode ended: the records are the agents' already
        if len(np.unique(batch.agent_ids)) != len(batch):
            raise UnityProtocolError("the scene sent two decision records of one agent in one step")
        return batch, np.arange(len(batch))
    ids = np.asarray(batch.agent_ids).tolist()
    done = np.asarray(batch.done, bool).tolist()
    row_of: dict[int, int] = {}
    deciding: list[int] = []  # per row, the record asking for a decision, or -1
    terminal: list[int] = []  # per row, the terminal record, or -1
    for i in (i for i, ended in enumerate(done) if not ended):
        if ids[i] in row_of:
            raise UnityProtocolError(f"the scene sent two decision records of agent {ids[i]} in one step")
        row_of[ids[i]] = len(deciding)
        deciding.append(i)
        terminal.append(-1)
    asking = len(deciding)
    for i in (i for i, ended in enumerate(done) if ended):
        row = row_of.setdefault(ids[i], len(deciding))
        if row == len(deciding):
            deciding.append(-1)
            terminal.append(-1)
        if terminal[row] >= 0:
            raise UnityProtocolError(f"the scene sent two terminal records of agent {ids[i]} in one step")
        terminal[row] = i
    t, d = np.array(terminal, np.int64), np.array(deciding, np.int64)
    ended_rows = t >= 0
    source = np.where(d >= 0, d, t)  # observations and mask: the new episode's when there is one
    scored = np.where(ended_rows, t, d)
    merged = AgentBatch(
        agent_ids=np.asarray(batch.agent_ids)[source],
        observations=[np.asarray(o)[source] for o in batch.observations],
        rewards=np.asarray(batch.rewards, np.float32)[scored],
        done=ended_rows,
        max_step_reached=np.asarray(batch.max_step_reached, bool)[scored] & ended_rows,
        action_mask=None if batch.action_mask is None else np.asarray(batch.action_mask, bool)[source],
    )
    return merged, np.arange(asking)


class FrameStack:
    """The last ``depth`` vector frames of each agent, oldest first: a 0.x Agent's stacked
    vector observation, which an agent reset zeroes before the new episode's first frame."""

    def __init__(self, size: int, depth: int) -> None:
        self.size = size
        self.depth = depth
        self._frames: dict[int, np.ndarray] = {}  # agent id -> float32 [depth, size]

    def clear(self) -> None:
        """Forgets every agent: the next frame of each starts a new stack."""
        self._frames.clear()

    def push(self, agent_ids: np.ndarray, frames: np.ndarray, restart: np.ndarray) -> np.ndarray:
        """Adds each agent's new frame (``restart``: after zeroing its stack) and returns the
        stacks, ``float32 [n, depth * size]``."""
        out = np.empty((len(frames), self.depth * self.size), np.float32)
        for i, agent in enumerate(np.asarray(agent_ids).tolist()):
            stack = self._frames.get(agent)
            if stack is None or restart[i]:
                stack = np.zeros((self.depth, self.size), np.float32)
            stack = np.concatenate([stack[1:], frames[i : i + 1]])
            self._frames[agent] = stack
            out[i] = stack.ravel()
        return out


def _camera_bytes(image: np.ndarray, era: LegacyEra) -> bytes:
    """One camera image as the era sends it: JPEG in 0.4, PNG later."""
    return encode_jpeg(image) if era.jpeg_images else encode_png(image)[0]


def agent_infos(
    brain: LegacyBrain, merged: AgentBatch, stacked_vectors: np.ndarray, stored_actions: np.ndarray, era: LegacyEra
) -> list[lpb.AgentInfoProto]:
    """The AgentInfoProtos of a brain's merged records (:func:`merge_episode_ends`; §6.4).

    Args:
        brain: the brain.
        merged: one record per agent.
        stacked_vectors: ``float32 [n, vector_size * stacked]`` per agent.
        stored_actions: ``float32 [n, action_width]``, the action each agent carried out last.
        era: images as ``visual_observations`` (0.4: JPEG; then PNG) or, in 0.11, as
            ``compressed_observations``; action masks from 0.5 on.
    """
    n = len(merged)
    ids = np.asarray(merged.agent_ids).tolist()
    rewards = np.asarray(merged.rewards, np.float32).tolist()
    done = np.asarray(merged.done, bool).tolist()
    max_step = np.asarray(merged.max_step_reached, bool).tolist()
    masked = None
    if era.action_masks and merged.action_mask is not None and brain.spec.action_spec.discrete_branches:
        masked = (~np.asarray(merged.action_mask, bool)).tolist()
    cameras = [(brain.spec.observation_specs[j].hwc, [_camera_bytes(image, era) for image in merged.observations[j]]) for j in brain.cameras]
    infos = []
    for i in range(n):
        info = lpb.AgentInfoProto(
            id=ids[i],
            reward=rewards[i],
            done=done[i],
            max_step_reached=max_step[i],
            stacked_vector_observation=stacked_vectors[i].tolist(),
            stored_vector_actions=stored_actions[i].tolist(),
        )
        if masked is not None:
            info.action_mask.extend(masked[i])
        for shape, images in cameras:
            if era.compressed_images:
                info.compressed_observations.add(shape=list(shape), compression_type=lpb.PNG, data=images[i])
            else:
                info.visual_observations.append(images[i])
        infos.append(info)
    return infos


def _split(values: np.ndarray, spec: ActionSpec, brain: str) -> tuple[np.ndarray, np.ndarray]:
    """``(continuous float32 [n, c], discrete int32 [n, d])`` from ``vector_actions`` rows; a
    discrete value is cut to its whole part, as a C# ``(int)`` cast does.

    Raises:
        UnityProtocolError: a discrete value that is NaN or infinite.
    """
    c = spec.continuous_size
    discrete = values[:, c:]
    if not np.isfinite(discrete).all():
        raise UnityProtocolError(f"brain {brain!r}: a discrete action that is NaN or infinite")
    return np.ascontiguousarray(values[:, :c]), discrete.astype(np.int32)


class LegacyWire:
    """The ML-Agents 0.4 ... 0.11 wire of a :class:`~gym_unity_il.scenes.player.ScenePlayer`
    (see the module docstring; the interface is :class:`~gym_unity_il.scenes.player.Wire`).

    Args:
        era: one of :data:`LEGACY_PROTOCOLS`.
        brains: the scene's behaviors as brains, by behavior name.
        parameters: the Academy's reset parameters and their defaults.
        academy_max_steps: the Academy's Max Steps (0: none, as the built-in scenes have; through
            0.9 only, whose Academy has them): see ``global_done`` in the module docstring.

    Raises:
        ConfigError: ``academy_max_steps`` that is negative, or given for 0.10 / 0.11; an API-4
            brain with several discrete branches.
    """

    def __init__(
        self, era: LegacyEra, brains: Mapping[str, LegacyBrain], parameters: Mapping[str, float], *, academy_max_steps: int = 0
    ) -> None:
        if isinstance(academy_max_steps, bool) or not isinstance(academy_max_steps, int) or academy_max_steps < 0:
            raise ConfigError(f"academy_max_steps must be an integer >= 0, got {academy_max_steps!r}")
        if academy_max_steps and not era.global_done:
            raise ConfigError(f"academy_max_steps={academy_max_steps}: an ML-Agents {era.release} Academy has no Max Steps (0.4 ... 0.9 have)")
        for brain in brains.values():
            if era.brain_layout == 4 and len(brain.spec.action_spec.discrete_branches) > 1:
                branches = list(brain.spec.action_spec.discrete_branches)
                raise ConfigError(f"behavior {brain.spec.name!r} has the discrete branches {branches}; an ML-Agents 0.4 brain has one")
        self.era = era
        self.method_path = era.method_path
        self.brains = dict(brains)
        self.parameters = dict(parameters)
        self.academy_max_steps = academy_max_steps
        self._stacks = {behavior: FrameStack(brain.vector_size, brain.stacked) for behavior, brain in self.brains.items()}
        self._stored: dict[str, dict[int, np.ndarray]] = {behavior: {} for behavior in self.brains}  # agent id -> last action
        self._announced: set[str] = set()
        self._first_input = True
        self._academy_steps = 0  # actions since the Academy's last reset
        # Per behavior with agents in the last output: the scene's records, the agent of each info, the rows that decide.
        self._last: dict[str, tuple[AgentBatch, np.ndarray, np.ndarray]] = {}

    @classmethod
    def for_scene(
        cls, era: LegacyEra, scene_class: type[Scene], scene_kwargs: Mapping[str, object], *, stacked: int = 1, academy_max_steps: int = 0
    ) -> LegacyWire:
        """The wire for a scene, read from one built with seed 0 (a handshake that lists the brains
        comes before the trainer sends its seed).

        Raises:
            ConfigError: ``stacked`` below 1, arguments the scene refuses, a behavior no brain of
                the era can carry (see :meth:`LegacyBrain.of`), two behaviors of one brain name,
                ``academy_max_steps`` the era has not.
        """
        if isinstance(stacked, bool) or not isinstance(stacked, int) or stacked < 1:
            raise ConfigError(f"stacked_vectors must be an integer >= 1, got {stacked!r}")
        try:
            scene = scene_class(seed=0, **scene_kwargs)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        decides = getattr(scene, "player_decides", None) if era.brains_at_handshake else None  # 0.11 has no Player brains
        brains = {}
        for behavior, spec in scene.behavior_specs().items():
            player = callable(decides) and decides(behavior) is not None
            brains[behavior] = LegacyBrain.of(spec, stacked=stacked, trained=not player)
        names = [brain.name for brain in brains.values()]
        if len(set(names)) != len(names):
            raise ConfigError(f"behaviors {sorted(brains)} make brains of one name ({names}); a 0.x brain name is the part before '?'")
        return cls(era, brains, getattr(scene, "parameter_defaults", {}), academy_max_steps=academy_max_steps)

    @staticmethod
    def parse(data: bytes) -> lpb.UnityMessageProto:
        return lpb.UnityMessageProto.FromString(data)

    def hello(self) -> lpb.LegacyHandshakeProto:
        """The handshake, its brains in the era's layout (:func:`~gym_unity_il.protocol.legacy.write_brain`)."""
        message = lpb.LegacyHandshakeProto(header=lpb.HeaderProto(status=STATUS_OK))
        init = message.unity_output.rl_initialization_output
        init.name = ACADEMY_NAME
        init.version = self.era.version
        if self.era.brains_at_handshake:
            init.brain_parameters.extend(write_brain(brain.parameters(self.era), self.era) for brain in self.brains.values())
        floats = init.environment_parameters.float_parameters
        floats.update(self.parameters)
        floats[SEED_PARAMETER] = math.nan
        return message

    def connected(self, first: lpb.UnityMessageProto) -> tuple[int, str]:
        return first.unity_input.rl_initialization_input.seed, f"an ML-Agents {self.era.version} trainer"

    def scene_built(self, scene: Scene) -> None:
        """Nothing to note: the brains were read from the scene's class and arguments."""

    def scene_reset(self) -> None:
        self._academy_steps = 0
        for stack in self._stacks.values():
            stack.clear()

    def read_input(self, rl_input: lpb.UnityRLInputProto) -> list[tuple[str, float]]:
        """A RESET's reset parameters; a seed that is not finite (the NaN announced) keeps the seed.
        0.4: none of the first input's but the seed (this player's, no Academy's: it stands for
        the scene Unity loads)."""
        first, self._first_input = self._first_input, False
        if rl_input.command != lpb.RESET:
            return []
        floats = rl_input.environment_parameters.float_parameters
        parameters = [(key, float(value)) for key, value in floats.items() if key != SEED_PARAMETER or math.isfinite(value)]
        if first and not self.era.applies_first_reset:
            return [(key, value) for key, value in parameters if key == SEED_PARAMETER]
        return parameters

    def actions(self, rl_input: lpb.UnityRLInputProto, scene: Scene) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        actions = {}
        for behavior, (batch, agent_ids, rows) in self._last.items():
            brain = self.brains[behavior]
            if not len(rows):
                continue
            if brain.trained:
                received = self._received(rl_input, brain, len(agent_ids))
                if received is None:
                    continue  # the agents keep their actions, as the scene does for a behavior left out
                values = received[rows]
            else:
                values = self._decide(scene, behavior, batch, len(rows))
            stored = self._stored[behavior]
            for agent, value in zip(agent_ids[rows].tolist(), values):
                stored[agent] = value
            actions[behavior] = _split(values, brain.spec.action_spec, brain.name)
        self._academy_steps += 1
        return actions

    def output(self, scene: Scene) -> lpb.UnityMessageProto:
        if not self.academy_max_steps or self._academy_steps < self.academy_max_steps:
            return self.build(scene.observe())
        return self.build(self._academy_done(scene), global_done=True)

    def _academy_done(self, scene: Scene) -> dict[str, AgentBatch]:
        """The Academy's Max Steps reached (§9.2): the scene's records now, every agent ended with
        ``max_step_reached`` and the reward of its last action, then the scene reset (its reset
        parameters are not read again) and its new episodes' first records.

        UNCONFIRMED: this is the 0.4 Academy's behaviour (§9.2); 0.5 ... 0.9 are served the same,
        as the spec lists no change to it (it compared only their Academy, Batcher, Agent and
        communicators)."""
        ended = scene.observe()
        self._academy_steps = 0
        scene.reset()
        batches = {}
        for behavior, fresh in scene.observe().items():
            last = ended.get(behavior)
            rewards = {}
            if last is not None and len(last):
                merged, _ = merge_episode_ends(last)
                rewards = dict(zip(np.asarray(merged.agent_ids).tolist(), np.asarray(merged.rewards, np.float32).tolist()))
            n = len(fresh)
            ids = np.asarray(fresh.agent_ids)
            batches[behavior] = AgentBatch(
                agent_ids=np.concatenate([ids, ids]),
                observations=[np.concatenate([o, o]) for o in map(np.asarray, fresh.observations)],
                rewards=np.concatenate([np.float32([rewards.get(agent, 0.0) for agent in ids.tolist()]), np.asarray(fresh.rewards, np.float32)]),
                done=np.concatenate([np.ones(n, bool), np.asarray(fresh.done, bool)]),
                max_step_reached=np.concatenate([np.ones(n, bool), np.asarray(fresh.max_step_reached, bool)]),
                action_mask=None if fresh.action_mask is None else np.concatenate([np.asarray(fresh.action_mask, bool)] * 2),
            )
        return batches

    def build(self, batches: Mapping[str, AgentBatch], *, global_done: bool = False) -> lpb.UnityMessageProto:
        """The message carrying a scene's records (its :meth:`~Scene.observe`); remembers which
        agents it asked to decide, for the next :meth:`actions`. ``global_done``: the Academy is
        done (through 0.9; see :meth:`output`).

        Raises:
            UnityProtocolError: agents of a behavior the scene did not declare.
        """
        undeclared = sorted(name for name, batch in batches.items() if len(batch) and name not in self.brains)
        if undeclared:
            raise UnityProtocolError(f"the scene produced agents of undeclared behaviors {undeclared}")
        message = lpb.UnityMessageProto(header=lpb.HeaderProto(status=STATUS_OK))
        output = message.unity_output
        output.rl_output.global_done = global_done
        self._last = {}
        for behavior, brain in self.brains.items():
            batch = batches.get(behavior)
            if batch is None or not len(batch):
                if self.era.brains_at_handshake:  # the Batcher lists every brain, with agents or not (§5.5, §9.2)
                    output.rl_output.agentInfos.get_or_create(brain.name)
                continue
            merged, rows = merge_episode_ends(batch)
            stacked = self._stacks[behavior].push(merged.agent_ids, brain.vector_frames(merged), merged.done)
            stored = self._stored[behavior]
            none = np.zeros(brain.action_width, np.float32)
            if self.era.keeps_stored_actions is not True:  # before 0.8.2 an agent's reset zeroes its action
                for agent in np.asarray(merged.agent_ids)[np.asarray(merged.done, bool)].tolist():
                    stored[agent] = none
            actions = np.array([stored.get(agent, none) for agent in np.asarray(merged.agent_ids).tolist()], np.float32)
            if not self.era.brains_at_handshake and behavior not in self._announced:
                output.rl_initialization_output.brain_parameters.append(brain.parameters(self.era))
                self._announced.add(behavior)
            infos = agent_infos(brain, merged, stacked, actions.reshape(len(merged), -1), self.era)
            output.rl_output.agentInfos[brain.name].value.extend(infos)
            self._last[behavior] = (batch, np.asarray(merged.agent_ids), rows)
        return message

    @staticmethod
    def _received(rl_input: lpb.UnityRLInputProto, brain: LegacyBrain, count: int) -> np.ndarray | None:
        """The trainer's ``vector_actions`` for the brain's ``count`` infos, ``float32 [count, width]``;
        None when it sent none (§5.2).

        Raises:
            UnityProtocolError: fewer actions than infos, or an action of another width.
        """
        if brain.name not in rl_input.agent_actions or not rl_input.agent_actions[brain.name].value:
            return None
        received = rl_input.agent_actions[brain.name].value
        if len(received) < count:
            raise UnityProtocolError(f"brain {brain.name!r}: {len(received)} actions for the {count} infos last sent, done ones included")
        width = brain.action_width
        values = np.zeros((count, width), np.float32)
        for i, action in enumerate(received[:count]):
            if len(action.vector_actions) != width:
                raise UnityProtocolError(f"brain {brain.name!r}: action {i} holds {len(action.vector_actions)} floats, not {width}")
            values[i] = action.vector_actions
        return values

    @staticmethod
    def _decide(scene: Scene, behavior: str, batch: AgentBatch, count: int) -> np.ndarray:
        """A Player brain's actions, ``float32 [count, width]``, from the scene's policy over the
        observations of the records asking for a decision."""
        policy: PlayerPolicy = scene.player_decides(behavior)  # type: ignore[attr-defined]
        deciding = ~np.asarray(batch.done, bool)
        continuous, discrete = policy([np.asarray(o)[deciding] for o in batch.observations])
        continuous = np.asarray(continuous, np.float32).reshape(count, -1)
        return np.concatenate([continuous, np.asarray(discrete).astype(np.float32).reshape(count, -1)], axis=1)
