"""Whole messages of the exchange: Unity's parsed from bytes, the trainer's written as bytes.

Every call of the exchange carries one ``UnityMessageProto`` each way (protocol.md §4):
Unity's holds its agents' data in ``unity_output``, the trainer's answer holds the command,
the actions and the side-channel bytes in ``unity_input``. The answer is written directly
as bytes around the actions' bytes (:mod:`gym_unity_il.protocol.actions`), with no protobuf
object per agent.
"""

from __future__ import annotations

from collections.abc import Mapping

from gym_unity_il.errors import UnityProtocolError
from gym_unity_il.proto import communicator_pb2 as pb
from gym_unity_il.protocol.wire import VARINT, delimited, delimited_header, encode_varint, tag

#: ``header.status`` of every message of a live exchange; another one closes it.
STATUS_OK = 200
#: ``header.status`` of the message that says its sender is closing (Unity quitting, or the trainer).
STATUS_CLOSING = 400
#: ``header { status: 200 }``, serialized: the start of every message of the trainer.
HEADER_OK = delimited(1, tag(1, VARINT) + encode_varint(STATUS_OK))


def parse_unity_message(data: bytes) -> pb.UnityMessageProto:
    """Unity's message from its bytes.

    Raises:
        UnityProtocolError: the bytes are not a UnityMessageProto.
    """
    try:
        return pb.UnityMessageProto.FromString(data)
    except Exception as exc:  # protobuf's DecodeError, or its nesting limit on garbage
        raise UnityProtocolError(
            f"Unity sent {len(data)} bytes that are not an ML-Agents message ({exc}); is the other side an ML-Agents "
            "environment of a compatible version?"
        ) from exc


def encode_trainer_message(*, command: int, actions: Mapping[str, bytes] | None = None, side_channel: bytes = b"") -> bytes:
    """The trainer's answer for a RESET or STEP, serialized: a UnityMessageProto with status 200
    and ``unity_input.rl_input`` holding ``command``, the serialized ListAgentActionProto of
    each behavior in ``actions`` (see :func:`~gym_unity_il.protocol.actions.encode_action_list`)
    and the side-channel bytes."""
    rl_input = b""
    for name, action_list in (actions or {}).items():
        entry = delimited(1, name.encode()) + delimited_header(2, len(action_list)) + action_list  # a map entry: key, value
        rl_input += delimited(1, entry)  # agent_actions: field 1
    if command:
        rl_input += tag(4, VARINT) + encode_varint(command)  # command: field 4
    if side_channel:
        rl_input += delimited(5, side_channel)  # side_channel: field 5
    return HEADER_OK + delimited(3, delimited(1, rl_input))  # UnityMessageProto.unity_input (3), its rl_input (1)
