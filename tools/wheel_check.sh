#!/bin/sh
# The wheel as a user gets it: built from this checkout, installed with the constraints in a
# new virtual environment, and `sweeper demo` run from an empty folder outside the checkout,
# so a template, term list or data file missing from the wheel's package-data fails here.
# Usage: tools/wheel_check.sh [PYTHON]   (run by `make test`; most of its time is pip's, and
# --no-compile spares it byte-compiling the Graph SDK's thousands of modules)
set -eu
unset PYTHONPATH PYTHONHOME  # the installed wheel, never this checkout, is what gets imported

python=${1:-python3}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

# A copy of what an sdist holds, so the build leaves no build/ or *.egg-info in the checkout.
mkdir "$work/src"
cp "$root/pyproject.toml" "$root/README.md" "$work/src/"
tar -C "$root" --exclude=__pycache__ -cf - sweeper | tar -C "$work/src" -xf -

start=$(date +%s)
"$python" -m pip wheel --quiet --no-deps -w "$work/dist" "$work/src"
built=$(date +%s)
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --no-compile -c "$root/constraints.txt" "$work"/dist/*.whl
installed=$(date +%s)

mkdir "$work/run"
cd "$work/run"
if ! "$work/venv/bin/sweeper" demo >"$work/demo.log" 2>&1; then
    cat "$work/demo.log"
    echo "wheel check: sweeper demo failed from the installed wheel" >&2
    exit 1
fi
test -s sweeper.db && ls reports/* >/dev/null
"$work/venv/bin/python" - <<'PY'
import sys
from importlib.metadata import version

import sweeper

assert sweeper.__file__.startswith(sys.prefix), sweeper.__file__
assert version("sweeper-m365") == sweeper.__version__, (version("sweeper-m365"), sweeper.__version__)
PY
ran=$(date +%s)
echo "wheel check: $(basename "$work"/dist/*.whl) installs and runs sweeper demo" \
    "(build $((built - start)) s, install $((installed - built)) s, demo $((ran - installed)) s)"
