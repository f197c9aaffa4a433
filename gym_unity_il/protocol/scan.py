"""The protobuf wire format read with numpy, for many messages at once.

A `.demo` file holds thousands of small messages of one schema. Parsing each with
protobuf and then pulling every field out in Python costs several microseconds per
record; scanning all records of a chunk together, one field position at a time, with
numpy turns that into a few array operations per field and lets packed floats be copied
straight from the file bytes. This module knows nothing of ML-Agents: it frames
length-delimited messages and finds their fields by the rules of
:mod:`gym_unity_il.protocol.wire`, and the `.demo` reader
(:mod:`gym_unity_il.demo.records`) gives them meaning.

Every function checks bounds and raises :class:`~gym_unity_il.protocol.wire.WireError`
(with the index of the offending message and the byte offset) on malformed input; it
never reads outside the ranges it is given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gym_unity_il.protocol.wire import FIXED32, FIXED64, LEN, VALID_WIRE_TYPES, VARINT, WireError, read_varint

_VALID_WIRE_TYPE = np.isin(np.arange(8), VALID_WIRE_TYPES)
#: One-byte tags (below 0x80) that are invalid: a group wire type or field number 0.
_BAD_TAG_BYTE = ~_VALID_WIRE_TYPE[np.arange(256) & 7] | (np.arange(256) < 8)
_U7F = np.uint8(0x7F)


def _varints(buf: np.ndarray, pos: np.ndarray, end: np.ndarray, msg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Varints at every ``pos`` (each bounded by its ``end``): ``(uint64 values, next positions)``."""
    over = pos >= end
    if over.any():
        i = int(np.flatnonzero(over)[0])
        raise WireError(int(msg[i]), int(pos[i]), "truncated varint")
    first = buf[pos]
    long = first >= 0x80
    if not long.any():
        return first.astype(np.uint64), pos + 1
    nxt = pos + 1
    second = buf[np.minimum(nxt, buf.size - 1)]
    if not (long & ((second >= 0x80) | (nxt >= end))).any():  # none longer than 2 bytes (most lengths)
        return (first & _U7F).astype(np.uint64) | np.where(long, second.astype(np.uint64) << np.uint64(7), 0), nxt + long
    val = (first & _U7F).astype(np.uint64)
    live = np.flatnonzero(long)
    shift = 7
    while live.size:
        if shift >= 70:
            i = int(live[0])
            raise WireError(int(msg[i]), int(pos[i]), "varint longer than 10 bytes")
        p = nxt[live]
        over = p >= end[live]
        if over.any():
            i = int(live[np.flatnonzero(over)[0]])
            raise WireError(int(msg[i]), int(pos[i]), "truncated varint")
        byte = buf[p]
        val[live] |= (byte & _U7F).astype(np.uint64) << np.uint64(shift)
        nxt[live] = p + 1
        live = live[(byte & 0x80) != 0]
        shift += 7
    return val, nxt


def _leading_repeats(column: bytes) -> int:
    """How many bytes at the start of ``column`` equal its first."""
    return len(column) - len(column.lstrip(column[:1]))


