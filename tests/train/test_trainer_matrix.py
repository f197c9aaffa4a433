"""Every trainer x every observation kind x every action kind, through the command line, at
tiny budgets: each run exits 0 and leaves a model that acts in the env's action space on
the env's own observations; what cannot train (hybrid actions, SAC on discrete actions)
is refused before training with exit status 2.

Observation kinds of the "shapes" test scene: one vector, one image (10 x 8 colour: the
small CNN), an image and a vector (a Dict: 36 x 40 grayscale through NatureCNN's layers,
and the one-hot vector), two images (a Dict of both image sizes). The demos come from the
scene's scripted expert; the offline BC model of each kind is the saved-model teacher of
online BC and DAgger on that kind (``teacher: <path of model.zip>``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from stable_baselines3 import PPO, SAC

from gym_unity_il.cli import main
from gym_unity_il.demo import read_demo, record_episodes
from gym_unity_il.envs.unity_env import UnityILEnv
from gym_unity_il.train import load_policy
from shapes_teaching import ShapesExpert

SCENE = "shapes_scene:ShapesScene"
PAIR_SCENE = "shapes_teaching:ShapesPairScene"
LENGTH = 10  # steps per episode; reward 1 per step naming the target
OBSERVATIONS = {
    "vector": ["vector"],
    "image": ["small_image"],
    "image_vector": ["gray_image", "vector"],
    "two_images": ["small_image", "gray_image"],
}
ACTIONS = ["continuous", "discrete", "multi_discrete"]
COMMON: dict[str, Any] = {
    "batch_size": 32, "learning_rate": 3.0e-3, "hidden_units": 16, "num_layers": 1, "summary_freq": 10**6, "eval_episodes": 2,
    "ppo": {"n_steps": 64, "batch_size": 32, "n_epochs": 1},
    "sac": {"learning_starts": 32, "batch_size": 32},
    "gail": {"demo_batch_size": 32, "n_disc_updates_per_round": 1},
}  # fmt: skip
TRAINERS: dict[str, dict[str, Any]] = {
    "offline_bc": {"num_epoch": 30},
    "gail": {"max_steps": 128},
    "bc_then_ppo": {"num_epoch": 1, "max_steps": 128, "gail": {"strength": 0.01}},  # as examples/configs/bc_then_ppo.yaml
    "bc_then_ppo_env_reward": {"trainer": "bc_then_ppo", "num_epoch": 1, "max_steps": 128},  # no GAIL: BC on the env's own observations
    "bc_then_sac": {"num_epoch": 1, "max_steps": 64},
    "online_bc": {"max_steps": 40, "batches_per_epoch": 1, "brain_to_imitate": "Teacher"},
    "dagger": {"max_steps": 64, "dagger_round_steps": 32, "num_epoch": 1},
}
ALGORITHMS = {"bc_then_sac": SAC}
CELLS = [
    (trainer, obs, act)
    for trainer in TRAINERS
    for obs in OBSERVATIONS
    for act in ACTIONS
    if not (trainer == "bc_then_sac" and act != "continuous")
]


def _section(trainer: str, **extra: Any) -> dict[str, Any]:
    section = {**COMMON, "trainer": trainer, **TRAINERS[trainer], **extra}
    for key in ("ppo", "sac", "gail"):
        section[key] = {**COMMON[key], **TRAINERS[trainer].get(key, {})}
    return section


def _train(folder: Path, run_id: str, section: dict[str, Any], scene: str, scene_kwargs: dict[str, Any], behavior: str | None = None) -> int:
    config = folder / f"{run_id}.yaml"
    config.write_text(yaml.safe_dump({"default": section}))
    args = ["train", str(config), "--run-id", run_id, "--results-dir", str(folder / "results"), "--scene", scene, "--scene-kwargs", json.dumps(scene_kwargs)]
    return main([*args, "--behavior", behavior] if behavior else args)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("matrix")


@pytest.fixture(scope="module")
def demos(work: Path):
    """Expert demos of each (observation, action) kind, recorded once for the module (30 episodes, 300 pairs)."""
    made: dict[tuple[str, str], Path] = {}

    def get(obs: str, act: str) -> Path:
        if (obs, act) not in made:
            path = work / f"{obs}_{act}.demo"
            env = UnityILEnv(scene=SCENE, scene_kwargs={"sensors": OBSERVATIONS[obs], "actions": act, "length": LENGTH})
            expert = ShapesExpert(act)
            one = lambda o: {k: v[None] for k, v in o.items()} if isinstance(o, dict) else o[None]  # noqa: E731
            record_episodes(env, lambda o: expert.predict(one(o))[0][0], path, episodes=30, seed=0)
            made[obs, act] = path
        return made[obs, act]

    return get


@pytest.fixture(scope="module")
def bc_runs(work: Path, demos):
    """The offline BC run of each kind (its model is the teacher of online BC and DAgger)."""
    made: dict[tuple[str, str], tuple[int, Path]] = {}

    def get(obs: str, act: str) -> tuple[int, Path]:
        if (obs, act) not in made:
            run_id = f"offline_bc-{obs}-{act}"
            kwargs = {"sensors": OBSERVATIONS[obs], "actions": act, "length": LENGTH}
            status = _train(work, run_id, _section("offline_bc", demo_path=str(demos(obs, act))), SCENE, kwargs)
            made[obs, act] = (status, work / "results" / run_id)
        return made[obs, act]

    return get


@pytest.mark.parametrize(("trainer", "obs", "act"), CELLS, ids=["-".join(c) for c in CELLS])
def test_trainer_runs_on_every_observation_and_action_kind(work: Path, demos, bc_runs, trainer: str, obs: str, act: str) -> None:
    kwargs = {"sensors": OBSERVATIONS[obs], "actions": act, "length": LENGTH}
    if trainer == "offline_bc":
        status, run = bc_runs(obs, act)
    else:
        name = TRAINERS[trainer].get("trainer", trainer)
        run_id = f"{trainer}-{obs}-{act}"
        if name in ("online_bc", "dagger"):
            bc_status, teacher_run = bc_runs(obs, act)
            assert bc_status == 0
            section = _section(trainer, teacher=str(teacher_run / "model.zip"))
        else:
            section = _section(trainer, demo_path=str(demos(obs, act)))
        scene, behavior = (PAIR_SCENE, "Student") if name == "online_bc" else (SCENE, None)
        status = _train(work, run_id, section, scene, kwargs, behavior)
        run = work / "results" / run_id
    assert status == 0

    summary = json.loads((run / "evaluation.json").read_text())
    assert summary["trainer"] == TRAINERS[trainer].get("trainer", trainer)
    assert summary["episodes"] == 2 and all(0 <= r <= LENGTH for r in summary["returns"])
    if trainer == "offline_bc":  # the expert names every target: BC learns to, from every sensor kind
        assert summary["mean_return"] >= 0.8 * LENGTH, summary["returns"]

    recorded = read_demo(demos(obs, act))
    spec = recorded.behavior_spec
    policy = load_policy(run / "model.zip", spec.observation_space())
    assert isinstance(policy.model, ALGORITHMS.get(trainer, PPO))
    batch = recorded.observations[0][:5] if len(spec.observation_specs) == 1 else dict(zip(spec.observation_keys, (o[:5] for o in recorded.observations)))
    actions, _ = policy.predict(batch)
    space = spec.action_space()
    assert len(actions) == 5 and all(space.contains(np.asarray(a).astype(space.dtype)) for a in actions)


@pytest.mark.parametrize("trainer", ["offline_bc", "gail", "bc_then_ppo", "bc_then_sac", "online_bc", "dagger"])
def test_hybrid_actions_are_refused_by_every_trainer(tmp_path: Path, capsys, trainer: str) -> None:
    section = {**_section(trainer), "demo_path": str(tmp_path / "never_read.demo"), "teacher": str(tmp_path / "never_read.zip")}
    if trainer != "online_bc":
        section.pop("brain_to_imitate", None)
    scene, behavior = (PAIR_SCENE, "Student") if trainer == "online_bc" else (SCENE, None)
    assert _train(tmp_path, "run", section, scene, {"sensors": ["vector"], "actions": "hybrid"}, behavior) == 2
    err = capsys.readouterr().err
    assert f"hybrid actions (continuous 2 + discrete [3]); trainer '{trainer}' cannot train them" in err
    assert "Give the agent only continuous or only discrete actions" in err
    assert not (tmp_path / "results" / "run" / "model.zip").exists()


@pytest.mark.parametrize("act", ["discrete", "multi_discrete"])
def test_sac_refuses_discrete_actions_through_the_command_line(tmp_path: Path, capsys, act: str) -> None:
    section = _section("bc_then_sac", demo_path=str(tmp_path / "never_read.demo"))
    assert _train(tmp_path, "run", section, SCENE, {"sensors": ["vector"], "actions": act}) == 2
    assert "'bc_then_sac' needs continuous actions" in capsys.readouterr().err
    assert not (tmp_path / "results" / "run").exists()


def test_max_steps_flag_replaces_the_budget_of_every_section(tmp_path: Path, demos, capsys) -> None:
    section = _section("gail", demo_path=str(demos("vector", "discrete")), max_steps=10**6)
    config = tmp_path / "gail.yaml"
    config.write_text(yaml.safe_dump({"default": section, "Shapes": {"max_steps": 10**7}}))
    base = ["train", str(config), "--results-dir", str(tmp_path / "results"), "--scene", SCENE, "--scene-kwargs", json.dumps({"sensors": ["vector"], "actions": "discrete"})]
    assert main([*base, "--run-id", "short", "--max-steps", "64"]) == 0
    run = tmp_path / "results" / "short"
    assert json.loads((run / "evaluation.json").read_text())["env_steps"] == 64  # one round of ppo.n_steps
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["default"]["max_steps"] == 64 and saved["Shapes"]["max_steps"] == 64
    assert main([*base, "--run-id", "zero", "--max-steps", "0"]) == 2
    assert "(--max-steps).max_steps: 0 is out of range; accepted: an integer from 1 to" in capsys.readouterr().err
