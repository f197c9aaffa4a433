"""Which codec speaks to a build: the era is read from its handshake, never asked of the user.

Every ML-Agents era sends its version as field 2 of the initialization output of its first
message: ``API-4`` ... ``API-11`` for the legacy eras (0.4 ... 0.11), a semantic version such as
``1.5.0`` for communication API 1.x. :func:`open_codec` reads it and returns the era's
:class:`~gym_unity_il.protocol.codec.Codec`; an era this package does not speak is a
:class:`~gym_unity_il.errors.UnityVersionError` naming the build's version and the ones it speaks.

The HTTP/2 method path of the Exchange call differs too (protocol-legacy.md §2): a trainer
answers :data:`EXCHANGE_PATHS`, so that a build of any era reaches the handshake and its
version check, and hears why it is refused instead of timing out.
"""

from __future__ import annotations

from gym_unity_il.protocol.channels import EngineConfig
from gym_unity_il.protocol.codec import Codec
from gym_unity_il.protocol.legacy import LEGACY_ERAS, LegacyCodec, detect_era
from gym_unity_il.protocol.messages import parse_unity_message
from gym_unity_il.protocol.modern import ModernCodec

#: The path of the Exchange RPC in communication API 1.x (and in 0.11).
EXCHANGE_PATH = "/communicator_objects.UnityToExternalProto/Exchange"
#: Every path a build of a supported era calls (0.4 to 0.10 share the second).
EXCHANGE_PATHS = frozenset({EXCHANGE_PATH, *(era.method_path for era in LEGACY_ERAS.values())})


def open_codec(data: bytes, *, who: str = "Unity", engine_config: EngineConfig | None = None) -> Codec:
    """The codec for the build whose first message (its handshake) has the bytes ``data``.

    Args:
        data: the build's first message as it came: the era's codec reads it with its own
            messages (a parse with another era's can re-encode fields, e.g. 0.4 / 0.5 brains).
        who: how error messages name the build (``"Unity executable Builds/Ball.x86_64"``).
        engine_config: the launch's engine settings (a 0.x build takes only its train mode from them).

    Raises:
        UnityProtocolError: the message is not a handshake.
        UnityVersionError: a version of an era this package does not speak.
    """
    first = parse_unity_message(data)
    version = first.unity_output.rl_initialization_output.communication_version
    if detect_era(version, who=who) is not None:
        return LegacyCodec(data, who=who, engine_config=engine_config)
    return ModernCodec(first, who=who)
