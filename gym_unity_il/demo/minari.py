"""`.demo` files as Minari datasets, and Minari datasets as `.demo` files (the ``datasets`` extra).

:func:`demo_to_minari` writes one Minari episode per episode of the recordings, cut and
paired exactly as :func:`gym_unity_il.demo.split_episodes` and the other converters do
(the action taken at observation *t* is the stored action of record *t+1*, and so is its
reward)::

    Minari episode:   observations = [o_0 ... o_T]   (T+1, as UnityIL-v0 returns them)
                      actions      = [a_0 ... a_T-1]
                      rewards      = [r_0 ... r_T-1]
                      terminations = [False ... episode ended by the task]
                      truncations  = [False ... episode did not end by the task]
                      infos        = {"action_mask": bool [T+1, sum(branches)]} (discrete actions)

An episode that did not end by the task (step limit, interruption, end of the recording)
is truncated, as a time limit is for offline RL. Images are stored losslessly as
``uint8`` HWC (Minari's JPEG encoding is off). Files are read one at a time, a batch of
records at a time, and each episode is appended to the dataset's storage as soon as it and
the episodes that start before it are complete, so memory holds one batch and the episodes
still open, whatever the size and number of the files. Minari's arrow storage cannot write
a sensor of size 0 (0.12-0.15 recordings may have one): such recordings need hdf5.

The dataset's metadata keeps, under ``"gym_unity_il"``: the source files (name, era,
episodes), the behavior name and spec, the CameraResolution of each camera, and the
hybrid-action choice. With ``env_kwargs`` the dataset also records ``UnityIL-v0`` with
those keywords as its env spec, so ``dataset.recover_environment()`` makes the env again.

:func:`minari_to_demo` writes the episodes of a dataset into one `.demo` file through
:class:`~gym_unity_il.demo.DemoWriter`, one Unity agent id per episode, each record storing
the action executed before its observation (zeros at an episode's first record), so
reading the file back gives the dataset's episodes again.

:func:`read_minari_demo` reads a dataset as a :class:`~gym_unity_il.demo.Demonstration`
(through the file :func:`minari_to_demo` writes), and :func:`read_demonstrations` reads
either a `.demo` source or a dataset: what trainers do with ``demo_path``.

:func:`minari_to_d3rlpy` turns a dataset into d3rlpy's ``MDPDataset`` for offline RL (the
``offline`` extra).

Minari keeps datasets under a root folder: ``dataset_dir`` when given, else Minari's own
(``MINARI_DATASETS_PATH``, by default ``~/.minari/datasets``). A dataset ``NS/NAME-vN``
lives in ``ROOT/NS/NAME-vN/data``; ``minari.load_dataset`` finds it when
``MINARI_DATASETS_PATH`` names that root.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from gym_unity_il.demo.convert import Episode, HybridActions, flat_action_space, flat_actions, split_episodes
from gym_unity_il.demo.reader import DEFAULT_BATCH, DemoReader, Demonstration, check_demo_matches, demo_files, read_demo
from gym_unity_il.demo.spaces import behavior_spec_from_spaces
from gym_unity_il.demo.writer import DemoWriter, sanitize_name
from gym_unity_il.errors import ConfigError, DemoFormatError, SpecMismatchError
from gym_unity_il.extras import require
from gym_unity_il.spec import BehaviorSpec

if TYPE_CHECKING:  # minari and d3rlpy load on first use: the core install does not have them
    from d3rlpy.dataset import MDPDataset
    from minari import MinariDataset

Storage = Literal["arrow", "hdf5"]
STORAGES = ("arrow", "hdf5")
#: The metadata key under which the conversion's own facts are kept.
METADATA_KEY = "gym_unity_il"
#: What the conversions say when minari is missing.
_MINARI = "converting between .demo files and Minari datasets"
_FIX_SPACES = (
    "Fix: a .demo file holds observations that are a Box or a Dict of Boxes (float vectors, uint8 HWC or float CHW "
    "images) and actions that are a rank-1 Box, a Discrete or MultiDiscrete starting at 0, or "
    "Dict(continuous=Box, discrete=MultiDiscrete); convert the dataset's episodes to such spaces first."
)


def _minari() -> Any:
    return require("minari", "datasets", _MINARI)


def _dataset_root(dataset_dir: str | Path | None) -> Path:
    """The folder that holds datasets by id: ``dataset_dir``, else Minari's own root."""
    root = Path(require("minari.storage", "datasets", _MINARI).get_dataset_path() if dataset_dir is None else dataset_dir)
    return root.absolute()  # Minari's arrow storage writes a relative folder's episodes in the wrong place


