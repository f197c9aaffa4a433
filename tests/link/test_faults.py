"""Fault injection with real processes: what the trainer sees when the Unity side or the
trainer itself fails, that the error comes (no hang), and that nothing is left behind.

The faults already covered by tests/link/test_session.py (crash and hang mid-episode,
quitting like Unity, never connecting, incompatible versions, a missing executable, a port
in use, garbage collection, Ctrl+C while idle), tests/link/test_server.py (malformed and
oversized requests at the server) and tests/link/test_launcher.py are not repeated here.
docs/reliability.md lists every fault with the test that shows it.

Elapsed times are measured only as a hang check: an error must come before the configured
``timeout_wait`` plus a wide margin, never as a speed test.
"""

from __future__ import annotations

import ipaddress
import os
import re
import select
import signal
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest
from processes import gone

from gym_unity_il.cli import main
from gym_unity_il.demo import DemoFormatWarning, read_demo
from gym_unity_il.demo.writer import DemoWriter
from gym_unity_il.errors import UnityProcessExitedError, UnityProtocolError
from gym_unity_il.envs.source import open_session
from gym_unity_il.link.session import UnitySession
from gym_unity_il.spec import ActionSpec, BehaviorSpec, ObservationSpec

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux only")

#: timeout_wait of the sessions below: faults must be detected long before it.
TIMEOUT = 20.0
#: Seconds a process gets to end after a signal before the test fails.
EXIT_BOUND = 30.0


def _raises_the_fault(error: type[Exception], match: str, call: Callable[[], Any]) -> Exception:
    """Runs ``call``, which must raise ``error`` matching ``match``: the fault itself, not the
    ``UnityTimeoutError`` a session raises after ``timeout_wait`` when it waits in vain (a
    trainer that missed the fault and hung would end with that error, and fail here)."""
    with pytest.raises(error, match=match) as info:
        call()
    return info.value


def _fault_session(tmp_path: Path, fault: str, **kwargs: Any) -> UnitySession:
    return open_session(scene="ball", scene_kwargs={"num_agents": 1}, additional_args=["--fault", fault], timeout_wait=TIMEOUT,
                        log_folder=tmp_path, **kwargs)  # fmt: skip


def _read_line(stream: Any, timeout: float) -> str:
    """The next line of a child's text pipe, failing the test after ``timeout`` seconds."""
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, f"no output within {timeout} s"
    return stream.readline()


def _child_env(tmp_path: Path) -> dict[str, str]:
    """This interpreter's import path; temporary files (log folders an error keeps) under ``tmp_path``."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), TMPDIR=str(tmp_path))


def _listening(process: psutil.Process) -> list[Any]:
    """The local addresses ``process`` listens on (``net_connections`` from psutil 6, ``connections`` before)."""
    connections = getattr(process, "net_connections", None) or process.connections
    return [c.laddr for c in connections(kind="inet") if c.status == psutil.CONN_LISTEN]


def _scene_and_port(trainer_pid: int) -> tuple[int, int]:
    """The scene process a trainer launched and the port the trainer listens on."""
    trainer = psutil.Process(trainer_pid)
    scenes = [p for p in trainer.children(recursive=True) if "gym_unity_il.scenes" in p.cmdline()]
    ports = {address.port for address in _listening(trainer)}
    assert len(scenes) == 1 and len(ports) == 1, (scenes, ports)
    return scenes[0].pid, ports.pop()


# ---------------------------------------------------------------------------- the Unity side fails


def test_crash_at_reset_is_a_process_exited_error_quoting_the_log(tmp_path: Path, assert_released) -> None:
    session = _fault_session(tmp_path, "crash-at-reset:2")
    session.reset()
    session.step()
    _raises_the_fault(UnityProcessExitedError, r"exited with code 3.*Player-0\.log(.|\n)*crashing at reset 2", session.reset)
    assert session.closed
    assert "crashing at reset 2" in (tmp_path / "Player-0.log").read_text()  # the log is kept
    assert_released(session.port)


def test_crash_during_the_handshake_names_the_handshake_and_keeps_the_log(free_port: int, assert_released) -> None:
    error = _raises_the_fault(
        UnityProcessExitedError,
        r"exited with code 3 while the trainer was waiting for the second message of the handshake; see the log file",
        lambda: open_session(scene="ball", additional_args=["--fault", "crash-in-handshake"], base_port=free_port, auto_port=False,
                             timeout_wait=TIMEOUT),  # fmt: skip
    )
    log = Path(re.search(r"see the log file (\S+\.log)", str(error)).group(1))  # type: ignore[union-attr]
    try:
        assert "crashing between the two calls of the handshake" in log.read_text()  # a temporary log survives an error
    finally:
        log.unlink()
        log.parent.rmdir()
    assert_released(free_port)


def test_malformed_reply_is_a_protocol_error(tmp_path: Path, assert_released) -> None:
    session = _fault_session(tmp_path, "malformed-at-step:2")
    session.reset()
    session.step()
    _raises_the_fault(UnityProtocolError, r"not an ML-Agents message.*compatible version", session.step)
    assert session.closed
    assert_released(session.port)


def test_oversized_reply_is_refused_and_the_error_quotes_the_reason(tmp_path: Path, assert_released) -> None:
    # Normal messages pass the lowered limit; the 1 MiB one is refused by gRPC, the player
    # quits on the refusal and the trainer reports the exit with the log's last lines.
    session = _fault_session(tmp_path, "oversized-at-step:2", max_message_bytes=256 * 1024)
    session.reset()
    session.step()
    _raises_the_fault(UnityProcessExitedError, r"exited with code 0.*Player-0\.log(.|\n)*RESOURCE_EXHAUSTED", session.step)
    assert session.closed
    assert_released(session.port)


# ---------------------------------------------------------------------------- the trainer is stopped

TRAINER = """\
import gymnasium as gym
import gym_unity_il
env = gym.make("UnityIL-v0", scene="ball", scene_kwargs={"num_agents": 1, "max_steps": 50}, timeout_wait=20)
env.reset(seed=0)
env.action_space.seed(0)
print("stepping", flush=True)
while True:
    _, _, terminated, truncated, _ = env.step(env.action_space.sample())
    if terminated or truncated:
        env.reset()
