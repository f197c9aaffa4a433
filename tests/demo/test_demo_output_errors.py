"""Files that cannot be written: a disk that fills up, a read-only or missing folder, an
existing file. One clear error naming the file, the reason and the fix; the env, its
process and its port released; what was written so far readable."""

from __future__ import annotations

import errno
import gc
import os
import select
import subprocess
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import psutil
import pytest
from demo_helpers import spec_of, vector, write_episodes
from disks import fill, tmpfs
from processes import gone

from gym_unity_il.cli import main
from gym_unity_il.demo import DemoFormatWarning, DemoWriter, read_demo, record_episodes
from gym_unity_il.errors import OutputError
from gym_unity_il.scenes import expert_policy

BALL = {"num_agents": 1, "max_steps": 20}
SPEC = spec_of(vector(64), continuous=2)


def _one_traceback(exc: BaseException) -> bool:
    """Whether ``exc`` prints as one traceback (no "During handling of ..." chain)."""
    return "".join(traceback.format_exception(exc)).count("Traceback") == 1


def _complete_episode_returns(demo: Any) -> list[float]:
    ends = np.flatnonzero(demo.done)
    return [float(r.sum()) for r in np.split(demo.rewards[: ends[-1] + 1].astype(np.float64), ends[:-1] + 1)] if ends.size else []


def _write_until_full(writer: DemoWriter) -> tuple[list[int], OutputError]:
    written = []
    with pytest.raises(OutputError) as caught:
        for i in range(100_000):
            writer.write(np.full(64, i, np.float32), reward=1.0, done=i % 5 == 4, stored_continuous_action=[0.5, -0.5])
            written.append(i)
    return written, caught.value


# ---------------------------------------------------------------------------- DemoWriter


def test_a_disk_filling_up_is_one_error_and_the_file_keeps_every_whole_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with tmpfs(tmp_path / "disk", "size=16k") as disk:
        path = disk / "run.demo"
        writer = DemoWriter(path, behavior_spec=SPEC)
        written, error = _write_until_full(writer)
        message = str(error)
        assert message.startswith(f"cannot write {path}: No space left on device. ")
        assert f"holds the {len(written)} records written before the error ({len(written) // 5} episodes ended), with its final counters" in message
        assert message.endswith("Fix: free space on that disk, or write to a folder on another disk.")
        assert error.errno == errno.ENOSPC and isinstance(error, OSError) and _one_traceback(error)
        assert writer.closed
        writer.close()  # closing again does nothing
        unraisable: list[Any] = []
        monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
        del writer
        gc.collect()
        assert not unraisable  # no "Exception ignored in DemoWriter.__del__"
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no cut record, nothing after the records
            demo = read_demo(path)
        assert not demo.meta.interrupted and len(demo) == demo.meta.number_steps == len(written) > 10
        assert demo.meta.number_episodes == len(written) // 5 + 1 == int(demo.done.sum()) + 1
        np.testing.assert_array_equal(demo.observations[0][:, 0], written)


def test_a_full_disk_at_the_start_leaves_no_file(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "size=16k") as disk:
        fill(disk)
        with pytest.raises(OutputError, match=r"No space left on device\. Nothing was recorded and the file was removed\. Fix: free space") as caught:
            DemoWriter(disk / "run.demo", behavior_spec=SPEC)
        assert _one_traceback(caught.value)
        assert not (disk / "run.demo").exists()


@pytest.mark.parametrize(("name", "left"), [("run.demo", "Nothing was written."), ("new/run.demo", "Its folder {disk}/new could not be created.")])
def test_a_read_only_folder_is_one_error_naming_the_file(tmp_path: Path, name: str, left: str) -> None:
    with tmpfs(tmp_path / "disk", "ro,size=1m") as disk:
        with pytest.raises(OutputError) as caught:
            DemoWriter(disk / name, behavior_spec=SPEC)
        assert str(caught.value) == (f"cannot write {disk / name}: Read-only file system. {left.format(disk=disk)} "
                                     "Fix: that file system is mounted read-only: write to a folder on a writable disk.")  # fmt: skip
        assert caught.value.errno == errno.EROFS and _one_traceback(caught.value)


def test_missing_folders_of_the_path_are_created(tmp_path: Path) -> None:
    path = tmp_path / "new" / "deeper" / "run.demo"
    write_episodes(path, SPEC, [(3, "done")])
    assert len(read_demo(path)) == 3
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["new", "new/deeper", "new/deeper/run.demo"]


def test_a_file_in_the_way_of_the_folder_is_one_error(tmp_path: Path) -> None:
    (tmp_path / "notes").write_text("a file, not a folder")
    with pytest.raises(OutputError, match=r"cannot write .*notes/run\.demo: .* Fix: a part of the path is a file, not a folder: choose another path\."):
        DemoWriter(tmp_path / "notes" / "run.demo", behavior_spec=SPEC)


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_folder_in_place_of_the_file_is_one_error(tmp_path: Path, overwrite: bool) -> None:
    (tmp_path / "run.demo").mkdir()
    with pytest.raises(OutputError) as caught:
        DemoWriter(tmp_path / "run.demo", behavior_spec=SPEC, overwrite=overwrite)
    assert str(caught.value) == f"cannot write {tmp_path / 'run.demo'}: Is a directory. Nothing was written. Fix: the path is a folder: name a file in it."


def test_an_existing_file_names_both_ways_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "run.demo"
    write_episodes(path, SPEC, [(3, "done")])
    hint = "pass overwrite=True (--overwrite on the command line) to replace it, or choose another name"
    with pytest.raises(FileExistsError) as caught:
        DemoWriter(path, behavior_spec=SPEC)
    assert str(caught.value) == f"{path} already exists; {hint}"
    assert main(["demo", "record", str(path), "--scene", "ball", "--episodes", "1"]) == 2
    assert capsys.readouterr().err == f"gym-unity-il: error: {path} already exists; {hint}\n"
    assert len(read_demo(path)) == 3  # untouched


