"""The per-phase timers behind GYM_UNITY_IL_TIMERS: where a VecEnv step's time goes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from gym_unity_il import timers
from gym_unity_il.envs.vec_env import make_unity_vec_env

_STEP_FIVE_TIMES = """
import json, numpy as np
from gym_unity_il import timers
from gym_unity_il.envs.vec_env import make_unity_vec_env
venv = make_unity_vec_env(scene="ball", scene_kwargs={"num_agents": 2, "max_steps": 0})
venv.reset()
timers.clear()
for _ in range(5):
    venv.step(np.zeros((2, 2), np.float32))
venv.close()
print(json.dumps(timers.report()))
"""


def test_timers_split_a_step_into_its_phases_when_turned_on() -> None:
    environment = dict(os.environ, **{timers.TIMERS_VARIABLE: "1"})
    out = subprocess.run([sys.executable, "-c", _STEP_FIVE_TIMES], env=environment, capture_output=True, text=True, check=True, timeout=120)
    table = {name: tuple(entry) for name, entry in json.loads(out.stdout.splitlines()[-1]).items()}
    assert set(table) == {"step", "encode", "transport", "decode", "slots"}
    assert table["step"][0] == 5 and all(table[name][0] >= 5 for name in ("encode", "transport", "decode"))
    assert table["slots"][0] >= 10  # the actions before each exchange, the absorbing after it
    inside = sum(table[name][1] for name in ("encode", "transport", "decode", "slots"))
    assert 0 < inside <= table["step"][1] and all(seconds > 0 for _, seconds in table.values())


def test_timers_are_off_by_default_and_cost_no_clock() -> None:
    assert os.environ.get(timers.TIMERS_VARIABLE, "") != "1" and not timers.ENABLED
    assert timers.phase("decode") is timers.phase("encode")  # one shared context that does nothing
    venv = make_unity_vec_env(scene="ball", scene_kwargs={"num_agents": 2})
    try:
        venv.reset()
        venv.step(np.zeros((2, 2), np.float32))
    finally:
        venv.close()
    assert timers.report() == {}
