"""Exporting into a folder that cannot take the model: a full disk, a read-only or missing
folder. One clear error naming the file, the reason and the fix; nothing half-written left,
an older model kept."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
import torch
from disks import fill, tmpfs

from gym_unity_il.cli import main
from gym_unity_il.errors import OutputError
from gym_unity_il.export import check_model, export_onnx
from gym_unity_il.spec import ActionSpec, BehaviorSpec, ObservationSpec

SPEC = BehaviorSpec("Behavior?team=0", (ObservationSpec((8,), channels_first=True),), ActionSpec(2))
SPEC_JSON = '{"observations": [[8]], "continuous": 2}'


@pytest.fixture(scope="module")
def policy():  # type: ignore[no-untyped-def]
    """An untrained SB3 policy of SPEC's spaces (the export needs weights, not skill)."""
    from stable_baselines3.common.policies import ActorCriticPolicy

    torch.manual_seed(0)
    return ActorCriticPolicy(SPEC.observation_space(), SPEC.action_space(), lambda _: 1e-3, net_arch=[16])


def _one_traceback(exc: BaseException) -> bool:
    return "".join(traceback.format_exception(exc)).count("Traceback") == 1


def test_a_full_disk_is_one_error_and_keeps_the_older_model(policy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with tmpfs(tmp_path / "disk", "size=16k") as disk:
        out = disk / "model.onnx"
        out.write_bytes(b"the older model")
        fill(disk)
        with pytest.raises(OutputError) as caught:
            export_onnx(policy, out, SPEC)
        assert str(caught.value) == (f"cannot write {out}: No space left on device. The model was not written (an older file there "
                                     "stays as it was). Fix: free space on that disk, or write to a folder on another disk.")  # fmt: skip
        assert caught.value.errno == errno.ENOSPC and _one_traceback(caught.value)
        assert out.read_bytes() == b"the older model"
        assert sorted(p.name for p in disk.iterdir()) == ["filler", "model.onnx"]  # no half-written draft


@pytest.mark.parametrize(("name", "left"), [("model.onnx", "The model was not written (an older file there stays as it was)."),
                                            ("new/model.onnx", "Its folder {disk}/new could not be created.")])  # fmt: skip
def test_a_read_only_folder_is_one_error_naming_the_file(policy, tmp_path: Path, name: str, left: str) -> None:  # type: ignore[no-untyped-def]
    with tmpfs(tmp_path / "disk", "ro,size=1m") as disk:
        with pytest.raises(OutputError) as caught:
            export_onnx(policy, disk / name, SPEC, parity_check=False)
        assert str(caught.value) == (f"cannot write {disk / name}: Read-only file system. {left.format(disk=disk)} "
                                     "Fix: that file system is mounted read-only: write to a folder on a writable disk.")  # fmt: skip
        assert _one_traceback(caught.value)


def test_missing_folders_of_the_path_are_created(policy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "new" / "deeper" / "model.onnx"
    export_onnx(policy, out, SPEC, parity_check=False)
    assert check_model(out, SPEC) == []
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["new", "new/deeper", "new/deeper/model.onnx"]


def test_the_command_on_a_full_disk_prints_one_line_and_exits_2(policy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    policy.save(str(tmp_path / "policy.pt"))
    with tmpfs(tmp_path / "disk", "size=16k") as disk:
        fill(disk)
        out = disk / "model.onnx"
        args = ["export", str(tmp_path / "policy.pt"), "--algo", "policy", "--out", str(out), "--behavior-spec", SPEC_JSON]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        done = subprocess.run([sys.executable, "-m", "gym_unity_il.cli", *args], capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 2, done.stderr
        assert done.stderr == f"gym-unity-il: error: cannot write {out}: No space left on device. The model was not written " \
                              "(an older file there stays as it was). Fix: free space on that disk, or write to a folder on another disk.\n"
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]


def test_the_command_into_a_read_only_folder_exits_2(policy, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    policy.save(str(tmp_path / "policy.pt"))
    with tmpfs(tmp_path / "disk", "ro,size=1m") as disk:
        out = disk / "model.onnx"
        assert main(["export", str(tmp_path / "policy.pt"), "--algo", "policy", "--out", str(out), "--behavior-spec", SPEC_JSON]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"gym-unity-il: error: cannot write {out}: Read-only file system. ") and err.count("\n") == 1
