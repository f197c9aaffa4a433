"""Fuzzing the parsers of untrusted bytes: the `.demo` reader and the decoding of Unity's messages.

Runs ``--cases`` inputs (100k by default) from :mod:`gym_unity_il.testing.fuzz_cases` through the package
and checks that only the package's own errors come out:

* ``demo``: `.demo` files of every era (written by DemoWriter, or assembled in the older
  record formats), mutated at the byte and field level, read with ``read_demo``,
  ``iter_records``, ``DemoReader.iter_batches`` / ``read`` and ``demo_to_trajectories``;
* ``demo-real``: the real Unity recordings (``--real-demos``, by default
  ``../shared/real-demos`` beside the checkout; skipped when absent), mutated the same way;
* ``link``: Unity's messages as the built-in scene player encodes them (vectors, PNG and
  raw-float images, several PNGs with channel mappings, masks, hybrid actions, several
  behaviors), mutated, then parsed and decoded as the session does (handshake fields,
  agent data with the behaviors of an earlier valid message, side channels);
* ``agents``: one agent of those messages, mutated or not, decoded on the link and by the
  `.demo` reader (a file of its record): both roads must give the same arrays or both an error;
* ``side-channels``: side-channel bytes of every built-in channel, mutated.

A result or an error of ``gym_unity_il.errors`` (and the reader's DemoFormatWarning) is
accepted. Anything else escapes: another exception, another warning, an input that was not
mutated decoding to other arrays, the two roads disagreeing on an agent, a case running longer than ``--case-timeout`` (a hang),
or an allocation beyond ``--memory-limit-mb`` (each worker runs under that address-space
limit, so a declared size that would take gigabytes shows up as a MemoryError).

``--memory`` measures instead what hostile messages of Unity (``HOSTILE_LINK_CASES`` of
``gym_unity_il/testing/fuzz_cases.py``: 100k behaviors, a million agents, a million branches, dimensions or
sensors, ...) make the trainer allocate while parsing and decoding them as the session does,
each in a fresh process: for a message of N bytes, the outcome, the time, the peak of
Python's traced allocations (tracemalloc) and the growth of the process's peak resident
memory (which also counts protobuf's own parse), each also as a ratio to N. These are
figures, not assertions (the tests assert the bound).

For each target the script prints the cases run, the outcomes by kind, the cases per
second (per core) and every escape, whose inputs it saves under ``--reproducers``; rerun
one with ``--replay FOLDER``. The exit code is 1 when anything escaped.

Hypothesis draws each input's source and mutations (one case per example, plus ``--extra``
cases of the same source with mutations from a seeded numpy generator: hypothesis's own
bookkeeping costs more than a case); real recordings get numpy-drawn mutations only.

Run: ``python benchmarks/fuzz_inputs.py [--cases 100000] [--seed 0] [--jobs 2]``
(about three minutes on two cores), or ``python benchmarks/fuzz_inputs.py --memory`` (a minute).
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import importlib
import json
import logging
import math
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed

from gym_unity_il.testing import fuzz_cases

REPO = Path(__file__).resolve().parents[1]
DEFAULT_REAL = REPO.parent / "shared" / "real-demos"
#: Share of the cases per target (the real recordings' share goes to ``demo`` without them).
SHARES = {"demo": 0.30, "demo-real": 0.10, "link": 0.40, "agents": 0.10, "side-channels": 0.10}
CHUNK = 1000
#: Reproducers kept per kind of escape (same target, exception type and place).
KEEP = 3


class CaseTimeout(BaseException):
    """A case ran past ``--case-timeout`` (a BaseException, so no ``except Exception`` in the
    code under test swallows it)."""


@dataclass
class Tally:
    """What the cases of one target gave."""

    cases: int = 0
    seconds: float = 0.0  # running the cases
    chunk_seconds: float = 0.0  # generating and running them
    valid_checked: int = 0
    slowest: float = 0.0
    kinds: collections.Counter = field(default_factory=collections.Counter)
    escapes: dict[str, list[str]] = field(default_factory=dict)  # kind of escape -> [first message, reproducer folders...]
    escape_count: collections.Counter = field(default_factory=collections.Counter)

    def add(self, other: Tally) -> None:
        self.cases += other.cases
        self.seconds += other.seconds
        self.chunk_seconds += other.chunk_seconds
        self.valid_checked += other.valid_checked
        self.slowest = max(self.slowest, other.slowest)
        self.kinds.update(other.kinds)
        self.escape_count.update(other.escape_count)
        for key, found in other.escapes.items():
            mine = self.escapes.setdefault(key, found[:1])
            mine += found[1:][: KEEP + 1 - len(mine)]


# ---------------------------------------------------------------------------------- workers

_WORKER: dict[str, object] = {}


def _init_worker(memory_limit_mb: int, real: str | None, scratch: str) -> None:
    if memory_limit_mb:
        limit = memory_limit_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    logging.disable(logging.WARNING)  # unknown side channels are logged as warnings, by design
    signal.signal(signal.SIGALRM, _on_alarm)
    _WORKER["workdir"] = Path(tempfile.mkdtemp(dir=scratch))
    _WORKER["real"] = fuzz_cases.real_sources(Path(real)) if real else []
    # Paid here rather than by the first case that needs them (so that the slowest case means something):
    # demo_to_trajectories loads imitation (and torch) on first use, the PNG bomb is built once.
    importlib.import_module("imitation.data.types")
    fuzz_cases.zlib_bomb(256 << 20)


def _on_alarm(signum: int, frame: object) -> None:
    raise CaseTimeout


def _where(exc: BaseException) -> str:
    """The innermost frame of the package in the traceback (else the innermost frame)."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if f"{os.sep}gym_unity_il{os.sep}" in f.filename] or frames
    f = ours[-1] if ours else None
    return f"{Path(f.filename).name}:{f.lineno}" if f else "?"


