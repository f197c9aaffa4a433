#!/usr/bin/env bash
# Creates .venv (if missing) and installs the package with the exact versions of
# constraints.txt. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
# torch first and pinned: an unpinned torch would pull the multi-GB CUDA build.
.venv/bin/python -m pip install -q --disable-pip-version-check "torch==$(grep -i '^torch==' constraints.txt | cut -d= -f3)"
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[all]"
