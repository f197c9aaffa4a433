"""Training from demonstrations: offline BC, GAIL, BC-then-RL, from YAML configs.

* :func:`train`: one run, like ``mlagents-learn`` (``gym-unity-il train CONFIG --run-id ID``),
  writing ``results/<run-id>/`` (model, TensorBoard, metrics CSV, learning curve,
  resolved config, evaluation);
* :func:`load_config` / :func:`parse_config`: the config files (:mod:`.config`);
* :func:`evaluate`, :func:`load_policy`, :class:`RandomPolicy`: returns on the same seeds;
* :func:`make_training_env`: the VecEnv runs train on.
"""

from gym_unity_il.train.config import RunConfig, TrainerSettings, load_config, parse_config
from gym_unity_il.train.env import make_training_env
from gym_unity_il.train.evaluation import Evaluation, RandomPolicy, TrainedPolicy, evaluate, load_policy, plot_learning_curve
from gym_unity_il.train.run import RunResult, train

__all__ = [
    "Evaluation",
    "RandomPolicy",
    "RunConfig",
    "RunResult",
    "TrainedPolicy",
    "TrainerSettings",
    "evaluate",
    "load_config",
    "load_policy",
    "make_training_env",
    "parse_config",
    "plot_learning_curve",
    "train",
]
