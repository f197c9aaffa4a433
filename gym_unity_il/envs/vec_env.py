"""``UnityVecEnv``: every agent of one behavior, across one or more Unity processes, as one SB3 VecEnv.

Each sub-env of the VecEnv is a *slot*: one agent of the chosen behavior in one Unity
process (a build, the Editor or a built-in scene), each process with its own
:class:`~gym_unity_il.link.session.UnitySession`. A step sends the actions of all slots
of a process in one message and all processes are in flight at once::

    from gym_unity_il.envs import make_unity_vec_env

    venv = make_unity_vec_env(scene="ball", num_processes=2)          # 2 processes x 12 agents = 24 slots
    venv = make_unity_vec_env("Builds/3DBall.x86_64", num_processes=4)  # 4 Unity players
    venv = make_unity_vec_env(scene="ball", num_processes=2, ray=True)  # the processes run in Ray actors
    venv = make_unity_vec_env("Builds/3DBall.x86_64", num_processes=4, max_restarts=3)  # survive 3 crashes

How the agents of Unity map onto the slots (the same rules hold for every backend):

* **Slots.** At construction each process is reset and the agents of the behavior that
  ask for a decision in its first such message become its slots, in message order. The
  number of slots never changes; ``num_envs`` is the sum over processes.
* **Decisions at different times.** A step ends when every slot has asked for a decision
  since its action was delivered. Until then the env keeps answering Unity: a slot's new
  action is delivered at its agent's next decision request; an agent that asks again
  while other slots are still waiting gets its last action once more (as Unity's
  DecisionRequester repeats actions between decisions), its rewards add up, and the slot
  reports its latest observation. Every observation a step returns thus follows the
  delivery of that step's action. When all agents decide together (built-in scenes, and
  Unity scenes whose agents share one decision period) a step is one message per process;
  with agents out of phase a step lasts up to two decision periods of the slowest one.
* **Episode ends.** A slot whose agent ends an episode reports ``done`` with
  ``info["terminal_observation"]`` and ``info["TimeLimit.truncated"]`` (Unity's
  ``max_step_reached``), the reward earned up to the episode end, and, as SB3's auto-reset
  expects, the agent's latest observation of its next episode. What the agent earns in
  the new episode before the step ends precedes that observation and is dropped. An
  agent that ends again within the same step (possible only when agents decide at
  different times) has that short episode left out.
* **Agents that appear or disappear.** An agent without a slot (more agents than slots)
  gets all-zero actions and is not seen by the learner. It takes over a slot when one
  frees: a slot whose agent ended an episode and did not ask for a decision in the same
  message, or a vacant slot. A slot whose agent (after an episode end or a reset) sends
  nothing for ``vacant_after`` messages becomes vacant: it reports its last observation,
  reward 0, ``done=False`` and ``info["vacant"] = True`` until an agent takes it over
  (that step reports the newcomer's observation and drops its rewards).
  A slot whose agent is still in its episode is always waited for (up to
  ``max_messages`` messages, then :class:`~gym_unity_il.errors.AgentNeverDecidesError`).
* **Environment parameters.** :meth:`~UnityVecEnv.set_env_parameters` sets numbers and
  samplers (:class:`~gym_unity_il.protocol.channels.Sampler`, drawn by the scene at each
  reset) in every process, sent with the next step or reset (0.x builds: numbers only, with
  the next reset); reset options ``{"env_parameters": {...}}`` set them before that reset.
* **Action masks.** ``env_method("action_masks")`` returns one flat boolean mask per slot
  (True = allowed), what sb3-contrib's ``MaskablePPO`` reads.
* **Failures.** When a process crashes or times out, the VecEnv closes every process and
  raises the error; nothing is left running. With ``max_restarts=k`` (opt-in), up to ``k``
  such failures in the env's life are survived instead: a process that exits, hangs past
  ``timeout_wait`` or breaks the protocol (:class:`~gym_unity_il.errors.UnityProcessExitedError`,
  :class:`~gym_unity_il.errors.UnityTimeoutError`, :class:`~gym_unity_il.errors.UnityProtocolError`)
  is closed, started again with the same arguments (a new port when the OS picks ports)
  and reset, while the other processes go on untouched. Its slots end their episodes in
  that step: ``done=True``, reward 0, ``info["TimeLimit.truncated"] = True`` (the episode
  was cut, not finished), ``info["terminal_observation"]`` (the slot's last observation)
  and ``info["unity_restarted"] = True``, with the first observation of the new episode
  as the step's observation (a failure during :meth:`~UnityVecEnv.reset` just gives the
  new process's first observations, with ``"unity_restarted"`` in ``reset_infos``).
  Every restart logs a warning naming the process, the error and "restart k of max";
  ``restart_count`` / ``restart_counts`` count them. The restarted process gets the
  handshake seed ``s + r * num_processes`` for its ``r``-th restart (``s``: its first
  seed), so runs repeat and no two lives of any process share a seed; it gets the
  environment parameters given at construction, in reset options and with
  :meth:`~UnityVecEnv.set_env_parameters` so far (not ones set directly on a session's
  side channel), and with ``log_folder`` it logs to
  ``<log_folder>/restart-<r>/`` so the failed process's log stays where the error
  message points. It must come back with the same behavior spec and number of slots,
  else :class:`~gym_unity_il.errors.SpecMismatchError`. Other errors (bad actions, a
  wrong config, an agent that never decides) are never retried, and the failure after
  the last allowed restart closes everything and raises the error, saying that the
  restart limit was reached.

The processes run on threads of this process, or in Ray actors with ``ray=True``
(:mod:`gym_unity_il.envs.backend`); in each, a :class:`~gym_unity_il.envs.worker.SessionWorker`
drives the slots (:mod:`gym_unity_il.envs.slots`).

``get_attr`` / ``set_attr`` / ``env_method`` work on a light view of each slot
(:class:`AgentSlotView`: ``observation_space``, ``action_space``, ``render_mode``,
``behavior_name``, ``agent_id``, ``process_index``, ``action_masks()``, ``render()``);
``set_attr`` stores a value on the view only (Unity never sees it).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import weakref
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn

from gym_unity_il.envs.backend import WorkerBackend, make_backend
from gym_unity_il.envs.slots import VACANT_AFTER, SlotBatch, cut_episodes, join_batches, split_batch_actions
from gym_unity_il.envs.worker import MAX_MESSAGES, EnvParameters, Stats, WorkerInfo, WorkerResult
from gym_unity_il.errors import (
    ConfigError,
    EnvClosedError,
    GymUnityILError,
    NoAsyncCallError,
    SpecMismatchError,
    UnityProcessExitedError,
    UnityProtocolError,
    UnityTimeoutError,
)
from gym_unity_il.link.launch import LaunchSettings
from gym_unity_il.link.session import UnitySession
from gym_unity_il.protocol.channels import Sampler
from gym_unity_il.spec import BehaviorSpec, ImageFormat, check_image_format
from gym_unity_il.timers import phase

logger = logging.getLogger(__name__)

_RESET_OPTIONS = ("env_parameters",)
#: The failures of a Unity process itself, which ``max_restarts`` lets the VecEnv survive.
RESTARTABLE_ERRORS: tuple[type[GymUnityILError], ...] = (UnityProcessExitedError, UnityTimeoutError, UnityProtocolError)


# ---------------------------------------------------------------------------- the VecEnv


class AgentSlotView:
    """What ``get_attr`` / ``set_attr`` / ``env_method`` see as sub-env ``index`` of a
    :class:`UnityVecEnv`: a light view of one slot (no per-step cost)."""

    def __init__(self, vec_env: UnityVecEnv, index: int) -> None:
        self._vec_env = weakref.ref(vec_env)
        self.index = index

    @property
    def _env(self) -> UnityVecEnv:
        env = self._vec_env()
        if env is None:
            raise EnvClosedError("the UnityVecEnv of this slot no longer exists")
        return env

    @property
    def observation_space(self) -> gym.Space:
        return self._env.observation_space

    @property
    def action_space(self) -> gym.Space:
        return self._env.action_space

    @property
    def render_mode(self) -> str | None:
        return self._env._render_mode

    @property
    def behavior_name(self) -> str:
        return self._env.behavior_name

    @property
    def behavior_spec(self) -> BehaviorSpec:
        return self._env.behavior_spec

    @property
    def process_index(self) -> int:
        """Which Unity process (0 to ``num_processes - 1``) the slot belongs to."""
        return self._env._process_of_slot(self.index)

    @property
    def agent_id(self) -> int:
        """The Unity agent id in the slot now (-1: vacant)."""
        return int(self._env._agent_id[self.index])

    def render(self) -> np.ndarray | None:
        """The slot's first camera observation as RGB ``uint8 (H, W, 3)``; None without
        ``render_mode="rgb_array"``."""
        return self._env._image(self.index)


class MaskedAgentSlotView(AgentSlotView):
    """The view of a slot of a behavior with discrete actions: adds :meth:`action_masks`."""

    def action_masks(self) -> np.ndarray:
        """The slot's current action mask, flattened over branches (True = allowed)."""
        mask = self._env._mask
        assert mask is not None
        return mask[self.index].copy()


