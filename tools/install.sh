#!/usr/bin/env bash
# Installs convdense and its pinned stack into the current Python environment.
# Idempotent: the ~9-minute mmcv compile is skipped when mmcv.ops already imports.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export PIP_ROOT_USER_ACTION=ignore
PIP="$PYTHON -m pip install --disable-pip-version-check -q"

$PIP -r requirements/build.txt
$PIP -r requirements/torch.txt
if ! $PYTHON -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '2.1.0'" >/dev/null 2>&1; then
    echo "[install] compiling mmcv 2.1.0 with ops (about 9 minutes on 2 cores)"
    MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} $PIP --no-build-isolation -r requirements/mmcv.txt
fi
$PIP -r requirements/runtime.txt -r requirements/tests.txt
$PIP --no-deps -r requirements/nodeps.txt
$PIP --no-build-isolation --no-deps -e .
$PYTHON -c "import convdense, mmcv.ops, mmdet, mmseg; print('[install] convdense', convdense.__version__, 'ready')"
