"""The scene player's ``-logFile``, as Unity's trainer passes it: a missing folder is
created; a path that cannot be written leaves the log on stderr with a warning."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gym_unity_il.link.launcher import environment_with_import_path
from gym_unity_il.envs.source import open_session


def _run_player(*args: str) -> subprocess.CompletedProcess[str]:
    # Arguments that are not a JSON object: the player logs the error and exits with 2 at once.
    command = [sys.executable, "-m", "gym_unity_il.scenes", "ball", "--mlagents-port", "1", "--scene-kwargs", "[1]", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=environment_with_import_path())


def test_a_missing_log_folder_is_created(tmp_path: Path) -> None:
    log = tmp_path / "run" / "logs" / "Player-0.log"  # neither folder exists, as with mlagents_envs
    result = _run_player("-logFile", str(log))
    assert result.returncode == 2 and result.stderr == ""
    assert "--scene-kwargs must be a JSON object" in log.read_text()


def test_an_unwritable_log_file_falls_back_to_stderr(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the log folder should be")
    result = _run_player("-logFile", str(blocker / "Player-0.log"))
    assert result.returncode == 2
    assert f"cannot write the log file {str(blocker / 'Player-0.log')!r}" in result.stderr and "logging to stderr instead" in result.stderr
    assert "--scene-kwargs must be a JSON object" in result.stderr


def test_a_session_runs_with_the_log_in_a_new_folder(tmp_path: Path, assert_released) -> None:
    log = tmp_path / "new" / "Player-7.log"
    # The last -logFile wins, as in Unity: the player logs where the extra arguments say.
    with open_session(scene="ball", scene_kwargs={"num_agents": 1}, additional_args=["-logFile", str(log)], timeout_wait=20) as session:
        decision, _ = session.reset()["3DBall?team=0"]
        assert len(decision) == 1
        port = session.port
    assert_released(port)
    assert "connected to trainer" in log.read_text()
