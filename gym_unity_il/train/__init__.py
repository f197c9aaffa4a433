"""Training from demonstrations and from teachers: offline BC, GAIL, BC-then-RL, online BC, DAgger.

* :func:`train`: one run, like ``mlagents-learn`` (``gym-unity-il train CONFIG --run-id ID``),
  writing ``results/<run-id>/`` (model, TensorBoard, metrics CSV, learning curve,
  resolved config, evaluation);
* :func:`load_config`: a config file of ours or of ML-Agents (0.10 / 0.11, or today's ``behaviors:``)
  (:mod:`.dialects`); :func:`parse_config`: our own format from parsed YAML (:mod:`.config`);
* :func:`evaluate`, :func:`load_policy`, :class:`RandomPolicy`: returns on the same seeds
  (the loader and the policy and evaluation types are shared with export and the built-in
  scenes: :mod:`gym_unity_il.export.saved`, :mod:`gym_unity_il.scenes.evaluate`);
* :func:`make_training_env`: the VecEnv runs train on;
* :func:`train_online`, :class:`OnlineBC`, :class:`TeacherBuffer` (:class:`TeacherEpisodes`
  for students with memory): students learning live from a teacher in the same scene (:mod:`.online`); :class:`HumanTeacher`,
  :func:`make_teacher`: teachers (:mod:`.teacher`); :func:`run_dagger`,
  :func:`train_dagger`: DAgger with a teacher as the expert (:mod:`.dagger`);
* :class:`SequenceCloning`: behavioral cloning of a policy with memory over whole episodes
  (:mod:`.memory`);
* every trainer runs through one sequence (:mod:`.runner`), picked from :data:`.run.TRAINERS`.
"""

from gym_unity_il.extras import require

# Training needs imitation, which pins gymnasium and SB3 versions of its own: it is an extra.
require("imitation", "train", "training (gym_unity_il.train)")

from gym_unity_il.export.saved import TrainedPolicy, load_policy  # noqa: E402
from gym_unity_il.scenes.evaluate import Evaluation, RandomPolicy  # noqa: E402
from gym_unity_il.train.config import RunConfig, TrainerSettings, parse_config  # noqa: E402
from gym_unity_il.train.dagger import run_dagger, train_dagger  # noqa: E402
from gym_unity_il.train.dialects import load_config  # noqa: E402
from gym_unity_il.train.env import make_training_env  # noqa: E402
from gym_unity_il.train.evaluation import evaluate, plot_learning_curve  # noqa: E402
from gym_unity_il.train.memory import SequenceCloning  # noqa: E402
from gym_unity_il.train.online import OnlineBC, TeacherBuffer, TeacherEpisodes, train_online  # noqa: E402
from gym_unity_il.train.run import train  # noqa: E402
from gym_unity_il.train.runner import RunResult  # noqa: E402
from gym_unity_il.train.teacher import HumanTeacher, make_teacher  # noqa: E402

__all__ = [
    "Evaluation",
    "HumanTeacher",
    "OnlineBC",
    "RandomPolicy",
    "RunConfig",
    "RunResult",
    "SequenceCloning",
    "TeacherBuffer",
    "TeacherEpisodes",
    "TrainedPolicy",
    "TrainerSettings",
    "evaluate",
    "load_config",
    "load_policy",
    "make_teacher",
    "make_training_env",
    "parse_config",
    "plot_learning_curve",
    "run_dagger",
    "train",
    "train_dagger",
    "train_online",
]
