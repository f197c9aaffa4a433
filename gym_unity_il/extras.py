"""Optional dependencies, loaded when a feature first needs them.

The core install (``pip install gym_unity_il``) holds the env, the VecEnv, ``.demo`` reading
and writing and SB3 buffers. Each other feature names the extra that installs what it needs
(setup.cfg, ``[options.extras_require]``), and :func:`require` is the one way to load it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from gym_unity_il.errors import MissingExtraError


def require(module: str, extra: str, feature: str) -> ModuleType:
    """The module ``module`` (dotted name), imported.

    Raises:
        MissingExtraError: the module cannot be imported; the message names ``feature``, the
            missing distribution and the command that installs ``extra``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.partition(".")[0]
        raise MissingExtraError(
            f"{feature} needs {top}, which cannot be imported ({exc}). Fix: pip install 'gym_unity_il[{extra}]'"
        ) from exc
