#!/usr/bin/env bash
# Start a MONAI Label server (monaibundle app) serving the LightMedSeg bundle. See docs/monailabel.md.
#
#   bash monailabel/start_server.sh --studies /path/to/images [options]
#
# Server options:
#   --studies DIR        folder of images to label (NIfTI; MONAI Label keeps labels in DIR/labels/) [required]
#   --host HOST          address to listen on (default 127.0.0.1; 0.0.0.0 to accept other machines)
#   --port PORT          port (default 8000)
#   --epistemic          add MC-dropout (epistemic) scoring of the unlabelled images for active learning
#   --conf KEY VALUE     any other MONAI Label app option, passed on (repeatable), e.g. --conf preload true
#   --skip-setup         do not run monailabel/setup.sh first
# Bundle options (passed to monailabel/prepare_app.py, see its --help):
#   --app-dir DIR, --name NAME, --weights FILE, --init-weights, --task TASK, --set ID=VALUE,
#   --input-channels NAMES, --force
#
# Offline-safe: the app is started with --conf zoo_source github (the default zoo source makes a network call at
# start-up even for a local bundle) and --conf sam2 false (SAM2 would download its weights).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
VENV="${LABEL_VENV:-$REPO/.venv-label}"
PY="$VENV/bin/python"

studies="" host="127.0.0.1" port="8000" epistemic=0 setup=1
prepare=() conf=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --studies) studies="$2"; shift 2 ;;
        --host) host="$2"; shift 2 ;;
        --port) port="$2"; shift 2 ;;
        --epistemic) epistemic=1; shift ;;
        --conf) conf+=(--conf "$2" "$3"); shift 3 ;;
        --skip-setup) setup=0; shift ;;
        --init-weights|--force) prepare+=("$1"); shift ;;
        --app-dir|--name|--weights|--task|--set|--input-channels|--bundle-dir) prepare+=("$1" "$2"); shift 2 ;;
        -h|--help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [[ -z "$studies" ]]; then
    echo "--studies DIR is required (see --help)" >&2
    exit 2
fi
mkdir -p "$studies"

if [[ "$setup" == 1 ]]; then
    bash "$HERE/setup.sh"
fi

# prepare_app.py prints app=... and model=...
out="$("$PY" "$HERE/prepare_app.py" "${prepare[@]}")"
app="$(sed -n 's/^app=//p' <<<"$out")"
model="$(sed -n 's/^model=//p' <<<"$out")"

args=(--conf models "$model" --conf zoo_source github --conf sam2 false)
if [[ "$epistemic" == 1 ]]; then
    args+=(--conf epistemic_model "$model")
fi

# this checkout's lightmedseg_bundle first, whatever is installed in the environment
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
echo "MONAI Label: model $model, app $app, studies $studies, http://$host:$port"
exec "$PY" -m monailabel.main start_server --app "$app" --studies "$studies" --host "$host" --port "$port" \
    "${args[@]}" "${conf[@]}"