"""


@posix_only
@pytest.mark.parametrize(
    "signum",
    [
        pytest.param(signal.SIGINT, id="SIGINT"),  # KeyboardInterrupt: the session closes itself
        # Python's default for SIGTERM and SIGKILL: the process ends at once, nothing of it
        # runs; only the parent-death signal ends the scene.
        pytest.param(signal.SIGTERM, id="SIGTERM", marks=linux_only),
        pytest.param(signal.SIGKILL, id="SIGKILL", marks=linux_only),
    ],
)
def test_trainer_stopped_by_a_signal_mid_step_leaves_no_process_and_a_free_port(tmp_path: Path, signum: int, assert_released) -> None:
    trainer = subprocess.Popen([sys.executable, "-c", TRAINER], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_child_env(tmp_path), text=True)
    try:
        assert _read_line(trainer.stdout, 60) == "stepping\n"
        scene, port = _scene_and_port(trainer.pid)
        trainer.send_signal(signum)
        _, err = trainer.communicate(timeout=EXIT_BOUND)
    finally:
        trainer.kill()
        trainer.wait(10)
    assert trainer.returncode == -signum  # (an uncaught KeyboardInterrupt ends Python by SIGINT too)
    if signum == signal.SIGINT:
        assert "KeyboardInterrupt" in err
    assert gone(scene, EXIT_BOUND), "the scene process outlived its trainer"
    assert_released(port)


@posix_only
@pytest.mark.parametrize("signum", [pytest.param(signal.SIGINT, id="SIGINT"), pytest.param(signal.SIGTERM, id="SIGTERM")])
def test_interrupted_cli_recording_keeps_every_complete_episode(tmp_path: Path, signum: int, assert_released) -> None:
    out = tmp_path / "interrupted.demo"
    args = ["demo", "record", str(out), "--scene", "ball", "--episodes", "100000", "--scene-kwargs", '{"num_agents": 1, "max_steps": 20}']
    cli = subprocess.Popen([sys.executable, "-m", "gym_unity_il.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=_child_env(tmp_path), text=True)  # fmt: skip
    try:
        first = _read_line(cli.stdout, 60)
        assert first.startswith("episode 1/100000: return ")
        scene, port = _scene_and_port(cli.pid)
        cli.send_signal(signum)
        rest, err = cli.communicate(timeout=EXIT_BOUND)
    finally:
        cli.kill()
        cli.wait(10)
    assert cli.returncode == 130, err
    lines = (first + rest).splitlines()
    printed = [float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith("episode ")]
    summary = re.fullmatch(r"interrupted: .* holds (\d+) complete episodes in (\d+) records .*", lines[-1])
    assert summary is not None, lines[-1]
    assert gone(scene, EXIT_BOUND), "the scene process outlived the command"
    assert_released(port)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no partial record, nothing past the records
        demo = read_demo(out)
    assert not demo.meta.interrupted  # closed: the final counters are written
    assert demo.meta.number_steps == len(demo) == int(summary.group(2))
    returns = _complete_episode_returns(demo)
    assert len(returns) == int(summary.group(1)) == demo.meta.number_episodes - 1
    assert len(returns) in (len(printed), len(printed) + 1)  # +1: interrupted between an episode's end and its line
    np.testing.assert_allclose(returns[: len(printed)], printed, rtol=1e-3)  # none lost, in order


RECORDER = """\
import sys
import gymnasium as gym
import gym_unity_il
from gym_unity_il.demo import record_episodes
env = gym.make("UnityIL-v0", scene="ball", scene_kwargs={"num_agents": 1, "max_steps": 20}, timeout_wait=20)
env.action_space.seed(0)
record_episodes(env, lambda obs: env.action_space.sample(), sys.argv[1], episodes=100000, on_episode=lambda i, ret: print(ret, flush=True))
"""


@linux_only
@pytest.mark.parametrize("signum", [pytest.param(signal.SIGTERM, id="SIGTERM"), pytest.param(signal.SIGKILL, id="SIGKILL")])
def test_library_recording_ended_without_cleanup_leaves_a_readable_interrupted_file(tmp_path: Path, signum: int, assert_released) -> None:
    out = tmp_path / "killed.demo"
    recorder = subprocess.Popen([sys.executable, "-c", RECORDER, str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=_child_env(tmp_path), text=True)  # fmt: skip
    try:
        first = _read_line(recorder.stdout, 60)
        scene, port = _scene_and_port(recorder.pid)
        recorder.send_signal(signum)
        rest, _ = recorder.communicate(timeout=EXIT_BOUND)
    finally:
        recorder.kill()
        recorder.wait(10)
    assert recorder.returncode == -signum  # no handler: Python ends at once, nothing is closed
    assert gone(scene, EXIT_BOUND), "the scene process outlived the recorder"
    assert_released(port)
    printed = [float(line) for line in (first + rest).splitlines()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DemoFormatWarning)  # the kill may cut the last record short
        demo = read_demo(out)
    assert demo.meta.interrupted  # never closed: counters 0, records read to the end
    returns = _complete_episode_returns(demo)
    assert len(returns) >= len(printed) >= 1
    np.testing.assert_allclose(returns[: len(printed)], printed, rtol=1e-6)  # every flushed episode is there


def _complete_episode_returns(demo: Any) -> list[float]:
    """The return of each episode of ``demo`` that has its ``done`` record, in order."""
    ends = np.flatnonzero(demo.done)
    if not ends.size:
        return []
    return [float(r.sum()) for r in np.split(demo.rewards[: ends[-1] + 1].astype(np.float64), ends[:-1] + 1)]


def test_the_command_line_gives_sigterm_back_after_running(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGTERM)
    assert main(["demo", "info", str(tmp_path / "missing.demo")]) == 2
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is the command's, not the library's


# ---------------------------------------------------------------------------- a .demo file interrupted mid-write


class _SigintAfter:
    """A file whose ``method`` delivers a real SIGINT to this process right after running:
    Ctrl+C landing between the writer's file call and its bookkeeping."""

    def __init__(self, file: Any, method: str) -> None:
        self._file, self._method = file, method

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._file, name)
        if name != self._method:
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attribute(*args, **kwargs)
            signal.raise_signal(signal.SIGINT)
            return result

        return call