def _env_spec(env_kwargs: Mapping[str, Any]) -> Any:
    """``UnityIL-v0``'s registered spec with ``env_kwargs`` as its keywords."""
    return dataclasses.replace(gym.spec("UnityIL-v0"), kwargs=dict(env_kwargs))


def _spec_metadata(spec: BehaviorSpec) -> dict[str, Any]:
    cameras = {}
    for key, o_spec in zip(spec.observation_keys, spec.observation_specs):
        res = o_spec.camera_resolution
        if res is not None:
            cameras[key] = {"height": res.height, "width": res.width, "grayscale": res.grayscale}
    act = spec.action_spec
    return {
        "behavior_name": spec.name,
        "observations": {k: list(o.shape) for k, o in zip(spec.observation_keys, spec.observation_specs)},
        "continuous_actions": act.continuous_size,
        "discrete_branches": list(act.discrete_branches),
        "camera_resolutions": cameras,
    }


_PER_RECORD = ("stored_continuous_actions", "stored_discrete_actions", "action_stored", "rewards", "done", "max_step_reached", "agent_ids", "file_index")


def _records(parts: list[Demonstration], rows: np.ndarray | None = None) -> Demonstration:
    """The records of ``parts`` (consecutive chunks of one file) joined, or only ``rows`` of them."""

    def pick(arrays: list[np.ndarray]) -> np.ndarray:
        joined = arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
        return joined if rows is None else joined[rows]

    first = parts[0]
    return dataclasses.replace(
        first,
        observations=tuple(pick(list(o)) for o in zip(*(p.observations for p in parts))),
        action_masks=None if first.action_masks is None else pick([p.action_masks for p in parts]),  # type: ignore[misc]
        **{name: pick([getattr(p, name) for p in parts]) for name in _PER_RECORD},
    )


def _open_records(demo: Demonstration) -> np.ndarray:
    """``bool [N]``: the records of episodes that the next records of the file may continue
    (each agent's records after its last cut, unless its last record is ``done``), with the
    cuts of :func:`split_episodes`."""
    n = len(demo)
    order = np.lexsort((np.arange(n), demo.agent_ids))
    ids = demo.agent_ids[order]
    new_agent = np.r_[True, ids[1:] != ids[:-1]]
    starts = new_agent | np.r_[True, demo.done[order[:-1]]] | ~demo.action_stored[order]
    segment = np.cumsum(starts)
    last_of_agent = np.r_[new_agent[1:], True]
    open_segments = segment[last_of_agent & ~demo.done[order]]
    open_ = np.zeros(n, bool)
    open_[order[np.isin(segment, open_segments)]] = True
    return open_


def _file_episodes(reader: DemoReader) -> Iterable[tuple[Demonstration, list[Episode]]]:
    """The episodes of one file as :func:`split_episodes` cuts and orders them, read a batch
    of records at a time: each comes with the records it indexes, as soon as it and every
    episode that starts before it are complete. Memory holds a batch and the records of the
    episodes still open (at most the longest episode, or a few when agents interleave)."""
    carry: Demonstration | None = None
    for batch in reader.iter_batches():
        demo = batch if carry is None else _records([carry, batch])
        episodes = split_episodes(demo)
        open_ = _open_records(demo)
        first_open = int(np.argmax(open_)) if open_.any() else len(demo)
        ready = [e for e in episodes if e.rows[0] < first_open]
        yield demo, ready
        for e in episodes[len(ready) :]:
            open_[e.rows] = True
        carry = _records([demo], np.flatnonzero(open_)) if open_.any() else None
    if carry is not None:
        yield carry, split_episodes(carry)


