"""Small budgets and helpers shared by the training tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Episode length of the "ball" scene in training tests: expert 30, random about 10.
BALL = {"max_steps": 300}


def tiny(demo_path: Path | str, **overrides: Any) -> dict[str, Any]:
    """A config section that trains in a few seconds; ``overrides`` replace keys (nested
    sections merge key by key)."""
    section: dict[str, Any] = {
        "demo_path": str(demo_path),
        "batch_size": 64,
        "hidden_units": 32,
        "summary_freq": 1024,
        "eval_episodes": 2,
        "ppo": {"n_steps": 128, "batch_size": 64, "n_epochs": 2},
        "sac": {"learning_starts": 100, "batch_size": 64},
        "gail": {"demo_batch_size": 64},
    }
    for key, value in overrides.items():
        if isinstance(value, dict):
            section[key] = {**section.get(key, {}), **value}
        else:
            section[key] = value
    return section
