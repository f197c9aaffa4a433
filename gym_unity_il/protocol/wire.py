"""The protobuf wire format, by hand: varints, field framing, packed values, one message's fields.

Protobuf's own classes parse and build whole messages; the package writes some bytes
itself where building a message object per agent or per record would cost more than the
work (the trainer's actions, many agents' observations, `.demo` files), and reads some
without a message object (the fields of a `.demo` header, the packed floats of an
observation). These are the one writer and the one reader of each such piece;
:mod:`gym_unity_il.protocol.scan` reads the same format with numpy for many messages at once.

Readers check bounds and raise :class:`WireError` (with the byte offset) on malformed input;
they never read outside the range they are given.
"""

from __future__ import annotations

from collections.abc import Sequence

#: Wire types: varint, 64-bit, length-delimited, 32-bit (groups, 3 and 4, are not accepted).
VARINT, FIXED64, LEN, FIXED32 = 0, 1, 2, 5
VALID_WIRE_TYPES = (VARINT, FIXED64, LEN, FIXED32)
_ONE_BYTE = [bytes((n,)) for n in range(0x80)]
_UINT64 = (1 << 64) - 1


class WireError(Exception):
    """Malformed protobuf bytes: ``message`` is the index of the message being read (0 for a
    single one), ``offset`` the position in the buffer, ``what`` a short description."""

    def __init__(self, message: int, offset: int, what: str) -> None:
        super().__init__(f"{what} (message {message}, offset {offset})")
        self.message = message
        self.offset = offset
        self.what = what


def encode_varint(value: int) -> bytes:
    """The base-128 varint of a non-negative integer (of a negative int32 or int64 value, pass
    ``value & 0xFFFFFFFFFFFFFFFF``: ten bytes, as protobuf writes it)."""
    if value < 0x80:
        return _ONE_BYTE[value]
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_varint(data: bytes | bytearray | memoryview, pos: int, end: int) -> tuple[int, int]:
    """One varint at ``data[pos:end]``: returns ``(value, position after it)``.

    Raises:
        WireError: the varint runs past ``end`` (``what`` starts with "truncated") or is
            longer than 10 bytes.
    """
    value = shift = 0
    start = pos
    while True:
        if pos >= end:
            raise WireError(0, start, "truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift >= 70:
            raise WireError(0, start, "varint longer than 10 bytes")


def tag(number: int, wire_type: int) -> bytes:
    """The key that starts a field: its number and wire type, as a varint."""
    return encode_varint(number << 3 | wire_type)


def delimited_header(number: int, length: int) -> bytes:
    """What precedes the ``length`` payload bytes of the length-delimited field ``number``
    (a sub-message, bytes, a string or a packed repeated field)."""
    return encode_varint(number << 3 | LEN) + encode_varint(length)


def delimited(number: int, payload: bytes) -> bytes:
    """The length-delimited field ``number`` holding ``payload``, as protobuf writes it."""
    return encode_varint(number << 3 | LEN) + encode_varint(len(payload)) + payload


def packed_varints(values: Sequence[int]) -> bytes:
    """int32 values as the payload of a packed repeated field (negative ones take ten bytes,
    as protobuf writes them)."""
    if all(0 <= v < 0x80 for v in values):
        return bytes(values)
    return b"".join(encode_varint(v & _UINT64) for v in values)


def fields_of(data: bytes) -> list[tuple[int, int, int, int]]:
    """The top-level fields of one message, read one after the other (for single messages;
    :func:`gym_unity_il.protocol.scan.scan` reads many messages at once with the same rules).

    Returns:
        ``(field number, wire type, varint value or payload start, end of the field)`` per field.

    Raises:
        WireError: a varint or a field runs past the end, a wire type is invalid (groups are
            not accepted), or a field number is 0.
    """
    fields = []
    pos, end = 0, len(data)
    while pos < end:
        key, at = read_varint(data, pos, end)
        num, wire_type = (0 if key >> 32 else key >> 3), key & 7
        if wire_type not in VALID_WIRE_TYPES or num == 0:
            raise WireError(0, pos, f"invalid field tag (field {num}, wire type {wire_type})")
        if wire_type == VARINT:
            value, nxt = read_varint(data, at, end)
        elif wire_type == LEN:
            length, value = read_varint(data, at, end)
            nxt = value + length
        else:
            value, nxt = at, at + (8 if wire_type == FIXED64 else 4)
        if nxt > end:
            raise WireError(0, pos, f"field {num} runs past the end of its message")
        fields.append((num, wire_type, value, nxt))
        pos = nxt
    return fields


def leading_payload(data: bytes, number: int) -> bytes:
    """The payload of the length-delimited field ``number`` (1 to 15: a one-byte key) when
    ``data`` (a serialized message) starts with it, else empty: how a packed repeated field
    that protobuf wrote first is taken without parsing its values (protobuf writes known
    fields in number order, unknown ones after them).

    Raises:
        WireError: the field's length runs past the end of ``data``.
    """
    end = len(data)
    if not end or data[0] != (number << 3 | LEN):
        return b""
    length, start = read_varint(data, 1, end)
    if start + length > end:
        raise WireError(0, 0, f"field {number} runs past the end of its message")
    return data[start : start + length]
