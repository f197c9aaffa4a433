"""One sensor's ObservationProto to a numpy array and back, and the rule on NaN and infinities.

Observations come out exactly as ``UnityIL-v0`` returns them (see :mod:`gym_unity_il.spec`
for the layouts), whether they arrive on the live link or are read from a `.demo` file.
Packed float fields are copied with ``np.frombuffer``, without a Python float per value;
:class:`ObservationEncoder` serializes many agents' vector observations without a protobuf
object per agent.

NaN and infinite values: an observation or a reward holding one is refused, on the link
(:class:`~gym_unity_il.errors.UnityProtocolError`) and in `.demo` files
(:class:`~gym_unity_il.errors.DemoFormatError`) alike, by :func:`first_not_finite`:
a policy trained on them learns nothing, and they never come from a healthy scene. Image
pixels decoded from PNG are bytes, always finite.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

from gym_unity_il.errors import GymUnityILError, UnityProtocolError, quote
from gym_unity_il.proto import communicator_pb2 as pb
from gym_unity_il.protocol.images import encode_png, hwc_uint8, image_out, png_hwc, raw_image_out
from gym_unity_il.protocol.wire import LEN, WireError, delimited, delimited_header, fields_of, leading_payload
from gym_unity_il.spec import ImageFormat, ObservationSpec, check_image_format

#: Field numbers: ObservationProto.float_data, FloatData.data (packed floats).
FLOAT_DATA_FIELD, FLOAT_VALUES_FIELD = 4, 1
#: Up to this many values are checked in Python (their sum as doubles is finite exactly when
#: each is); numpy's fixed cost only pays off for more. Up to :data:`_SOME_VALUES`, one
#: boolean per value costs less than the sum of squares, which needs no array at all.
_FEW_VALUES, _SOME_VALUES = 64, 4096


def first_not_finite(values: np.ndarray) -> int | None:
    """The index of the first row of ``values`` (float32, ``[n, ...]``) that holds a NaN or an
    infinity, else None. The one check of the observations and rewards of the link and of
    `.demo` files (see the module docstring)."""
    if values.size <= _FEW_VALUES:
        if math.isfinite(sum(values.ravel().tolist())):
            return None
    elif values.size <= _SOME_VALUES:
        if np.isfinite(values).all():
            return None
    else:
        # The sum of squares is finite when every value is (it overflows only for values beyond
        # 1e19, which the exact check below then clears) and needs no array as large as the values.
        with np.errstate(all="ignore"):
            if np.isfinite(np.vdot(values, values)):
                return None
    bad = np.flatnonzero(~np.isfinite(values.reshape(len(values), -1)).all(axis=1))
    return int(bad[0]) if bad.size else None


def float_payload(float_data: pb.ObservationProto.FloatData) -> bytes:
    """The raw little-endian float32 bytes of a FloatData message (copied once, no Python floats).
    Protobuf writes its one known field, packed, before any unknown ones."""
    return leading_payload(float_data.SerializeToString(), FLOAT_VALUES_FIELD)


def float_span(serialized: bytes, count: int) -> int | None:
    """Where the ``count`` float32 values of a serialized ObservationProto start, when it holds
    them as protobuf writes them (one ``float_data`` field whose FloatData starts with one packed
    run of exactly those values), else None."""
    try:
        fields = [f for f in fields_of(serialized) if f[0] == FLOAT_DATA_FIELD]
        if len(fields) != 1 or fields[0][1] != LEN:
            return None
        start, end = fields[0][2], fields[0][3]
        inner = [f for f in fields_of(serialized[start:end]) if f[0] == FLOAT_VALUES_FIELD]
    except WireError:
        return None
    if len(inner) != 1 or inner[0][1] != LEN or inner[0][3] - inner[0][2] != 4 * count:
        return None
    return start + inner[0][2]


class FloatRows:
    """One vector sensor's values of many agents, copied at once from their serialized
    ObservationProtos.

    A sensor's observations differ from agent to agent only in their float values: where
    those lie is learned from one serialization (:func:`float_span`) and kept, and a batch is
    read as one table when every row has the same length and the same bytes outside the
    values. Such rows parse exactly as the learned one (their values sit inside a packed
    field of the same length, where any bytes are valid floats), so the copy is what
    protobuf would read.
    """

    def __init__(self, spec: ObservationSpec) -> None:
        self.shape = spec.shape
        self.count = math.prod(spec.shape)
        self._layout: tuple[int, int, bytes, bytes] | None = None  # (row size, values start, bytes before, bytes after)

    def stack(self, rows: list[bytes]) -> np.ndarray | None:
        """float32 ``[len(rows), *shape]`` (a writable array of its own), or None when the rows are
        not laid out alike (the caller decodes them one by one); NaNs are not checked here."""
        first = rows[0]
        layout = self._layout
        if layout is None or len(first) != layout[0] or not (first.startswith(layout[2]) and first.endswith(layout[3])):
            at = float_span(first, self.count)
            if at is None:
                return None
            layout = self._layout = (len(first), at, first[:at], first[at + 4 * self.count :])
        size, at, _, _ = layout
        end = at + 4 * self.count
        if len(rows) == 1:
            return np.frombuffer(bytearray(first[at:end]), "<f4").reshape(1, *self.shape)
        joined = b"".join(rows)
        if len(joined) != size * len(rows):
            return None
        table = np.frombuffer(joined, np.uint8).reshape(len(rows), size)
        if not ((table[1:, :at] == table[0, :at]).all() and (table[1:, end:] == table[0, end:]).all()):
            return None
        return table[:, at:end].copy().view("<f4").reshape(len(rows), *self.shape)


def float_data_from_array(array: np.ndarray) -> pb.ObservationProto.FloatData:
    """A FloatData message holding ``array`` (any shape) as float32, built from bytes."""
    payload = np.ascontiguousarray(array, dtype="<f4").tobytes()
    return pb.ObservationProto.FloatData.FromString(delimited(FLOAT_VALUES_FIELD, payload) if payload else b"")


def float_data_header(count: int) -> bytes:
    """The bytes of an ObservationProto's ``float_data`` that precede its ``count`` float32
    values (the field, then FloatData's packed field holding only them): after these, a
    serialized observation holds the values as they are in memory."""
    packed = delimited_header(FLOAT_VALUES_FIELD, 4 * count)
    return delimited_header(FLOAT_DATA_FIELD, len(packed) + 4 * count) + packed


def _floats(obs: pb.ObservationProto, spec: ObservationSpec) -> np.ndarray:
    """The float32 values of ``obs``, as many as ``spec`` declares and finite, in the spec's
    shape (a vector's in a writable array of its own: it is handed out as it is)."""
    payload = float_payload(obs.float_data)
    data = np.frombuffer(payload if spec.is_visual else bytearray(payload), dtype="<f4")
    image = "image " if spec.is_visual else ""
    if data.size != math.prod(spec.shape):
        raise UnityProtocolError(f"observation {quote(obs.name)}: {data.size} floats for {image}shape {spec.shape}")
    if first_not_finite(data) is not None:
        kind = "a raw float image" if spec.is_visual else "its vector"
        raise UnityProtocolError(f"observation {quote(obs.name)}: {kind} holds NaN or infinite values")
    return data.reshape(spec.shape)


def decode_png_observation(data: bytes, mapping: Sequence[int], spec: ObservationSpec, image_format: ImageFormat, name: str) -> np.ndarray:
    """The PNG ``data`` of the image observation ``name`` (``mapping``: its
    ``compressed_channel_mapping``) as the env returns it.

    Raises:
        UnityProtocolError: as :func:`~gym_unity_il.protocol.images.png_hwc`.
    """
    return image_out(png_hwc(data, list(mapping), spec.hwc, name), image_format)


def decode_observation(obs: pb.ObservationProto, spec: ObservationSpec, image_format: ImageFormat = "hwc_uint8") -> np.ndarray:
    """One sensor's data as the env returns it (see :mod:`gym_unity_il.spec` for the layouts).

    Raises:
        UnityProtocolError: data that does not fit the spec, a damaged PNG, NaN or infinite values.
    """
    if not spec.is_visual:
        return _floats(obs, spec)
    if obs.compression_type == pb.PNG or obs.WhichOneof("observation_data") == "compressed_data":
        return decode_png_observation(obs.compressed_data, obs.compressed_channel_mapping, spec, image_format, obs.name)
    return raw_image_out(_floats(obs, spec), spec.channels_first, image_format)


#: A batch of images is decoded on several threads when it has this many images, or this many
#: compressed bytes in all; a smaller one on the calling thread alone (handing work to other
#: threads costs more than it saves there).
PARALLEL_MIN_IMAGES, PARALLEL_MIN_BYTES = 4, 16 << 10
_CPUS = os.cpu_count() or 1
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_ImageSource = TypeVar("_ImageSource")
#: What decoding one image may raise (Pillow's own kinds included).
_IMAGE_ERRORS = (GymUnityILError, ValueError, OSError, SyntaxError, EOFError)


class ImageBatchError(Exception):
    """An image of a batch (:func:`decode_images`) cannot be decoded: ``index`` says which,
    ``cause`` is the image's own error (what :func:`decode_observation` raised)."""

    def __init__(self, index: int, cause: Exception) -> None:
        super().__init__(str(cause))
        self.index = index
        self.cause = cause


def _decode_part(sources: Sequence[_ImageSource], part: range, out: np.ndarray, decode: Callable[[_ImageSource], np.ndarray]) -> ImageBatchError | None:
    for i in part:
        try:
            out[i] = decode(sources[i])
        except _IMAGE_ERRORS as exc:
            return ImageBatchError(i, exc)
    return None


def decode_image_batch(sources: Sequence[_ImageSource], decode: Callable[[_ImageSource], np.ndarray], compressed_bytes: Callable[[_ImageSource], int],
                       spec: ObservationSpec, image_format: ImageFormat) -> np.ndarray:  # fmt: skip
    """One image sensor of many agents or records, ``decode(source)`` each (an array of the
    sensor's output shape), stacked. A large batch (by count, or by ``compressed_bytes`` in
    all) is decoded on this thread and on a shared pool's together, one part each: the PNG
    decoder lets other threads run meanwhile. A batch of one is its image (when writable and
    contiguous), not a copy.

    Raises:
        ImageBatchError: the first image (in order) that cannot be decoded.
    """
    shape, dtype = spec.output_shape(image_format), spec.output_dtype(image_format)
    if len(sources) == 1:
        try:
            image = decode(sources[0])
        except _IMAGE_ERRORS as exc:
            raise ImageBatchError(0, exc) from None
        if image.shape == shape and image.dtype == dtype and image.flags.c_contiguous and image.flags.writeable:  # an array of its own
            return image[None]
        out = np.empty((1, *shape), dtype)
        out[0] = image
        return out
    out = np.empty((len(sources), *shape), dtype)
    workers = min(_CPUS, len(sources))
    if workers < 2 or (len(sources) < PARALLEL_MIN_IMAGES and sum(compressed_bytes(s) for s in sources) < PARALLEL_MIN_BYTES):
        failure = _decode_part(sources, range(len(sources)), out, decode)
    else:
        global _pool
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(max_workers=_CPUS, thread_name_prefix="image-decoder")
        parts = [range(k, len(sources), workers) for k in range(workers)]
        pending = [_pool.submit(_decode_part, sources, part, out, decode) for part in parts[1:]]
        failures = [_decode_part(sources, parts[0], out, decode), *(f.result() for f in pending)]
        failure = min((f for f in failures if f is not None), key=lambda f: f.index, default=None)
    if failure is not None:
        raise failure
    return out


def decode_images(protos: Sequence[pb.ObservationProto], spec: ObservationSpec, image_format: ImageFormat = "hwc_uint8") -> np.ndarray:
    """One image sensor of many agents or records, decoded as :func:`decode_observation` does,
    stacked (:func:`decode_image_batch`).

    Raises:
        ImageBatchError: the first image (in order) that cannot be decoded.
    """
    return decode_image_batch(protos, lambda obs: decode_observation(obs, spec, image_format), lambda obs: len(obs.compressed_data), spec, image_format)


def _header(spec: ObservationSpec) -> pb.ObservationProto:
    """The fields of an ObservationProto that depend only on the sensor's spec."""
    return pb.ObservationProto(
        shape=spec.shape,
        dimension_properties=[int(p) for p in spec.dimension_property],
        observation_type=int(spec.observation_type),
        name=spec.name,
    )


def encode_observation(
    array: np.ndarray, spec: ObservationSpec, *, image_format: ImageFormat = "hwc_uint8", compress: bool = True
) -> pb.ObservationProto:
    """One sensor's data (in the env's output layout) as the ObservationProto Unity would send.

    Images are PNG-compressed when ``compress`` (else raw floats, value / 255) and declared in
    the spec's wire layout (``spec.channels_first``) with Unity's dimension properties.
    """
    check_image_format(image_format)
    obs = _header(spec)
    if not spec.is_visual:
        obs.float_data.CopyFrom(float_data_from_array(array))
        return obs
    arr = np.asarray(array)
    if arr.shape != spec.output_shape(image_format):
        raise ValueError(f"observation {spec.name!r}: got an array of shape {arr.shape}, expected {spec.output_shape(image_format)}")
    hwc = hwc_uint8(arr, image_format)
    if compress:
        data, mapping = encode_png(hwc)
        obs.compression_type = pb.PNG
        obs.compressed_data = data
        obs.compressed_channel_mapping.extend(mapping)
        return obs
    floats = hwc.astype(np.float32) / np.float32(255.0)
    obs.float_data.CopyFrom(float_data_from_array(floats.transpose(2, 0, 1) if spec.channels_first else floats))
    return obs


class ObservationEncoder:
    """Serializes one sensor's observations of many agents, as :func:`encode_observation` would.

    Built once per sensor; :meth:`encode` then turns ``values [n, ...]`` (in the env's output
    layout) into ``n`` serialized ObservationProtos, ready for ``MergeFromString``. For
    non-image sensors the fields that depend only on the spec are serialized once and each
    agent adds just its floats, so no protobuf object is built per agent; images are
    encoded one by one with :func:`encode_observation`.

    Args:
        spec: the sensor's spec in its wire layout.
        image_format: the layout of image values passed to :meth:`encode`.
        compress: PNG-compress images (else raw floats).
    """

    def __init__(self, spec: ObservationSpec, *, image_format: ImageFormat = "hwc_uint8", compress: bool = True) -> None:
        check_image_format(image_format)
        self.spec = spec
        self.image_format: ImageFormat = image_format
        self.compress = compress
        count = math.prod(spec.shape)
        self._row_bytes = 4 * count
        # The spec's fields, then float_data: each agent's floats follow.
        self._prefix = b"" if spec.is_visual else _header(spec).SerializeToString() + float_data_header(count)

    def encode(self, values: np.ndarray) -> list[bytes]:
        """One serialized ObservationProto per row of ``values``.

        Raises:
            ValueError: a row does not have the sensor's shape.
        """
        values = np.asarray(values)
        spec = self.spec
        if spec.is_visual:
            return [encode_observation(v, spec, image_format=self.image_format, compress=self.compress).SerializeToString() for v in values]
        if values.shape[1:] != spec.shape:
            raise ValueError(f"observation {spec.name!r}: got rows of shape {values.shape[1:]}, expected {spec.shape}")
        data = np.ascontiguousarray(values, dtype="<f4").tobytes()
        size = self._row_bytes
        return [self._prefix + data[start : start + size] for start in range(0, len(data), size)] if size else [self._prefix] * len(values)
