#!/usr/bin/env bash
# Creates a venv (if missing) and installs the package with the exact versions of a
# constraints file. Safe to run again: it only installs what is missing.
#
#   bash scripts/bootstrap.sh                       # .venv, constraints.txt, every extra
#   bash scripts/bootstrap.sh VENV CONSTRAINTS EXTRAS
#                                                   # e.g. .venv-latest constraints-latest.txt pettingzoo,contrib,dev
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.venv}"
constraints="${2:-constraints.txt}"
extras="${3:-all}"
python3 -m venv "$venv"
# torch first and pinned: an unpinned torch would pull the multi-GB CUDA build.
"$venv/bin/python" -m pip install -q --disable-pip-version-check "torch==$(grep -i '^torch==' "$constraints" | cut -d= -f3)"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -c "$constraints" -e ".[$extras]"
