"""``python -m gym_unity_il.scenes <scene> --mlagents-port N``: serve a built-in scene like a Unity player."""

from __future__ import annotations

import sys

from gym_unity_il.scenes.player import main

if __name__ == "__main__":
    sys.exit(main())
