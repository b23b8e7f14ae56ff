#!/usr/bin/env bash
# Installs convdense and its pinned stack into the current Python environment.
#   bash tools/install.sh [STEP ...]     steps: build torch mmcv runtime convdense (default: all)
#   bash tools/install.sh detect         print the TORCH_CUDA and CUDA architectures it would use
# Idempotent: the mmcv compile is skipped when an mmcv 2.1.0 with the wanted ops imports.
#
# Which torch (TORCH_CUDA):
#   auto (default)  nvidia-smi answers -> the CUDA build of torch for the newest CUDA in
#                   TORCH_CUDA_CHOICES the driver supports (and, if nvcc is there, of nvcc's
#                   major version); no GPU -> the CPU wheel of requirements/torch.txt
#   cpu             the CPU wheel, as on a machine without a GPU
#   cu126, cu128... that CUDA build, from https://download.pytorch.org/whl/$TORCH_CUDA
#                   (TORCH_INDEX_URL overrides the index, e.g. a mirror)
#   keep            the torch (and torchvision) already installed, e.g. a cluster's module
# With CUDA, mmcv is compiled with its CUDA ops (MMCV_WITH_OPS=1 FORCE_CUDA=1) for
# TORCH_CUDA_ARCH_LIST (default: the compute capability of every visible GPU, e.g. "9.0";
# set it, e.g. "8.0;9.0", to build on a node without the GPUs the job will use);
# nvcc must be on PATH or in CUDA_HOME. Offline: PIP_NO_INDEX=1 PIP_FIND_LINKS=DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export PIP_ROOT_USER_ACTION=ignore
PIP="$PYTHON -m pip install --disable-pip-version-check -q"
TORCH_CUDA=${TORCH_CUDA:-auto}
TORCH_CUDA_CHOICES=${TORCH_CUDA_CHOICES:-"cu130 cu128 cu126"}
STEPS=${*:-build torch mmcv runtime convdense}

pinned() {  # pinned NAME FILE -> the version FILE pins NAME to
    sed -n "s/^$1==\([^ ]*\).*/\1/p" "$2"
}

nvcc_path() {
    if command -v nvcc >/dev/null 2>&1; then command -v nvcc
    elif [ -x "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ]; then echo "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc"
    fi
}

# The newest CUDA of TORCH_CUDA_CHOICES <= the driver's, of nvcc's major version if any.
detect_torch_cuda() {
    local driver nvcc_version choice version
    if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
        echo cpu; return
    fi
    driver=$(nvidia-smi | sed -n 's/.*CUDA Version: *\([0-9]*\.[0-9]*\).*/\1/p' | head -n1)
    nvcc_version=""
    if [ -n "$(nvcc_path)" ]; then
        nvcc_version=$("$(nvcc_path)" --version | sed -n 's/.*release \([0-9]*\.[0-9]*\).*/\1/p')
    fi
    for choice in $TORCH_CUDA_CHOICES; do
        version="${choice#cu}"; version="${version%?}.${version: -1}"
        if [ -n "$driver" ] && ! "$PYTHON" -c "import sys; sys.exit(not $version <= $driver)"; then
            continue
        fi
        if [ -n "$nvcc_version" ] && [ "${version%%.*}" != "${nvcc_version%%.*}" ]; then
            continue
        fi
        echo "$choice"; return
    done
    echo "[install] no CUDA build in TORCH_CUDA_CHOICES=\"$TORCH_CUDA_CHOICES\" fits driver CUDA" \
         "${driver:-?} and nvcc ${nvcc_version:-none}; set TORCH_CUDA (see tools/install.sh)" >&2
    exit 2
}

# The compute capabilities of the visible GPUs, e.g. "8.0;9.0" (TORCH_CUDA_ARCH_LIST wins).
cuda_arch_list() {
    echo "${TORCH_CUDA_ARCH_LIST:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | sort -u | paste -sd';')}"
}

if [ "$TORCH_CUDA" = auto ]; then
    TORCH_CUDA=$(detect_torch_cuda)
    echo "[install] TORCH_CUDA=$TORCH_CUDA (detected; set TORCH_CUDA to choose)"
fi

for step in $STEPS; do
case $step in
detect)
    echo "TORCH_CUDA=$TORCH_CUDA TORCH_CUDA_ARCH_LIST=$(cuda_arch_list)" ;;
build)
    $PIP -r requirements/build.txt ;;
torch)
    case $TORCH_CUDA in
    cpu) $PIP -r requirements/torch.txt ;;
    keep) $PYTHON -c "import torch; print('[install] keeping torch', torch.__version__)" ;;
    cu*)
        $PIP --index-url "${TORCH_INDEX_URL:-https://download.pytorch.org/whl/$TORCH_CUDA}" \
            "torch==$(pinned torch requirements/torch.txt)+$TORCH_CUDA" \
            "torchvision==$(pinned torchvision requirements/runtime.txt)+$TORCH_CUDA" ;;
    *) echo "[install] TORCH_CUDA=$TORCH_CUDA: expected auto, cpu, keep or cuXYZ" >&2; exit 2 ;;
    esac ;;
mmcv)
    # The CUDA ops are built when the installed torch is a CUDA build (cu*, or keep of one).
    WITH_CUDA=$($PYTHON -c "import torch; print(int(torch.version.cuda is not None and '$TORCH_CUDA' != 'cpu'))")
    if [ "$WITH_CUDA" = 1 ]; then
        CHECK="from mmcv.ops import get_compiling_cuda_version as v; assert v() not in ('', 'not available')"
        ARCHS=$(cuda_arch_list)
        if [ -z "$ARCHS" ]; then
            echo "[install] no GPU visible: set TORCH_CUDA_ARCH_LIST (e.g. \"8.0;9.0\") for mmcv's CUDA ops" >&2
            exit 2
        fi
    else
        CHECK="pass"
    fi
    if ! $PYTHON -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '2.1.0'; $CHECK" >/dev/null 2>&1; then
        if [ "$WITH_CUDA" = 1 ]; then
            echo "[install] compiling mmcv 2.1.0 with CPU and CUDA ops for TORCH_CUDA_ARCH_LIST=$ARCHS"
            $PYTHON -m pip uninstall -y -q mmcv >/dev/null 2>&1 || true
            # --no-cache-dir: never reuse a wheel pip cached from a CPU-only build
            MMCV_WITH_OPS=1 FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="$ARCHS" MAX_JOBS=${MAX_JOBS:-$(nproc)} \
                $PIP --no-build-isolation --no-cache-dir -r requirements/mmcv.txt
        else
            echo "[install] compiling mmcv 2.1.0 with ops (about 9 minutes on 2 cores)"
            MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} $PIP --no-build-isolation -r requirements/mmcv.txt
        fi
    fi ;;
runtime)
    if [ "$TORCH_CUDA" = keep ]; then
        # the kept torch's own torchvision stays; runtime.txt's pin would replace torch
        $PIP -r <(grep -v '^torchvision==' requirements/runtime.txt) -r requirements/tests.txt
    else
        $PIP -r requirements/runtime.txt -r requirements/tests.txt
    fi
    $PIP --no-deps -r requirements/nodeps.txt ;;
convdense)
    $PIP --no-build-isolation --no-deps -e .
    $PYTHON -c "import convdense, mmcv.ops, mmdet, mmseg, torch; print('[install] convdense', convdense.__version__, 'ready; torch', torch.__version__, 'CUDA', torch.cuda.is_available())" ;;
*) echo "[install] unknown step $step (build torch mmcv runtime convdense detect)" >&2; exit 2 ;;
esac
done
