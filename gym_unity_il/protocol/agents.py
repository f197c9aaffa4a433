"""The agents of a message of Unity as batches of numpy arrays, within bounds.

For each behavior, Unity's ``AgentInfoProto`` list becomes a :class:`StepBatch` of decision
steps and one of terminal steps: all agents of a behavior are decoded into one array per
sensor, packed floats copied with ``np.frombuffer`` (the agents of a behavior without images
all at once from their bytes, :mod:`gym_unity_il.protocol.rows`, when they are laid out so).
Behaviors announced by the message are added to the session's specs (protocol.md §6.3).

What a message makes the trainer allocate is bounded (docs/reliability.md): counts and sizes
are checked before anything is built from them. Besides the limits of
:mod:`gym_unity_il.protocol.specs`, the agents of one message may cost the decoder at most
:data:`DECODE_FIXED_BYTES` plus :data:`DECODE_BYTES_PER_BYTE` times the message's size in
Python objects, and decode to at most :data:`MAX_DECODED_BYTES` of arrays (images and masks
can be far larger than their bytes on the wire). NaN and infinite observations and rewards
are refused (:func:`gym_unity_il.protocol.observations.first_not_finite`).
"""

from __future__ import annotations

import math
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass

import numpy as np

from gym_unity_il.errors import UnityProtocolError, quote
from gym_unity_il.proto import communicator_pb2 as pb
from gym_unity_il.protocol.observations import FloatRows, ImageBatchError, decode_images, first_not_finite, float_payload
from gym_unity_il.protocol.rows import AgentRows, Rows
from gym_unity_il.protocol.specs import MAX_BEHAVIORS, behavior_spec_from_proto
from gym_unity_il.spec import BehaviorSpec, ImageFormat, ObservationSpec

#: Most bytes of arrays one message may decode to, over all its behaviors: images and action
#: masks can take far more than their bytes on the wire (a message of empty agent infos must
#: not make masks of gigabytes).
MAX_DECODED_BYTES = 1 << 30
#: What decoding costs in Python objects (bytes, as tracemalloc counts them) per agent and per
#: sensor of an agent: upper bounds of the measured costs (``benchmarks/fuzz_inputs.py --memory``).
AGENT_COST = 320
SENSOR_COST = 64
#: The decoding budget of one message: its agents may cost this much ...
DECODE_FIXED_BYTES = 32 << 20
#: ... plus this many times the message's size.
DECODE_BYTES_PER_BYTE = 16
#: Behaviors with at least this many agents in a message are read at once from their bytes
#: (:mod:`gym_unity_il.protocol.rows`); fewer, one by one.
ROWS_FROM = 2


@dataclass(slots=True)
class StepBatch:
    """The agents of one behavior in one message, split as decision or terminal steps.
    Read-only by convention (batches without agents are shared).

    Attributes:
        agent_id: ``int32 [n]``.
        obs: one array per sensor, ``[n, *output_shape]``, in the behavior's sensor order.
        reward: ``float32 [n]`` reward since the agent's previous message.
        interrupted: ``bool [n]`` the episode was cut by a step limit (terminal steps only).
        action_mask: ``bool [n, sum(branches)]`` True = action allowed (decision steps of
            discrete behaviors), else None.
        group_id: ``int32 [n]`` multi-agent group (0 = none).
        group_reward: ``float32 [n]``.
        stored_actions: ``(continuous float32 [n, c], discrete int32 [n, d])``: the action each
            agent carried out up to this step, when the era sends it (0.x builds; for agents
            Unity decides for, the teacher's actions), else None.
    """

    agent_id: np.ndarray
    obs: tuple[np.ndarray, ...]
    reward: np.ndarray
    interrupted: np.ndarray
    action_mask: np.ndarray | None
    group_id: np.ndarray
    group_reward: np.ndarray
    stored_actions: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.agent_id)

    @classmethod
    def empty(cls, spec: BehaviorSpec, image_format: ImageFormat = "hwc_uint8") -> StepBatch:
        """A batch with no agents, shaped for ``spec``. Made once per spec and shared: arrays
        with no rows hold nothing to change."""
        return _empty_batch(spec, image_format)


def _empty_batch(spec: BehaviorSpec, image_format: ImageFormat) -> StepBatch:
    return _facts(spec, image_format).empty