def _episode_buffers(demo: Demonstration, episodes: list[Episode], act_space: spaces.Space) -> Iterable[Any]:
    """One Minari ``EpisodeBuffer`` per episode of ``demo`` (see the module docstring)."""
    episode_buffer = require("minari.data_collector", "datasets", _MINARI).EpisodeBuffer
    keys = demo.behavior_spec.observation_keys
    for ep in episodes:
        rows, after = ep.rows, ep.rows[1:]
        if len(demo.observations) == 1:
            obs: Any = demo.observations[0][rows]
        else:
            obs = {k: o[rows] for k, o in zip(keys, demo.observations)}
        ends = np.zeros(len(after), bool)
        terminations, truncations = ends.copy(), ends.copy()
        terminations[-1], truncations[-1] = ep.terminal, not ep.terminal
        infos = None if demo.action_masks is None else {"action_mask": demo.action_masks[rows]}
        yield episode_buffer(
            observations=obs,
            actions=flat_actions(demo, after, act_space),
            rewards=demo.rewards[after].astype(np.float64),
            terminations=terminations,
            truncations=truncations,
            infos=infos,
        )


def check_new_dataset(dataset_id: str, *, dataset_dir: str | Path | None = None) -> Path:
    """The folder a new dataset ``dataset_id`` gets in ``dataset_dir`` (default: Minari's
    root), after checking that the id is well formed and not taken.

    Raises:
        ConfigError: a malformed dataset id.
        FileExistsError: a dataset with this id already exists in the root folder.
        MissingExtraError: minari is not installed (the ``datasets`` extra).
    """
    try:
        require("minari.dataset.minari_dataset", "datasets", _MINARI).parse_dataset_id(dataset_id)
    except ValueError:
        raise ConfigError(
            f"{dataset_id!r} is not a Minari dataset id. Fix: write (NAMESPACE/)NAME-vN, e.g. 'unity/ball-expert-v0' "
            "(a namespace has two characters or more; letters, digits, '-' and '_')."
        ) from None
    folder = _dataset_root(dataset_dir) / dataset_id
    if folder.exists():
        raise FileExistsError(
            f"a Minari dataset {dataset_id!r} already exists in {folder}. Fix: choose another name or version, "
            "or delete it first (minari.delete_dataset, or remove the folder)."
        )
    return folder


