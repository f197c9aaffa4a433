"""The README's main job runs end to end at a small budget: BC beats random on "ball" and
from the pixels of "grid", GAIL runs, the table, report and plot are written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_main_job_records_trains_evaluates_and_reports(tmp_path: Path) -> None:
    args = ["--episodes", "5", "--eval-episodes", "4", "--max-steps", "300", "--bc-epochs", "10", "--gail-steps", "3000",
            "--grid-episodes", "600", "--grid-epochs", "15", "--out", str(tmp_path)]  # fmt: skip
    done = subprocess.run([sys.executable, str(EXAMPLES / "main_job.py"), *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    table = [line.split() for line in done.stdout.splitlines() if line.startswith(("ball ", "grid "))]
    assert {(row[0], row[1]) for row in table} == {("ball", p) for p in ("expert", "random", "bc", "gail")} | {("grid", p) for p in ("expert", "random", "grid_bc")}
    assert all(row[-1].endswith("%") for row in table)

    report = json.loads((tmp_path / "report.json").read_text())
    ball, grid = report["ball"], report["grid"]
    assert ball["expert"]["mean_return"] > 25.0  # 0.1 per step for 300 steps
    assert ball["bc"]["mean_return"] > ball["random"]["mean_return"] + 5.0
    assert len(ball["gail"]["returns"]) == 4 and ball["gail"]["mean_return"] > -2.0
    assert grid["expert"]["mean_return"] > 0.9  # reaches the target in a few steps
    assert grid["grid_bc"]["mean_return"] > grid["random"]["mean_return"] + 0.5  # from 36 x 36 grayscale pixels
    assert report["grid_scene_kwargs"] == {"grid_size": 3, "camera_height": 36, "camera_width": 36, "grayscale": True}
    for demo in ("ball_expert.demo", "grid_expert.demo"):
        assert (tmp_path / demo).stat().st_size > 0
    for run, trainer in (("bc", "offline_bc"), ("gail", "gail"), ("grid_bc", "offline_bc")):
        assert json.loads((tmp_path / "results" / run / "evaluation.json").read_text())["trainer"] == trainer
    with Image.open(tmp_path / "main_job.png") as image:
        assert image.size[0] >= 1000 and image.size[1] >= 600  # two rows: ball, grid
