"""Shared pytest fixtures."""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Real Unity recordings, beside the checkout when present (never on a user's machine).
REAL_DEMOS = REPO_ROOT.parent / "shared" / "real-demos"
#: Whether imitation (the ``train`` extra) is installed: the core install runs without it.
HAS_IMITATION = importlib.util.find_spec("imitation") is not None


#: Test modules that train, run many processes or start Ray (most of their tests take over ten
#: seconds): marked ``slow``, so ``pytest -m "not slow"`` is the quick tier. CI runs everything.
SLOW_MODULES = {
    "tests/test_documented_flows.py",
    "tests/examples/test_main_job.py",
    "tests/envs/test_ppo_smoke.py",
    "tests/envs/test_ray_vec_env.py",
    "tests/envs/test_vec_env_learning.py",
    "tests/train/test_cli_signals.py",
    "tests/train/test_end_to_end.py",
    "tests/train/test_interrupts.py",
    "tests/train/test_restarts.py",
    "tests/train/test_trainer_matrix.py",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.relative_to(REPO_ROOT).as_posix() in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked ``imitation`` are skipped where only the core install is (the lighter CI run)."""
    if item.get_closest_marker("imitation") is not None and not HAS_IMITATION:
        pytest.skip("needs imitation, the train extra: pip install 'gym_unity_il[train]'")


@pytest.fixture(autouse=True, scope="session")
def _temporary_files_under_pytest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The temporary folder of this process and of the processes it starts is one of pytest's
    (which pytest prunes), so that what the code under test leaves there (a failed session keeps
    its log for the user to read) does not pile up in the system's."""
    folder = str(tmp_path_factory.mktemp("tmp"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TMPDIR", folder)
        patch.setattr(tempfile, "tempdir", folder)
        yield


@pytest.fixture
def real_demos_dir() -> Path:
    """The folder of real Unity `.demo` files; skips the test when it is absent."""
    if not REAL_DEMOS.is_dir():
        pytest.skip("real Unity recordings (../shared/real-demos) are not available")
    return REAL_DEMOS


@pytest.fixture
def assert_released():
    """A check that every process started since the fixture was set up has ended and that
    ``port`` can be listened on again at once (by a plain socket and by a new gRPC server)."""
    import psutil

    from gym_unity_il.link.server import check_port_free
    from gym_unity_il.link.transport import make_exchange_server

    before = {p.pid for p in psutil.Process().children(recursive=True)}

    def check(port: int) -> None:
        left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before and p.status() != psutil.STATUS_ZOMBIE]
        assert not left, f"processes left running: {[(p.pid, p.cmdline()) for p in left]}"
        check_port_free("127.0.0.1", port)
        make_exchange_server(port=port).close()

    return check


@pytest.fixture
def free_port() -> int:
    """A port nothing listens on right now (for tests that must name the port up front)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