def demo_to_minari(
    paths: str | Path | Iterable[str | Path],
    dataset_id: str,
    *,
    storage: Storage = "arrow",
    dataset_dir: str | Path | None = None,
    hybrid_actions: HybridActions = "error",
    env_kwargs: Mapping[str, Any] | None = None,
    description: str | None = None,
    author: str | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> MinariDataset:
    """Converts `.demo` recordings into a new Minari dataset (see the module docstring).

    Args:
        paths: a `.demo` file, a folder of them, or several of either (all recorded from
            the same behavior).
        dataset_id: the new dataset's id, ``(NAMESPACE/)NAME-vN``.
        storage: Minari's storage format, ``"arrow"`` or ``"hdf5"``.
        dataset_dir: the root folder of datasets to write in (default: Minari's, from
            ``MINARI_DATASETS_PATH``).
        hybrid_actions: for a behavior with continuous and discrete actions, which part to
            keep, as in :func:`gym_unity_il.demo.demo_to_trajectories`.
        env_kwargs: the keywords of ``gym.make("UnityIL-v0", ...)`` that recreate the env
            (``{"scene": "ball"}``, ``{"file_name": "Builds/Game.x86_64"}``); when given they
            become the dataset's env spec. They must be JSON values.
        description, author: Minari metadata (a description is made when none is given).
        batch_size: records read together (see :class:`~gym_unity_il.demo.DemoReader`).

    Returns:
        The dataset, opened for reading.

    Raises:
        FileExistsError: a dataset with this id already exists in the root folder.
        DemoFormatError: a file cannot be read, or the recordings hold no episode of two records.
        SpecMismatchError: the files were recorded from different behaviors, hybrid actions
            with ``hybrid_actions="error"``, or a sensor of size 0 with arrow storage (which
            pyarrow cannot write: use hdf5).
        ConfigError: a malformed dataset id or an unknown storage.
        MissingExtraError: minari is not installed (the ``datasets`` extra).
    """
    minari = _minari()
    if storage not in STORAGES:
        raise ConfigError(f"storage={storage!r} is not a Minari storage this converter writes; use one of {', '.join(STORAGES)}")
    folder = check_new_dataset(dataset_id, dataset_dir=dataset_dir)
    files = [f for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths) for f in demo_files(p)]
    if not files:
        raise DemoFormatError("no .demo file was given. Fix: pass a .demo file, a folder of them, or a list of either.")
    readers = [DemoReader(f, batch_size=batch_size) for f in files]
    with_sensors = [r for r in readers if r.behavior_spec.observation_specs]
    if not with_sensors:
        raise DemoFormatError(f"{', '.join(map(str, files))}: no record to convert. Fix: record at least one episode.")
    spec = with_sensors[0].behavior_spec
    for r in readers:
        check_demo_matches(spec, r.behavior_spec, what_a=f"file {with_sensors[0].path.name}", what_b=f"file {r.path.name}")
    empty = [k for k, o in zip(spec.observation_keys, spec.observation_specs) if not np.prod(o.output_shape())]
    if empty and storage == "arrow":
        raise SpecMismatchError(
            f"sensor {', '.join(map(repr, empty))} of {spec.name!r} holds no value (size 0), which Minari's arrow storage "
            "cannot write (pyarrow stops the process). Fix: storage='hdf5' (--storage hdf5)."
        )
    obs_space = spec.observation_space("hwc_uint8")
    act_space = flat_action_space(spec, hybrid_actions=hybrid_actions)

    folder.mkdir(parents=True)
    try:
        data = require("minari.dataset.minari_storage", "datasets", _MINARI).MinariStorage.new(
            folder / "data",
            observation_space=obs_space,
            action_space=act_space,
            env_spec=None if env_kwargs is None else _env_spec(env_kwargs),
            data_format=storage,
            jpeg_encoding=False,
        )
        sources = []
        for reader in readers:
            before = data.total_episodes
            for demo, episodes in _file_episodes(reader):
                data.update_episodes(_episode_buffers(demo, episodes, act_space))
            meta = reader.meta
            sources.append({"file": meta.path.name, "era": meta.era.value, "episodes": data.total_episodes - before})
        if not data.total_episodes:
            raise DemoFormatError(
                f"{', '.join(map(str, files))}: no episode of two records or more, so no transition to store. Fix: record longer episodes."
            )
        unity = {"source_files": sources, **_spec_metadata(spec), "hybrid_actions": hybrid_actions if spec.action_spec.is_hybrid else None}
        metadata: dict[str, Any] = {
            "dataset_id": dataset_id,
            "minari_version": minari.__version__,
            "description": description
            or f"{spec.behavior_name} demonstrations from {len(files)} Unity .demo file{'s' * (len(files) > 1)}, converted by gym_unity_il",
            METADATA_KEY: unity,
        }
        if author is not None:
            metadata["author"] = {author}
        if env_kwargs is not None:
            metadata["requirements"] = ["gym_unity_il"]
        data.update_metadata(metadata)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return minari.MinariDataset(data)


def minari_data_folder(path: str | Path) -> Path | None:
    """The ``data`` folder of the Minari dataset whose folder (``ROOT/ID`` or its ``data``
    folder) is ``path``, or None when ``path`` is not one. Needs no minari."""
    given = Path(path)
    for data in (given / "data", given):
        if (data / "metadata.json").is_file():
            return data
    return None