# ---------------------------------------------------------------------------- record_episodes on a built-in scene


def _ball() -> tuple[gym.Env, int, int]:
    env = gym.make("UnityIL-v0", scene="ball", scene_kwargs=BALL)
    session = env.unwrapped.session
    return env, session.process_id, session.port


def test_recording_onto_a_disk_that_fills_up_releases_the_scene_and_keeps_the_episodes(tmp_path: Path, assert_released) -> None:
    expert = expert_policy("ball")
    returns: list[float] = []
    with tmpfs(tmp_path / "disk", "size=16k") as disk:
        path = disk / "ball.demo"
        env, pid, port = _ball()
        with pytest.raises(OutputError) as caught:
            record_episodes(env, lambda obs: expert.predict(obs)[0], path, episodes=10_000, on_episode=lambda i, ret: returns.append(ret))
        assert str(caught.value).startswith(f"cannot write {path}: No space left on device. The file is closed and holds the ")
        assert _one_traceback(caught.value)
        assert gone(pid), "the scene process outlived the error"
        assert_released(port)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            demo = read_demo(path)
    assert len(demo) == demo.meta.number_steps and demo.meta.number_episodes == int(demo.done.sum()) + 1
    assert len(returns) >= 3  # several episodes fitted before the disk was full
    np.testing.assert_allclose(_complete_episode_returns(demo), returns, rtol=1e-5)  # every finished episode, in order


def test_recording_into_a_read_only_folder_releases_the_scene(tmp_path: Path, assert_released) -> None:
    with tmpfs(tmp_path / "disk", "ro,size=1m") as disk:
        env, pid, port = _ball()
        with pytest.raises(OutputError, match=r"Read-only file system") as caught:
            record_episodes(env, lambda obs: env.action_space.sample(), disk / "ball.demo", episodes=1)
        assert _one_traceback(caught.value)
    assert gone(pid)
    assert_released(port)


# ---------------------------------------------------------------------------- gym-unity-il demo record


def _scene_and_port(pid: int) -> tuple[int, int]:
    """The scene process the command launched and the port it listens on."""
    cli = psutil.Process(pid)
    scenes = [p for p in cli.children(recursive=True) if "gym_unity_il.scenes" in p.cmdline()]
    ports = {c.laddr.port for c in cli.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}
    assert len(scenes) == 1 and len(ports) == 1, (scenes, ports)
    return scenes[0].pid, ports.pop()


def test_the_command_on_a_disk_that_fills_up_prints_one_line_and_exits_2(tmp_path: Path, assert_released) -> None:
    with tmpfs(tmp_path / "disk", "size=16k") as disk:
        out = disk / "ball.demo"
        args = ["demo", "record", str(out), "--scene", "ball", "--episodes", "10000", "--scene-kwargs", '{"num_agents": 1, "max_steps": 20}']
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        cli = subprocess.Popen([sys.executable, "-m", "gym_unity_il.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
        try:
            assert select.select([cli.stdout], [], [], 60)[0], "no output within 60 s"
            first = cli.stdout.readline()  # the first episode is written: the scene runs
            assert first.startswith("episode 1/10000: return "), first + cli.stderr.read()
            scene, port = _scene_and_port(cli.pid)
            rest, err = cli.communicate(timeout=120)
        finally:
            cli.kill()
            cli.wait(10)
        assert cli.returncode == 2, err
        assert err.startswith(f"gym-unity-il: error: cannot write {out}: No space left on device. The file is closed and holds the ")
        assert err.count("\n") == 1 and "Traceback" not in err and "Exception ignored" not in err
        assert gone(scene)
        assert_released(port)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            demo = read_demo(out)
    printed = [float(line.rsplit(" ", 1)[1]) for line in (first + rest).splitlines()]
    np.testing.assert_allclose(_complete_episode_returns(demo), printed, rtol=1e-3)


def test_the_command_into_a_read_only_folder_prints_one_line_and_leaves_no_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with tmpfs(tmp_path / "disk", "ro,size=1m") as disk:
        assert main(["demo", "record", str(disk / "ball.demo"), "--scene", "ball", "--episodes", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"gym-unity-il: error: cannot write {disk / 'ball.demo'}: Read-only file system. ") and err.count("\n") == 1
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before and p.status() != psutil.STATUS_ZOMBIE]
    assert not left


def test_the_command_creates_the_missing_folder_of_its_file(tmp_path: Path) -> None:
    out = tmp_path / "out" / "ball.demo"
    assert main(["demo", "record", str(out), "--scene", "ball", "--episodes", "1", "--scene-kwargs", '{"num_agents": 1, "max_steps": 5}']) == 0
    assert int(read_demo(out).done.sum()) == 1


# ---------------------------------------------------------------------------- folders of .demo files


def test_a_symlink_loop_in_a_demo_folder_is_named_in_one_warning(tmp_path: Path) -> None:
    write_episodes(tmp_path / "a.demo", SPEC, [(3, "done")])
    (tmp_path / "self.demo").symlink_to("self.demo")
    (tmp_path / "ping.demo").symlink_to("pong.demo")
    (tmp_path / "pong.demo").symlink_to("ping.demo")
    with pytest.warns(DemoFormatWarning) as caught:
        demo = read_demo(tmp_path)
    assert len(demo) == 3
    assert len(caught) == 1
    message = str(caught[0].message)
    assert all(f"{tmp_path / name}" in message for name in ("self.demo", "ping.demo", "pong.demo")), message
    assert "symbolic link loop" in message.lower() or "too many levels of symbolic links" in message.lower()
