"""Agent-steps per second through UnityVecEnv, against a trainer that does no work and a bare
gRPC ping-pong, measured in the same run.

Prints, as medians over rounds that alternate the measurements (so a busy machine slows all
of them alike; ours / floor: the median of the ratio within each round), for the built-in
scene ``ball`` (8 floats in, 2 continuous actions out per agent, random actions; episodes end
and restart within the steps, as in training):

* ping-pong: the bare gRPC round trips per second of ``bench_link.py`` (one client process,
  grpc's public server answering at once, the bytes of a one-agent ball step);
* floor: :class:`bench_link.ZeroWorkTrainer` on the same scene process as the VecEnv's (grpc's
  public server answering every call inline with pre-serialized random actions, counting the
  agents only): the most agent-steps/s any Python trainer gets from that player;
* 1 agent in 1 process and 32 agents in 1 process: VecEnv steps/s, agent-steps/s, and
  ours / floor (aim: >= 1.0 for one agent, >= 0.95 for 32);
* scaling: 1, 2 and 4 processes of 8 agents, agent-steps/s against n x the one-process floor,
  on this machine and with players that take ``--frame-time`` per step (default 10 ms, a
  rendered Unity frame): there the processes' frames overlap, and n processes should approach
  n times one (aim: >= 3.5x with 4).

``--timers`` also prints where a step's time goes (:mod:`gym_unity_il.timers`) for the
single-process layouts.

Run: ``python benchmarks/bench_vecenv.py [--steps N] [--rounds R] [--frame-time S] [--ray] [--timers]``
(about three minutes; ``--ray`` adds 4 processes x 8 agents hosted by Ray actors on a local Ray).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from functools import partial

import numpy as np
from bench_link import PingPong, ZeroWorkTrainer, interleaved

from gym_unity_il import timers
from gym_unity_il.envs.vec_env import UnityVecEnv, make_unity_vec_env

SCENE = "ball"


def vec_env_rate(venv: UnityVecEnv, actions: np.ndarray, steps: int) -> float:
    """VecEnv steps per second over ``steps`` steps, cycling through the given batches of actions."""
    start = time.perf_counter()
    for i in range(steps):
        venv.step(actions[i % len(actions)])
    return steps / (time.perf_counter() - start)


def _kwargs(agents: int, frame_time: float) -> dict[str, object]:
    return {"num_agents": agents, "max_steps": 0, **({"frame_time": frame_time} if frame_time else {})}


def measure(processes: int, agents: int, steps: int, rounds: int, *, ping: PingPong | None = None, frame_time: float = 0.0,
            ray: bool = False) -> dict[str, float]:  # fmt: skip
    """Median agent-steps/s of the VecEnv and of the one-process floor with ``agents`` agents
    (and ping-pong round trips/s when given), over interleaved rounds."""
    kwargs = _kwargs(agents, frame_time)
    venv = make_unity_vec_env(scene=SCENE, num_processes=processes, scene_kwargs=kwargs, ray=ray)
    floor = ZeroWorkTrainer(SCENE, kwargs)
    try:
        venv.reset()
        actions = np.random.default_rng(0).uniform(-1, 1, (64, venv.num_envs, 2)).astype(np.float32)
        measures = {"vecenv": partial(vec_env_rate, venv, actions), "floor": floor.rate} | ({"ping": ping.rate} if ping else {})
        rates = interleaved(measures, steps, rounds, {"ours / floor": ("vecenv", "floor")})
    finally:
        venv.close()
        floor.close()
    return rates | {"vecenv": rates["vecenv"] * processes * agents, "floor": rates["floor"] * agents, "ours / floor": rates["ours / floor"] * processes}


def time_phases(agents: int, steps: int) -> str:
    """Where a step's time goes with ``agents`` agents in one process (in a child process that
    turns the timers on)."""
    code = f"import bench_vecenv as b; b.print_phases({agents}, {steps})"
    environment = dict(os.environ, **{timers.TIMERS_VARIABLE: "1"})
    here = os.path.dirname(os.path.abspath(__file__))
    return subprocess.run([sys.executable, "-c", code], cwd=here, env=environment, capture_output=True, text=True, check=True).stdout


def print_phases(agents: int, steps: int) -> None:
    venv = make_unity_vec_env(scene=SCENE, num_processes=1, scene_kwargs=_kwargs(agents, 0.0))
    try:
        venv.reset()
        actions = np.random.default_rng(0).uniform(-1, 1, (64, venv.num_envs, 2)).astype(np.float32)
        vec_env_rate(venv, actions, 200)
        timers.clear()
        vec_env_rate(venv, actions, steps)
        table = timers.report()
    finally:
        venv.close()
    step = table["step"][1]
    parts = {name: seconds for name, (_, seconds) in table.items() if name != "step"}
    parts["rest of the VecEnv step"] = step - sum(parts.values())
    line = " | ".join(f"{name} {seconds / steps * 1e6:.0f} us ({seconds / step:.0%})" for name, seconds in parts.items())
    print(f"  phases, {agents} agent(s): {step / steps * 1e6:.0f} us per step = {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400, help="VecEnv steps (and round trips) per round")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds per layout")
    parser.add_argument("--frame-time", type=float, default=0.01, help="seconds per step of the slow players of the scaling test")
    parser.add_argument("--ray", action="store_true", help="also measure 4 processes x 8 agents in Ray actors")
    parser.add_argument("--timers", action="store_true", help="also print where a step's time goes")
    args = parser.parse_args()
    print(f"built-in scene {SCENE!r}, random actions, {os.cpu_count()} CPUs; medians of {args.rounds} rounds of {args.steps} steps")
    ping = PingPong("ball", "grpc")
    try:
        for label, agents in (("1 agent, 1 process", 1), ("32 agents, 1 process", 32)):
            rates = measure(1, agents, args.steps, args.rounds, ping=ping)
            ours, floor = rates["vecenv"], rates["floor"]
            print(
                f"{label:<21}: {ours:7.0f} agent-steps/s | floor {floor:7.0f} | ours / floor {rates['ours / floor']:4.2f} "
                f"(aim {'>= 1.0' if agents == 1 else '>= 0.95'}) | ping-pong {rates['ping']:5.0f} round trips/s"
            )
            if args.timers:
                print(time_phases(agents, 2 * args.steps), end="")
    finally:
        ping.close()
    for frame_time, title in ((0.0, "this machine"), (args.frame_time, f"players taking {args.frame_time * 1000:g} ms per step")):
        scaling = {n: measure(n, 8, args.steps if not frame_time else 100, args.rounds, frame_time=frame_time) for n in (1, 2, 4)}
        one = scaling[1]["floor"]
        figures = " | ".join(f"{n} x 8: {r['vecenv']:6.0f} ({r['vecenv'] / (n * one):4.2f} of {n} x floor)" for n, r in scaling.items())
        print(f"scaling, {title}: agent-steps/s {figures}; 4 processes / 1 = {scaling[4]['vecenv'] / scaling[1]['vecenv']:4.2f}x"
              f"{' (aim >= 3.5x)' if frame_time else ''}")  # fmt: skip
    if args.ray:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        import ray

        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        try:
            rates = measure(4, 8, args.steps, args.rounds, ray=True)
        finally:
            ray.shutdown()
        print(f"4 x 8 on Ray actors: {rates['vecenv']:7.0f} agent-steps/s ({rates['vecenv'] / (4 * rates['floor']):4.2f} of 4 x floor)")


if __name__ == "__main__":
    main()