def load_minari_dataset(dataset_or_id: MinariDataset | str | Path, *, dataset_dir: str | Path | None = None) -> MinariDataset:
    """A Minari dataset given as itself, as the folder of one (``ROOT/ID`` or its ``data``
    folder), or as an id looked up in ``dataset_dir`` (default: Minari's root).

    Raises:
        FileNotFoundError: no such dataset, naming where it was looked for.
        MissingExtraError: minari is not installed (the ``datasets`` extra).
    """
    minari = _minari()
    if isinstance(dataset_or_id, minari.MinariDataset):
        return dataset_or_id
    folder = minari_data_folder(dataset_or_id)
    if folder is not None:
        return minari.MinariDataset(folder)
    root = _dataset_root(dataset_dir)
    data = root / str(dataset_or_id) / "data"
    if not (data / "metadata.json").is_file():
        raise FileNotFoundError(
            f"no Minari dataset {str(dataset_or_id)!r}: neither a dataset folder nor an id in {root}. "
            "Fix: give the dataset's folder, or its id with the root folder that holds it (dataset_dir=, "
            "or MINARI_DATASETS_PATH); minari.download_dataset fetches a remote one."
        )
    return minari.MinariDataset(data)


def _stored_actions(action_space: spaces.Space, actions: Any, t: int, spec: BehaviorSpec) -> tuple[np.ndarray, np.ndarray]:
    """The continuous and discrete parts of action ``t`` of an episode, as a record stores them."""
    act = spec.action_spec
    if isinstance(action_space, spaces.Dict):
        return np.asarray(actions["continuous"][t], np.float32), np.asarray(actions["discrete"][t])
    if act.continuous_size:
        return np.asarray(actions[t], np.float32), np.zeros(0, np.int32)
    return np.zeros(0, np.float32), np.asarray(actions[t]).reshape(-1)


