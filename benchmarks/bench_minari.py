"""`.demo` -> Minari: conversion speed against reading the `.demo` files alone, and peak memory.

A folder of generated files (``--files`` of ``--records`` records each, with the sensors
of the grid scene at 84 x 84: a PNG camera, a vector of 8 and one discrete branch of 5 with
masks, episodes of 100 records) is

* read alone: every record decoded into arrays by ``DemoReader.iter_batches`` (the floor
  any conversion pays);
* converted by ``demo_to_minari`` into arrow and into hdf5 storage.

Each measurement runs in its own fresh process, the methods interleaved over ``--rounds``
rounds (medians printed), so a busy machine slows them alike. Printed per method: seconds,
records/s, the ratio of the reading time to the method's, and the process's peak resident
memory above that of a process that only imported the same modules, against a memory
budget (``--budget-mb``, 256 MB by default): the default folder decodes to about twice the
budget, so a conversion stays within it only by streaming.

Run: ``python benchmarks/bench_minari.py [--files 8] [--records 3000] [--rounds 3] [--budget-mb 256]``
(the default folder decodes to about 510 MB; about two minutes).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

METHODS = ("read", "arrow", "hdf5")
EPISODE = 100


def generate(folder: Path, files: int, records: int) -> int:
    """Writes the folder; returns the bytes its records take decoded."""
    from gym_unity_il.demo import DemoWriter
    from gym_unity_il.spec import ActionSpec, BehaviorSpec, DimensionProperty, ObservationSpec

    te, none = DimensionProperty.TRANSLATIONAL_EQUIVARIANCE, DimensionProperty.NONE
    spec = BehaviorSpec(
        name="GridWorld?team=0",
        observation_specs=(
            ObservationSpec(shape=(84, 84, 3), dimension_property=(te, te, none), name="CameraSensor"),
            ObservationSpec(shape=(8,), dimension_property=(none,), name="VectorSensor_size8"),
        ),
        action_spec=ActionSpec(0, (5,)),
    )
    rng = np.random.default_rng(0)
    ramp = np.add.outer(np.arange(84), np.arange(84)).astype(np.uint8)[..., None].repeat(3, axis=2)
    for f in range(files):
        with DemoWriter(folder / f"grid{f}.demo", behavior_spec=spec) as writer:
            for t in range(records):
                step = t % EPISODE
                image = ramp + rng.integers(0, 16, ramp.shape, dtype=np.uint8)
                writer.write(
                    {"CameraSensor": image, "VectorSensor_size8": rng.normal(size=8).astype(np.float32)},
                    reward=0.0 if step == 0 else float(rng.normal()),
                    done=step == EPISODE - 1,
                    stored_discrete_action=[0 if step == 0 else int(rng.integers(5))],
                    action_mask=rng.random(5) > 0.2,
                )
    return files * records * (84 * 84 * 3 + 8 * 4 + 5 + 15)


def child(method: str, folder: Path, out: Path) -> None:
    """One measurement in this process: prints seconds and peak RSS in bytes as JSON."""
    from gym_unity_il.demo import DemoReader, demo_files, demo_to_minari

    import h5py  # noqa: F401  (minari and both storages' libraries, imported by every method:
    import minari  # noqa: F401   the baseline process holds them too)
    import pyarrow.dataset  # noqa: F401

    start = time.perf_counter()
    if method == "read":
        for path in demo_files(folder):
            for _ in DemoReader(path).iter_batches():
                pass
    elif method != "import":
        demo_to_minari(folder, f"bench/grid-{method}-v0", storage=method, dataset_dir=out)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


def measure(method: str, folder: Path, out: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", method, "--folder", str(folder), "--out", str(out)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--budget-mb", type=float, default=256.0, help="the memory budget a conversion should stay within")
    parser.add_argument("--child", choices=("import", *METHODS), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.folder, args.out)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "demos"
        folder.mkdir()
        decoded = generate(folder, args.files, args.records)
        on_disk = sum(p.stat().st_size for p in folder.iterdir())
        records = args.files * args.records
        budget = args.budget_mb * 1e6
        print(f"folder: {args.files} files, {records} records, {on_disk / 1e6:.0f} MB on disk, {decoded / 1e6:.0f} MB decoded "
              f"({decoded / budget:.1f} x the budget of {args.budget_mb:.0f} MB)")  # fmt: skip
        base = statistics.median(measure("import", folder, Path(tmp)).get("peak", 0) for _ in range(args.rounds))
        results: dict[str, list[dict[str, float]]] = {m: [] for m in METHODS}
        for r in range(args.rounds):
            for method in METHODS:
                results[method].append(measure(method, folder, Path(tmp) / f"round{r}"))
        read_s = statistics.median(x["seconds"] for x in results["read"])
        print(f"peak RSS of a process that only imports: {base / 1e6:.0f} MB (the baseline below)")
        print(f"{'method':<8} {'seconds':>8} {'records/s':>10} {'read/method':>12} {'peak above baseline':>20} {'of decoded':>11} {'of budget':>10}")
        for method in METHODS:
            seconds = statistics.median(x["seconds"] for x in results[method])
            peak = statistics.median(x["peak"] for x in results[method]) - base
            print(f"{method:<8} {seconds:8.2f} {records / seconds:10.0f} {read_s / seconds:12.2f} {peak / 1e6:17.0f} MB {peak / decoded:10.0%} "
                  f"{peak / budget:10.0%}")  # fmt: skip


if __name__ == "__main__":
    main()