def _run_one(case: fuzz_cases.Case, tally: Tally, target: str, timeout: float, reproducers: Path) -> None:
    workdir = _WORKER["workdir"]
    start = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        tally.kinds[fuzz_cases.run_case(case, workdir)] += 1  # type: ignore[arg-type]
        error = None
    except CaseTimeout:
        error = TimeoutError(f"the case ran longer than {timeout} s")
    except Exception as exc:  # noqa: BLE001 - anything else is what the fuzzing looks for
        error = exc
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    elapsed = time.perf_counter() - start
    tally.cases += 1
    tally.seconds += elapsed
    tally.slowest = max(tally.slowest, elapsed)
    tally.valid_checked += case.expected is not None
    if error is None:
        return
    key = f"{type(error).__name__} at {_where(error)}"
    tally.kinds["ESCAPED"] += 1
    tally.escape_count[key] += 1
    found = tally.escapes.setdefault(key, [f"{type(error).__name__}: {str(error)[:300]}"])
    if len(found) <= KEEP:
        folder = reproducers / re.sub(r"[^\w.]+", "-", f"{target} {key} {os.getpid()} {tally.escape_count[key]}")
        details = "".join(traceback.format_exception(error))
        fuzz_cases.save_case(case, folder, note=details)
        found.append(str(folder))