@posix_only
@pytest.mark.parametrize(("edit", "method", "records"), [("write", "flush", 4), ("interrupt_episode", "truncate", 3), ("rollback", "truncate", 3)])
def test_ctrl_c_inside_a_demo_file_edit_leaves_a_file_that_matches_its_meta(tmp_path: Path, edit: str, method: str, records: int) -> None:
    spec = BehaviorSpec("Probe?team=0", (ObservationSpec((3,), name="v"),), ActionSpec(1))
    writer = DemoWriter(tmp_path / "cut.demo", behavior_spec=spec)
    for i in range(3):
        writer.write(np.full(3, i, np.float32), reward=1.0, done=i == 1, stored_continuous_action=[0.5])
    mark = writer.checkpoint()
    writer.write(np.full(3, 3, np.float32), reward=1.0, stored_continuous_action=[0.5])
    real_file = writer._file
    writer._file = _SigintAfter(real_file, method)
    with pytest.raises(KeyboardInterrupt):
        if edit == "write":
            writer.write(np.full(3, 4, np.float32), reward=1.0, stored_continuous_action=[0.5])
        elif edit == "interrupt_episode":
            writer.interrupt_episode()
        else:
            writer.rollback(mark)
    writer._file = real_file
    writer.close()  # what record_episodes' finally does after Ctrl+C
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        demo = read_demo(tmp_path / "cut.demo")
    assert len(demo) == demo.meta.number_steps == records
    assert demo.meta.number_episodes == int(demo.done.sum()) + 1
    np.testing.assert_array_equal(demo.observations[0][:, 0], np.arange(records))


# ---------------------------------------------------------------------------- safe defaults


def _loopback(ip: str) -> bool:
    """Whether ``ip`` is a loopback address (gRPC may bind 127.0.0.1 as the IPv4-mapped ::ffff:127.0.0.1)."""
    address = ipaddress.ip_address(ip)
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def test_the_server_listens_on_loopback_only_by_default(assert_released) -> None:
    session = open_session(scene="ball", timeout_wait=TIMEOUT)
    try:
        listening = [address for address in _listening(psutil.Process()) if address.port == session.port]
    finally:
        session.close()
    assert listening and all(_loopback(address.ip) for address in listening), listening
    assert_released(session.port)
