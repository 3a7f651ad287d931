#!/usr/bin/env bash
# Create the MONAI Label environment .venv-label/ (separate from the bundle's .venv/, see requirements.txt for why)
# with the exact pins of monailabel/requirements.txt, plus this checkout's lightmedseg_bundle package (editable,
# without its dependencies). Idempotent: does nothing when .venv-label/.installed is newer than requirements.txt
# and this script. About 3 minutes and 8 GiB of disk (torch's CUDA libraries) the first time.
#
#   bash monailabel/setup.sh            # or: make label
#   PYTHON=python3.11 bash monailabel/setup.sh
#   LABEL_VENV=/elsewhere/venv bash monailabel/setup.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
PYTHON="${PYTHON:-python3}"
VENV="${LABEL_VENV:-$REPO/.venv-label}"
REQS="$HERE/requirements.txt"
STAMP="$VENV/.installed"

if [[ -f "$STAMP" && "$STAMP" -nt "$REQS" && "$STAMP" -nt "${BASH_SOURCE[0]}" ]]; then
    echo "MONAI Label environment up to date: $VENV"
    exit 0
fi

version="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [[ "$version" != "3.11" ]]; then
    echo "warning: requirements.txt was pinned on Python 3.11, $PYTHON is $version; some pins may not install" >&2
fi

echo "Creating the MONAI Label environment in $VENV (about 3 minutes)"
rm -f "$STAMP"
"$PYTHON" -m venv "$VENV"
LOG="$VENV/setup.log"
# pip's output goes to a log (this machine's pip configuration prints a warning per package); its tail on failure
if ! {
    "$VENV/bin/python" -m pip install -r "$REQS" &&
    "$VENV/bin/python" -m pip install --no-deps -e "$REPO"
} >"$LOG" 2>&1; then
    tail -n 40 "$LOG" >&2
    echo "error: creating the MONAI Label environment failed; full log: $LOG" >&2
    exit 1
fi
# fail here, not at server start, when an import is broken (e.g. torchvision against the installed torch)
(cd "$VENV" && "$VENV/bin/python" -c "
import torch, torchvision, monai, monailabel, pydicom, pydicom_seg, lightmedseg_bundle.networks
print(f'torch {torch.__version__}, torchvision {torchvision.__version__}, monai {monai.__version__}, '
      f'monailabel {monailabel.__version__}, pydicom {pydicom.__version__}')
")
touch "$STAMP"
echo "MONAI Label environment ready: $VENV"
