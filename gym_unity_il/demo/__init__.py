"""Reading, writing and converting Unity `.demo` demonstration files.

* :func:`read_demo` / :func:`iter_records` / :class:`DemoReader`: every ML-Agents era
  (0.6 to 4.x), whole files into numpy or streamed in constant memory;
* :func:`demo_to_trajectories`, :func:`demo_to_transitions`, :func:`fill_replay_buffer`:
  `imitation` data and SB3 replay buffers (the action taken at observation *t* is the
  stored action of record *t+1*; see :mod:`gym_unity_il.demo.convert`);
* :class:`DemoWriter` / :func:`write_demo`: files exactly as Unity's recorder writes them;
* :class:`DemoRecorder`: a gymnasium wrapper recording any env into a `.demo` file;
* :func:`demo_to_minari` / :func:`minari_to_demo` / :func:`read_minari_demo`: Minari datasets
  (the ``datasets`` extra); :func:`read_demonstrations` reads either, as trainers do;
  :func:`minari_to_d3rlpy`: a dataset for d3rlpy's offline RL (the ``offline`` extra).
"""

from gym_unity_il.demo.convert import (
    Episode,
    demo_to_trajectories,
    demo_to_transitions,
    fill_replay_buffer,
    flat_action_space,
    split_episodes,
)
from gym_unity_il.demo.minari import (
    demo_to_minari,
    load_minari_dataset,
    minari_data_folder,
    minari_to_d3rlpy,
    minari_to_demo,
    read_demonstrations,
    read_minari_demo,
)
from gym_unity_il.demo.reader import (
    DemoEra,
    DemoFormatWarning,
    DemoMeta,
    DemoReader,
    DemoRecord,
    Demonstration,
    check_demo_matches,
    demo_files,
    iter_records,
    read_demo,
)
from gym_unity_il.demo.recorder import DemoRecorder, record_episodes
from gym_unity_il.demo.spaces import behavior_spec_from_spaces
from gym_unity_il.demo.writer import DemoWriter, WriterCheckpoint, sanitize_name, unique_demo_path, write_demo

__all__ = [
    "DemoEra",
    "DemoFormatWarning",
    "DemoMeta",
    "DemoReader",
    "DemoRecord",
    "DemoRecorder",
    "DemoWriter",
    "Demonstration",
    "Episode",
    "WriterCheckpoint",
    "behavior_spec_from_spaces",
    "check_demo_matches",
    "demo_files",
    "demo_to_minari",
    "demo_to_trajectories",
    "demo_to_transitions",
    "fill_replay_buffer",
    "flat_action_space",
    "iter_records",
    "load_minari_dataset",
    "minari_data_folder",
    "minari_to_d3rlpy",
    "minari_to_demo",
    "read_demo",
    "read_demonstrations",
    "read_minari_demo",
    "record_episodes",
    "sanitize_name",
    "split_episodes",
    "unique_demo_path",
    "write_demo",
]
