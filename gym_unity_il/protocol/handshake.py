"""The handshake (protocol.md §5): what Unity's first message says, the checks on it, the answer.

Unity opens with its name, versions and capabilities; the trainer answers with its own and
the seed; Unity's second message then waits for the first command. :func:`read_handshake`
reads Unity's first message and applies the checks of §5.1, as a pure function: the
session calls it once the second message has come (so that a refusal answers that one
with status 400), and the fuzzers call the very same function.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from gym_unity_il.errors import UnityProtocolError, UnityVersionError, quote
from gym_unity_il.proto import communicator_pb2 as pb
from gym_unity_il.protocol.messages import STATUS_OK

#: The communication API version this package speaks.
COMMUNICATION_VERSION = "1.5.0"
#: Communication versions below this one need the deprecated flat action vector.
HYBRID_ACTIONS_VERSION = (1, 3, 0)


def parse_version(version: str) -> tuple[int, int, int]:
    """``"3.0.0-exp.1"`` -> ``(3, 0, 0)``. Raises ValueError when there is no leading number."""
    parts = re.findall(r"\d+", version.split("-")[0])
    if not parts:
        raise ValueError(f"not a version string: {version!r}")
    nums = [int(p) for p in parts[:3]] + [0] * (3 - min(3, len(parts)))
    return nums[0], nums[1], nums[2]


def channels_first_for_package(package_version: str) -> bool:
    """Whether a com.unity.ml-agents release sends rank-3 observations as CHW (3.0.0-exp.1 on)."""
    try:
        return parse_version(package_version)[0] >= 3
    except ValueError:
        return False


def versions_compatible(unity_version: str, python_version: str = COMMUNICATION_VERSION) -> bool:
    """The compatibility rule of protocol.md §5.1: same major, and same minor when major is 0."""
    try:
        unity, python = parse_version(unity_version), parse_version(python_version)
    except ValueError:
        return False
    if unity[0] == 0:
        return unity[:2] == python[:2]
    return unity[0] == python[0]


def capabilities_proto() -> pb.UnityRLCapabilitiesProto:
    """All seven capabilities, as the reference trainer sends them."""
    return pb.UnityRLCapabilitiesProto(
        baseRLCapabilities=True,
        concatenatedPngObservations=True,
        compressedChannelMapping=True,
        hybridActions=True,
        trainingAnalytics=True,
        variableLengthObservation=True,
        multiAgentGroups=True,
    )


def handshake_response(*, seed: int, package_version: str, num_areas: int = 1) -> pb.UnityMessageProto:
    """The answer to Unity's first call: the trainer's initialization input (protocol.md §5 step 3)."""
    message = pb.UnityMessageProto(header=pb.HeaderProto(status=STATUS_OK))
    init = message.unity_input.rl_initialization_input
    init.seed = seed
    init.communication_version = COMMUNICATION_VERSION
    init.package_version = package_version
    init.capabilities.CopyFrom(capabilities_proto())
    init.num_areas = num_areas
    return message


@dataclass(frozen=True)
class UnityInfo:
    """What the Unity side said about itself in the handshake.

    Attributes:
        name: ``"AcademySingleton"`` for Unity.
        communication_version: its communication API version, e.g. ``"1.5.0"``.
        package_version: its com.unity.ml-agents version, e.g. ``"3.0.0"``.
        capabilities: the capability flags it reported, by field name.
    """

    name: str
    communication_version: str
    package_version: str
    capabilities: Mapping[str, bool]


@dataclass(frozen=True)
class Handshake:
    """What the trainer takes from Unity's first message.

    Attributes:
        unity: what Unity said about itself.
        channels_first: rank-3 observations come CHW unless their dimension properties say otherwise.
        legacy_actions: Unity reads the deprecated flat action vector (communication API before 1.3.0).
    """

    unity: UnityInfo
    channels_first: bool
    legacy_actions: bool

    @property
    def base_capabilities(self) -> bool:
        """Whether Unity reports the base RL capabilities (the reference trainer warns when not)."""
        return self.unity.capabilities.get("baseRLCapabilities", False)


def read_handshake(first: pb.UnityMessageProto, *, who: str = "Unity") -> Handshake:
    """Reads Unity's first message (protocol.md §5 step 2) and checks its version (§5.1).

    Args:
        first: Unity's first message.
        who: how error messages name the other side (``"built-in scene 'ball'"``).

    Raises:
        UnityProtocolError: the message carries no initialization output.
        UnityVersionError: Unity speaks an incompatible communication API version; the text
            names both versions and the fix.
    """
    if not first.unity_output.HasField("rl_initialization_output"):
        raise UnityProtocolError(f"{who} opened without an initialization output; the first message must be a handshake (protocol.md §5)")
    init = first.unity_output.rl_initialization_output
    caps = init.capabilities
    unity = UnityInfo(
        name=init.name,
        communication_version=init.communication_version,
        package_version=init.package_version,
        capabilities={field.name: bool(getattr(caps, field.name)) for field in caps.DESCRIPTOR.fields},
    )
    if not versions_compatible(init.communication_version):
        raise UnityVersionError(
            f"{who} speaks ML-Agents communication API {quote(init.communication_version)} (package "
            f"{quote(init.package_version)}), but gym_unity_il speaks {COMMUNICATION_VERSION}: the major versions must match. "
            "Use a Unity project with com.unity.ml-agents 2.0 or later (communication API 1.x)."
        )
    return Handshake(
        unity=unity,
        channels_first=channels_first_for_package(init.package_version),
        legacy_actions=parse_version(init.communication_version) < HYBRID_ACTIONS_VERSION,
    )
