"""Behavior specs from the messages that announce them, and the limits on what they may declare.

A behavior is announced by its ``BrainParametersProto`` (actions) and the first agent's
observations (sensors): :func:`behavior_spec_from_proto` builds its
:class:`~gym_unity_il.spec.BehaviorSpec`, for the live link and for `.demo` files alike.

What a message of Unity or a file makes the trainer allocate is bounded (docs/reliability.md):
a behavior spec may declare at most :data:`MAX_OBSERVATION_RANK` dimensions per sensor,
:data:`MAX_SENSORS` sensors, :data:`MAX_OBSERVATION_VALUES` values per sensor and
:data:`MAX_ACTION_VALUES` actions; a session knows at most :data:`MAX_BEHAVIORS` behaviors.
These are checked before anything is built from them. Error messages quote values from the
message through :func:`~gym_unity_il.errors.quote`, so they stay short.
"""

from __future__ import annotations

import math

from gym_unity_il.errors import UnityProtocolError, quote
from gym_unity_il.proto import communicator_pb2 as pb
from gym_unity_il.spec import ActionSpec, BehaviorSpec, DimensionProperty, ObservationSpec, ObservationType

_TE = DimensionProperty.TRANSLATIONAL_EQUIVARIANCE
#: Most values one observation may declare (16M: 64 MB as float32). Larger shapes come from
#: damaged data, and arrays for them would take gigabytes.
MAX_OBSERVATION_VALUES = 1 << 24
#: Most continuous actions, and most discrete actions over all branches, a behavior may declare.
MAX_ACTION_VALUES = 1 << 16
#: Most dimensions of one observation. ML-Agents sends 1 (vectors), 2 (buffers) or 3 (images).
MAX_OBSERVATION_RANK = 8
#: Most sensors (observations) of one agent.
MAX_SENSORS = 256
#: Most behaviors one session knows (each is a name and its team: ``3DBall?team=0``).
MAX_BEHAVIORS = 1024


def observation_spec_from_proto(obs: pb.ObservationProto, *, channels_first: bool = False) -> ObservationSpec:
    """The spec of one sensor. A rank-3 layout comes from ``dimension_properties`` when they
    tell it (Unity 2.x: ``[2, 2, 1]`` = HWC; 3.x: ``[1, 2, 2]`` = CHW), else from ``channels_first``.

    Raises:
        UnityProtocolError: more than :data:`MAX_OBSERVATION_RANK` dimensions (checked first).
    """
    if len(obs.shape) > MAX_OBSERVATION_RANK:
        raise UnityProtocolError(
            f"observation {quote(obs.name)} declares {len(obs.shape)} dimensions, more than the {MAX_OBSERVATION_RANK} accepted "
            "(ML-Agents sends 1 to 3); the data is damaged or not from ML-Agents"
        )
    shape = tuple(obs.shape)
    props = tuple(DimensionProperty(p) for p in obs.dimension_properties) if len(obs.dimension_properties) == len(shape) else ()
    if len(shape) == 3 and props:
        te = [bool(p & _TE) for p in props]
        if te == [False, True, True]:
            channels_first = True
        elif te == [True, True, False]:
            channels_first = False
    return ObservationSpec(
        shape=shape,
        dimension_property=props,
        observation_type=ObservationType(obs.observation_type) if obs.observation_type in (0, 1) else ObservationType.DEFAULT,
        name=obs.name,
        channels_first=channels_first and len(shape) == 3,
    )


