"""Where a run writes and when it refuses to: run ids are plain names, results stay in the
results folder, ``force`` deletes only a run folder, a run that fails before training
leaves nothing behind, and a results folder that cannot be written is one clear error."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import psutil
import pytest
import yaml
from disks import tmpfs

from gym_unity_il.cli import main
from gym_unity_il.errors import ConfigError, OutputError, SpecMismatchError
from gym_unity_il.train import parse_config, train, train_dagger, train_online
from train_helpers import tiny

SCENE = {"scene": "ball", "scene_kwargs": {"max_steps": 50, "num_agents": 2}, "progress": False}
CLI_SCENE = ["--scene", "ball", "--scene-kwargs", '{"max_steps": 50, "num_agents": 2}']
BAD_RUN_IDS = ["../escape", "/abs/path", "a/../../x", "a/b", ".", "..", "", "x" * 101, "a..b", "tab\tname", "new\nline", "ünï"]


def _config(demo: Path, **overrides: object):
    return parse_config({"default": tiny(demo, trainer="offline_bc", num_epoch=1, eval_episodes=1, **overrides)}, source="c.yaml")


def _config_file(tmp_path: Path, demo: Path, **overrides: object) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"default": tiny(demo, trainer="offline_bc", num_epoch=1, eval_episodes=1, **overrides)}))
    return str(path)


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.parametrize("run_id", BAD_RUN_IDS)
def test_a_run_id_that_is_not_a_plain_name_is_refused_and_nothing_is_written(tmp_path: Path, ball_demo: Path, run_id: str, capsys) -> None:
    results = tmp_path / "a" / "results"
    with pytest.raises(ConfigError, match=r"run id .*: a run id is a plain folder name of 1 to 100 letters, digits, '\.', '_' and '-', without '/' or '\.\.'"):
        train(_config(ball_demo), run_id=run_id, results_dir=results, **SCENE)
    assert main(["train", _config_file(tmp_path, ball_demo), "--run-id", run_id, "--results-dir", str(results), *CLI_SCENE]) == 2
    assert "a run id is a plain folder name" in capsys.readouterr().err
    assert _files(tmp_path) == {"c.yaml"}  # not even the results folder


@pytest.mark.parametrize("trainer", ["online_bc", "dagger"])
def test_live_trainers_called_directly_refuse_bad_run_ids_and_used_ones(tmp_path: Path, trainer: str) -> None:
    run = {"online_bc": train_online, "dagger": train_dagger}[trainer]
    config = parse_config({"default": {"trainer": trainer, "teacher": "expert", "brain_to_imitate": "Teacher"}})
    results = tmp_path / "results"
    for bad in ("../escape", "/abs/path", "a/../../x"):
        with pytest.raises(ConfigError, match="a run id is a plain folder name"):
            run(config, run_id=bad, results_dir=results)
    (results / "used").mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"already exists; pass force=True \(--force on the command line\)"):
        run(config, run_id="used", results_dir=results)
    assert _files(tmp_path) == {"results", "results/used"}  # nothing written outside, nothing in the used folder


def test_a_run_folder_that_links_outside_the_results_is_refused(tmp_path: Path, ball_demo: Path) -> None:
    results, outside = tmp_path / "results", tmp_path / "outside"
    results.mkdir()
    outside.mkdir()
    (results / "linked").symlink_to(outside)
    with pytest.raises(ConfigError, match=r"linked exists and is not a run folder \(a file or a symbolic link\)"):
        train(_config(ball_demo), run_id="linked", results_dir=results, force=True, **SCENE)
    assert not train(_config(ball_demo), run_id="r", results_dir=results, **SCENE).interrupted
    shutil.rmtree(results / "r" / "checkpoint")
    (results / "r" / "checkpoint").symlink_to(outside)
    with pytest.raises(ConfigError, match=r"r/checkpoint is a symbolic link; a run writes only inside its own folder"):
        train(_config(ball_demo), run_id="r", results_dir=results, resume=True, **SCENE)
    assert _files(outside) == set()


def test_an_existing_run_needs_resume_or_force_and_force_deletes_only_a_run_folder(tmp_path: Path, ball_demo: Path, capsys) -> None:
    results = tmp_path / "results"
    cli = ["train", _config_file(tmp_path, ball_demo), "--run-id", "r", "--results-dir", str(results), *CLI_SCENE]
    assert main(cli) == 0
    first = (results / "r" / "metrics.csv").read_text()
    assert main(cli) == 2  # finished, with a checkpoint: both ways on are named
    err = capsys.readouterr().err
    assert "r already exists; pass resume=True (--resume on the command line) to continue it, force=True (--force on the command line)" in err
    assert main([*cli, "--resume", "--force"]) == 2
    assert "give resume=True (--resume on the command line) or force=True (--force on the command line), not both" in capsys.readouterr().err

    (results / "r" / "metrics.csv").write_text(first + "bc,99999,1,0\n")
    assert main([*cli, "--force"]) == 0
    assert (results / "r" / "metrics.csv").read_text().count("\n") == first.count("\n")  # started anew: the old rows are gone

    (results / "r" / "notes.txt").write_text("mine")
    assert main([*cli, "--force"]) == 2
    assert "holds 'notes.txt', which no run writes, so force=True (--force on the command line) does not delete it" in capsys.readouterr().err
    assert (results / "r" / "notes.txt").read_text() == "mine" and (results / "r" / "model.zip").is_file()  # nothing deleted

    (results / "bare").mkdir()
    assert main([*cli[:3], "bare", *cli[4:], "--resume"]) == 2
    assert "bare holds no checkpoint to continue from; start it anew with force=True (--force on the command line)" in capsys.readouterr().err
    assert main([*cli[:3], "bare", *cli[4:], "--force"]) == 0  # an empty folder is a run folder with nothing in it


@pytest.mark.parametrize(
    ("overrides", "kwargs", "error"),
    [
        ({}, {"scene": "grid"}, "disagree"),  # demos of another behavior
        ({"missing_demo": True}, {}, "no such .demo file"),
        ({"batch_size": 5000}, {}, "batch_size 5000 is larger than the 1800 transitions"),
        ({}, {"scene": "no_such_scene"}, "unknown built-in scene"),
    ],
)
def test_a_run_that_fails_before_training_leaves_no_folder(tmp_path: Path, ball_demo: Path, overrides: dict, kwargs: dict, error: str) -> None:
    results = tmp_path / "results"
    demo = tmp_path / "missing.demo" if overrides.pop("missing_demo", False) else ball_demo
    with pytest.raises(Exception, match=error):
        train(_config(demo, **overrides), run_id="r", results_dir=results, **{**SCENE, **kwargs})
    assert not (results / "r").exists()


def test_a_failed_resume_keeps_the_run_folder(tmp_path: Path, ball_demo: Path) -> None:
    results = tmp_path / "results"
    train(_config(ball_demo), run_id="r", results_dir=results, **SCENE)
    before = _files(results / "r")
    with pytest.raises(SpecMismatchError, match="disagree"):
        train(_config(ball_demo), run_id="r", results_dir=results, resume=True, **{**SCENE, "scene": "grid"})
    assert _files(results / "r") == before


# ---------------------------------------------------------------------------- results folder that cannot be written


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE}


def _assert_one_clear_error(tmp_path: Path, ball_demo: Path, results: Path, capsys, path_pattern: str) -> None:
    before = _children()
    assert main(["train", _config_file(tmp_path, ball_demo), "--run-id", "r", "--results-dir", str(results), *CLI_SCENE]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("gym-unity-il:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert re.fullmatch(rf"gym-unity-il: error: cannot write {path_pattern}\. Fix: .*", lines[0]), lines[0]
    assert _children() <= before  # the scene processes were closed


def test_a_read_only_results_folder_is_one_error_naming_it(tmp_path: Path, ball_demo: Path, capsys) -> None:
    with tmpfs(tmp_path / "ro", "size=1m,ro") as ro:
        _assert_one_clear_error(tmp_path, ball_demo, ro / "results", capsys, rf"{ro}/results/r: Read-only file system")
    with pytest.raises(OutputError, match="Read-only file system") as info:
        with tmpfs(tmp_path / "ro2", "size=1m,ro") as ro:
            train(_config(ball_demo), run_id="r", results_dir=ro, **SCENE)
    assert info.value.errno == 30 and isinstance(info.value, OSError)


def test_a_full_disk_is_one_error_naming_the_file_and_unity_is_closed(tmp_path: Path, ball_demo: Path, capsys) -> None:
    with tmpfs(tmp_path / "full", "size=1m") as full:
        stats = os.statvfs(full)
        (full / "filler").write_bytes(bytes(stats.f_bavail * stats.f_frsize - 64 * 1024))  # room for the config and some rows only
        _assert_one_clear_error(tmp_path, ball_demo, full / "results", capsys, rf"{full}/results/r/\S+: No space left on device")
        assert not (full / "results" / "r" / "checkpoint.tmp").exists()  # no half checkpoint left behind


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into any folder, whatever its mode")
def test_a_results_folder_without_write_permission_is_one_error_naming_it(tmp_path: Path, ball_demo: Path, capsys) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        _assert_one_clear_error(tmp_path, ball_demo, locked, capsys, rf"{locked}/r: Permission denied")
    finally:
        locked.chmod(0o700)


def test_cli_errors_speak_cli(tmp_path: Path, ball_demo: Path, capsys) -> None:
    config = _config_file(tmp_path, ball_demo)
    assert main(["train", config, "--run-id", "r", "--results-dir", str(tmp_path / "results"), "--scene-kwargs", "{max_steps: 3}"]) == 2
    assert capsys.readouterr().err.startswith("gym-unity-il: error: --scene-kwargs is not valid JSON (Expecting property name")
    assert main(["train", config, "--run-id", "r", "--results-dir", str(tmp_path / "results"), "--resume"]) == 2
    assert "resume=True (--resume on the command line): " in capsys.readouterr().err
    assert not (tmp_path / "results").exists()