def frame(data: bytes | memoryview, pos: int, end: int, count: int, *, heads_before: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """Up to ``count`` length-delimited messages back to back in ``data[pos:end]``.

    Successive messages usually have the same length (a recording's records differ only in
    values), and then their length prefixes are the same bytes at a fixed stride: a whole run
    of them is found by comparing strided slices of ``data``, without a step per message.

    Args:
        data: the bytes (a memoryview must be of format "B").
        pos, end: the range to frame.
        count: most messages to return.
        heads_before: frame no message whose length prefix starts at or after this position.

    Returns:
        ``(payload starts, payload ends, position after the last message)`` (``int64`` arrays).
        Framing stops before a message or a length prefix that ``end`` cuts.

    Raises:
        WireError: a length prefix is longer than 10 bytes (``message`` counts from 0 at ``pos``).
    """
    limit = end if heads_before is None else min(end, heads_before)
    runs: list[tuple[int, int, int, int]] = []  # (first payload start, payload length, stride, messages)
    found = 0
    while found < count and pos < limit:
        try:
            length, payload = read_varint(data, pos, end)
        except WireError as exc:
            if exc.what.startswith("truncated"):
                break
            raise WireError(found, pos, exc.what) from None
        stride = payload - pos + length
        if pos + stride > end:
            break
        # The next messages have the same length while their prefixes repeat these bytes: look
        # at every stride-th byte, in windows growing while the run fills them.
        fit = min(count - found, (end - pos) // stride, (limit - pos - 1) // stride + 1)
        run = window = 1
        if fit > 1 and data[pos + stride : payload + stride] == data[pos:payload]:
            while run == window < fit:
                window = min(8 * window, fit)
                run = min(_leading_repeats(bytes(data[i : i + window * stride : stride])) for i in range(pos, payload))
        runs.append((payload, length, stride, run))
        found += run
        pos += run * stride
    if not runs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), pos
    first, length_, stride_, run_ = (np.array(c, np.int64) for c in zip(*runs))
    which = np.repeat(np.arange(len(runs)), run_)
    within = np.arange(found) - (np.cumsum(run_) - run_)[which]
    starts = first[which] + within * stride_[which]
    return starts, starts + length_[which], pos


@dataclass(frozen=True)
class Fields:
    """Every top-level field of a set of messages, one row per field occurrence (rows come
    in scanning order: the first field of every message, then the second, ...).

    Attributes:
        n: number of messages scanned.
        msg: ``int64`` index of the message each field belongs to.
        num: field number (``uint8`` when every tag was one byte, else ``int64``).
        wt: ``uint8`` wire type (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32).
        val: ``uint64`` the value of a varint; the payload start of the other wire types.
        end: ``int64`` the position just after the field (payload end for LEN).
    """

    n: int
    msg: np.ndarray
    num: np.ndarray
    wt: np.ndarray
    val: np.ndarray
    end: np.ndarray

    def _select(self, num: int, wire_types: tuple[int, ...]) -> np.ndarray:
        mask = self.wt == wire_types[0]
        for wire_type in wire_types[1:]:
            mask |= self.wt == wire_type
        return np.flatnonzero(mask & (self.num == num))

    def rows(self, num: int, *wire_types: int) -> np.ndarray:
        """Indices of the rows of field ``num`` with one of ``wire_types``, ordered by message
        and position (protobuf ignores a field whose wire type does not match its declaration,
        and so does every accessor here)."""
        rows = self._select(num, wire_types)
        return rows[np.argsort(self.msg[rows], kind="stable")]

    def _last(self, num: int, wire_type: int) -> np.ndarray:
        """At most one row per message: the last occurrence (protobuf keeps the last value of a
        repeated scalar; it would merge sub-messages, which files never repeat)."""
        rows = self._select(num, (wire_type,))
        msg = self.msg[rows]
        if rows.size and np.bincount(msg, minlength=self.n).max() > 1:
            _, last = np.unique(msg[::-1], return_index=True)
            rows = rows[::-1][last]
        return rows

    def varint(self, num: int, default: int = 0) -> np.ndarray:
        """A singular varint field per message (``uint64``), ``default`` when absent."""
        out = np.full(self.n, default, np.uint64)
        rows = self._last(num, VARINT)
        out[self.msg[rows]] = self.val[rows]
        return out

    def fixed32(self, buf: np.ndarray, num: int) -> np.ndarray:
        """A singular float field per message (``float32``), 0 when absent."""
        out = np.zeros(self.n, np.float32)
        rows = self._last(num, FIXED32)
        if rows.size:
            at = self.val[rows].astype(np.int64)[:, None] + np.arange(4)
            out[self.msg[rows]] = buf[at].view("<f4").reshape(-1)
        return out

    def message(self, num: int) -> tuple[np.ndarray, np.ndarray]:
        """A singular length-delimited field per message: ``(start, end)`` positions of its
        payload; an empty range (0, 0) when absent. (Protobuf would merge repeated
        occurrences of a sub-message; files never have them, the last one is taken.)"""
        start = np.zeros(self.n, np.int64)
        end = np.zeros(self.n, np.int64)
        rows = self._last(num, LEN)
        start[self.msg[rows]] = self.val[rows].astype(np.int64)
        end[self.msg[rows]] = self.end[rows]
        return start, end

    def repeated_messages(self, num: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every occurrence of a repeated length-delimited field: ``(msg, start, end)`` rows in order."""
        rows = self.rows(num, LEN)
        return self.msg[rows], self.val[rows].astype(np.int64), self.end[rows]

    def packed(self, num: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The payload ``(start, end)`` of a packed repeated field per message (empty when
        absent), or None unless every message holds it at most once and packed (which is how
        protobuf writes it; the ``repeated_*`` methods read every encoding)."""
        rows = self._select(num, (VARINT, LEN, FIXED32, FIXED64))
        if np.any(self.wt[rows] != LEN) or (rows.size and np.bincount(self.msg[rows], minlength=self.n).max() > 1):
            return None
        return self.message(num)

    def repeated_fixed32(self, buf: np.ndarray, num: int) -> tuple[np.ndarray, np.ndarray]:
        """A repeated float field (packed or not): ``(float32 values of all messages in
        order, int64 count per message)``."""
        rows = self.rows(num, LEN, FIXED32)
        start = self.val[rows].astype(np.int64)
        packed = self.wt[rows] == LEN
        size = np.where(packed, self.end[rows] - start, 4)
        bad = size % 4 != 0
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise WireError(int(self.msg[rows[i]]), int(start[i]), f"packed float field {num} of {size[i]} bytes is not a multiple of 4")
        values = gather(buf, start, size).view("<f4")
        counts = np.bincount(self.msg[rows], weights=size // 4, minlength=self.n).astype(np.int64)
        return values, counts

    def repeated_varint(self, buf: np.ndarray, num: int) -> tuple[np.ndarray, np.ndarray]:
        """A repeated varint field (packed or not): ``(uint64 values of all messages in order,
        int64 count per message)``."""
        rows = self.rows(num, LEN, VARINT)
        if not rows.size:
            return np.zeros(0, np.uint64), np.zeros(self.n, np.int64)
        packed = self.wt[rows] == LEN
        start = self.val[rows].astype(np.int64)
        size = np.where(packed, self.end[rows] - start, 0)
        data = gather(buf, start[packed], size[packed])
        term = (data & 0x80) == 0
        # The last byte of every packed payload must end a varint.
        psize = size[packed]
        nonempty = np.flatnonzero(psize > 0)
        unfinished = np.flatnonzero(~term[(np.cumsum(psize) - 1)[nonempty]]) if nonempty.size else nonempty
        if unfinished.size:
            i = int(np.flatnonzero(packed)[nonempty[unfinished[0]]])
            raise WireError(int(self.msg[rows[i]]), int(start[i]), f"packed varint field {num} ends inside a varint")
        packed_values = _group_varints(data, term, int(self.msg[rows[0]]), int(start[0]))
        # Values per packed row: count of terminators inside its payload.
        term_cum = np.concatenate(([0], np.cumsum(term)))
        bounds = np.concatenate(([0], np.cumsum(psize)))
        per_packed = (term_cum[bounds[1:]] - term_cum[bounds[:-1]]).astype(np.int64)
        per_row = np.ones(rows.size, np.int64)
        per_row[packed] = per_packed
        offsets = np.cumsum(per_row) - per_row
        values = np.empty(int(per_row.sum()), np.uint64)
        values[offsets[~packed]] = self.val[rows[~packed]]
        if packed_values.size:
            within = np.arange(packed_values.size) - np.repeat(np.cumsum(per_packed) - per_packed, per_packed)
            values[np.repeat(offsets[packed], per_packed) + within] = packed_values
        counts = np.bincount(self.msg[rows], weights=per_row, minlength=self.n).astype(np.int64)
        return values, counts


def gather(buf: np.ndarray, start: np.ndarray, size: np.ndarray) -> np.ndarray:
    """The bytes of every range ``buf[start[i]:start[i]+size[i]]`` concatenated (uint8)."""
    total = int(size.sum())
    if total == 0:
        return np.zeros(0, np.uint8)
    if start.size == 1:
        s = int(start[0])
        return buf[s : s + total].copy()
    width = int(size[0])
    if width and np.all(size == width):
        # Equal ranges (the usual case: one sensor of many records). Records of one length lie
        # at a fixed stride, and a strided view copies faster than rows picked by index.
        step = start[1:] - start[:-1]
        if step[0] > 0 and np.all(step == step[0]) and start[-1] + width <= buf.size:
            rows = np.lib.stride_tricks.as_strided(buf[start[0] :], (start.size, width), (int(step[0]), 1), writeable=False)
            return rows.copy().reshape(-1)
        return np.lib.stride_tricks.sliding_window_view(buf, width)[start].reshape(-1)
    shift = start - (np.cumsum(size) - size)
    return buf[np.repeat(shift, size) + np.arange(total)]


def _group_varints(data: np.ndarray, term: np.ndarray, msg: int, offset: int) -> np.ndarray:
    """Decodes the back-to-back varints in ``data`` (``term`` marks their last bytes)."""
    if not data.size:
        return np.zeros(0, np.uint64)
    if term.all():
        return data.astype(np.uint64)
    group_start = np.concatenate(([0], np.flatnonzero(term)[:-1] + 1))
    k = np.arange(data.size) - np.repeat(group_start, np.diff(np.append(group_start, data.size)))
    if k.max() >= 10:
        raise WireError(msg, offset, "varint longer than 10 bytes in a packed field")
    parts = (data & _U7F).astype(np.uint64) << (7 * k).astype(np.uint64)
    return np.bitwise_or.reduceat(parts, group_start)


def _varint_or_length(buf: np.ndarray, wt: np.ndarray, pos: np.ndarray, end: np.ndarray, msg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For VARINT and LEN fields whose value starts at ``pos``: the value (the payload start for
    LEN) and the end of the field."""
    v, q = _varints(buf, pos, end, msg)
    is_len = wt == LEN
    # Lengths are capped before the cast so that a huge one cannot wrap around.
    return np.where(is_len, q.astype(np.uint64), v), q + np.where(is_len, np.minimum(v, np.uint64(1 << 40)), 0).astype(np.int64)


def scan(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> Fields:
    """The top-level fields of the messages ``buf[starts[i]:ends[i]]``, all at once.

    Args:
        buf: the bytes (uint8).
        starts, ends: the message ranges.

    Raises:
        WireError: a varint or a field runs past its message's end, a wire type is invalid
            (groups are not accepted), or a field number is 0.
    """
    starts = np.asarray(starts, np.int64)
    ends = np.asarray(ends, np.int64)
    n = starts.size
    live = starts < ends
    msg, pos, end = np.flatnonzero(live), starts[live], ends[live]
    parts: list[tuple[np.ndarray, ...]] = []
    while msg.size:
        first = buf[pos]
        if (first < 0x80).all():  # one-byte tags (fields 1-15): the usual case
            p = pos + 1
            wt = first & np.uint8(7)
            num = first >> np.uint8(3)
            bad = _BAD_TAG_BYTE[first]
        else:
            tag, p = _varints(buf, pos, end, msg)
            wt = (tag & np.uint64(7)).astype(np.uint8)
            num = np.where(tag >> np.uint64(32), 0, tag >> np.uint64(3)).astype(np.int64)
            bad = ~_VALID_WIRE_TYPE[wt] | (num == 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise WireError(int(msg[i]), int(pos[i]), f"invalid field tag (field {int(num[i])}, wire type {int(wt[i])})")
        var = (wt & np.uint8(5)) == 0  # of the valid types, exactly VARINT (0) and LEN (2)
        if var.all():
            val, nxt = _varint_or_length(buf, wt, p, end, msg)
        else:
            val = p.astype(np.uint64)
            nxt = p + np.where(wt == FIXED64, 8, 4)
            sel = np.flatnonzero(var)
            if sel.size:
                val[sel], nxt[sel] = _varint_or_length(buf, wt[sel], p[sel], end[sel], msg[sel])
        over = nxt > end
        if over.any():
            i = int(np.flatnonzero(over)[0])
            raise WireError(int(msg[i]), int(pos[i]), f"field {int(num[i])} runs past the end of its message")
        parts.append((msg, num, wt, val, nxt))
        more = nxt < end
        msg, pos, end = msg[more], nxt[more], end[more]
    if not parts:
        empty = np.zeros(0, np.int64)
        return Fields(n, empty, empty, np.zeros(0, np.uint8), np.zeros(0, np.uint64), empty)
    m, num_, wt_, val_, end_ = (np.concatenate(c) for c in zip(*parts))
    return Fields(n, m, num_, wt_, val_, end_)