@dataclass(frozen=True)
class _Facts:
    """What decoding a spec's agents needs, made once per spec: the empty batch, the decoded
    bytes of one agent, a :class:`FloatRows` per vector sensor (None for images), and the
    :class:`~gym_unity_il.protocol.rows.AgentRows` of a spec without images."""

    empty: StepBatch
    agent_bytes: int
    float_rows: tuple[FloatRows | None, ...]
    spec: BehaviorSpec
    rows: AgentRows | None


#: Per (spec, image format). Keyed by the spec's identity, because hashing a spec costs more
#: than decoding a small message; entries hold their spec, so an id is never reused while its
#: entry lives.
_FACTS: dict[tuple[int, str], _Facts] = {}


def _facts(spec: BehaviorSpec, image_format: ImageFormat) -> _Facts:
    entry = _FACTS.get((id(spec), image_format))
    if entry is None:
        if len(_FACTS) >= 4 * MAX_BEHAVIORS:
            _FACTS.clear()
        obs = tuple(np.zeros((0, *o.output_shape(image_format)), o.output_dtype(image_format)) for o in spec.observation_specs)
        empty = StepBatch(np.zeros(0, np.int32), obs, np.zeros(0, np.float32), np.zeros(0, bool), None, np.zeros(0, np.int32), np.zeros(0, np.float32))
        rows = tuple(None if o.is_visual else FloatRows(o) for o in spec.observation_specs)
        agent_rows = None if any(o.is_visual for o in spec.observation_specs) else AgentRows(spec)
        entry = _FACTS[(id(spec), image_format)] = _Facts(empty, decoded_bytes_per_agent(spec, image_format), rows, spec, agent_rows)
    return entry


def decoded_bytes_per_agent(spec: BehaviorSpec, image_format: ImageFormat) -> int:
    """Bytes of arrays one agent of ``spec`` decodes to in one batch: its observations, its
    action mask and 24 bytes of id, reward and flags (what the decode budget counts)."""
    sensors = sum(math.prod(o.output_shape(image_format)) * o.output_dtype(image_format).itemsize for o in spec.observation_specs)
    return sensors + sum(spec.action_spec.discrete_branches) + 24


def _not_finite(behavior: str, what: str) -> UnityProtocolError:
    return UnityProtocolError(f"behavior {quote(behavior)} sent a NaN or infinite {what}; fix the scene so it stays finite")


def _stack_sensor(infos: Sequence[pb.AgentInfoProto], index: int, spec: ObservationSpec, rows: FloatRows | None, image_format: ImageFormat,
                  behavior: str) -> np.ndarray:  # fmt: skip
    out_shape = (len(infos), *spec.output_shape(image_format))
    if rows is not None:
        values = rows.stack([info.observations[index].SerializeToString() for info in infos])
        if values is None:  # rows laid out differently: one by one
            payload = b"".join([float_payload(info.observations[index].float_data) for info in infos])
            if len(payload) != 4 * math.prod(out_shape):
                raise UnityProtocolError(f"observation {quote(spec.name)}: {len(payload) // 4} floats for {len(infos)} agents of shape {spec.shape}")
            values = np.frombuffer(bytearray(payload), "<f4").reshape(out_shape)  # a writable array of its own
        if first_not_finite(values) is not None:
            raise _not_finite(behavior, f"observation {quote(spec.name)}")
        return values
    try:
        return decode_images([info.observations[index] for info in infos], spec, image_format)
    except ImageBatchError as exc:
        raise exc.cause from None