def minari_to_demo(
    dataset_or_id: MinariDataset | str | Path,
    path: str | Path,
    *,
    dataset_dir: str | Path | None = None,
    name: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Writes every episode of a Minari dataset into one `.demo` file (see the module docstring).

    Observation spaces that map: a ``Box`` or a ``Dict`` of them (float vectors, ``uint8``
    HWC images, float CHW images in [0, 1]); action spaces: a rank-1 ``Box``, a
    ``Discrete`` or ``MultiDiscrete`` starting at 0, or ``Dict(continuous=Box,
    discrete=MultiDiscrete)``. The behavior is named as in the dataset's metadata when it
    came from a `.demo` file, else ``GymEnv?team=0``. Each episode's last record is
    ``done`` when it terminated or was truncated (``max_step_reached`` when truncated);
    action masks come from the ``action_mask`` info when there is one.

    Args:
        dataset_or_id: a ``MinariDataset``, a dataset folder, or a dataset id.
        path: the `.demo` file to write.
        dataset_dir: the root folder to look the id up in (default: Minari's).
        name: the demonstration name (default: the file name).
        overwrite: replace ``path`` if it exists.

    Returns:
        The file written.

    Raises:
        SpecMismatchError: a space that a behavior spec cannot hold, naming it and the fix.
        FileNotFoundError: no such dataset.
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        OutputError: the file cannot be written.
        MissingExtraError: minari is not installed (the ``datasets`` extra).
    """
    dataset = load_minari_dataset(dataset_or_id, dataset_dir=dataset_dir)
    unity = dataset.storage.metadata.get(METADATA_KEY) or {}
    obs_space, action_space = dataset.observation_space, dataset.action_space
    try:
        spec = behavior_spec_from_spaces(obs_space, action_space, name=unity.get("behavior_name", "GymEnv?team=0"))
    except ValueError as exc:
        raise SpecMismatchError(f"the Minari dataset {dataset.id!r} cannot be written as a .demo file: {exc}. {_FIX_SPACES}") from None
    visual = [o for o in spec.observation_specs if o.is_visual]
    image_format = "chw_float" if visual and visual[0].channels_first else "hwc_uint8"
    keys = spec.observation_keys
    branches = sum(spec.action_spec.discrete_branches)
    first = np.zeros(spec.action_spec.continuous_size, np.float32), np.zeros(spec.action_spec.discrete_size, np.int32)
    with DemoWriter(path, behavior_spec=spec, name=name, image_format=image_format, overwrite=overwrite) as writer:
        for index, episode in enumerate(dataset.iterate_episodes()):
            masks = (episode.infos or {}).get("action_mask")
            if masks is not None and np.shape(masks)[1:] != (branches,):
                masks = None
            last = len(episode.rewards)
            for t in range(last + 1):
                if isinstance(obs_space, spaces.Dict):
                    obs: Any = {k: episode.observations[k][t] for k in keys}
                else:
                    obs = episode.observations[t]
                cont, disc = _stored_actions(action_space, episode.actions, t - 1, spec) if t else first
                ended = t == last and bool(episode.terminations[-1] or episode.truncations[-1])
                writer.write(
                    obs,
                    reward=float(episode.rewards[t - 1]) if t else 0.0,
                    done=ended,
                    max_step_reached=ended and not bool(episode.terminations[-1]),
                    agent_id=index,
                    stored_continuous_action=cont,
                    stored_discrete_action=disc,
                    action_mask=None if masks is None else masks[t],
                )
    return Path(path)


def read_minari_demo(dataset_or_id: MinariDataset | str | Path, *, dataset_dir: str | Path | None = None) -> Demonstration:
    """The episodes of a Minari dataset as a :class:`~gym_unity_il.demo.Demonstration`: the
    records :func:`minari_to_demo` writes, read back by :func:`~gym_unity_il.demo.read_demo`.
    For a dataset converted from `.demo` files, :func:`~gym_unity_il.demo.demo_to_trajectories`
    gives the trajectories of those files (the records the causal pairing keeps, in the
    same order). Memory holds the whole dataset, as ``read_demo`` does.

    Raises:
        SpecMismatchError: a space that a behavior spec cannot hold.
        FileNotFoundError: no such dataset.
        MissingExtraError: minari is not installed (the ``datasets`` extra).
    """
    dataset = load_minari_dataset(dataset_or_id, dataset_dir=dataset_dir)
    with tempfile.TemporaryDirectory(prefix="minari-demo-") as folder:
        return read_demo(minari_to_demo(dataset, Path(folder) / "dataset.demo", name=sanitize_name(dataset.id)))


def read_demonstrations(source: str | Path, *, dataset_dir: str | Path | None = None) -> Demonstration:
    """The demonstrations ``source`` names, as trainers read them: a `.demo` file or a
    folder of them (:func:`~gym_unity_il.demo.read_demo`), a Minari dataset's folder, or a
    Minari dataset id in ``dataset_dir`` (default: Minari's root, ``MINARI_DATASETS_PATH``)
    (:func:`read_minari_demo`). An existing path is read as what it is; any other source
    that is not a ``.demo`` name is taken as a dataset id.

    Raises:
        FileNotFoundError: ``source`` is neither an existing `.demo` file or folder nor a
            Minari dataset, naming where each was looked for.
        DemoFormatError, SpecMismatchError: as ``read_demo`` and ``read_minari_demo``.
        MissingExtraError: ``source`` is a dataset and minari is not installed (the
            ``datasets`` extra).
    """
    path = Path(source)
    if minari_data_folder(path) is None and (path.exists() or path.suffix == ".demo"):
        return read_demo(path)
    require("minari", "datasets", f"{str(source)!r} is no existing .demo file or folder, so it names a Minari dataset; reading one")
    try:
        return read_minari_demo(source, dataset_dir=dataset_dir)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{str(source)!r} is neither a .demo file or folder (no such path) nor a Minari dataset (no dataset folder "
            f"of that name, and no dataset of that id in {_dataset_root(dataset_dir)}). Fix: give the path of a .demo file "
            "or of a folder of them, or a Minari dataset's folder, or its id with MINARI_DATASETS_PATH naming the root "
            "folder that holds it."
        ) from None


def minari_to_d3rlpy(dataset_or_id: MinariDataset | str | Path, *, dataset_dir: str | Path | None = None) -> MDPDataset:
    """The episodes of a Minari dataset as d3rlpy's ``MDPDataset``, for its offline RL
    algorithms (IQL, CQL, ...).

    Every transition of the dataset is kept. d3rlpy stores as many observations as actions
    and pairs an action with the next stored observation, so a terminated episode keeps
    its first T observations (the terminal one is never needed) and a truncated episode
    keeps all T+1, its last one with a zero action and reward that no transition uses: its
    last transition still reaches the observation it led to, and is bootstrapped from it.
    A ``Dict`` observation becomes a tuple of arrays in the space's key order.

    Args:
        dataset_or_id: a ``MinariDataset``, a dataset folder, or a dataset id.
        dataset_dir: the root folder to look the id up in (default: Minari's).

    Raises:
        SpecMismatchError: an action space that is neither a ``Box`` nor a ``Discrete``
            (d3rlpy's two kinds), or observations that are not a ``Box`` or a ``Dict`` of them.
        FileNotFoundError: no such dataset.
        MissingExtraError: d3rlpy or minari is not installed (the ``offline`` extra).
    """
    d3rlpy = require("d3rlpy", "offline", "offline RL from Minari datasets")
    dataset = load_minari_dataset(dataset_or_id, dataset_dir=dataset_dir)
    obs_space, act_space = dataset.observation_space, dataset.action_space
    if isinstance(act_space, spaces.Box) and len(act_space.shape) == 1:
        kind, zero_action = d3rlpy.constants.ActionSpace.CONTINUOUS, np.zeros((1, *act_space.shape), np.float32)
    elif isinstance(act_space, spaces.Discrete):
        kind, zero_action = d3rlpy.constants.ActionSpace.DISCRETE, np.zeros(1, np.int64)
    else:
        raise SpecMismatchError(
            f"the Minari dataset {dataset.id!r} has actions {act_space}, which d3rlpy cannot learn: it takes a rank-1 Box "
            "(continuous) or a Discrete. Fix: convert the actions first (e.g. a MultiDiscrete's branches as one Discrete)."
        )
    keys = list(obs_space.spaces) if isinstance(obs_space, spaces.Dict) else None
    if not all(isinstance(s, spaces.Box) for s in (obs_space.spaces.values() if keys else [obs_space])):
        raise SpecMismatchError(f"the Minari dataset {dataset.id!r} has observations {obs_space}; d3rlpy takes a Box or a Dict of Boxes.")
    columns: list[list[np.ndarray]] = [[] for _ in keys or [None]]
    actions, rewards, terminals, timeouts = [], [], [], []
    for episode in dataset.iterate_episodes():
        steps = len(episode.rewards)
        terminated = bool(episode.terminations[-1])
        kept = steps if terminated else steps + 1
        for column, key in zip(columns, keys or [None]):
            column.append(np.asarray(episode.observations if key is None else episode.observations[key])[:kept])
        action = np.asarray(episode.actions).reshape(steps, *zero_action.shape[1:])
        actions.append(action if terminated else np.concatenate([action, zero_action.astype(action.dtype)]))
        reward = np.zeros(kept, np.float32)
        reward[:steps] = episode.rewards
        rewards.append(reward)
        ends = np.zeros(kept, np.float32)
        ends[-1] = 1.0
        terminals.append(ends if terminated else np.zeros(kept, np.float32))
        timeouts.append(np.zeros(kept, np.float32) if terminated else ends)
    observations = [np.concatenate(c) for c in columns]
    return d3rlpy.dataset.MDPDataset(
        observations=observations[0] if keys is None else observations,
        actions=np.concatenate(actions),
        rewards=np.concatenate(rewards),
        terminals=np.concatenate(terminals),
        timeouts=np.concatenate(timeouts),
        action_space=kind,
        action_size=int(act_space.shape[0]) if kind == d3rlpy.constants.ActionSpace.CONTINUOUS else int(act_space.n),
    )
