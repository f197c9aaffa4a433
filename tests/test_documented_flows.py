"""Every ``gym-unity-il`` command the README and the example configs' comments document,
exactly as written, run in a scratch folder as a new user would: from the folder holding
``examples/``, with the installed ``gym-unity-il`` command, in the order the documents give
them (the configs' comments first, then the README). Each must exit 0 and leave what it
promises (the .demo file, the run folder's files, the .onnx model, a clean model check).

The commands are read from the documents, so a changed document is tested as it is.
Where a documented budget would make the test slow, it is lowered only with documented
flags appended to the command (``demo record --episodes``, ``train --max-steps``): the
files, configs and the rest of each command stay the documented ones.

Left out, and listed by the test: commands that need a Unity build (``--env Builds/...``:
none is shipped), and README commands whose input is a file of the user's own that no
documented command makes (``Demos/``, ``model.zip``, ``results/my-run/``). A command
documented twice runs once (the second time its output already exists).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "examples" / "configs"
CLI = Path(sys.executable).parent / "gym-unity-il"
FILE_SUFFIXES = (".demo", ".zip", ".onnx", ".pkl", ".yaml", ".x86_64", ".json")

#: Documented flags appended to lower a budget, by (subcommand, what the command names).
RECORD_EPISODES = {"ball": "2", "grid": "600"}  # ball: 1,000 steps per episode; grid: GAIL takes 1,024 demo steps a batch
TRAIN_MAX_STEPS = {"gail.yaml": "1", "bc_then_ppo.yaml": "1", "online_bc.yaml": "300", "dagger.yaml": "300"}  # one round / rollout each


def _joined_lines(lines: list[str]) -> list[str]:
    """Lines with shell continuations (a trailing backslash) joined."""
    out: list[str] = []
    pending = ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        out.append(pending + line)
        pending = ""
    return out


def config_commands(path: Path) -> list[str]:
    """The commands in a config's comment lines (``#   gym-unity-il ...``)."""
    comments = [line[1:] for line in path.read_text().splitlines() if line.startswith("#")]
    return [line.strip() for line in _joined_lines(comments) if line.strip().startswith("gym-unity-il ")]


def readme_commands(path: Path) -> list[str]:
    """The commands in the README's ``bash`` blocks."""
    blocks = re.findall(r"```bash\n(.*?)```", path.read_text(), flags=re.S)
    return [line.strip() for block in blocks for line in _joined_lines(block.splitlines()) if line.strip().startswith("gym-unity-il ")]


def documented_commands() -> list[tuple[str, str]]:
    """``(document, command)`` in the order they run: every config's comments, then the README."""
    commands = [(f"examples/configs/{p.name}", c) for p in sorted(CONFIGS.glob("*.yaml")) for c in config_commands(p)]
    return commands + [("README.md", c) for c in readme_commands(REPO / "README.md")]


def _option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv[:-1] else None


def _minari_dataset(argv: list[str], dataset_id: str) -> str:
    """Where ``demo convert`` finds or writes the Minari dataset ``dataset_id``."""
    return str(Path(_option(argv, "--dataset-dir") or ".") / dataset_id)