def _batch(infos: Sequence[pb.AgentInfoProto], columns: Sequence[tuple], facts: _Facts, image_format: ImageFormat, with_mask: bool) -> StepBatch:
    """The batch of ``infos`` (``columns``: their scalar fields, one tuple per agent, as
    :func:`decode_agent_infos` reads them)."""
    spec = facts.spec
    if not infos:
        return facts.empty
    specs = spec.observation_specs
    ids, rewards, _, interrupted, group_ids, group_rewards, counts = zip(*columns)
    if counts.count(len(specs)) != len(counts):
        bad = next(info for info, count in zip(infos, counts) if count != len(specs))
        raise UnityProtocolError(f"agent {bad.id} of {quote(spec.name)} sent {len(bad.observations)} observations, its behavior has {len(specs)}")
    if len(ids) > 1 and len(set(ids)) != len(ids):
        seen: set[int] = set()
        twice = next(i for i in ids if i in seen or seen.add(i))  # type: ignore[func-returns-value]
        kind = "decision" if with_mask else "terminal"
        raise UnityProtocolError(
            f"agent {twice} of {quote(spec.name)} appears twice among the {kind} steps of one message; each agent sends one "
            "step per message (the data is damaged or not from ML-Agents)"
        )
    for values, what in ((rewards, "reward"), (group_rewards, "group reward")):
        if not math.isfinite(sum(values)):  # as first_not_finite: float32 values cannot overflow a double sum
            raise _not_finite(spec.name, what)
    reward, group_reward = np.array(rewards, np.float32), np.array(group_rewards, np.float32)
    obs = tuple([_stack_sensor(infos, i, o, rows, image_format, spec.name) for i, (o, rows) in enumerate(zip(specs, facts.float_rows))])
    mask = None
    branches = spec.action_spec.discrete_branches
    if with_mask and branches:
        total = sum(branches)
        mask = np.ones((len(infos), total), bool)
        for i, info in enumerate(infos):
            if len(info.action_mask) == total:
                mask[i] = ~np.fromiter(info.action_mask, bool, total)
    return StepBatch(
        agent_id=np.array(ids, np.int32),
        obs=obs,
        reward=reward,
        interrupted=np.array(interrupted, bool),
        action_mask=mask,
        group_id=np.array(group_ids, np.int32),
        group_reward=group_reward,
    )


def decode_agent_infos(
    infos: Sequence[pb.AgentInfoProto], spec: BehaviorSpec, image_format: ImageFormat = "hwc_uint8"
) -> tuple[StepBatch, StepBatch]:
    """Splits a behavior's agent infos, keeping their order, into (decision steps, terminal steps).

    An agent may be in both (its episode ended and the next one asks for a decision), but
    not twice in either.

    Raises:
        UnityProtocolError: an agent twice in the decision or the terminal steps, an agent
            with another number of sensors than ``spec``, data that does not fit the spec,
            NaN or infinite values.
    """
    facts = _facts(spec, image_format)
    # One pass over the agents for their scalar fields: a tuple each, then one array per field.
    columns = [(i.id, i.reward, i.done, i.max_step_reached, i.group_id, i.group_reward, len(i.observations)) for i in infos]
    if not any(c[2] for c in columns):
        return _batch(infos, columns, facts, image_format, True), facts.empty
    decision = [k for k, c in enumerate(columns) if not c[2]]
    terminal = [k for k, c in enumerate(columns) if c[2]]
    return tuple(  # type: ignore[return-value]
        _batch([infos[k] for k in ks], [columns[k] for k in ks], facts, image_format, with_mask) for ks, with_mask in ((decision, True), (terminal, False))
    )


def _decode_list(infos: pb.UnityRLOutputProto.ListAgentInfoProto, spec: BehaviorSpec, image_format: ImageFormat) -> tuple[StepBatch, StepBatch]:
    """:func:`decode_agent_infos` of a behavior's list of agents; read at once from its bytes
    (:mod:`gym_unity_il.protocol.rows`) when it has at least :data:`ROWS_FROM` agents and no
    image sensors, and they read so."""
    facts = _facts(spec, image_format)
    if facts.rows is not None and len(infos.value) >= ROWS_FROM:
        rows = facts.rows.read(infos.SerializeToString())
        if rows is not None:
            batches = _split_rows(rows, facts)
            if batches is not None:
                return batches
    return decode_agent_infos(infos.value, spec, image_format)


def _split_rows(rows: Rows, facts: _Facts) -> tuple[StepBatch, StepBatch] | None:
    """The decision and terminal steps of ``rows``, or None when an agent is twice in either
    (:func:`decode_agent_infos` says so)."""
    batches = []
    for part, with_mask in ((slice(None, rows.decisions), True), (slice(rows.decisions, None), False)):
        ids = rows.agent_id[part]
        if not len(ids):
            batches.append(facts.empty)
            continue
        if len(set(ids.tolist())) != len(ids):
            return None
        batches.append(StepBatch(
            agent_id=ids,
            obs=tuple([o[part] for o in rows.obs]),
            reward=rows.reward[part],
            interrupted=rows.interrupted[part],
            action_mask=rows.mask[part] if with_mask and rows.mask is not None else None,
            group_id=rows.group_id[part],
            group_reward=rows.group_reward[part],
        ))  # fmt: skip
    return batches[0], batches[1]


