"""The core install runs without the extras; a feature that needs one names it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gym_unity_il.errors import ConfigError, GymUnityILError, MissingExtraError
from gym_unity_il.extras import require


def test_require_returns_the_module_or_names_the_extra() -> None:
    assert require("json.decoder", "train", "reading").__name__ == "json.decoder"
    with pytest.raises(MissingExtraError, match=r"^training needs no_such_module, which cannot be imported .*Fix: pip install 'gym_unity_il\[train\]'$"):
        require("no_such_module.sub", "train", "training")
    assert issubclass(MissingExtraError, ImportError) and issubclass(MissingExtraError, GymUnityILError)
    assert not issubclass(MissingExtraError, ConfigError)


def test_without_imitation_the_package_and_its_core_import_and_training_names_its_extra() -> None:
    """As on the core install: imitation absent (importing it raises ImportError)."""
    code = (
        "import sys; sys.modules['imitation'] = None\n"
        "import gym_unity_il, gym_unity_il.envs, gym_unity_il.demo, gym_unity_il.link.session\n"
        "try:\n"
        "    import gym_unity_il.train\n"
        "except gym_unity_il.errors.MissingExtraError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("training (gym_unity_il.train) needs imitation") and "pip install 'gym_unity_il[train]'" in done.stdout
