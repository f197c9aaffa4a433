"""Reading ML-Agents' own config files: every key in a table of how it is handled, and one reader.

ML-Agents' trainer configs (the seed era's, :mod:`~gym_unity_il.train.seed_config`, and
today's, :mod:`~gym_unity_il.train.modern_config`) are translated into this package's own
format. Each dialect keeps its keys as data, a :class:`Key` per key of each section (the docs'
table is checked against it), and reads a file with a :class:`KeyReader`: values checked with
errors that name the file, the section and the key as written, and one warning per key that
is ignored or approximated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from gym_unity_il.errors import ConfigError, quote
from gym_unity_il.train.config import NUMERIC_RANGES

#: What happens to a key: used as ours (``honoured``), mapped to something close
#: (``approximated``), accepted with a warning (``ignored``), refused with a ConfigError
#: (``refused``), or handed to the run as it is (``passed on``: run sections).
Handling = Literal["honoured", "approximated", "ignored", "refused", "passed on"]


@dataclass(frozen=True)
class Key:
    """How one key of an ML-Agents file is handled, and what happens to it (the docs' words).

    Attributes:
        handling: the strictest case, where the handling depends on the value.
        how: what happens, as the docs' table says it.
        warning: the warning's reason, where the key is ignored for some values only (else ``how``).
    """

    handling: Handling
    how: str
    warning: str = ""


class KeyReader:
    """Reads one file of a dialect whose keys are ``keys`` (section -> key -> :class:`Key`).

    Args:
        source: the file, as errors name it.
        keys: the dialect's key table.
        dialect: how errors name the dialect ("ML-Agents 0.10 / 0.11 configs").
    """

    def __init__(self, source: str, keys: Mapping[str, Mapping[str, Key]], dialect: str) -> None:
        self.source = source
        self.keys = keys
        self.dialect = dialect
        #: The warnings so far, each once (however many sections inherit its key).
        self.warnings: list[str] = []

    def warn(self, where: str, text: str) -> None:
        message = f"{where}: {text}"
        if message not in self.warnings:
            self.warnings.append(message)

    def ignored(self, where: str, section: str, key: str, why: str = "") -> None:
        """Warns that ``key`` of ``section`` is ignored, saying why (``why``, else the table's words)."""
        entry = self.keys[section][key]
        self.warn(f"{where}.{key}", f"ignored: {why or entry.warning or entry.how}")

    def mapping(self, value: Any, where: str) -> Mapping[str, Any]:
        """``value`` as a mapping with string keys (null is empty)."""
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping of settings, got {quote(value)}")
        for key in value:
            if not isinstance(key, str):
                raise ConfigError(f"{where}: key {quote(key)} is not a string")
        return value

    def known(self, values: Mapping[str, Any], sections: str | tuple[str, ...], where: str) -> None:
        """Every key of ``values`` is one of ``sections``' keys in the table."""
        names = (sections,) if isinstance(sections, str) else sections
        known = {key for section in names for key in self.keys[section]}
        unknown = [key for key in values if key not in known]
        if unknown:
            raise ConfigError(f"{where}: unknown key {quote(unknown[0])}; known keys of {self.dialect} are {sorted(known)}")

    def number(self, value: Any, where: str, *, integer: bool = False, key: str | None = None) -> Any:
        """``value`` as a finite float (an int when ``integer``), within our range of ``key``."""
        number = value
        if isinstance(value, str):  # YAML 1.1 reads "5.0e5" without a dot in the mantissa as a string
            try:
                number = float(value)
            except ValueError:
                pass
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
            raise ConfigError(f"{where}: expected {'an integer' if integer else 'a number'}, got {quote(value)}")
        if integer:
            if not float(number).is_integer():
                raise ConfigError(f"{where}: expected an integer, got {quote(value)}")
            number = int(number)
        else:
            number = float(number)
        if key in NUMERIC_RANGES:
            low, high, open_low = NUMERIC_RANGES[key]
            if not ((low < number if open_low else low <= number) and number <= high):
                raise ConfigError(f"{where}: {quote(value)} is out of range; accepted: {'>' if open_low else '>='} {low:g} and <= {high:g}")
        return number

    def flag(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {quote(value)}")
        return value

    def text(self, value: Any, where: str) -> str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {quote(value)}")
        return value

    def cloning(self, raw: Mapping[str, Any], section: str, where: str) -> tuple[str, float, int]:
        """``demo_path``, ``strength`` and ``steps`` (the annealing; default 0, none) of a
        behavioral-cloning section (``pretraining``, ``behavioral_cloning``).

        Raises:
            ConfigError: no ``demo_path``, a ``strength`` of 0 (BC turned off: remove the
                section), or negative ``steps``.
        """
        if "demo_path" not in raw:
            raise ConfigError(f"{where}.demo_path: behavioral cloning learns from demonstrations; set demo_path to a .demo file or folder")
        demo_path = self.text(raw["demo_path"], f"{where}.demo_path")
        strength = self.number(raw.get("strength", 1.0), f"{where}.strength", key="strength")
        if strength == 0:
            raise ConfigError(f"{where}.strength: 0 turns behavioral cloning off; remove {section} instead")
        steps = self.number(raw.get("steps", 0), f"{where}.steps", integer=True, key="steps")
        return demo_path, strength, steps

    def choice(self, value: Any, choices: tuple[str, ...], where: str) -> str:
        if value not in choices:
            raise ConfigError(f"{where}: expected one of {', '.join(choices)}, got {quote(value)}")
        return value
