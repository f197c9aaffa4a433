"""Side channels: the byte framing Unity uses to piggy-back small messages on every exchange.

The ``side_channel`` field of Unity's input and output messages holds zero or more
messages, each framed as (protocol.md §10.1)::

    16 bytes  channel id, a UUID in .NET ``Guid.ToByteArray()`` order (``uuid.bytes_le``)
     4 bytes  payload length, int32 little-endian
     n bytes  payload

This module has the framing, the payload primitives (§10.2), the base class of a channel
and the manager that routes messages to channels by id; the channels themselves are in
:mod:`gym_unity_il.protocol.channels`. Messages for channel ids nobody registered are
skipped with a warning, as the reference trainer does.
"""

from __future__ import annotations

import logging
import struct
import uuid
from collections.abc import Iterable, Sequence

from gym_unity_il.errors import UnityProtocolError

logger = logging.getLogger(__name__)

_HEADER = struct.Struct("<16si")


# ---------------------------------------------------------------------------- framing


def frame_messages(messages: Iterable[tuple[uuid.UUID, bytes]]) -> bytes:
    """Concatenates ``(channel id, payload)`` pairs into the bytes of a ``side_channel`` field."""
    return b"".join(_HEADER.pack(channel_id.bytes_le, len(payload)) + payload for channel_id, payload in messages)


def split_messages(data: bytes) -> list[tuple[uuid.UUID, bytes]]:
    """Splits the bytes of a ``side_channel`` field into ``(channel id, payload)`` pairs.

    Raises:
        UnityProtocolError: the bytes end inside a header or a payload.
    """
    messages = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < _HEADER.size:
            raise UnityProtocolError(
                f"side channel data truncated at offset {offset}: {len(data) - offset} bytes left, a header needs {_HEADER.size}"
            )
        raw_id, length = _HEADER.unpack_from(data, offset)
        offset += _HEADER.size
        if length < 0 or offset + length > len(data):
            raise UnityProtocolError(
                f"side channel message at offset {offset - _HEADER.size} declares {length} payload bytes but {len(data) - offset} remain"
            )
        messages.append((uuid.UUID(bytes_le=raw_id), bytes(data[offset : offset + length])))
        offset += length
    return messages


# ---------------------------------------------------------------------------- payload primitives


class PayloadWriter:
    """Builds one side-channel payload from the primitives of protocol.md §10.2 (little-endian)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write_bool(self, value: bool) -> PayloadWriter:
        self._parts.append(struct.pack("<?", bool(value)))
        return self

    def write_int32(self, value: int) -> PayloadWriter:
        self._parts.append(struct.pack("<i", int(value)))
        return self

    def write_float32(self, value: float) -> PayloadWriter:
        self._parts.append(struct.pack("<f", float(value)))
        return self

    def write_string(self, value: str) -> PayloadWriter:
        """Writes an int32 length and the ASCII bytes (both Unity and the reference use ASCII)."""
        try:
            encoded = value.encode("ascii")
        except UnicodeEncodeError as exc:
            raise ValueError(f"side channel strings must be ASCII (Unity decodes them as ASCII), got {value!r}") from exc
        self.write_int32(len(encoded))
        self._parts.append(encoded)
        return self

    def write_float_list(self, values: Sequence[float]) -> PayloadWriter:
        self.write_int32(len(values))
        self._parts.append(struct.pack(f"<{len(values)}f", *values))
        return self

    def to_bytes(self) -> bytes:
        return b"".join(self._parts)


class PayloadReader:
    """Reads the primitives of protocol.md §10.2; past the end it returns the given default, like Unity."""

    def __init__(self, payload: bytes) -> None:
        self._data = payload
        self._offset = 0

    def _unpack(self, fmt: str, default: object) -> object:
        size = struct.calcsize(fmt)
        if self._offset + size > len(self._data):
            self._offset = len(self._data)
            return default
        (value,) = struct.unpack_from(fmt, self._data, self._offset)
        self._offset += size
        return value

    def read_bool(self, default: bool = False) -> bool:
        return bool(self._unpack("<?", default))

    def read_int32(self, default: int = 0) -> int:
        return int(self._unpack("<i", default))  # type: ignore[arg-type]

    def read_float32(self, default: float = 0.0) -> float:
        return float(self._unpack("<f", default))  # type: ignore[arg-type]

    def read_string(self, default: str = "") -> str:
        length = self.read_int32(-1)
        if length < 0 or self._offset + length > len(self._data):
            self._offset = len(self._data)
            return default
        value = self._data[self._offset : self._offset + length].decode("ascii", errors="replace")
        self._offset += length
        return value

    def read_float_list(self, default: Sequence[float] = ()) -> list[float]:
        count = self.read_int32(-1)
        if count < 0 or self._offset + 4 * count > len(self._data):
            self._offset = len(self._data)
            return list(default)
        values = struct.unpack_from(f"<{count}f", self._data, self._offset)
        self._offset += 4 * count
        return [float(v) for v in values]


# ---------------------------------------------------------------------------- channels and their routing


class SideChannel:
    """A channel of messages identified by a UUID; subclasses add typed senders and readers.

    Attributes:
        channel_id: the channel's UUID.
    """

    channel_id: uuid.UUID

    def __init__(self) -> None:
        self._outgoing: list[bytes] = []

    def queue_message(self, payload: bytes) -> None:
        """Queues a payload; it travels with the next message sent to Unity."""
        self._outgoing.append(bytes(payload))

    def take_outgoing(self) -> list[bytes]:
        """Returns and clears the queued payloads."""
        outgoing, self._outgoing = self._outgoing, []
        return outgoing

    def on_message_received(self, payload: bytes) -> None:
        """Called with each payload Unity sends on this channel; ignores it by default."""


class SideChannelManager:
    """Routes side-channel bytes to and from a set of channels with distinct ids."""

    def __init__(self, channels: Iterable[SideChannel]) -> None:
        self._channels: dict[uuid.UUID, SideChannel] = {}
        for channel in channels:
            if channel.channel_id in self._channels:
                raise ValueError(f"two side channels share the id {channel.channel_id}; each channel id may be registered once")
            self._channels[channel.channel_id] = channel

    def outgoing_bytes(self) -> bytes:
        """The queued messages of every channel, framed; the queues are cleared."""
        return frame_messages((cid, payload) for cid, channel in self._channels.items() for payload in channel.take_outgoing())

    def process_incoming(self, data: bytes) -> None:
        """Dispatches Unity's side-channel bytes; unknown channel ids are skipped with a warning."""
        for channel_id, payload in split_messages(data):
            channel = self._channels.get(channel_id)
            if channel is None:
                logger.warning("skipping a side channel message for unknown channel id %s (%d bytes)", channel_id, len(payload))
                continue
            channel.on_message_received(payload)
