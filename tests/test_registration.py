"""``UnityIL-v0`` is registered whichever of gymnasium and gym_unity_il is imported first."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import pytest

import gym_unity_il


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120).stdout.strip()


def test_importing_the_package_registers_the_env() -> None:
    import gymnasium

    assert gym_unity_il.ENV_ID in gymnasium.registry
    assert gymnasium.spec("UnityIL-v0").entry_point == "gym_unity_il.envs.gym_unity_options:make_unity_env"


@pytest.mark.parametrize("first", ["gymnasium", "gym_unity_il", "gym_unity_il.scenes.player"])
def test_any_import_order_works(first: str) -> None:
    assert _run(f"import {first}; import gymnasium, gym_unity_il; print('UnityIL-v0' in gymnasium.registry)") == "True"


def test_gymnasium_finds_the_env_without_importing_the_package_first() -> None:
    """gymnasium 0.29 loads the package's entry point; gymnasium 1.x has no plugins, and
    ``gym.make("gym_unity_il:UnityIL-v0")`` imports the package (as the README says)."""
    import gymnasium

    if int(gymnasium.__version__.split(".")[0]) >= 1:
        code = "import gymnasium; env = gymnasium.make('gym_unity_il:UnityIL-v0'); print(type(env.unwrapped).__name__); env.close()"
        assert _run(code).splitlines()[-1] == "UnityILEnv"
        return
    plugins = [e for e in metadata.entry_points(group="gymnasium.envs") if e.value.startswith("gym_unity_il")]
    if not plugins:
        pytest.skip("the package is not installed with its entry points (pip install -e .)")
    assert _run("import gymnasium; print('UnityIL-v0' in gymnasium.registry)") == "True"
