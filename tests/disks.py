"""Small file systems for the tests of full and read-only disks: tmpfs mounts (Linux, root)."""

from __future__ import annotations

import contextlib
import errno
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def tmpfs(where: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted on ``where`` (created) with ``options`` (``size=16k``, ``ro,size=1m``)
    for the block, unmounted afterwards; skips the test where mounting is not possible."""
    mount = shutil.which("mount")
    if not sys.platform.startswith("linux") or mount is None:
        pytest.skip("tmpfs mounts need Linux and mount(8)")
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([mount, "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here (root needed): {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)  # fails if a file on it is still open


def fill(folder: Path) -> None:
    """Fills the file system of ``folder`` to the last byte (a file named ``filler``)."""
    with (folder / "filler").open("wb", buffering=0) as f:
        try:
            while True:
                f.write(bytes(4096))
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
        with contextlib.suppress(OSError):
            while f.write(b"\0"):  # the last bytes of a partly filled page
                pass
