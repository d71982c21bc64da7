#!/usr/bin/env bash
# Create the peer-system virtual environments under .bench/ (git-ignored).  Idempotent: an env that
# already passes its import check is left alone; FORCE=1 rebuilds both from scratch.
#
#   bash benchmarks/peers/setup_envs.sh            # both
#   bash benchmarks/peers/setup_envs.sh mostlyai   # one of: mostlyai smartnoise
#
# torch is pinned to 2.13.0 and installed FIRST and alone: on this machine pip finds a local CPU wheel
# (torch-2.13.0+cpu in /opt/wheels); any other torch version would pull multi-GB CUDA builds.  Every
# later install runs with a constraint file (*.lock.txt beside this script, the pip freeze of the
# tested envs) so pip can never swap torch or drift to untested versions.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)

PY=${PYTHON:-python3.11}
TORCH=2.13.0
PEERS=benchmarks/peers
FORCE=${FORCE:-0}
export PIP_DISABLE_PIP_VERSION_CHECK=1

want=("$@")
[ ${#want[@]} -eq 0 ] && want=(mostlyai smartnoise)

check_torch() {  # the env's torch must still be exactly $TORCH
    local v
    v=$("$1/bin/python" -c 'import torch; print(torch.__version__)' 2>/dev/null || true)
    case "$v" in
        "$TORCH"|"$TORCH+"*) ;;
        *) echo "ERROR: $1 has torch '$v', expected $TORCH" >&2; exit 1 ;;
    esac
}

make_venv() {  # make_venv DIR -> fresh venv with torch==$TORCH
    local env=$1
    rm -rf "$env"
    "$PY" -m venv "$env"
    "$env/bin/pip" install --quiet "torch==$TORCH"
    check_torch "$env"
}

setup_mostlyai() {
    local env=.bench/mostlyai
    if [ "$FORCE" != 1 ] && [ -x "$env/bin/python" ] && (cd /tmp && "$ROOT/$env/bin/python" -c 'import mostlyai.engine' 2>/dev/null); then
        check_torch "$env"; echo "mostlyai: ok (already set up)"; return
    fi
    echo "mostlyai: building $env"
    make_venv "$env"
    "$env/bin/pip" install --quiet -c "$PEERS/mostlyai.lock.txt" "mostlyai-engine==2.7.3"
    # torchvision 0.28.0 (required by mostlyai-engine's metadata) fails to load its C ops beside the
    # local torch 2.13.0+cpu build ("operator torchvision::nms does not exist"), and transformers then
    # fails the import of mostlyai.engine.  The tabular engine never uses torchvision, so drop it:
    # transformers only imports it when it is installed.
    "$env/bin/pip" uninstall --quiet -y torchvision
    check_torch "$env"
    (cd /tmp && "$ROOT/$env/bin/python" -c 'import mostlyai.engine as e; print("mostlyai: ok, mostlyai-engine", e.__version__)')
}

setup_smartnoise() {
    local env=.bench/smartnoise
    if [ "$FORCE" != 1 ] && [ -x "$env/bin/python" ] && (cd /tmp && "$ROOT/$env/bin/python" -c 'import snsynth.mst, snsynth.aim, snsynth.pytorch.nn' 2>/dev/null); then
        check_torch "$env"; echo "smartnoise: ok (already set up)"; return
    fi
    echo "smartnoise: building $env"
    make_venv "$env"
    # smartnoise-synth pins opacus<0.15 (0.14.0), which accepts torch>=1.3, so torch stays at 2.13.0.
    # `packaging` is imported by snsynth's CTGAN code (DPCTGAN) but not declared as a dependency.
    "$env/bin/pip" install --quiet -c "$PEERS/smartnoise.lock.txt" "smartnoise-synth==1.0.8" "packaging==26.3"
    check_torch "$env"
    (cd /tmp && "$ROOT/$env/bin/python" -c 'import snsynth.mst, snsynth.aim, snsynth.pytorch.nn, importlib.metadata as m; print("smartnoise: ok, smartnoise-synth", m.version("smartnoise-synth"))')
}

mkdir -p .bench
for name in "${want[@]}"; do
    case "$name" in
        mostlyai) setup_mostlyai ;;
        smartnoise) setup_smartnoise ;;
        *) echo "unknown env: $name (mostlyai | smartnoise)" >&2; exit 2 ;;
    esac
done
