"""Reading `.demo` files: steps/s and MB/s against the raw protobuf parse rate, and memory.

For each file (the largest real Unity recordings, when ``../shared/real-demos`` exists
beside the checkout or ``--real-demos`` points at them, and a generated 100k-step file
with the sensors of the largest one) it prints medians over interleaved rounds: the
methods alternate, so a busy machine slows them alike, and each timing follows an untimed
call of the same method, so every method (the baselines too) runs with a warm allocator
rather than right after another method's garbage, and lasts at least a quarter second
(``--cold`` times single first calls instead):

* raw parse: protobuf's ``ParseFromString`` of every record, given the record bytes
  already read and cut out of the file (no I/O, framing excluded: the floor any
  protobuf-based reader pays); and raw frame+parse, the same with framing (each length
  prefix read with protobuf's varint decoder), what a plain protobuf loop over the file
  costs once the file is in memory;
* parse+codec: the raw parse plus decoding every observation as the live env does,
  what a protobuf loop producing the same arrays pays (images: PNG or float decoding);
* ``read_demo`` (the whole file into numpy arrays), ``iter_batches`` (streaming chunks of
  arrays) and ``iter_records`` (one record at a time), and the ratios of ``read_demo`` and
  ``iter_batches`` to the raw parse (aim: >= 0.5; images are decoded by the reader but not
  by the raw parse, so image files cannot reach it).

Then the peak traced memory (tracemalloc) of streaming and of loading two generated files
of different sizes, both larger than the reader's buffer: streaming stays flat while
loading grows with the file.

Run: ``python benchmarks/bench_demo.py [--steps 100000] [--rounds 3]`` (one to two minutes).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
from google.protobuf.internal.decoder import _DecodeVarint32
from google.protobuf.message import Message

from gym_unity_il.demo import DemoReader, DemoWriter, iter_records, read_demo
from gym_unity_il.proto import communicator_pb2 as pb
from gym_unity_il.proto import legacy_pb2 as lpb
from gym_unity_il.protocol import observations
from gym_unity_il.spec import ActionSpec, BehaviorSpec, DimensionProperty, ObservationSpec

REAL_FILES = ("v4_racing_Demo.demo", "v1_unity_ExpertGridWorld.demo", "v1_unity_ExpertPyramid.demo", "v06_unity_GridDemo.demo")
DEFAULT_REAL = Path(__file__).resolve().parents[1].parent / "shared" / "real-demos"


def generate(path: Path, steps: int, seed: int = 0) -> None:
    """A modern file with the sensors and actions of the racing recordings (three vectors of
    42, 135 and 25 floats; 2 continuous actions and a discrete branch of 2), episodes of 500."""
    sizes = {"RearSensor": 42, "StackingSensor_size3_FrontSensor": 135, "StackingSensor_size5_VectorSensor_size5": 25}
    spec = BehaviorSpec(
        name="Racer?team=0",
        observation_specs=tuple(ObservationSpec(shape=(n,), dimension_property=(DimensionProperty.NONE,), name=k) for k, n in sizes.items()),
        action_spec=ActionSpec(2, (2,)),
    )
    rng = np.random.default_rng(seed)
    obs = [rng.normal(size=(64, n)).astype(np.float32) for n in sizes.values()]
    with DemoWriter(path, behavior_spec=spec, overwrite=True) as writer:
        for t in range(steps):
            k = t % 64
            writer.write(
                [o[k] for o in obs],
                reward=float(obs[0][k, 0]),
                done=t % 500 == 499,
                agent_id=t // 500,
                stored_continuous_action=obs[1][k, :2],
                stored_discrete_action=[t % 2],
            )


def record_slices(path: Path) -> tuple[bytes, list[tuple[int, int]], type]:
    """The file bytes, the (start, end) of every record, and the protobuf type of the records."""
    reader = DemoReader(path)
    data = path.read_bytes()
    pos = reader.records_offset
    spans = []
    for _ in range(reader.meta.number_steps):
        n, pos = _DecodeVarint32(data, pos)
        spans.append((pos, pos + n))
        pos += n
    return data, spans, lpb.AgentInfoProto if reader.era.legacy_records else pb.AgentInfoActionPairProto


def timed(fn: Callable[[], object], warm: bool, least: float = 0.25) -> float:
    """Seconds per call of ``fn``: after an untimed call, the mean of back-to-back calls over
    at least ``least`` seconds (so that a small file is not timed by one time slice); without
    ``warm``, one first call."""
    if warm:
        fn()
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if not warm or elapsed >= least:
            return elapsed / calls


def bench_file(path: Path, rounds: int, warm: bool) -> None:
    data, spans, message = record_slices(path)
    view = memoryview(data)
    reader = DemoReader(path)
    first, specs = reader.records_offset, reader.behavior_spec.observation_specs

    def parse_only() -> None:
        for a, b in spans:
            message().ParseFromString(view[a:b])

    def frame_and_parse() -> None:
        pos = first
        for _ in range(len(spans)):
            n, pos = _DecodeVarint32(data, pos)
            message().ParseFromString(view[pos : pos + n])
            pos += n

    def parse_and_decode() -> None:
        for a, b in spans:
            record = message()
            record.ParseFromString(view[a:b])
            for proto, spec in zip(observation_protos(record, specs), specs):
                observations.decode_observation(proto, spec)

    runs: dict[str, Callable[[], object]] = {
        "raw parse": parse_only,
        "raw frame+parse": frame_and_parse,
        "parse+codec": parse_and_decode,
        "read_demo": lambda: read_demo(path),
        "iter_batches": lambda: sum(len(c) for c in DemoReader(path).iter_batches()),
        "iter_records": lambda: sum(1 for _ in iter_records(path)),
    }
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            times[name].append(timed(fn, warm))
    steps, megabytes = len(spans), len(data) / 1e6
    median = {k: statistics.median(v) for k, v in times.items()}
    images = sum(o.is_visual for o in specs)
    print(f"\n{path.name}: {steps} steps, {megabytes:.1f} MB" + (f", {images} image sensor(s) decoded per record" if images else ""))
    for name, t in median.items():
        print(f"  {name:16s} {steps / t:12,.0f} steps/s {megabytes / t:9.1f} MB/s")
    for name in ("read_demo", "iter_batches"):
        ratios = median["raw parse"] / median[name], median["raw frame+parse"] / median[name]
        print(f"  {name + ' / raw parse':30s} {ratios[0]:.2f}   (/ raw frame+parse {ratios[1]:.2f})")


def observation_protos(record: Message, specs: tuple[ObservationSpec, ...]) -> list[pb.ObservationProto]:
    """The ObservationProtos of a parsed record (0.6-0.11 records: PNG images, then the stacked vector)."""
    if isinstance(record, pb.AgentInfoActionPairProto):
        return list(record.agent_info.observations)
    images = [pb.ObservationProto(compression_type=pb.PNG, compressed_data=png) for png in record.visual_observations]
    vector = pb.ObservationProto(float_data=pb.ObservationProto.FloatData(data=record.stacked_vector_observation))
    return images + [vector] * (len(specs) - len(images))


def peak_mb(fn: Callable[[], object]) -> float:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def bench_memory(small: Path, big: Path) -> None:
    print("\npeak traced memory (MB)")
    for path in (small, big):
        stream = peak_mb(lambda: sum(len(c) for c in DemoReader(path).iter_batches()))
        load = peak_mb(lambda: read_demo(path))
        print(f"  {path.name:24s} {path.stat().st_size / 1e6:7.1f} MB file   streaming {stream:7.1f}   loading {load:7.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000, help="records in the generated file")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per file (medians are printed)")
    parser.add_argument("--real-demos", type=Path, default=DEFAULT_REAL, help="folder of real Unity .demo files")
    parser.add_argument("--cold", action="store_true", help="time each method right after the others, without an untimed call first")
    args = parser.parse_args()
    print("raw parse: ParseFromString of each record, the file already in memory and cut into records (no I/O, no framing)")
    print("raw frame+parse: the same with framing (protobuf's varint decoder reads each length prefix)")
    print("parse+codec: raw parse, then every observation decoded as the live env does (gym_unity_il.protocol)")
    print("read_demo, iter_batches, iter_records: open and read the file themselves")
    warm = not args.cold
    how = "each timing: an untimed call, then back-to-back calls for 0.25 s or more" if warm else "each timing: one cold call"
    print(f"medians of {args.rounds} interleaved rounds; {how}")
    for name in REAL_FILES:
        if (args.real_demos / name).is_file():
            bench_file(args.real_demos / name, args.rounds, warm)
    with tempfile.TemporaryDirectory() as tmp:
        big, small = Path(tmp) / f"generated_{args.steps}.demo", Path(tmp) / f"generated_{args.steps // 4}.demo"
        start = time.perf_counter()
        generate(big, args.steps)
        generate(small, args.steps // 4)
        print(f"\n(generated {args.steps} + {args.steps // 4} records with DemoWriter in {time.perf_counter() - start:.1f} s)")
        bench_file(big, args.rounds, warm)
        bench_memory(small, big)


if __name__ == "__main__":
    main()
