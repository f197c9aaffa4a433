"""The README's main job runs end to end at a small budget: BC beats random, GAIL runs, the
table, report and plot are written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_main_job_records_trains_evaluates_and_reports(tmp_path: Path) -> None:
    args = ["--episodes", "5", "--eval-episodes", "2", "--max-steps", "300", "--bc-epochs", "10", "--gail-steps", "3000", "--out", str(tmp_path)]
    done = subprocess.run([sys.executable, str(EXAMPLES / "main_job.py"), *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "% of expert" in done.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report) >= {"expert", "random", "bc", "gail"}
    assert report["expert"]["mean_return"] > 25.0  # 0.1 per step for 300 steps
    assert report["bc"]["mean_return"] > report["random"]["mean_return"] + 5.0
    assert len(report["gail"]["returns"]) == 2 and report["gail"]["mean_return"] > -2.0
    assert (tmp_path / "ball_expert.demo").stat().st_size > 0
    for run in ("bc", "gail"):
        assert json.loads((tmp_path / "results" / run / "evaluation.json").read_text())["trainer"] in ("offline_bc", "gail")
    with Image.open(tmp_path / "main_job.png") as image:
        assert image.size[0] >= 1000
