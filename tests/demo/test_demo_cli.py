"""The ``gym-unity-il demo info`` command."""

from __future__ import annotations

from pathlib import Path

import pytest

from demo_helpers import image, spec_of, vector, write_episodes
from gym_unity_il.cli import build_parser, main


def test_demo_info_on_a_real_file(real_demos_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "info", str(real_demos_dir / "v1_unity_test.demo")]) == 0
    out = capsys.readouterr().out
    assert "era              1.0-1.6" in out
    assert "meta             steps 2144   episodes 22   mean reward 9.70017" in out
    assert "records          steps 2144   episodes 22 (21 done, 21 of them cut by max step)" in out
    assert "'3DBall?team=0'" in out and "continuous 2   discrete branches []" in out
    assert "obs_0: vector [8] -> [8] float32   min" in out


def test_demo_info_on_a_directory_of_written_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = spec_of(image(3, 4, 3, chw=True), vector(2, "speed"), branches=(3,))
    write_episodes(tmp_path / "a.demo", spec, [(3, "done"), (2, "open")])
    write_episodes(tmp_path / "b.demo", spec, [(4, "max_step")], close=False)
    assert main(["demo", "info", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.index("a.demo") < out.index("b.demo")
    assert "interrupted recording" in out
    assert "CameraSensor: image [3, 3, 4] CHW -> [3, 4, 3] uint8   min 0  max 255" in out
    assert "branch 0       counts" in out


def test_bad_input_exits_2_with_the_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "lfs.demo").write_bytes(b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 10\n")
    assert main(["demo", "info", str(tmp_path / "lfs.demo")]) == 2
    assert "git lfs pull" in capsys.readouterr().err
    assert main(["demo", "info", str(tmp_path / "missing.demo")]) == 2
    assert "no such" in capsys.readouterr().err


def test_parser_has_room_for_more_commands() -> None:
    parser = build_parser()
    args = parser.parse_args(["demo", "info", "x.demo"])
    assert (args.command, args.demo_command, args.path) == ("demo", "info", Path("x.demo"))
    with pytest.raises(SystemExit):
        parser.parse_args(["demo"])
