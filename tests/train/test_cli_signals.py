"""``gym-unity-il`` under a barrage of SIGINTs or SIGTERMs (as from a user pressing Ctrl+C
again and again, or a process manager repeating its stop signal): one clean shutdown,
exit status 130, Unity processes ended, files complete. Real child processes; each waits
for a line showing the command is at work before the signals start."""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml
from processes import gone

from gym_unity_il.demo import read_demo
from gym_unity_il.train import train
from train_helpers import tiny

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
SIGNALS = [pytest.param(signal.SIGINT, id="SIGINT"), pytest.param(signal.SIGTERM, id="SIGTERM")]
#: Seconds the command gets to start working, and to end once signalled (bounds, not speed tests).
START_BOUND, EXIT_BOUND = 120.0, 60.0


def _start(args: list[str], tmp_path: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), TMPDIR=str(tmp_path), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "gym_unity_il.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def _wait_for(child: subprocess.Popen, stream: str, marker: bytes) -> None:
    """Reads the child's ``stream`` until ``marker`` appears (the command is at work)."""
    pipe = getattr(child, stream)
    seen = b""
    deadline = time.monotonic() + START_BOUND
    with selectors.DefaultSelector() as selector:
        selector.register(pipe, selectors.EVENT_READ)
        while marker not in seen:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(timeout=left):
                pytest.fail(f"no {marker!r} within {START_BOUND} s: {seen[-2000:]!r}")
            chunk = os.read(pipe.fileno(), 65536)
            if not chunk:
                pytest.fail(f"the command exited ({child.wait()}) before {marker!r}: {seen[-2000:]!r}")
            seen += chunk


def _barrage(child: subprocess.Popen, signum: int) -> tuple[bytes, bytes]:
    """Sends ``signum`` three times at once, then again every few milliseconds until the
    child exits (so signals also land during its cleanup); returns its outputs."""
    for _ in range(3):
        child.send_signal(signum)
    deadline = time.monotonic() + EXIT_BOUND
    while child.poll() is None:
        assert time.monotonic() < deadline, "the command did not end after the signals"
        child.send_signal(signum)
        try:
            child.wait(timeout=0.005)  # polls for the exit between signals
        except subprocess.TimeoutExpired:
            pass
    return child.communicate(timeout=EXIT_BOUND)


def _scenes(pid: int) -> list[int]:
    return [p.pid for p in psutil.Process(pid).children(recursive=True) if "gym_unity_il.scenes" in " ".join(p.cmdline())]


@posix_only
@pytest.mark.parametrize("signum", SIGNALS)
def test_train_exits_with_130_and_a_checkpoint_however_many_signals_arrive(tmp_path: Path, ball_demo: Path, signum: int) -> None:
    config = tmp_path / "bc.yaml"
    section = tiny(ball_demo, trainer="offline_bc", num_epoch=None, max_steps=10**8, summary_freq=640, eval_episodes=1)
    config.write_text(yaml.safe_dump({"default": section}))
    results, scene_kwargs = tmp_path / "results", {"max_steps": 50, "num_agents": 2}
    child = _start(["train", str(config), "--run-id", "r", "--results-dir", str(results), "--scene", "ball", "--scene-kwargs", json.dumps(scene_kwargs)], tmp_path)
    try:
        _wait_for(child, "stderr", b"ret=")  # the progress bar shows a return: training, a row written
        scenes = _scenes(child.pid)
        out, err = _barrage(child, signum)
    finally:
        child.kill()
        child.wait(10)
    assert child.returncode == 130, err.decode(errors="replace")[-3000:]
    assert b"interrupted: checkpoint saved" in out and b"Traceback" not in err
    assert scenes and all(gone(pid, EXIT_BOUND) for pid in scenes)
    assert not list(tmp_path.glob("gym_unity_il-*"))  # the sessions were closed (which deletes their temporary log folders)
    state = json.loads((results / "r" / "checkpoint" / "state.json").read_text())
    assert state["phase_name"] == "bc" and not (results / "r" / "checkpoint.tmp").exists()

    section["max_steps"] = state["metrics_rows"] * 640 + 640  # the checkpoint is whole: the run goes on from it
    config.write_text(yaml.safe_dump({"default": section}))
    result = train(config, run_id="r", results_dir=results, scene="ball", scene_kwargs=scene_kwargs, resume=True, progress=False)
    assert not result.interrupted and (results / "r" / "evaluation.json").is_file()


@posix_only
@pytest.mark.parametrize("signum", SIGNALS)
def test_demo_record_exits_with_130_and_a_whole_file_however_many_signals_arrive(tmp_path: Path, signum: int) -> None:
    out_file = tmp_path / "expert.demo"
    child = _start(["demo", "record", str(out_file), "--scene", "ball", "--episodes", "100000", "--scene-kwargs", '{"num_agents": 1, "max_steps": 20}'], tmp_path)
    try:
        _wait_for(child, "stdout", b"episode 1/100000: return ")
        scenes = _scenes(child.pid)
        out, err = _barrage(child, signum)
    finally:
        child.kill()
        child.wait(10)
    assert child.returncode == 130, err.decode(errors="replace")[-3000:]
    assert b"Traceback" not in err
    summary = re.search(rb"interrupted: .* holds (\d+) complete episodes in (\d+) records", out)
    assert summary is not None, out[-2000:]
    assert scenes and all(gone(pid, EXIT_BOUND) for pid in scenes)
    assert not list(tmp_path.glob("gym_unity_il-*"))  # the sessions were closed (which deletes their temporary log folders)
    demo = read_demo(out_file)
    assert not demo.meta.interrupted and demo.meta.number_steps == len(demo) == int(summary.group(2))
