"""Agent-steps per second through UnityVecEnv, against a bare gRPC ping-pong measured in the same run.

Prints, as medians over rounds that alternate with the ping-pong (so a busy machine slows
both alike), for the built-in scene ``ball`` (8 floats in, 2 continuous actions out per
agent, random actions; episodes end and restart within the steps, as in training):

* ping-pong: the bare gRPC round trips per second of ``bench_link.py`` (one client
  process, grpc's public server answering at once, the bytes of a one-agent ball step):
  the floor the gRPC stack sets for one exchange;
* 1 agent in 1 process, 32 agents in 1 process, and 4 processes x 8 agents: VecEnv
  steps/s, agent-steps/s (steps x agents), and the ratio of agent-steps/s to ping-pong
  round trips/s;
* the ratio of agent-steps/s with 32 agents in one process to the 1-agent figure (aim: >= 15).

Run: ``python benchmarks/bench_vecenv.py [--steps N] [--rounds R] [--ray]`` (about a
minute; ``--ray`` adds 4 processes x 8 agents hosted by Ray actors on a local Ray).
"""

from __future__ import annotations

import argparse
import os
import time
from functools import partial

import numpy as np
from bench_link import PingPong, interleaved

from gym_unity_il.envs.vec_env import UnityVecEnv, make_unity_vec_env

#: (label, processes, agents per process)
LAYOUTS = [("1 agent          ", 1, 1), ("32 agents, 1 proc", 1, 32), ("4 procs x 8 agents", 4, 8)]


def vec_env_rate(venv: UnityVecEnv, actions: np.ndarray, steps: int) -> float:
    """VecEnv steps per second over ``steps`` steps, cycling through the given batches of actions."""
    start = time.perf_counter()
    for i in range(steps):
        venv.step(actions[i % len(actions)])
    return steps / (time.perf_counter() - start)


def measure(ping: PingPong, processes: int, agents: int, steps: int, rounds: int, *, ray: bool = False) -> dict[str, float]:
    """Median VecEnv steps/s and ping-pong round trips/s over interleaved rounds."""
    venv = make_unity_vec_env(scene="ball", num_processes=processes, scene_kwargs={"num_agents": agents, "max_steps": 0}, ray=ray)
    try:
        venv.reset()
        actions = np.random.default_rng(0).uniform(-1, 1, (64, venv.num_envs, 2)).astype(np.float32)
        return interleaved({"ping": ping.rate, "vecenv": partial(vec_env_rate, venv, actions)}, steps, rounds)
    finally:
        venv.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400, help="VecEnv steps (and ping-pong round trips) per round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per layout")
    parser.add_argument("--ray", action="store_true", help="also measure 4 processes x 8 agents in Ray actors")
    args = parser.parse_args()
    layouts = [(label, p, a, False) for label, p, a in LAYOUTS]
    if args.ray:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        import ray

        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        layouts.append(("4 x 8 on Ray actors", 4, 8, True))
    print(f"built-in scene 'ball', random actions, {os.cpu_count()} CPUs; medians of {args.rounds} rounds of {args.steps} steps")
    ping = PingPong("ball", "grpc")
    per_agent: dict[str, float] = {}
    try:
        for label, processes, agents, on_ray in layouts:
            rates = measure(ping, processes, agents, args.steps, args.rounds, ray=on_ray)
            rate, pong = rates["vecenv"], rates["ping"]
            agent_steps = rate * processes * agents
            per_agent[label.strip()] = agent_steps
            print(
                f"{label}: {rate:6.0f} VecEnv steps/s | {agent_steps:7.0f} agent-steps/s | bare gRPC ping-pong {pong:6.0f} "
                f"round trips/s | agent-steps per round trip {agent_steps / pong:5.2f}"
            )
    finally:
        ping.close()
        if args.ray:
            ray.shutdown()
    ratio = per_agent["32 agents, 1 proc"] / per_agent["1 agent"]
    print(f"32 agents in one process vs 1 agent: {ratio:4.1f}x agent-steps/s (aim >= 15x)")


if __name__ == "__main__":
    main()