def _outputs(argv: list[str]) -> set[str]:
    """The paths a command writes (``--out``, the file ``demo record`` writes, the Minari dataset
    ``demo convert --to minari`` writes)."""
    outs = {argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--out"}
    if argv[:2] == ["demo", "record"]:
        outs.add(argv[2])
    if argv[:2] == ["demo", "convert"] and _option(argv, "--dataset-id"):
        outs.add(_minari_dataset(argv, _option(argv, "--dataset-id")))  # type: ignore[arg-type]
    return outs


def _inputs(argv: list[str]) -> list[str]:
    """The paths a command reads: arguments naming files or folders (a Minari dataset id: its
    folder), outputs and dataset ids to write left out."""
    if argv[:2] == ["demo", "convert"] and _option(argv, "--to") == "demo":
        return [_minari_dataset(argv, argv[2])]
    outs = _outputs(argv) | {_option(argv, "--dataset-id")}
    return [a for a in argv if not a.startswith(("-", "{")) and ("/" in a or a.endswith(FILE_SUFFIXES)) and a not in outs]


def _needs_unity_build(argv: list[str]) -> bool:
    return any(a == "--env" and argv[i + 1].startswith("Builds/") for i, a in enumerate(argv[:-1]))


def _budget_flags(argv: list[str]) -> list[str]:
    if argv[:2] == ["demo", "record"] and "--scene" in argv:
        scene = argv[argv.index("--scene") + 1]
        return ["--episodes", RECORD_EPISODES[scene]] if scene in RECORD_EPISODES else []
    if argv[0] == "train" and Path(argv[1]).name in TRAIN_MAX_STEPS:
        return ["--max-steps", TRAIN_MAX_STEPS[Path(argv[1]).name]]
    return []


def _check_outputs(argv: list[str], stdout: str, cwd: Path) -> None:
    """What each command promises is there."""
    if argv[:2] == ["demo", "record"]:
        assert (cwd / argv[2]).stat().st_size > 0
        assert "recorded" in stdout
    elif argv[:2] == ["demo", "info"]:
        assert "behavior" in stdout and "observation" in stdout
    elif argv[:2] == ["demo", "convert"] and _option(argv, "--to") == "minari":
        assert (cwd / _minari_dataset(argv, argv[argv.index("--dataset-id") + 1]) / "data").is_dir()
        assert "wrote Minari dataset" in stdout
    elif argv[:2] == ["demo", "convert"]:
        assert (cwd / argv[argv.index("--out") + 1]).stat().st_size > 0
    elif argv[0] == "train":
        run = cwd / "results" / argv[argv.index("--run-id") + 1]
        for name in ("model.zip", "evaluation.json", "metrics.csv", "learning_curve.png", "config.yaml"):
            assert (run / name).is_file(), f"{run / name} missing"
        assert json.loads((run / "evaluation.json").read_text())["episodes"] >= 1
    elif argv[0] == "export":
        assert (cwd / argv[argv.index("--out") + 1]).stat().st_size > 0
    elif argv[0] == "check-model":
        assert "follows Unity's model contract" in stdout


def test_documented_commands_run_as_written(tmp_path: Path) -> None:
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    ran: list[list[str]] = []
    left_out: list[tuple[str, str, str]] = []
    for document, command in documented_commands():
        argv = shlex.split(command, comments=True)[1:]
        if argv in ran:
            continue
        if _needs_unity_build(argv):
            left_out.append((document, command, "needs a Unity build"))
            continue
        missing = [p for p in _inputs(argv) if not (tmp_path / p).exists()]
        if missing:
            assert document == "README.md", f"{document}: `{command}` reads {missing}, which no documented command before it makes"
            left_out.append((document, command, f"names files of the user's own: {missing}"))
            continue
        done = subprocess.run([str(CLI), *argv, *_budget_flags(argv)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{document}: `{command}` exited {done.returncode}:\n{done.stderr[-3000:]}"
        _check_outputs(argv, done.stdout, tmp_path)
        ran.append(argv)

    print("left out:", *(f"  {d}: {c}  ({why})" for d, c, why in left_out), sep="\n")
    assert all(why == "needs a Unity build" or d == "README.md" for d, _, why in left_out)
    trained = {(Path(a[1]).name, a[a.index("--scene") + 1]) for a in ran if a[0] == "train"}
    assert trained >= {("offline_bc.yaml", "ball"), ("offline_bc.yaml", "grid"), ("gail.yaml", "ball"), ("gail.yaml", "grid"),
                       ("bc_then_ppo.yaml", "ball"), ("online_bc.yaml", "ball"), ("dagger.yaml", "ball")}  # fmt: skip
    assert {tuple(a[:2]) for a in ran if a[0] == "demo"} == {("demo", "record"), ("demo", "info"), ("demo", "convert")}
    exported = {a[a.index("--out") + 1] for a in ran if a[0] == "export"}
    checked = {a[1] for a in ran if a[0] == "check-model"}
    assert {"3DBall.onnx", "GridWorld.onnx"} <= exported and exported <= checked


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_config_documents_how_to_run_it(path: Path) -> None:
    assert any(c.startswith(f"gym-unity-il train examples/configs/{path.name} ") for c in config_commands(path))