class UnityVecEnv(VecEnv):
    """All agents of one behavior across one or more Unity processes, as an SB3 VecEnv.

    Most users call :func:`make_unity_vec_env`. See the module docstring for how agents
    map onto slots.

    Args:
        sessions: one mapping of session arguments per Unity process, as
            :func:`~gym_unity_il.envs.source.open_session` takes them: ``scene``,
            ``scene_kwargs``, ``seed``, ``launch=LaunchSettings(...)`` and/or its fields
            (each process with its own ``worker_id`` or ``auto_port``), ...
        behavior_name: the behavior to control, with or without ``?team=N``; default: the
            first one Unity announces. Every process must have it, with one spec.
        image_format: ``"hwc_uint8"`` or ``"chw_float"`` for image observations.
        render_mode: None or ``"rgb_array"`` (each slot's first camera observation).
        vacant_after: messages a slot waits for its agent after an episode end or a reset
            before it is left vacant.
        max_messages: the most messages one step may take before an error.
        ray: host each Unity process in a Ray actor (``pip install gym_unity_il[ray]``);
            the learner stays here and arrays travel as numpy.
        ray_actor_options: options of the Ray actors (e.g. ``{"num_cpus": 1}``).
        max_restarts: how many failures of a Unity process (crash, hang, broken
            protocol) the env survives in its life by restarting that process (see
            "Failures" in the module docstring). 0: the first failure closes every
            process and raises.

    Attributes:
        restart_counts: restarts so far, per process.
        ports, process_ids: per process (updated when a process is restarted).

    Raises:
        ConfigError: bad arguments, an unknown behavior.
        SpecMismatchError: the processes disagree on the behavior or its spec.
        UnityExecutableNotFoundError, PortInUseError, UnityTimeoutError,
        UnityProcessExitedError, UnityVersionError: from starting a process; every
        process already started is closed first.
    """

    def __init__(
        self,
        *,
        sessions: Sequence[Mapping[str, Any]],
        behavior_name: str | None = None,
        image_format: ImageFormat = "hwc_uint8",
        render_mode: str | None = None,
        vacant_after: int = VACANT_AFTER,
        max_messages: int = MAX_MESSAGES,
        ray: bool = False,
        ray_actor_options: Mapping[str, Any] | None = None,
        max_restarts: int = 0,
    ) -> None:
        self._closed = True
        check_image_format(image_format)
        if not sessions:
            raise ConfigError("sessions must hold at least one mapping of UnitySession arguments (one per Unity process)")
        if isinstance(max_restarts, bool) or not isinstance(max_restarts, int) or max_restarts < 0:
            raise ConfigError(f"max_restarts must be a whole number >= 0 (0: never restart a failed Unity process), got {max_restarts!r}")
        if render_mode not in (None, "rgb_array"):
            raise ConfigError(f"render_mode={render_mode!r} is not supported; use None or 'rgb_array'")
        if vacant_after < 0 or max_messages < 1:
            raise ConfigError(f"vacant_after must be >= 0 and max_messages >= 1, got {vacant_after} and {max_messages}")
        worker_kwargs = []
        for i, kwargs in enumerate(sessions):
            if kwargs.get("image_format", image_format) != image_format:
                raise ConfigError(f"sessions[{i}] has image_format={kwargs['image_format']!r}; pass image_format to the VecEnv instead")
            launch, options = LaunchSettings.take(kwargs)  # one LaunchSettings, which a restart adjusts
            worker_kwargs.append(
                {
                    "session_kwargs": {**options, "launch": launch, "image_format": image_format},
                    "behaviors": (behavior_name,),
                    "vacant_after": vacant_after,
                    "max_messages": max_messages,
                }
            )
        backend = make_backend(ray=ray, actor_options=ray_actor_options)
        self._backend: WorkerBackend = backend
        self._finalizer = weakref.finalize(self, backend.close)
        infos = backend.start(worker_kwargs)
        try:
            self._check_agree(infos)
        except BaseException:
            self._finalizer()
            raise
        self._closed = False
        self._worker_kwargs = worker_kwargs
        self.max_restarts = max_restarts
        self.restart_counts: list[int] = [0] * len(infos)
        self._env_parameters: list[dict[str, float | Sampler]] = [{} for _ in infos]  # set so far, per process (for restarts)
        self.image_format: ImageFormat = image_format
        (self.behavior_name, self.behavior_spec), = infos[0].specs.items()
        self.ports: list[int] = [info.port for info in infos]
        self.process_ids: list[int | None] = [info.process_id for info in infos]
        counts = [info.num_agents[self.behavior_name] for info in infos]
        self._offsets = np.concatenate([[0], np.cumsum(counts)]).astype(int)
        self._spans = [(int(lo), int(hi)) for lo, hi in zip(self._offsets[:-1], self._offsets[1:])]  # each process's slots
        n = int(self._offsets[-1])
        self._camera = next((i for i, o in enumerate(self.behavior_spec.observation_specs) if o.is_visual), None)
        if render_mode == "rgb_array" and self._camera is None:
            self._finalizer()
            raise ConfigError(f"render_mode='rgb_array' needs a camera observation; {self.behavior_spec.describe()} has none")
        self._render_mode = render_mode
        view = MaskedAgentSlotView if self.behavior_spec.action_spec.discrete_branches else AgentSlotView
        self._views = [view(self, i) for i in range(n)]
        act = self.behavior_spec.action_spec
        self._obs: tuple[np.ndarray, ...] = tuple(
            np.zeros((n, *o.output_shape(image_format)), o.output_dtype(image_format)) for o in self.behavior_spec.observation_specs
        )
        self._mask: np.ndarray | None = np.ones((n, sum(act.discrete_branches)), bool) if act.discrete_branches else None
        self._agent_id = np.full(n, -1, np.int64)
        self._actions: tuple[np.ndarray, np.ndarray] | None = None
        self._stats: Stats = {}
        super().__init__(n, self.behavior_spec.observation_space(image_format), self.behavior_spec.action_space())

    # ------------------------------------------------------------------ VecEnv API

    @property
    def num_processes(self) -> int:
        """The number of Unity processes."""
        return len(self._offsets) - 1

    @property
    def restart_count(self) -> int:
        """How many times a failed Unity process was restarted, over all processes."""
        return sum(self.restart_counts)

    @property
    def sessions(self) -> list[UnitySession]:
        """The live sessions (local backend only): side channels, environment parameters.

        Raises:
            ConfigError: with ``ray=True``, where the sessions live in the Ray actors.
        """
        return self._backend.sessions

    def reset(self) -> VecEnvObs:
        """Resets every process (Unity's RESET) and returns each slot's first observation.

        Seeds set with :meth:`seed` reseed the scenes (process ``p`` takes the seed of its
        first slot); options set with ``set_options`` may hold ``{"env_parameters": {...}}``.
        """
        self._check_open()
        args = []
        for lo in self._offsets[:-1]:
            options = self._options[lo] or {}
            unknown = sorted(set(options) - set(_RESET_OPTIONS))
            if unknown:
                raise ConfigError(f"unknown reset option(s) {unknown}; supported: {list(_RESET_OPTIONS)}")
            args.append((self._seeds[lo], options.get("env_parameters")))
        batch, restarted = self._call("reset", args)
        for known, (_, env_parameters) in zip(self._env_parameters, args):
            known.update(env_parameters or {})
        self._reset_seeds()
        self._reset_options()
        self._actions = None
        self.reset_infos = [{"vacant": True} if a < 0 else {} for a in batch.agent_id]
        for row in self._rows_of(restarted):
            self.reset_infos[row]["unity_restarted"] = True
        return self._observation(batch.obs)

    def set_env_parameters(self, parameters: EnvParameters) -> None:
        """Sets environment parameters in every Unity process: numbers, or samplers
        (:class:`~gym_unity_il.protocol.channels.Sampler`) the scene draws a value from at
        each reset. They go with the next step or reset (a 0.x build: numbers only, as
        reset parameters of the next reset), and a restarted process gets them again.

        Raises:
            ConfigError: a value that is neither a finite number nor a Sampler, or a sampler
                for a 0.x build (nothing is set; the env goes on).
        """
        self._check_open()
        checked: dict[str, float | Sampler] = {}
        for key, value in parameters.items():
            if isinstance(value, Sampler):
                checked[key] = value
            elif isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value):
                checked[key] = float(value)
            else:
                raise ConfigError(f"environment parameter {key!r}: expected a finite number or a Sampler, got {value!r}")
        outcomes = self._backend.call("set_env_parameters", [(checked,)] * self.num_processes)
        errors = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        if errors:
            raise errors[0]
        for known in self._env_parameters:
            known.update(checked)

    def step_async(self, actions: np.ndarray | Mapping[str, np.ndarray] | Sequence[Any]) -> None:
        self._check_open()
        self._actions = split_batch_actions(actions, self.behavior_spec, self.num_envs)

    def step_wait(self) -> VecEnvStepReturn:
        with phase("step"):
            return self._step_wait()

    def _step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise NoAsyncCallError("step_wait() called without step_async(): call step(actions)")
        continuous, discrete = self._actions
        self._actions = None
        args = [({self.behavior_name: (continuous[lo:hi], discrete[lo:hi])},) for lo, hi in self._spans]
        batch, restarted = self._call("step", args)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for j, row in enumerate(batch.terminal_rows.tolist()):
            infos[row]["terminal_observation"] = self._observation(tuple(t[j] for t in batch.terminal_obs))
            infos[row]["TimeLimit.truncated"] = bool(batch.truncated[row])
        for row in self._rows_of(restarted):
            infos[row]["unity_restarted"] = True
        if np.count_nonzero(batch.agent_id < 0):
            for row in np.flatnonzero(batch.agent_id < 0).tolist():
                infos[row]["vacant"] = True
        return self._observation(batch.obs), batch.reward, batch.done, infos

    def close(self) -> None:
        """Ends every Unity process and frees the ports (idempotent)."""
        self._closed = True
        self._finalizer()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self._views[i], attr_name) for i in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        for i in self._get_indices(indices):
            setattr(self._views[i], attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any) -> list[Any]:
        return [getattr(self._views[i], method_name)(*method_args, **method_kwargs) for i in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        """Always False: slots are not gymnasium envs, so no gymnasium wrapper is around them."""
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [self._image(i) for i in range(self.num_envs)]

    def action_masks(self) -> np.ndarray:
        """Every slot's action mask, ``bool [num_envs, sum(branches)]`` (True = allowed)."""
        if self._mask is None:
            raise ConfigError(f"behavior {self.behavior_name!r} has no discrete actions, so no action mask")
        return self._mask.copy()

    def take_stats(self) -> Stats:
        """What the scenes' StatsRecorders sent since the last call: key -> [(value, aggregation), ...]."""
        stats, self._stats = self._stats, {}
        return stats

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{self.num_envs} slots in {self.num_processes} process(es)"
        return f"UnityVecEnv({getattr(self, 'behavior_name', '?')!r}, {state})"

    # ------------------------------------------------------------------ internals

    def _check_open(self) -> None:
        if self._closed:
            raise EnvClosedError("the UnityVecEnv is closed; create a new one")

    def _call(self, method: str, args: list[tuple[Any, ...]]) -> tuple[SlotBatch, list[int]]:
        """Runs ``method`` (``"reset"`` or ``"step"``) on every worker at once, restarts the
        processes that failed (within ``max_restarts``) and joins the results over slots.
        Returns the batch and the restarted processes; closes everything on any other error."""
        try:
            parts: list[Any] = self._backend.call(method, args)
            failed = [(p, part) for p, part in enumerate(parts) if isinstance(part, BaseException)]
            for used, (p, error) in enumerate(failed, start=self.restart_count):
                self._check_restartable(p, error, used)
            for p, error in failed:
                parts[p] = self._restart(p, error, args[p] if method == "reset" else None)
        except BaseException:
            self.close()
            raise
        for part in parts:
            for key, values in part.stats.items():
                self._stats.setdefault(key, []).extend(values)
        batch = join_batches([part.batches[self.behavior_name] for part in parts], self._offsets)
        self._obs = batch.obs
        self._agent_id = batch.agent_id
        if batch.action_mask is not None:
            self._mask = batch.action_mask
        return batch, [p for p, _ in failed]

    def _check_restartable(self, process: int, error: BaseException, used: int) -> None:
        """Raises ``error`` unless it is a process failure and ``used`` restarts leave room
        for one more (past the limit: the same kind of error, saying so)."""
        if not self.max_restarts or not isinstance(error, RESTARTABLE_ERRORS):
            raise error
        if used >= self.max_restarts:
            kind = next(cls for cls in RESTARTABLE_ERRORS if isinstance(error, cls))
            raise kind(
                f"Unity process {process} failed and the restart limit is reached (max_restarts={self.max_restarts}, "
                f"all used); every process is closed. Raise max_restarts or fix the cause: {error}"
            ) from error

    def _restart(self, process: int, error: BaseException, reset_args: tuple[Any, ...] | None) -> WorkerResult:
        """Starts ``process`` again after ``error`` and returns what its slots report: the
        new process's first observations; for a step (``reset_args`` None), with every slot
        ending its episode there (cut, reward 0, last observation as terminal observation)."""
        self.restart_counts[process] += 1
        r = self.restart_counts[process]
        logger.warning(
            "Unity process %d failed (%s: %s); restarting it (restart %d of %d)",
            process, type(error).__name__, error, self.restart_count, self.max_restarts,
        )  # fmt: skip
        kwargs = dict(self._worker_kwargs[process])
        session = dict(kwargs["session_kwargs"])
        session["seed"] = int(session.get("seed", 0)) + r * self.num_processes
        launch: LaunchSettings = session["launch"]
        if launch.log_folder is not None:
            session["launch"] = dataclasses.replace(launch, log_folder=os.path.join(launch.log_folder, f"restart-{r}"))
        kwargs["session_kwargs"] = session
        cut = reset_args is None
        seed, given = (None, None) if reset_args is None else reset_args
        parameters = {**self._env_parameters[process], **(given or {})}  # what the failed process held, and this reset's
        info, first = self._backend.restart(process, kwargs, (seed, parameters))
        lo, hi = self._spans[process]
        (name, spec), = info.specs.items()
        count = info.num_agents[name]
        if name != self.behavior_name or not spec.is_compatible(self.behavior_spec) or count != hi - lo:
            raise SpecMismatchError(
                f"Unity process {process} came back from its restart with {count} agent(s) of {spec.describe()}, "
                f"but it had {hi - lo} of {self.behavior_spec.describe()}: a restarted process must serve the same scene with "
                "the same agents deciding after its reset"
            )
        self.ports[process], self.process_ids[process] = info.port, info.process_id
        if not cut:
            return first
        batch = cut_episodes(first.batches[self.behavior_name], [o[lo:hi] for o in self._obs])
        return WorkerResult({self.behavior_name: batch}, first.stats)

    def _rows_of(self, processes: Sequence[int]) -> list[int]:
        """The slots of ``processes``."""
        return [row for p in processes for row in range(*self._spans[p])]

    def _observation(self, arrays: tuple[np.ndarray, ...]) -> VecEnvObs:
        if len(arrays) == 1:
            return arrays[0]
        return OrderedDict(zip(self.behavior_spec.observation_keys, arrays))

    def _process_of_slot(self, index: int) -> int:
        return int(np.searchsorted(self._offsets, index, side="right") - 1)

    def _image(self, index: int) -> np.ndarray | None:
        if self._render_mode != "rgb_array" or self._camera is None:
            return None
        image = self._obs[self._camera][index]
        if self.image_format == "chw_float":
            image = np.clip(np.rint(image.transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8)
        if image.shape[2] == 1:
            image = np.repeat(image, 3, axis=2)
        return np.ascontiguousarray(image[:, :, :3])

    @staticmethod
    def _check_agree(infos: Sequence[WorkerInfo]) -> None:
        (name, spec), = infos[0].specs.items()
        for p, info in enumerate(infos[1:], start=1):
            (other_name, other), = info.specs.items()
            if other_name != name or not other.is_compatible(spec):
                raise SpecMismatchError(
                    f"Unity process {p} serves {other.describe()}, but process 0 serves {spec.describe()}; "
                    "every process of a UnityVecEnv must run the same scene"
                )


def make_unity_vec_env(
    file_name: str | os.PathLike[str] | None = None,
    *,
    scene: str | type | None = None,
    num_processes: int | None = None,
    scene_kwargs: Mapping[str, Any] | None = None,
    behavior_name: str | None = None,
    seed: int = 0,
    image_format: ImageFormat = "hwc_uint8",
    render_mode: str | None = None,
    vacant_after: int = VACANT_AFTER,
    ray: bool = False,
    ray_actor_options: Mapping[str, Any] | None = None,
    max_restarts: int = 0,
    n_envs: int | None = None,
    **session_kwargs: Any,
) -> UnityVecEnv:
    """Starts ``num_processes`` Unity processes of one build or built-in scene as one :class:`UnityVecEnv`.

    With neither ``file_name`` nor ``scene``, the built-in scene ``"ball"`` runs. Built-in
    scenes keep their own ``num_agents`` default (``ball``: 12) unless ``scene_kwargs``
    says otherwise; ``num_envs`` is the total number of agents over all processes.

    Args:
        file_name: path of a Unity player build.
        scene: a built-in scene: name, ``"module:Class"`` or Scene subclass.
        num_processes: the number of Unity processes (default 1).
        scene_kwargs: constructor arguments of the built-in scene (every process).
        behavior_name: the behavior to control (default: the first announced).
        seed: process ``p`` gets the handshake seed ``seed + p``.
        image_format: ``"hwc_uint8"`` or ``"chw_float"``.
        render_mode: None or ``"rgb_array"``.
        vacant_after: see :class:`UnityVecEnv`.
        ray: host the processes in Ray actors.
        ray_actor_options: options of the Ray actors.
        max_restarts: failures of a Unity process survived by restarting it (see
            :class:`UnityVecEnv`); 0 closes everything at the first one.
        n_envs: the former name of ``num_processes``, still accepted.
        **session_kwargs: ``launch=LaunchSettings(...)`` and/or its fields
            (:class:`~gym_unity_il.link.launch.LaunchSettings`: ``worker_id``,
            ``base_port``, ``auto_port``, ``no_graphics``, ``additional_args``,
            ``log_folder``, ``timeout_wait``, ``engine_config``, ``host``, ...; process
            ``p`` gets ``worker_id + p``, so its port is ``base_port`` plus that unless
            ``auto_port``, and its log ``Player-<worker_id + p>.log``), and the other
            arguments of :class:`~gym_unity_il.link.session.UnitySession`
            (``env_parameters``, ...).

    Raises:
        ConfigError: bad arguments (``num_processes`` below 1, both it and ``n_envs``, the
            Editor, which is only one process).
    """
    if n_envs is not None and num_processes is not None:
        raise ConfigError(f"num_processes={num_processes!r} and n_envs={n_envs!r}: n_envs is the former name of num_processes; give one")
    argument, count = ("n_envs", n_envs) if n_envs is not None else ("num_processes", 1 if num_processes is None else num_processes)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(f"{argument} must be a whole number of Unity processes >= 1, got {count!r}")
    launch, options = LaunchSettings.take(session_kwargs)
    if file_name is not None:
        launch = dataclasses.replace(launch, file_name=file_name)
    if launch.editor:
        raise ConfigError("make_unity_vec_env starts processes; for the Unity Editor use UnityVecEnv(sessions=[{'editor': True}])")
    sessions = [
        {
            "scene": scene,
            "scene_kwargs": dict(scene_kwargs or {}),
            "seed": seed + p,
            **options,
            "launch": dataclasses.replace(launch, worker_id=launch.worker_id + p),
        }
        for p in range(count)
    ]
    return UnityVecEnv(
        sessions=sessions,
        behavior_name=behavior_name,
        image_format=image_format,
        render_mode=render_mode,
        vacant_after=vacant_after,
        ray=ray,
        ray_actor_options=ray_actor_options,
        max_restarts=max_restarts,
    )
