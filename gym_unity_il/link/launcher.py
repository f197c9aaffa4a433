"""Launching a Unity executable (or another player) the way Unity's own trainer does.

The argument vector follows protocol.md §3::

    <executable> [-nographics -batchmode] --mlagents-port <port> [-logFile <folder>/Player-<worker_id>.log] <extra args>

The child never outlives its owner. :class:`ChildProcess` ends it on :meth:`~ChildProcess.stop`,
when the :class:`ChildProcess` is garbage collected (``weakref.finalize``), at interpreter exit (which
also covers Ctrl+C: the child runs in its own session so the terminal's SIGINT does not
reach it, and Python's exit ends it), and, on Linux, when the parent dies without
cleaning up (``PR_SET_PDEATHSIG``, set by a short wrapper in the child before it ``exec``s
the program). The whole process
group is ended, so helper processes the executable starts go too.

Linux caveat: the parent-death signal follows the *thread* that started the child. Create
environments on a thread that lives as long as they do (normally the main thread).

:meth:`ChildProcess.owns_connection` tells whether a TCP connection on this machine belongs
to the child or one of its descendants (the session accepts only its own player's handshake).
"""

from __future__ import annotations

import glob
import ipaddress
import os
import signal
import subprocess
import sys
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil

from gym_unity_il.errors import UnityExecutableNotFoundError

_UNITY_SUFFIXES = (".app", ".exe", ".x86_64", ".x86")


def find_executable(file_name: str | os.PathLike[str]) -> Path:
    """Resolves a Unity build path per platform, like the reference trainer.

    The suffixes ``.app``, ``.exe``, ``.x86_64`` and ``.x86`` are stripped, then Linux tries
    ``<name>.x86_64``, ``<name>.x86`` and ``<name>``; macOS ``<name>.app/Contents/MacOS/<name>``
    then any file there; Windows ``<name>.exe`` then any ``.exe`` in the folder ``<name>``
    other than the crash handler.

    Raises:
        UnityExecutableNotFoundError: nothing executable was found; the message lists the
            paths tried.
    """
    path = str(Path(file_name).expanduser())
    base = path
    for suffix in _UNITY_SUFFIXES:
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    name = os.path.basename(base)
    if sys.platform == "darwin":
        candidates = [os.path.join(base + ".app", "Contents", "MacOS", name)]
        candidates += sorted(glob.glob(os.path.join(base + ".app", "Contents", "MacOS", "*")))
    elif sys.platform == "win32":
        candidates = [base + ".exe"]
        candidates += sorted(c for c in glob.glob(os.path.join(base, "*.exe")) if not os.path.basename(c).startswith("UnityCrashHandler"))
    else:
        candidates = [base + ".x86_64", base + ".x86", base]
    candidates.append(path)
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return Path(candidate)
    existing = [c for c in dict.fromkeys(candidates) if os.path.isfile(c)]
    if existing:
        raise UnityExecutableNotFoundError(
            f"Unity executable {existing[0]} is not executable: run `chmod +x {existing[0]}` (file_name={os.fspath(file_name)!r})"
        )
    tried = ", ".join(dict.fromkeys(candidates))
    raise UnityExecutableNotFoundError(
        f"no Unity executable found for file_name={os.fspath(file_name)!r} (tried {tried}); "
        "pass the path of a Unity player build made with the ML-Agents package, or scene=... for a built-in scene"
    )


def unity_arguments(
    *,
    port: int,
    worker_id: int = 0,
    no_graphics: bool = True,
    log_folder: str | os.PathLike[str] | None = None,
    additional_args: Sequence[object] = (),
) -> list[str]:
    """The flags passed to a Unity player, in the order of protocol.md §3. The port goes twice:
    ``--mlagents-port`` for ML-Agents 1.0 and later, ``--port`` for 0.x players
    (protocol-legacy.md §3); a player ignores the flag it does not know."""
    extra = [str(a) for a in additional_args]
    args: list[str] = []
    if no_graphics:
        args += ["-nographics", "-batchmode"]
    args += ["--mlagents-port", str(port), "--port", str(port)]
    if log_folder is not None and not any(a.lower() == "-logfile" for a in extra):
        args += ["-logFile", str(Path(log_folder) / f"Player-{worker_id}.log")]
    return args + extra


