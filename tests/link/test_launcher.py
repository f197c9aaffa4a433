"""Launching executables: lookup, arguments, and children that never outlive their owner."""

from __future__ import annotations

import gc
import os
import select
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from processes import gone

from gym_unity_il.errors import UnityExecutableNotFoundError
from gym_unity_il.link.launcher import ChildProcess, OwnershipUnknown, find_executable, log_file_from_arguments, unity_arguments

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux executable names and PR_SET_PDEATHSIG")


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _group_members(pgid: int) -> list[int]:
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc.pid)
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass
    return members


@linux_only
def test_build_is_found_with_or_without_its_suffix(tmp_path: Path) -> None:
    build = _script(tmp_path / "Game.x86_64", "exit 0\n")
    assert find_executable(tmp_path / "Game") == build
    assert find_executable(str(build)) == build
    assert find_executable(tmp_path / "Game.exe") == build  # suffixes are re-resolved per platform


def test_missing_build_names_the_paths_tried(tmp_path: Path) -> None:
    with pytest.raises(UnityExecutableNotFoundError, match=r"Nowhere.*tried.*Nowhere"):
        find_executable(tmp_path / "Nowhere")


@linux_only
def test_a_build_without_execute_permission_says_chmod(tmp_path: Path) -> None:
    (tmp_path / "Game.x86_64").write_text("#!/bin/sh\n")
    with pytest.raises(UnityExecutableNotFoundError, match="chmod"):
        find_executable(tmp_path / "Game")


def test_arguments_follow_the_reference_order(tmp_path: Path) -> None:
    args = unity_arguments(port=5007, worker_id=2, no_graphics=True, log_folder=tmp_path, additional_args=["-screen-width", 100])
    assert args == ["-nographics", "-batchmode", "--mlagents-port", "5007", "--port", "5007", "-logFile", str(tmp_path / "Player-2.log"), "-screen-width", "100"]
    assert log_file_from_arguments(args) == tmp_path / "Player-2.log"
    user_log = unity_arguments(port=5005, no_graphics=False, log_folder=tmp_path, additional_args=["-LOGFILE", "mine.log"])
    assert user_log == ["--mlagents-port", "5005", "--port", "5005", "-LOGFILE", "mine.log"]
    assert log_file_from_arguments(user_log) == Path("mine.log")


def _read_fifo(path: Path, timeout: float) -> str:
    """What a process writes into the FIFO at ``path``, waiting at most ``timeout`` seconds."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        assert ready, f"nothing written to {path} within {timeout} s"
        return os.read(fd, 100).decode()
    finally:
        os.close(fd)


@linux_only
def test_stop_ends_the_whole_process_group(tmp_path: Path) -> None:
    fifo = tmp_path / "grandchild.pid"
    os.mkfifo(fifo)
    build = _script(tmp_path / "build.sh", f"sleep 60 &\necho $! > {fifo}\nwait\n")
    child = ChildProcess(args=[str(build)])
    grandchild = int(_read_fifo(fifo, 10))
    assert child.poll() is None and _running(grandchild)
    code = child.stop()
    assert code == -signal.SIGKILL
    assert gone(child.pid) and gone(grandchild) and not _group_members(child.pid)
    assert child.stop() == code  # idempotent


def test_garbage_collection_ends_the_child(tmp_path: Path) -> None:
    build = _script(tmp_path / "build.sh", "exec sleep 60\n")
    child = ChildProcess(args=[str(build)])
    pid = child.pid
    del child
    gc.collect()
    assert gone(pid)


def test_a_file_that_vanished_is_reported_before_starting(tmp_path: Path) -> None:
    with pytest.raises(UnityExecutableNotFoundError, match="no such file"):
        ChildProcess(args=[str(tmp_path / "gone")])


@linux_only
def test_child_dies_with_a_killed_parent(tmp_path: Path) -> None:
    build = _script(tmp_path / "build.sh", "exec sleep 60\n")
    parent_code = (
        "import sys, threading\n"
        "from gym_unity_il.link.launcher import ChildProcess\n"
        f"child = ChildProcess(args=[{str(build)!r}])\n"
        "print(child.pid, flush=True)\n"
        "threading.Event().wait()\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE, env=env, text=True)
    try:
        child_pid = int(parent.stdout.readline())  # type: ignore[union-attr]
        assert _running(child_pid)
        parent.kill()  # SIGKILL: no atexit, no finalizers; only the kernel can end the child
        parent.wait(10)
        assert gone(child_pid)
    finally:
        parent.kill()
        parent.wait(10)


def test_owns_connection_tells_the_childs_connections_from_others() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    server_port = listener.getsockname()[1]
    child = ChildProcess(args=[sys.executable, "-c", f"import socket; socket.create_connection(('127.0.0.1', {server_port})).recv(1)"])
    own = socket.create_connection(("127.0.0.1", server_port))  # this process's connection, not the child's
    accepted: list[tuple[socket.socket, tuple[str, int]]] = []
    try:
        listener.settimeout(20)
        accepted += [listener.accept() for _ in range(2)]
        [(theirs, child_end)] = [(conn, addr) for conn, addr in accepted if addr != own.getsockname()]
        assert child.owns_connection(child_end, server_port)
        assert child.owns_connection((f"::ffff:{child_end[0]}", child_end[1]), server_port)  # IPv4-mapped form
        assert not child.owns_connection(own.getsockname(), server_port)
        assert not child.owns_connection(child_end, server_port + 1)
        with pytest.raises(OwnershipUnknown, match="192.0.2.7 is not a loopback address: the connection comes from another machine"):
            child.owns_connection(("192.0.2.7", child_end[1]), server_port)
        theirs.close()  # the child's recv() returns and it exits
        assert child.wait(20) == 0
        assert not child.owns_connection(child_end, server_port)  # an ended process owns nothing
    finally:
        for conn, _ in accepted:
            conn.close()
        own.close()
        listener.close()
        child.stop()