def decode_unity_output(
    output: pb.UnityOutputProto,
    specs: MutableMapping[str, BehaviorSpec],
    *,
    channels_first: bool = False,
    image_format: ImageFormat = "hwc_uint8",
) -> dict[str, tuple[StepBatch, StepBatch]]:
    """Decodes the agent data of one message of Unity (side channels aside).

    Behaviors the message announces (protocol.md §6.3) are added to ``specs``; the result
    holds ``(decision steps, terminal steps)`` for every behavior of ``specs``, empty for
    those without agents in this message. Counts and sizes are checked before anything is
    built from them (see the module docstring).

    Raises:
        UnityProtocolError: the message contradicts itself or the specs, or declares more
            than the limits of this module (the text says how).
    """
    infos_by_name = output.rl_output.agentInfos
    brains = output.rl_initialization_output.brain_parameters if output.HasField("rl_initialization_output") else ()
    if len(infos_by_name) > MAX_BEHAVIORS or len(brains) > MAX_BEHAVIORS:
        raise UnityProtocolError(
            f"the message carries {max(len(infos_by_name), len(brains))} behaviors, more than the {MAX_BEHAVIORS} a session "
            "accepts; the data is damaged or not from ML-Agents"
        )
    for brain in brains:
        name = brain.brain_name
        if name not in infos_by_name or not infos_by_name[name].value:
            raise UnityProtocolError(f"behavior {quote(name)} was announced without any agent data in the same message (protocol.md §6.3)")
        spec = behavior_spec_from_proto(brain, infos_by_name[name].value[0], channels_first=channels_first)
        known = specs.get(name)
        if known is None:
            if len(specs) >= MAX_BEHAVIORS:
                raise UnityProtocolError(
                    f"behavior {quote(name)} would be the session's behavior number {len(specs) + 1}, more than the {MAX_BEHAVIORS} "
                    "accepted; the data is damaged or not from ML-Agents"
                )
            specs[name] = spec
        elif known != spec:
            raise UnityProtocolError(
                f"behavior {quote(name)} was announced again with another spec: {quote(known.describe())} before, "
                f"{quote(spec.describe())} now. A behavior keeps its sensors and actions for the whole session; the data is "
                "damaged, or the scene changed the behavior's Behavior Parameters while running"
            )
    # What decoding will cost, from the counts alone, before anything is decoded.
    work = []
    cost = decoded_bytes = 0
    for name, infos in infos_by_name.items():
        values = infos.value
        spec = specs.get(name)
        if spec is None:
            if values:
                raise UnityProtocolError(f"agents of behavior {quote(name)} arrived before the behavior was announced (protocol.md §6.3)")
            continue
        n = len(values)
        decoded_bytes += n * _facts(spec, image_format).agent_bytes
        if decoded_bytes > MAX_DECODED_BYTES:
            raise UnityProtocolError(
                f"behavior {quote(name)}: {n} agents would decode to more than {MAX_DECODED_BYTES >> 20} MB of arrays (with the "
                "message's other behaviors); the data is damaged or not from ML-Agents"
            )
        cost += n * (AGENT_COST + SENSOR_COST * len(spec.observation_specs))
        work.append((name, infos, spec))
    if cost > DECODE_FIXED_BYTES and cost > DECODE_FIXED_BYTES + DECODE_BYTES_PER_BYTE * output.ByteSize():
        agents = sum(len(infos.value) for _, infos, _ in work)
        raise UnityProtocolError(
            f"the message carries {agents} agents in {output.ByteSize()} bytes: too many agents for its size (decoding them would "
            f"take about {cost >> 20} MB); the data is damaged or not from ML-Agents"
        )
    decoded = {name: _decode_list(infos, spec, image_format) for name, infos, spec in work}
    return {name: decoded[name] if name in decoded else decode_agent_infos((), spec, image_format) for name, spec in specs.items()}