def _run_chunk(target: str, seed: int, count: int, extra: int, timeout: float, reproducers: str) -> tuple[str, Tally]:
    """Runs about ``count`` cases of one target (one chunk of the work) in a worker."""
    tally = Tally()
    folder = Path(reproducers)
    start = time.perf_counter()
    if target == "demo-real":
        cases = fuzz_cases.real_demo_cases(_WORKER["real"], np.random.default_rng(seed))  # type: ignore[arg-type]
        for _ in range(count):
            _run_one(next(cases), tally, target, timeout, folder)
        tally.chunk_seconds = time.perf_counter() - start
        return target, tally
    strategy = {
        "demo": fuzz_cases.demo_cases(real=_WORKER["real"], extra=extra),  # type: ignore[arg-type]
        "link": fuzz_cases.link_cases(extra=extra),
        "agents": fuzz_cases.agent_cases(extra=extra),
        "side-channels": fuzz_cases.side_channel_cases(extra=extra),
    }[target]

    @hypothesis_seed(seed)
    @settings(max_examples=math.ceil(count / (1 + extra)), database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(strategy)
    def run(cases: list[fuzz_cases.Case]) -> None:
        for case in cases:
            _run_one(case, tally, target, timeout, folder)

    run()
    tally.chunk_seconds = time.perf_counter() - start
    return target, tally


# ---------------------------------------------------------------------------------- main


def _plan(cases: int, with_real: bool, seed: int) -> list[tuple[str, int, int]]:
    shares = dict(SHARES)
    if not with_real:
        shares["demo"] += shares.pop("demo-real")
    chunks = []
    for target, share in shares.items():
        total = round(cases * share)
        for k in range(math.ceil(total / CHUNK)):
            chunks.append((target, seed * 100_003 + 1_009 * k + len(chunks), min(CHUNK, total - k * CHUNK)))
    return chunks


def _report(tallies: dict[str, Tally], wall: float, jobs: int) -> bool:
    escaped = False
    total = sum(t.cases for t in tallies.values())
    print(f"\n{total} cases in {wall:.0f} s on {jobs} worker(s): {total / wall:.0f} cases/s overall\n")
    for target, t in tallies.items():
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(t.kinds.items(), key=lambda kv: (kv[0] != "result", kv[0])))
        rate, with_generation = t.cases / max(t.seconds, 1e-9), t.cases / max(t.chunk_seconds, 1e-9)
        print(f"{target}: {t.cases} cases, {rate:.0f} cases/s per core ({with_generation:.0f} counting their generation), "
              f"slowest case {t.slowest * 1e3:.0f} ms")  # fmt: skip
        print(f"  outcomes: {kinds}")
        print(f"  unmutated inputs checked against the arrays they were built from: {t.valid_checked}")
        for key, (message, *folders) in t.escapes.items():
            escaped = True
            print(f"  ESCAPED {t.escape_count[key]}x {key}: {message}")
            for folder in folders:
                print(f"    reproducer: {folder}  (rerun: python benchmarks/fuzz_inputs.py --replay {folder})")
    print("\nnothing escaped" if not escaped else "\nSOMETHING ESCAPED (see above)")
    return escaped


def _replay(folder: Path) -> int:
    case = fuzz_cases.load_case(folder)
    print(f"{case.target} case: {case.origin}")
    with tempfile.TemporaryDirectory() as workdir:
        print("outcome:", fuzz_cases.run_case(case, Path(workdir)))  # lets anything else escape with its traceback
    return 0


# ---------------------------------------------------------------------------------- memory


IMAGES = "hwc_uint8"


def _memory_case(folder: Path) -> None:
    """Decodes the saved case in this fresh process as the session does and prints its figures as JSON:
    first for time and resident memory, then again under tracemalloc."""
    import tracemalloc

    import psutil

    from gym_unity_il.errors import GymUnityILError

    logging.disable(logging.WARNING)
    case = fuzz_cases.load_case(folder)

    def decode() -> str:
        specs: dict = {}
        channels_first = False
        try:
            if case.prior is not None:
                _, channels_first = fuzz_cases.decode_message(case.prior, specs, handshake=True, channels_first=False, image_format=IMAGES)
            fuzz_cases.decode_message(case.data, specs, handshake=case.prior is None, channels_first=channels_first, image_format=IMAGES)
        except GymUnityILError as exc:
            return f"{type(exc).__name__} ({len(str(exc))} chars)"
        return "result"

    rss = psutil.Process().memory_info().rss
    status = Path("/proc/self/status")
    if status.exists():
        Path("/proc/self/clear_refs").write_text("5")  # Linux: the peak resident memory (VmHWM) starts again from here
    start = time.perf_counter()
    outcome = decode()
    seconds = time.perf_counter() - start
    if status.exists():
        peak_rss = int(re.search(r"VmHWM:\s+(\d+) kB", status.read_text()).group(1)) * 1024  # type: ignore[union-attr]
    else:
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    rss_growth = max(peak_rss - rss, 0)
    tracemalloc.start()
    decode()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(json.dumps({"bytes": len(case.data), "outcome": outcome, "seconds": seconds, "peak_traced": peak, "rss_growth": rss_growth}))