def environment_with_import_path() -> dict[str, str]:
    """This process's environment variables, with ``PYTHONPATH`` set to its import path, so a
    Python child (a built-in scene) can import what this interpreter can (``module:Class`` scenes)."""
    env = dict(os.environ)
    paths = [os.getcwd() if p == "" else p for p in sys.path if p == "" or os.path.isdir(p)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def log_file_from_arguments(args: Sequence[str]) -> Path | None:
    """The file after a ``-logFile`` flag (any case), or None."""
    for flag, value in zip(args, args[1:]):
        if flag.lower() == "-logfile":
            return Path(value)
    return None


#: Run by this interpreter in the child, before the real program replaces it (Linux): asks the
#: kernel to SIGKILL the child when the thread that started it dies, then ``exec``s the
#: program. A wrapper instead of ``preexec_fn``, which is unsafe with gRPC's threads running.
_PARENT_DEATH_WRAPPER = (
    "import ctypes, os, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    os._exit(1)  # the parent died before prctl took effect\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


def _with_parent_death_signal(args: list[str]) -> list[str]:
    """``args`` wrapped so that, on Linux, the child dies with its parent; unchanged elsewhere."""
    if not sys.platform.startswith("linux"):
        return args
    return [sys.executable, "-I", "-S", "-c", _PARENT_DEATH_WRAPPER, str(os.getpid()), *args]


def _end_process(popen: subprocess.Popen[bytes], timeout: float) -> None:
    """Waits up to ``timeout`` seconds for the child to exit, then kills its process group."""
    if popen.poll() is None and timeout > 0:
        try:
            popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    if sys.platform == "win32":
        if popen.poll() is None:
            popen.kill()
    else:
        try:
            os.killpg(popen.pid, signal.SIGKILL)  # the child leads its own group (new session)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        popen.wait(10)
    except subprocess.TimeoutExpired:  # pragma: no cover - a process stuck in the kernel
        pass


class OwnershipUnknown(Exception):
    """Which process owns a connection cannot be found out here; the message says why."""


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``host`` as an IP address (an IPv4-mapped IPv6 address as IPv4, no zone), None if it is none."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class ChildProcess:
    """A launched Unity executable or other player that ends with its owner.

    Args:
        args: the full argument vector (executable first).
        env: the child's environment variables (None: inherit).

    Raises:
        UnityExecutableNotFoundError: the executable cannot be started.
    """

    def __init__(self, *, args: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        self.args = [str(a) for a in args]
        self.log_file = log_file_from_arguments(self.args)
        popen_kwargs: dict[str, object] = {}
        if sys.platform == "win32":
            popen_kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
        else:
            popen_kwargs["start_new_session"] = True
        if not os.path.isfile(self.args[0]):
            raise UnityExecutableNotFoundError(f"cannot start {self.args[0]}: no such file")
        try:
            self._popen = subprocess.Popen(_with_parent_death_signal(self.args), stdin=subprocess.DEVNULL, env=dict(env) if env is not None else None, **popen_kwargs)  # type: ignore[call-overload]
        except OSError as exc:
            raise UnityExecutableNotFoundError(f"cannot start {self.args[0]}: {exc}") from exc
        self._finalizer = weakref.finalize(self, _end_process, self._popen, 0.0)

    @property
    def pid(self) -> int:
        return self._popen.pid

    def poll(self) -> int | None:
        """The exit code, or None while the process runs."""
        return self._popen.poll()

    def wait(self, timeout: float) -> int | None:
        """Waits up to ``timeout`` seconds for the process to exit; returns its exit code or None."""
        try:
            return self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def owns_connection(self, address: tuple[str, int], server_port: int) -> bool:
        """Whether this process or one of its descendants holds the TCP connection whose local
        end is ``address`` (host, port) and whose remote end is port ``server_port``.

        Raises:
            OwnershipUnknown: ``address`` is not a loopback address (the connection comes from
                another machine), or the operating system does not show the connections.
        """
        ip = _ip(address[0])
        if ip is None or not ip.is_loopback:
            raise OwnershipUnknown(f"{address[0]} is not a loopback address: the connection comes from another machine (host=...)")
        try:
            root = psutil.Process(self.pid)
            processes = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return False
        except psutil.Error as exc:
            raise OwnershipUnknown(f"the processes started by the trainer cannot be listed ({exc})") from exc
        hidden: Exception | None = None
        for process in processes:
            try:
                connections = process.net_connections(kind="inet")
            except psutil.NoSuchProcess:
                continue
            except (psutil.AccessDenied, NotImplementedError) as exc:
                hidden = exc
                continue
            for connection in connections:
                if (
                    connection.raddr
                    and connection.raddr.port == server_port
                    and connection.laddr.port == address[1]
                    and _ip(connection.laddr.ip) == ip
                ):
                    return True
        if hidden is not None:
            raise OwnershipUnknown(f"the operating system does not show the connections of a process started by the trainer ({hidden!r})")
        return False

    def stop(self, timeout: float = 0.0) -> int | None:
        """Gives the process ``timeout`` seconds to exit on its own, then kills it (idempotent).

        Returns:
            The exit code (negative: killed by that signal).
        """
        if self._finalizer.detach() is not None:
            _end_process(self._popen, timeout)
        return self._popen.poll()
