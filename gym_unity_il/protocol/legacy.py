"""The legacy protocol (ML-Agents 0.4 ... 0.11, communication API ``API-4`` ... ``API-11``) as pure functions.

The facts come from protocol-legacy.md; section numbers below are that document's. Messages
are those of ``protos/legacy.proto``; what comes out is what the modern path gives: a
:class:`~gym_unity_il.spec.BehaviorSpec` per brain and ``(decision, terminal)``
:class:`~gym_unity_il.protocol.agents.StepBatch` pairs, decoded by the same primitives
(:mod:`~gym_unity_il.protocol.images` for PNGs and 0.4's JPEGs, the limits of
:mod:`~gym_unity_il.protocol.specs` and :mod:`~gym_unity_il.protocol.agents`, the one rule on
NaN and infinities).

The eras differ in few places, each a field of :class:`LegacyEra` that the one codec reads
(§2, §9): the method path and Editor port, when brains are announced, the layout of the
handshake's BrainParametersProto (API-4, API-5, API-6 on: :func:`read_brain`), JPEG or PNG
images, action masks (API-5 on), ``global_done`` (through API-9), whether an agent's reset
keeps its stored action (from 0.8.2) and whether the first RESET's parameters are applied
(from 0.5).

:class:`LegacyCodec` puts these functions behind the one interface of
:class:`~gym_unity_il.protocol.codec.Codec`; :func:`~gym_unity_il.protocol.eras.open_codec`
chooses it when the handshake's version string is one of :data:`LEGACY_ERAS`. Side channels,
engine settings (beyond the train mode, :func:`train_mode_of`) and training-area replication
do not exist in these eras.

Brains become behaviors: the brain name is the behavior name; sensors are the cameras first
(through 0.10: ``camera_resolutions``; 0.11: the first agent's compressed-observation shapes;
each ``height x width x (1 if gray else 3)``, uint8 HWC, PNG (0.4: JPEG) decoded, gray as the
mean of the RGB channels as the era did), then the stacked vector observation of
``vector_observation_size x num_stacked_vector_observations`` floats (the stack as Unity sends
it, oldest frame first; a 0.4 brain with a discrete vector observation space sends 1 float,
the state index, per frame), when not empty: the order the `.demo` reader gives the same
brain. Memories and text observations are ignored. Actions are continuous, or discrete with
one index per branch (0.4: one branch); ``action_mask`` (true = not allowed; API-5 on) is
read only when its length is the sum of the branches, as the era's library did.

Episodes (§7.1): a done agent is reset *before* its info is collected, so its done info
carries the reward of its last action, ``max_step_reached``, and already the **first
observation of the next episode**; the agent's last observation is never sent. Such an info
is decoded into both batches: a terminal step (the reward, ``interrupted`` =
``max_step_reached``, and that next-episode observation as the only one there is) and a
decision step (reward 0, the same observation), because Unity wants an action for every
info it sent, done or not, in order (§5.2): the next action is the new episode's first.
Whoever fills ``terminal_observation`` must know it is the next episode's start.

``global_done`` (API-4 ... API-9, §9.1, §9.2): Unity sets it when its Academy is done (its
Max Steps, or ``Academy.Done()`` in scene code). By then the Academy has marked every agent
done (with ``max_step_reached`` for Max Steps), reset itself and let its agents reset, so every
info of that output is decoded as done, as above, with ``max_step_reached`` as the info says.
UNCONFIRMED: the spec states the agents' side of it for 0.4 (§9.2) and that 0.5 ... 0.9 set and
read ``global_done`` (§9.1); that their Academy marks every agent done with it too is taken
from 0.4 (an info it left undone is decoded as done all the same).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import types
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass

import numpy as np

from gym_unity_il.errors import ConfigError, SpecMismatchError, UnityProtocolError, UnityVersionError, quote
from gym_unity_il.proto import communicator_pb2 as pb
from gym_unity_il.proto import legacy_pb2 as lpb
from gym_unity_il.protocol.agents import (
    AGENT_COST,
    DECODE_BYTES_PER_BYTE,
    DECODE_FIXED_BYTES,
    MAX_DECODED_BYTES,
    SENSOR_COST,
    StepBatch,
    decoded_bytes_per_agent,
)
from gym_unity_il.protocol.channels import SEED_PARAMETER, EngineConfig
from gym_unity_il.protocol.codec import Actions, Codec, Steps
from gym_unity_il.protocol.handshake import COMMUNICATION_VERSION, UnityInfo
from gym_unity_il.protocol.images import image_out, jpeg_hwc, png_hwc
from gym_unity_il.protocol.messages import encode_trainer_message
from gym_unity_il.protocol.observations import first_not_finite
from gym_unity_il.protocol.specs import MAX_BEHAVIORS, MAX_SENSORS, action_spec_from_proto, check_spec_sizes
from gym_unity_il.protocol.wire import delimited
from gym_unity_il.spec import ActionSpec, BehaviorSpec, CameraResolution, ImageFormat, ObservationSpec

#: The command numbers of ``UnityRLInput.command`` (§1).
STEP, RESET = lpb.STEP, lpb.RESET
_INT32 = 1 << 31

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LegacyEra:
    """What differs between the legacy eras (§2, §9).

    Attributes:
        version: the exact API string the build sends and its library required.
        release: the ML-Agents release (minor version).
        method_path: the HTTP/2 path of the Exchange RPC the build calls.
        editor_port: the port the Editor (or ``mlagents-learn`` without a build) uses.
        brains_at_handshake: through 0.10 every brain is announced in the handshake, and those
            Python does not train (Player brains ...) are visible; 0.11 announces each brain
            with the first message holding its agents, every one trained.
        compressed_images: images arrive as ``compressed_observations`` (field 13, 0.11)
            rather than ``visual_observations`` (field 2).
        brain_layout: the handshake's BrainParametersProto: 4 (``BrainParameters4Proto``), 5
            (``BrainParameters5Proto``; both with a ``brain_type``, Python trains External
            brains) or 6 (``BrainParametersProto``, ``is_training``); see :func:`read_brain`.
        jpeg_images: ``visual_observations`` are JPEG (0.4) rather than PNG.
        action_masks: agents may send ``action_mask`` (API-5 on).
        global_done: Unity sets ``UnityRLOutput.global_done`` when its Academy is done (through API-9).
        keeps_stored_actions: whether an agent's reset keeps its stored action (from 0.8.2),
            rather than replacing it by zeros; None when the version string cannot tell
            (API-8: 0.8.0 and 0.8.1 zero it, 0.8.2 keeps it).
        applies_first_reset: whether the Academy applies the first RESET's parameters (not in 0.4).
    """

    version: str
    release: str
    method_path: str
    editor_port: int
    brains_at_handshake: bool
    compressed_images: bool
    brain_layout: int
    jpeg_images: bool
    action_masks: bool
    global_done: bool
    keeps_stored_actions: bool | None
    applies_first_reset: bool


API_10 = LegacyEra(
    version="API-10", release="0.10", method_path="/communicator_objects.UnityToExternal/Exchange", editor_port=5005,
    brains_at_handshake=True, compressed_images=False, brain_layout=6, jpeg_images=False, action_masks=True,
    global_done=False, keeps_stored_actions=True, applies_first_reset=True,
)  # fmt: skip
API_11 = dataclasses.replace(
    API_10, version="API-11", release="0.11", method_path="/communicator_objects.UnityToExternalProto/Exchange", editor_port=5004,
    brains_at_handshake=False, compressed_images=True,
)  # fmt: skip
# Each older era as what changed in the next one (§9.3 ... §9.7); all share API-10's path and port.
API_9 = dataclasses.replace(API_10, version="API-9", release="0.9", global_done=True)
API_8 = dataclasses.replace(API_9, version="API-8", release="0.8", keeps_stored_actions=None)
API_7 = dataclasses.replace(API_8, version="API-7", release="0.7", keeps_stored_actions=False)
API_6 = dataclasses.replace(API_7, version="API-6", release="0.6")
API_5 = dataclasses.replace(API_6, version="API-5", release="0.5", brain_layout=5)
API_4 = dataclasses.replace(
    API_5, version="API-4", release="0.4", brain_layout=4, jpeg_images=True, action_masks=False, applies_first_reset=False
)
#: The legacy eras this module speaks, by their exact version string, oldest first.
LEGACY_ERAS = {era.version: era for era in (API_4, API_5, API_6, API_7, API_8, API_9, API_10, API_11)}


def detect_era(version: str, *, who: str = "Unity") -> LegacyEra | None:
    """The legacy era of a handshake's version string, or None for a modern version (not ``API-...``).

    The check is exact string equality, as each era's library did (§2).

    Raises:
        UnityVersionError: an ``API-...`` string other than those of :data:`LEGACY_ERAS`; the
            text names the build's version and the supported ones.
    """
    if not version.startswith("API-"):
        return None
    era = LEGACY_ERAS.get(version)
    if era is None:
        raise UnityVersionError(
            f"{who} speaks ML-Agents communication API {quote(version)}; gym_unity_il speaks exactly "
            f"{', '.join(LEGACY_ERAS)} (ML-Agents 0.4 ... 0.11 builds) and {COMMUNICATION_VERSION} (communication API 1.x). "
            "Rebuild the scene with one of those ML-Agents releases."
        )
    return era


def parse_legacy_message(data: bytes) -> lpb.UnityMessageProto:
    """A legacy era's message from its bytes.

    Raises:
        UnityProtocolError: the bytes are not a legacy UnityMessage.
    """
    try:
        return lpb.UnityMessageProto.FromString(data)
    except Exception as exc:  # protobuf's DecodeError, or its nesting limit on garbage
        raise UnityProtocolError(f"Unity sent {len(data)} bytes that are not an ML-Agents 0.x message ({exc})") from exc


def legacy_handshake_response(seed: int) -> bytes:
    """The answer to Unity's first call: ``unity_input.rl_initialization_input{seed}`` (§4 step 2).

    Raises:
        ValueError: ``seed`` is not an int32.
    """
    if not -_INT32 <= seed < _INT32:
        raise ValueError(f"seed {seed} does not fit the int32 the 0.x handshake carries; pass a seed below 2**31")
    message = lpb.UnityMessageProto(header=lpb.HeaderProto(status=200))
    message.unity_input.rl_initialization_input.seed = seed
    return message.SerializeToString()


#: The BrainParametersProto fields of every layout, by name (their numbers differ: ``brain_name``).
_SHARED_BRAIN_FIELDS = (
    "vector_observation_size", "num_stacked_vector_observations", "camera_resolutions", "vector_action_descriptions",
    "vector_action_space_type", "brain_name",
)  # fmt: skip


def read_brain(data: bytes, era: LegacyEra) -> lpb.BrainParametersProto:
    """A handshake brain of ``era`` (its BrainParametersProto's bytes) in the API-6 layout, whose
    ``is_training`` says whether Python trains it: API-4 / API-5 when its ``brain_type`` is
    External (§9.2, §9.3; Player, Heuristic and Internal brains are decided in Unity), API-6 on
    when the build says ``is_training`` (the BroadcastHub's Control box).

    API-4 brains become API-6 ones: the action size becomes the one branch (discrete) or the
    continuous size, and a discrete vector observation space 1 float (the state index) per
    stacked frame, whatever ``vector_observation_size`` (the number of states) says.

    Raises:
        UnityProtocolError: bytes that are not a BrainParametersProto.
    """
    try:
        if era.brain_layout == 6:
            return lpb.BrainParametersProto.FromString(data)
        old = (lpb.BrainParameters4Proto if era.brain_layout == 4 else lpb.BrainParameters5Proto).FromString(data)
    except Exception as exc:  # protobuf's DecodeError
        raise UnityProtocolError(f"a brain of the {era.version} handshake is not a BrainParametersProto ({exc})") from exc
    shared = {field: getattr(old, field) for field in _SHARED_BRAIN_FIELDS}
    brain = lpb.BrainParametersProto(is_training=old.brain_type == lpb.External, **shared)
    if isinstance(old, lpb.BrainParameters4Proto):
        brain.vector_action_size.append(old.vector_action_size)
        if old.vector_observation_space_type == lpb.discrete:
            brain.vector_observation_size = 1
    else:
        brain.vector_action_size.extend(old.vector_action_size)
    return brain


def write_brain(brain: lpb.BrainParametersProto, era: LegacyEra) -> bytes:
    """``brain`` (API-6 layout, ``is_training`` = trained by Python) as ``era``'s handshake carries
    it: the inverse of :func:`read_brain`. API-4 / API-5: ``brain_type`` External when trained, else
    Player; API-4: a continuous vector observation space.

    Raises:
        ValueError: an API-4 brain with more than one discrete branch.
    """
    if era.brain_layout == 6:
        return brain.SerializeToString()
    common = {field: getattr(brain, field) for field in _SHARED_BRAIN_FIELDS}
    common["brain_type"] = lpb.External if brain.is_training else lpb.Player
    if era.brain_layout == 5:
        return lpb.BrainParameters5Proto(vector_action_size=brain.vector_action_size, **common).SerializeToString()
    if len(brain.vector_action_size) != 1:
        raise ValueError(f"brain {brain.brain_name!r} has action sizes {list(brain.vector_action_size)}; an ML-Agents 0.4 brain has one")
    return lpb.BrainParameters4Proto(
        vector_action_size=brain.vector_action_size[0], vector_observation_space_type=lpb.continuous, **common
    ).SerializeToString()


def behavior_spec_from_brain(brain: lpb.BrainParametersProto, cameras: Sequence[CameraResolution]) -> BehaviorSpec:
    """A brain's spec: ``cameras`` (HWC uint8 images), then the stacked vector when not empty.

    Raises:
        UnityProtocolError: a negative size, more sensors or values than the limits of
            :mod:`~gym_unity_il.protocol.specs`.
    """
    name = brain.brain_name
    if len(cameras) >= MAX_SENSORS:
        raise UnityProtocolError(f"brain {quote(name)} declares {len(cameras)} cameras, more than the {MAX_SENSORS - 1} accepted")
    size, stack = brain.vector_observation_size, brain.num_stacked_vector_observations
    if size < 0 or stack < 0:
        raise UnityProtocolError(f"brain {quote(name)} declares a vector observation of {size} x {stack} stacked floats; sizes are not negative")
    images = [ObservationSpec(shape=(c.height, c.width, c.channels)) for c in cameras]
    vectors = [ObservationSpec(shape=(size * max(stack, 1),))] if size else []
    as_modern = pb.BrainParametersProto.FromString(brain.SerializeToString())  # fields 3, 6, 7 are the modern deprecated ones
    try:
        spec = BehaviorSpec(name=name, observation_specs=tuple(images + vectors), action_spec=action_spec_from_proto(as_modern))
    except ValueError as exc:  # branches of size 0 or less
        raise UnityProtocolError(f"brain {quote(name)} is announced with {quote(str(exc))}; the data is damaged or not from ML-Agents") from None
    check_spec_sizes(spec)
    return spec


def _camera(height: int, width: int, channels: int, brain: str) -> CameraResolution:
    if channels not in (1, 3) or height <= 0 or width <= 0:
        raise UnityProtocolError(f"brain {quote(brain)} declares a camera of {height}x{width}x{channels}; cameras are positive, 1 or 3 channels")
    return CameraResolution(height, width, grayscale=channels == 1)


def cameras_of(brain: lpb.BrainParametersProto, first: lpb.AgentInfoProto | None, era: LegacyEra) -> list[CameraResolution]:
    """The brain's cameras: through 0.10 from ``camera_resolutions``, 0.11 from the first agent's
    compressed-observation shapes ``[height, width, channels]`` (§4).

    Raises:
        UnityProtocolError: a camera that is not positive with 1 or 3 channels, a shape that is not of rank 3.
    """
    source = first.compressed_observations if era.compressed_images and first is not None else brain.camera_resolutions
    if len(source) >= MAX_SENSORS:
        raise UnityProtocolError(f"brain {quote(brain.brain_name)} declares {len(source)} cameras, more than the {MAX_SENSORS - 1} accepted")
    if not era.compressed_images:
        return [_camera(r.height, r.width, 1 if r.gray_scale else 3, brain.brain_name) for r in brain.camera_resolutions]
    cameras = []
    for obs in (first.compressed_observations if first is not None else ()):
        if len(obs.shape) != 3:
            raise UnityProtocolError(f"brain {quote(brain.brain_name)}: a compressed observation of shape {quote(list(obs.shape))}, not [height, width, channels]")
        cameras.append(_camera(*obs.shape, brain.brain_name))
    return cameras


@dataclass(frozen=True)
class LegacyHandshake:
    """What the trainer takes from a 0.x build's first message.

    Attributes:
        era: the build's era.
        name: the Academy's name.
        log_path: the build's log path (may be empty).
        specs: the behaviors announced (through 0.10: every brain of the handshake; 0.11: none yet).
        trained: names of the brains that take actions from the trainer (through 0.10: see
            :func:`read_brain`), or None: every brain, as it is announced (0.11).
        reset_parameters: the Academy's reset parameters and their defaults.
    """

    era: LegacyEra
    name: str
    log_path: str
    specs: Mapping[str, BehaviorSpec]
    trained: frozenset[str] | None
    reset_parameters: Mapping[str, float]


def read_legacy_handshake(data: bytes, *, who: str = "Unity") -> LegacyHandshake:
    """Reads a legacy build's first message (§4, §9), its bytes as they came, and checks its version exactly.

    The bytes, not a message parsed already: the brains are read in the era's layout
    (:func:`read_brain`), which a parse with another era's classes would have re-encoded.

    Raises:
        UnityProtocolError: not a message, no initialization output, more brains than a session
            accepts, brains that do not make a spec.
        UnityVersionError: not a version of :data:`LEGACY_ERAS` (see :func:`detect_era`).
    """
    try:
        first = lpb.LegacyHandshakeProto.FromString(data)
    except Exception as exc:  # protobuf's DecodeError
        raise UnityProtocolError(f"{who} opened with {len(data)} bytes that are not an ML-Agents 0.x handshake ({exc})") from exc
    if not first.unity_output.HasField("rl_initialization_output"):
        raise UnityProtocolError(f"{who} opened without an initialization output; the first message must be a handshake (protocol-legacy.md §4)")
    init = first.unity_output.rl_initialization_output
    era = detect_era(init.version, who=who)
    if era is None:
        raise UnityVersionError(f"{who} speaks communication API {quote(init.version)}, not one of {', '.join(LEGACY_ERAS)}")
    if len(init.brain_parameters) > MAX_BEHAVIORS:
        raise UnityProtocolError(f"{who} announces {len(init.brain_parameters)} brains, more than the {MAX_BEHAVIORS} a session accepts")
    if not era.brains_at_handshake:
        return LegacyHandshake(era, init.name, init.log_path, {}, None, dict(init.environment_parameters.float_parameters))
    brains = [read_brain(raw, era) for raw in init.brain_parameters]
    specs = {b.brain_name: behavior_spec_from_brain(b, cameras_of(b, None, era)) for b in brains}
    if len(specs) != len(brains):
        raise UnityProtocolError(f"{who} announces two brains of one name; brain names must be unique")
    trained = frozenset(b.brain_name for b in brains if b.is_training)
    return LegacyHandshake(era, init.name, init.log_path, specs, trained, dict(init.environment_parameters.float_parameters))


def _announce(output: lpb.UnityOutputProto, specs: MutableMapping[str, BehaviorSpec], era: LegacyEra) -> None:
    """0.11: registers each brain announced with agents in the same output (§4)."""
    if era.brains_at_handshake or not output.HasField("rl_initialization_output"):
        return
    brains = output.rl_initialization_output.brain_parameters
    if len(brains) > MAX_BEHAVIORS:
        raise UnityProtocolError(f"the message announces {len(brains)} brains, more than the {MAX_BEHAVIORS} a session accepts")
    infos = output.rl_output.agentInfos
    for brain in brains:
        name = brain.brain_name
        if name not in infos or not infos[name].value:
            continue  # the reference ignores a brain announced without agents
        spec = behavior_spec_from_brain(brain, cameras_of(brain, infos[name].value[0], era))
        known = specs.get(name)
        if known is None:
            if len(specs) >= MAX_BEHAVIORS:
                raise UnityProtocolError(f"brain {quote(name)} would be the session's behavior number {len(specs) + 1}, more than {MAX_BEHAVIORS}")
            specs[name] = spec
        elif known != spec:
            raise UnityProtocolError(f"brain {quote(name)} was announced again with another spec: {quote(known.describe())}, now {quote(spec.describe())}")


def _images(infos: Sequence[lpb.AgentInfoProto], j: int, o: ObservationSpec, era: LegacyEra, image_format: ImageFormat, brain: str) -> np.ndarray:
    out = np.empty((len(infos), *o.output_shape(image_format)), o.output_dtype(image_format))
    name = f"{brain} camera {j}"
    for i, info in enumerate(infos):
        if era.compressed_images:
            compressed = info.compressed_observations[j]
            if tuple(compressed.shape) != o.shape:
                raise UnityProtocolError(f"{name}: agent {info.id} sent an image of shape {quote(list(compressed.shape))}, the brain's is {list(o.shape)}")
            data = compressed.data  # the era's library decodes PNG whatever compression_type says
        else:
            data = info.visual_observations[j]
        out[i] = image_out(jpeg_hwc(data, o.hwc, name) if era.jpeg_images else png_hwc(data, [], o.hwc, name), image_format)
    return out


def _decode_brain(
    infos: Sequence[lpb.AgentInfoProto], spec: BehaviorSpec, era: LegacyEra, image_format: ImageFormat, global_done: bool = False
) -> tuple[StepBatch, StepBatch]:
    """One brain's infos as ``(decision, terminal)``; ``global_done``: every info ends its episode."""
    name = spec.name
    if not infos:
        return StepBatch.empty(spec, image_format), StepBatch.empty(spec, image_format)
    cameras = [o for o in spec.observation_specs if o.is_visual]
    vector = spec.observation_specs[-1] if len(cameras) < len(spec.observation_specs) else None
    width = vector.shape[0] if vector is not None else 0
    # One pass over the agents for the scalar fields and the counts, then one array per field.
    ids, rewards, dones, interrupts, floats, images = zip(
        *[(i.id, i.reward, i.done, i.max_step_reached, len(i.stacked_vector_observation),
           len(i.compressed_observations if era.compressed_images else i.visual_observations)) for i in infos]
    )  # fmt: skip
    if floats.count(width) != len(infos) or images.count(len(cameras)) != len(infos):
        bad = next(k for k in range(len(infos)) if floats[k] != width or images[k] != len(cameras))
        raise UnityProtocolError(
            f"agent {ids[bad]} of brain {quote(name)} sent {images[bad]} images and {floats[bad]} vector floats; "
            f"the brain has {len(cameras)} cameras and {width} floats"
        )
    if len(ids) > 1 and len(set(ids)) != len(ids):
        raise UnityProtocolError(f"an agent of brain {quote(name)} appears twice in one message; each agent sends one info per step")
    obs = [_images(infos, j, o, era, image_format, name) for j, o in enumerate(cameras)]
    if vector is not None:
        values = np.array([i.stacked_vector_observation for i in infos], np.float32).reshape(len(infos), width)
        if first_not_finite(values) is not None:
            raise UnityProtocolError(f"brain {quote(name)} sent a NaN or infinite vector observation; fix the scene so it stays finite")
        obs.append(values)
    reward = np.array(rewards, np.float32)
    if first_not_finite(reward) is not None:
        raise UnityProtocolError(f"brain {quote(name)} sent a NaN or infinite reward; fix the scene so it stays finite")
    done = np.array(dones, bool) | global_done
    interrupted = np.array(interrupts, bool)
    branches = spec.action_spec.discrete_branches
    mask = None
    if branches:
        total = sum(branches)
        mask = np.ones((len(infos), total), bool)
        for i, info in enumerate(infos):
            if era.action_masks and len(info.action_mask) == total:
                mask[i] = ~np.fromiter(info.action_mask, bool, total)
    agent_id = np.array(ids, np.int32)
    zeros_i, zeros_f = np.zeros(len(infos), np.int32), np.zeros(len(infos), np.float32)
    stored = _stored_actions(infos, spec)
    # Every info asks for a decision (§5.2); a done one's reward belongs to the episode it ended.
    decision = StepBatch(agent_id, tuple(obs), np.where(done, np.float32(0), reward), np.zeros(len(infos), bool), mask, zeros_i, zeros_f, stored)
    if not done.any():
        return decision, StepBatch.empty(spec, image_format)
    rows = np.flatnonzero(done)
    terminal = StepBatch(
        agent_id[rows], tuple(o[rows] for o in obs), reward[rows], interrupted[rows], None, zeros_i[rows], zeros_f[rows],
        (stored[0][rows], stored[1][rows]),
    )  # fmt: skip
    return decision, terminal


def _stored_actions(infos: Sequence[lpb.AgentInfoProto], spec: BehaviorSpec) -> tuple[np.ndarray, np.ndarray]:
    """``stored_vector_actions`` (§6.4, §7) as ``(continuous [n, c], discrete [n, d])``: the action each
    agent carried out up to this info. An info whose list has another length than the brain's
    actions (none yet: before the first action) counts as all zeros. Before 0.8.2 a done info
    carries zeros too: the agent's reset replaced its action (§9.2).

    Raises:
        UnityProtocolError: a discrete value that is not a whole number within its branch, a
            continuous one that is NaN or infinite.
    """
    act = spec.action_spec
    c, d = act.continuous_size, act.discrete_size
    stored = [info.stored_vector_actions for info in infos]
    if all(len(row) == c + d for row in stored):
        values = np.array(stored, np.float32).reshape(len(infos), c + d)
    else:
        values = np.zeros((len(infos), c + d), np.float32)
        for i, row in enumerate(stored):
            if len(row) == c + d:
                values[i] = row
    if first_not_finite(values) is not None:
        raise UnityProtocolError(f"brain {quote(spec.name)} sent a NaN or infinite stored action; the data is damaged")
    discrete = values[:, c:]
    if d and (np.any(discrete != np.round(discrete)) or np.any(discrete < 0) or np.any(discrete >= np.asarray(act.discrete_branches))):
        raise UnityProtocolError(f"brain {quote(spec.name)} sent stored discrete actions outside its branches {list(act.discrete_branches)}")
    return np.ascontiguousarray(values[:, :c]), discrete.astype(np.int32)


def decode_legacy_output(
    output: lpb.UnityOutputProto, specs: MutableMapping[str, BehaviorSpec], era: LegacyEra, *, image_format: ImageFormat = "hwc_uint8"
) -> dict[str, tuple[StepBatch, StepBatch]]:
    """The agents of one message of a legacy build as ``(decision, terminal)`` per behavior of
    ``specs`` (empty batches for brains without agents; see the module docstring for episodes
    and ``global_done``).

    0.11 brains announced with their first agents are added to ``specs``. Counts and sizes are
    checked before anything is built from them, with the limits of the modern path.

    Raises:
        UnityProtocolError: agents of a brain never announced, data that does not fit its
            brain, damaged PNGs, NaN or infinite values, more than the limits.
    """
    infos_by_name = output.rl_output.agentInfos
    if len(infos_by_name) > MAX_BEHAVIORS:
        raise UnityProtocolError(f"the message carries {len(infos_by_name)} brains, more than the {MAX_BEHAVIORS} a session accepts")
    _announce(output, specs, era)
    work = []
    cost = decoded = 0
    for name, infos in infos_by_name.items():
        spec = specs.get(name)
        if spec is None:
            if infos.value:
                raise UnityProtocolError(f"agents of brain {quote(name)} arrived before the brain was announced (protocol-legacy.md §4)")
            continue
        n = len(infos.value)
        decoded += 2 * n * decoded_bytes_per_agent(spec, image_format)  # in both batches at most
        if decoded > MAX_DECODED_BYTES:
            raise UnityProtocolError(f"brain {quote(name)}: {n} agents would decode to more than {MAX_DECODED_BYTES >> 20} MB of arrays")
        cost += n * (AGENT_COST + SENSOR_COST * len(spec.observation_specs))
        work.append((name, infos.value, spec))
    if cost > DECODE_FIXED_BYTES and cost > DECODE_FIXED_BYTES + DECODE_BYTES_PER_BYTE * output.ByteSize():
        raise UnityProtocolError(f"the message carries too many agents for its {output.ByteSize()} bytes; the data is damaged or not from ML-Agents")
    global_done = era.global_done and output.rl_output.global_done
    done = {name: _decode_brain(values, spec, era, image_format, global_done) for name, values, spec in work}
    return {name: done.get(name) or _decode_brain((), spec, era, image_format) for name, spec in specs.items()}


def _action_list(continuous: np.ndarray, discrete: np.ndarray, spec: ActionSpec, name: str) -> bytes:
    """A serialized ListAgentActionProto: per agent, ``vector_actions`` = continuous values or
    one index per branch, as floats (§6.5)."""
    c, d = spec.continuous_size, spec.discrete_size
    continuous, discrete = np.asarray(continuous, np.float32), np.asarray(discrete, np.int32)
    n = len(continuous) if continuous.ndim == 2 else len(discrete)
    if continuous.shape != (n, c) or discrete.shape != (n, d):
        raise ValueError(f"actions for brain {name!r}: shapes {continuous.shape} and {discrete.shape}, the spec wants ({n}, {c}) and ({n}, {d})")
    rows = np.concatenate([continuous, discrete.astype(np.float32)], axis=1).astype("<f4").tobytes()
    size = 4 * (c + d)
    return b"".join(delimited(1, delimited(1, rows[i * size : (i + 1) * size]) if size else b"") for i in range(n))


def encode_legacy_step(
    actions: Mapping[str, tuple[np.ndarray, np.ndarray]], specs: Mapping[str, BehaviorSpec], trained: frozenset[str] | None
) -> bytes:
    """A STEP message (§5.2): per trained brain, ``(continuous [n, c], discrete [n, d])`` with
    one row per info that brain sent last, in its order (done agents included). ``trained``:
    :attr:`LegacyHandshake.trained` (None: every brain of ``specs``).

    Raises:
        ValueError: a brain that is unknown or not trained (its decisions are Unity's), or
            arrays that do not fit its spec.
    """
    lists = {}
    for name, (continuous, discrete) in actions.items():
        if name not in specs or (trained is not None and name not in trained):
            raise ValueError(f"brain {name!r} does not take actions from the trainer (trained brains: {sorted(trained or specs)})")
        lists[name] = _action_list(continuous, discrete, specs[name].action_spec, name)
    return encode_trainer_message(command=STEP, actions=lists)  # agent_actions (1) and command (4) are the modern numbers


def encode_legacy_reset(parameters: Mapping[str, float], *, train_mode: bool, announced: Mapping[str, float]) -> bytes:
    """A RESET message (§5.1): the reset parameters (only those the build announced, finite
    numbers) and ``is_training``.

    Raises:
        ValueError: a parameter the build did not announce, or a value that is not a finite number.
    """
    message = lpb.UnityMessageProto(header=lpb.HeaderProto(status=200))
    rl_input = message.unity_input.rl_input
    rl_input.command = RESET
    rl_input.is_training = train_mode
    floats = rl_input.environment_parameters.float_parameters
    for key, value in parameters.items():
        if key not in announced:
            raise ValueError(f"reset parameter {key!r} is not one the build announced: {sorted(announced)}")
        if isinstance(value, (str, bytes)) or not isinstance(value, (int, float, np.number)) or not math.isfinite(float(value)):
            raise ValueError(f"reset parameter {key!r} = {value!r} is not a finite number")
        floats[key] = float(value)
    return message.SerializeToString()


def train_mode_of(engine_config: EngineConfig | None, *, who: str = "Unity", release: str = "0.x") -> bool:
    """What a 0.x build can take of ``engine_config``: its RESET's ``is_training`` (§5.1, §6.7).

    A 0.x Academy takes its engine settings from its inspector's "training" configuration
    (fast: time scale 100 by default) or its "inference" one (real time), chosen by
    ``is_training``. So ``time_scale`` 1 (or less) asks for the inference configuration, any
    other for the training one (the default, as the era's ``train_mode=True``). The other
    settings cannot be sent to such a build: they are left to the Academy, with a warning.
    """
    if engine_config is None:
        return True
    ignored = [f"{k}={v}" for k, v in vars(engine_config).items() if v is not None and k != "time_scale"]
    if ignored:
        logger.warning(
            "%s runs ML-Agents %s, which takes its engine settings from its Academy's training or inference configuration: "
            "%s cannot be sent and are left to the Academy (time_scale chooses the configuration)",
            who, release, ", ".join(ignored),
        )  # fmt: skip
    return engine_config.time_scale is None or engine_config.time_scale > 1


class LegacyCodec(Codec):
    """The codec of a 0.4 ... 0.11 build, from its first message (see the module docstring).

    Besides decoding with :func:`decode_legacy_output`, it keeps the last observation each agent
    sent: a done info carries the next episode's first observation (§7.1), so the terminal
    step gets the last observation of the ended episode the trainer saw, the one its final
    action was chosen from (the era never sends the very last one). The first message's done
    agents, with nothing seen before, keep the info's observation.

    Where eras behave differently:

    * ``global_done`` (through API-9) ends every agent's episode in that message (see the
      module docstring). The era's library then refused ``step()`` until ``reset()``; this
      codec does not, and the session goes on with STEP: Unity has already reset its Academy
      and its agents, every info asks for the new episode's first action, and a RESET would
      only start those episodes once more.
    * Stored actions before 0.8.2 (API-4 ... API-7, and API-8 builds of 0.8.0 / 0.8.1): the
      agent's reset replaces its stored action by zeros, so a done info's stored action is
      zeros. The action that ended an episode is therefore lost for brains Unity decides
      itself (a Player teacher's last action of each episode); for the others it is the one
      the trainer sent.
    * API-4 does not apply the first RESET's parameters (its Academy's first reset does not
      read them); a warning names them, and they take effect when a later RESET carries them.

    Args:
        first: the build's first message, its bytes as they came (see :func:`read_legacy_handshake`).
        who: how error messages name the build.
        engine_config: the launch's engine settings (see :func:`train_mode_of`).

    Raises:
        UnityProtocolError, UnityVersionError: see :func:`read_legacy_handshake`.
    """

    side_channels = False

    def __init__(self, first: bytes, *, who: str = "Unity", engine_config: EngineConfig | None = None) -> None:
        handshake = read_legacy_handshake(first, who=who)
        self.era = handshake.era
        self.unity = UnityInfo(name=handshake.name, communication_version=self.era.version, package_version=self.era.release, capabilities={})
        self.reset_parameters = types.MappingProxyType(dict(handshake.reset_parameters))
        self.who = who
        self._announced = handshake.specs
        self._trained = handshake.trained
        self._train_mode = train_mode_of(engine_config, who=who, release=self.era.release)
        self._warned_seed = False
        self._reset_sent = False
        self._specs: Mapping[str, BehaviorSpec] = {}
        # Per brain, the agents seen and their last observations: (ids, obs arrays).
        self._last: dict[str, tuple[np.ndarray, tuple[np.ndarray, ...]]] = {}

    def handshake_response(self, *, seed: int, num_areas: int, package_version: str) -> bytes:
        if num_areas != 1:
            raise ConfigError(f"num_areas={num_areas}: {self.who} is an ML-Agents {self.era.release} build, which has no training-area replication")
        return legacy_handshake_response(seed)

    def parse(self, data: bytes) -> lpb.UnityMessageProto:
        return parse_legacy_message(data)

    def decode(self, message: object, specs: MutableMapping[str, BehaviorSpec], image_format: ImageFormat) -> tuple[Steps, bytes]:
        assert isinstance(message, lpb.UnityMessageProto)
        self._specs = specs
        for name, spec in self._announced.items():  # through 0.10: the brains of the handshake
            specs.setdefault(name, spec)
        steps = decode_legacy_output(message.unity_output, specs, self.era, image_format=image_format)
        return {name: (decision, self._remember(name, decision, terminal)) for name, (decision, terminal) in steps.items()}, b""

    def encode(self, command: int, actions: Actions, *, parameters: Mapping[str, float] | None = None, side_channel: bytes = b"") -> bytes:
        if command == RESET:
            parameters = self._acceptable(parameters or {})
            self._warn_first_reset(parameters)
            return encode_legacy_reset(parameters, train_mode=self._train_mode, announced=self.reset_parameters)
        try:
            return encode_legacy_step(actions, self._specs, self._trained)
        except ValueError as exc:
            raise SpecMismatchError(str(exc)) from None

    def takes_actions(self, behavior: str) -> bool:
        return self._trained is None or behavior in self._trained

    def _acceptable(self, parameters: Mapping[str, float]) -> dict[str, float]:
        """The parameters a RESET can carry: unknown ones are an error, except the seed, which a
        build that does not announce it cannot take (a warning, once)."""
        unknown = sorted(set(parameters) - set(self.reset_parameters) - {SEED_PARAMETER})
        if unknown:
            raise ConfigError(
                f"{self.who} has no reset parameter {', '.join(map(repr, unknown))}: an ML-Agents {self.era.release} build takes "
                f"only the ones its Academy announces, here {sorted(self.reset_parameters) or 'none'}"
            )
        if SEED_PARAMETER in parameters and SEED_PARAMETER not in self.reset_parameters:
            if not self._warned_seed:
                self._warned_seed = True
                logger.warning(
                    "%s takes its seed at the handshake only (an ML-Agents %s build has no %r reset parameter): the seed of "
                    "reset(seed=...) is not sent", self.who, self.era.release, SEED_PARAMETER,
                )  # fmt: skip
            parameters = {k: v for k, v in parameters.items() if k != SEED_PARAMETER}
        return dict(parameters)

    def _warn_first_reset(self, parameters: Mapping[str, float]) -> None:
        """Warns when the first RESET carries parameters a 0.4 Academy does not apply (§9.2). The
        seed parameter is left out: no 0.4 Academy announces it, only the built-in scenes' player,
        which takes it at every reset."""
        first, self._reset_sent = not self._reset_sent, True
        ignored = sorted(key for key in parameters if key != SEED_PARAMETER)
        if first and ignored and not self.era.applies_first_reset:
            logger.warning(
                "%s is an ML-Agents %s build, whose Academy does not apply the first reset's parameters (%s): they take effect "
                "only when a later reset carries them", self.who, self.era.release, ", ".join(ignored),
            )  # fmt: skip

    def _remember(self, name: str, decision: StepBatch, terminal: StepBatch) -> StepBatch:
        """Gives ``terminal`` the last observations seen of its agents, and remembers ``decision``'s."""
        last = self._last.get(name)
        if len(terminal) and last is not None:
            ids, obs = last
            order = np.argsort(ids, kind="stable")
            pos = np.minimum(np.searchsorted(ids[order], terminal.agent_id), len(ids) - 1)
            seen = ids[order][pos] == terminal.agent_id
            if seen.any():
                rows = order[pos[seen]]
                new_obs = tuple(t.copy() for t in terminal.obs)
                for out, values in zip(new_obs, obs):
                    out[seen] = values[rows]
                terminal = dataclasses.replace(terminal, obs=new_obs)
        if len(decision):
            if last is not None and not np.array_equal(last[0], decision.agent_id) and not np.isin(last[0], decision.agent_id).all():
                # agents that did not send this time keep their last observation
                keep = ~np.isin(last[0], decision.agent_id)
                self._last[name] = (
                    np.concatenate([last[0][keep], decision.agent_id]),
                    tuple(np.concatenate([o[keep], d]) for o, d in zip(last[1], decision.obs)),
                )
            else:
                self._last[name] = (decision.agent_id, decision.obs)
        return terminal