def _valid_case(label: str) -> fuzz_cases.Case:
    """A message of 10,000 agents with 8 floats each, after the handshake announcing them."""
    name = b"B?team=0"
    prior = fuzz_cases.message_bytes([fuzz_cases.brain_bytes("B?team=0")], {name: fuzz_cases.agent_bytes([0], (8,))}, handshake=True)
    data = fuzz_cases.message_bytes([], {name: fuzz_cases.agent_bytes(range(10_000), (8,))})
    return fuzz_cases.Case("link", data, origin=label, prior=prior)


def _memory() -> int:
    from gym_unity_il.protocol.agents import DECODE_BYTES_PER_BYTE, DECODE_FIXED_BYTES

    print(f"Hostile messages of Unity, each parsed and decoded as the session does in a fresh process. Bound the tests assert: "
          f"peak traced < {DECODE_FIXED_BYTES >> 20} MiB + {DECODE_BYTES_PER_BYTE} x N.\n")  # fmt: skip
    print(f"{'message':<46} {'N':>10}  {'outcome':<32} {'time':>7}  {'peak traced':>11} {'/N':>6}  {'RSS growth':>10} {'/N':>6}")
    with tempfile.TemporaryDirectory(prefix="fuzz-memory-") as scratch:
        cases = {label: fuzz_cases.hostile_link_case for label in fuzz_cases.HOSTILE_LINK_CASES}
        cases["valid, for comparison: 10k agents of 8 floats"] = _valid_case
        for label, build in cases.items():
            folder = Path(scratch) / re.sub(r"\W+", "-", label)
            fuzz_cases.save_case(build(label), folder)
            run = subprocess.run([sys.executable, __file__, "--memory-case", str(folder)], capture_output=True, text=True, check=True)
            f = json.loads(run.stdout.strip().splitlines()[-1])
            n = f["bytes"]
            print(f"{label:<46} {n:>10}  {f['outcome']:<32} {f['seconds'] * 1e3:>5.0f}ms  {f['peak_traced'] / 2**20:>7.1f} MiB {f['peak_traced'] / n:>6.1f}"
                  f"  {f['rss_growth'] / 2**20:>6.1f} MiB {f['rss_growth'] / n:>6.1f}")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000, help="cases in all (default 100000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the whole run (default 0)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="worker processes (default: 2)")
    parser.add_argument("--extra", type=int, default=4, help="numpy-mutated cases per hypothesis example (default 4)")
    parser.add_argument("--real-demos", type=Path, default=DEFAULT_REAL, help="folder of real .demo recordings (skipped when absent)")
    parser.add_argument("--reproducers", type=Path, default=Path("fuzz-reproducers"), help="where escaping inputs are saved")
    parser.add_argument("--case-timeout", type=float, default=20.0, help="seconds after which a case counts as a hang (default 20)")
    parser.add_argument("--memory-limit-mb", type=int, default=3072, help="address-space limit of each worker, 0 for none (default 3072)")
    parser.add_argument("--replay", type=Path, help="rerun one saved reproducer folder and show what escapes")
    parser.add_argument("--memory", action="store_true", help="measure what hostile messages of Unity allocate, instead of fuzzing")
    parser.add_argument("--memory-case", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.replay:
        return _replay(args.replay)
    if args.memory_case:
        _memory_case(args.memory_case)
        return 0
    if args.memory:
        return _memory()
    real = str(args.real_demos) if args.real_demos.is_dir() else None
    if real is None:
        print(f"no real recordings at {args.real_demos}: the demo-real target is skipped")
    chunks = _plan(args.cases, real is not None, args.seed)
    tallies = {target: Tally() for target in dict.fromkeys(c[0] for c in chunks)}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fuzz-") as scratch, concurrent.futures.ProcessPoolExecutor(
        args.jobs, initializer=_init_worker, initargs=(args.memory_limit_mb, real, scratch)
    ) as pool:
        futures = [pool.submit(_run_chunk, t, s, n, args.extra, args.case_timeout, str(args.reproducers)) for t, s, n in chunks]
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            target, tally = future.result()
            tallies[target].add(tally)
            print(f"\r{done}/{len(futures)} chunks", end="", file=sys.stderr, flush=True)
    return 1 if _report(tallies, time.perf_counter() - start, args.jobs) else 0


if __name__ == "__main__":
    sys.exit(main())