def action_spec_from_proto(brain: pb.BrainParametersProto) -> ActionSpec:
    """The action spec, falling back to the deprecated fields when ``action_spec`` is empty.

    Raises:
        UnityProtocolError: more than :data:`MAX_ACTION_VALUES` branches (checked first).
    """
    spec = brain.action_spec
    branches = max(len(spec.discrete_branch_sizes), len(brain.vector_action_size_deprecated))
    if branches > MAX_ACTION_VALUES:
        raise UnityProtocolError(
            f"behavior {quote(brain.brain_name)} declares {branches} discrete branches, more than the {MAX_ACTION_VALUES} accepted; "
            "the data is damaged or not from ML-Agents"
        )
    if spec.num_continuous_actions or spec.num_discrete_actions:
        return ActionSpec(spec.num_continuous_actions, tuple(spec.discrete_branch_sizes))
    sizes = tuple(brain.vector_action_size_deprecated)
    if brain.vector_action_space_type_deprecated == pb.continuous:
        return ActionSpec(sizes[0] if sizes else 0, ())
    return ActionSpec(0, sizes)


def behavior_spec_from_proto(
    brain: pb.BrainParametersProto, agent_info: pb.AgentInfoProto, *, channels_first: bool = False
) -> BehaviorSpec:
    """A behavior's spec from its announcement plus the first agent's observations.

    Raises:
        UnityProtocolError: a negative size, or a size or count :func:`check_spec_sizes`,
            :func:`observation_spec_from_proto` or :func:`action_spec_from_proto` rejects.
    """
    if len(agent_info.observations) > MAX_SENSORS:
        raise UnityProtocolError(
            f"behavior {quote(brain.brain_name)} is announced with {len(agent_info.observations)} sensors, more than the "
            f"{MAX_SENSORS} accepted; the data is damaged or not from ML-Agents"
        )
    try:
        spec = BehaviorSpec(
            name=brain.brain_name,
            observation_specs=tuple(observation_spec_from_proto(o, channels_first=channels_first) for o in agent_info.observations),
            action_spec=action_spec_from_proto(brain),
        )
    except ValueError as exc:  # the specs' own checks: negative dimensions, branches of size 0 or less
        raise UnityProtocolError(
            f"behavior {quote(brain.brain_name)} is announced with {quote(str(exc))}; the data is damaged or not from ML-Agents"
        ) from None
    check_spec_sizes(spec)
    return spec


def check_spec_sizes(spec: BehaviorSpec) -> None:
    """Raises UnityProtocolError, naming the sensor or the actions, when ``spec`` declares an
    observation of more than :data:`MAX_OBSERVATION_VALUES` values, or more than
    :data:`MAX_ACTION_VALUES` continuous or discrete actions."""
    for o in spec.observation_specs:
        if math.prod(o.shape) > MAX_OBSERVATION_VALUES:
            raise UnityProtocolError(
                f"behavior {quote(spec.name)}: observation {quote(o.name)} declares the shape {list(o.shape)}, more than the "
                f"{MAX_OBSERVATION_VALUES} values accepted; the data is damaged or not from ML-Agents"
            )
    act = spec.action_spec
    if max(act.continuous_size, sum(act.discrete_branches)) > MAX_ACTION_VALUES:
        raise UnityProtocolError(
            f"behavior {quote(spec.name)} declares {act.continuous_size} continuous actions and discrete branches "
            f"{quote(list(act.discrete_branches))}, more than the {MAX_ACTION_VALUES} accepted; the data is damaged or not from ML-Agents"
        )


def brain_parameters_to_proto(spec: BehaviorSpec, *, is_training: bool) -> pb.BrainParametersProto:
    """The BrainParametersProto Unity sends for ``spec`` (deprecated fields filled as Unity does)."""
    act = spec.action_spec
    brain = pb.BrainParametersProto(brain_name=spec.name, is_training=is_training)
    brain.action_spec.num_continuous_actions = act.continuous_size
    brain.action_spec.num_discrete_actions = act.discrete_size
    brain.action_spec.discrete_branch_sizes.extend(act.discrete_branches)
    if act.is_continuous:
        brain.vector_action_size_deprecated.append(act.continuous_size)
        brain.vector_action_space_type_deprecated = pb.continuous
    elif act.is_discrete:
        brain.vector_action_size_deprecated.extend(act.discrete_branches)
        brain.vector_action_space_type_deprecated = pb.discrete
    return brain
