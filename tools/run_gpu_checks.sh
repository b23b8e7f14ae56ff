#!/usr/bin/env bash
# The checks a CPU-only CI cannot make, for a CUDA machine (run from anywhere):
#   [STAGES="install tests amp nccl train bench"] [WHEELS=.whl] bash tools/run_gpu_checks.sh [WORK_DIR]
# 1. install: tools/install.sh's mmcv step on this machine's CUDA torch (TORCH_CUDA=keep):
#    mmcv 2.1.0 compiled with its CUDA ops (FORCE_CUDA=1, this GPU's arch), then its CUDA
#    nms / roi_align checked against the CPU kernels. A machine that cannot reach PyPI
#    installs from WHEELS (made beforehand with `bash tools/run_gpu_checks.sh --wheels`:
#    OpenMMLab's pure-Python packages and mmcv's source, ~10 MB); skipped when mmcv with
#    CUDA ops already imports,
# 2. tests: every test marked `cuda` (ops and models on CUDA against the CPU; the nccl
#    process-group and DDP wrapper replacing the CPU-only compat checks),
# 3. amp: a fp16 (`--amp`, mmengine AmpOptimWrapper) and a fp32 run of the PAC flow
#    config, same seed: finite losses, a loss scale in the log, first losses within 1 %,
# 4. nccl: tools/dist_train.sh with one process per GPU on the nccl backend,
# 5. train: benchmarks/bench_gpu_train.py: digit-scene Mask R-CNN and the PAC demo,
#    GPU_TRAIN_ITERS (300) iterations each in fp32 and with --amp: the loss must fall;
#    metrics -> benchmarks/results/gpu_train_<gpu>.json,
# 6. bench: benchmarks/bench_pac.py --device cuda (64 channels, k=5, 512x512, fwd+bwd,
#    against unfold; goals >= 10x faster, >= 8x less peak memory) -> benchmarks/results/gpu_pac.json.
# Every stage runs; exits non-zero if any failed. A machine without CUDA is an error, not a skip.
# On a lent machine (no PyPI, 10 minutes a command): here, `bash tools/run_gpu_checks.sh
# --wheels` (into .whl, git-ignored; carry it), then there two commands, the mmcv compile
# alone first:
#   PYTHON=python3 STAGES=install bash tools/run_gpu_checks.sh /tmp/gpuwork
#   PYTHON=python3 STAGES="tests amp nccl train bench" bash tools/run_gpu_checks.sh /tmp/gpuwork \
#       2>&1 | tee $OUT/gpu_checks.log; cp benchmarks/results/gpu_*.json $OUT/
set -uo pipefail
FAILED=()
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
WHEELS=${WHEELS:-.whl}
STAGES=${STAGES:-install tests amp nccl train bench}

if [ "${1:-}" = --wheels ]; then
    # Here, with PyPI: the wheels the GPU machine's image lacks, versions as installed here.
    set -e
    mkdir -p "$WHEELS"
    PINS=$($PYTHON -m pip freeze --all | grep -iE '^(addict|yapf|termcolor|terminaltables|prettytable|wcwidth|platformdirs|ftfy|shapely|pycocotools|mlxtend|mmengine|mmdet|mmsegmentation|setuptools|wheel|ninja)==')
    # shellcheck disable=SC2086
    $PYTHON -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d "$WHEELS" $PINS
    $PYTHON -m pip download -q --no-deps --no-binary=:all: -d "$WHEELS" "$(grep '^mmcv==' requirements/mmcv.txt)"
    ls "$WHEELS"
    exit 0
fi

WORK=${1:-$(mktemp -d /tmp/convdense_gpu_checks.XXXXXX)}
NGPU=$($PYTHON -c 'import torch; print(torch.cuda.device_count())')
if [ "$NGPU" -lt 1 ]; then
    echo "run_gpu_checks: torch sees no CUDA device (torch $($PYTHON -c 'import torch; print(torch.__version__)'))" >&2
    exit 2
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
echo "== $NGPU CUDA device(s); stages: $STAGES; work dir $WORK"
wants() { [[ " $STAGES " == *" $1 "* ]]; }

if wants install; then
    echo "== install: mmcv with CUDA ops on torch $($PYTHON -c 'import torch; print(torch.__version__)')"
    start=$SECONDS
    {
        if [ -d "$WHEELS" ]; then
            export PIP_NO_INDEX=1 PIP_FIND_LINKS="$PWD/$WHEELS"
            $PYTHON -m pip install -q --no-deps "$WHEELS"/*.whl
        fi &&
        PYTHON=$PYTHON TORCH_CUDA=keep bash tools/install.sh build mmcv &&
        $PYTHON - <<'PY'
import torch
from mmcv.ops import get_compiling_cuda_version, nms, roi_align
print('mmcv ops compiled with CUDA', get_compiling_cuda_version())
torch.manual_seed(0)
xy = torch.rand(200, 2) * 100
boxes = torch.cat([xy, xy + 10 + torch.rand(200, 2) * 40], 1)
scores = torch.rand(200)
kept_cpu = nms(boxes, scores, 0.5)[1]
kept_cuda = nms(boxes.cuda(), scores.cuda(), 0.5)[1].cpu()
assert torch.equal(kept_cpu, kept_cuda), 'nms: CUDA keeps other boxes than the CPU'
feats = torch.randn(2, 8, 32, 32)
rois = torch.cat([torch.randint(0, 2, (50, 1)).float(), boxes[:50] / 4], 1)
out_cpu = roi_align(feats, rois, (7, 7), 1.0, 2, 'avg', True)
out_cuda = roi_align(feats.cuda(), rois.cuda(), (7, 7), 1.0, 2, 'avg', True).cpu()
torch.testing.assert_close(out_cuda, out_cpu, rtol=1e-4, atol=1e-5)
print('mmcv CUDA nms and roi_align match the CPU kernels')
PY
    } || FAILED+=(install)
    unset PIP_NO_INDEX PIP_FIND_LINKS
    echo "== install took $((SECONDS - start)) s"
fi

if wants tests; then
    echo "== tests marked cuda"
    # Only the files that hold cuda-marked tests are collected: a GPU image need not carry
    # the packages the rest of the suite imports (pytorch-grad-cam, mlxtend, fvcore).
    CUDA_TEST_FILES=$(grep -rlE 'pytest\.mark\.cuda|on_cuda|DEVICES' tests --include='test_*.py')
    # shellcheck disable=SC2086
    $PYTHON -m pytest $CUDA_TEST_FILES -q -m cuda -p no:cacheprovider -rs || FAILED+=(tests)
fi

CONFIG=configs/joint_upsampling/pacjointupsample_lite_x4_flow_demo.py
SHORT=(train_cfg.max_iters=20 train_cfg.val_interval=1000 train_dataloader.batch_size=4
       default_hooks.logger.interval=1 default_hooks.checkpoint.interval=20 custom_hooks=[]
       randomness.seed=0 randomness.deterministic=True)

if wants amp; then
    echo "== AMP fp16 against fp32"
    { $PYTHON tools/train.py $CONFIG --work-dir "$WORK/fp32" --cfg-options "${SHORT[@]}" &&
      $PYTHON tools/train.py $CONFIG --amp --work-dir "$WORK/amp" --cfg-options "${SHORT[@]}" &&
      $PYTHON - "$WORK" <<'PY'
import glob, json, math, sys
def records(run):
    path = sorted(glob.glob(f'{sys.argv[1]}/{run}/*/vis_data/scalars.json'))[-1]
    return [json.loads(line) for line in open(path) if '"loss"' in line]
fp32, amp = records('fp32'), records('amp')
assert len(fp32) == len(amp) == 20, (len(fp32), len(amp))
assert all(math.isfinite(r['loss']) for r in amp), [r['loss'] for r in amp]
logs = ''.join(open(p).read() for p in glob.glob(f'{sys.argv[1]}/amp/*/*.log'))
assert 'AmpOptimWrapper' in logs, 'the --amp run did not use AmpOptimWrapper'
first32, first16 = fp32[0]['loss'], amp[0]['loss']
assert abs(first16 - first32) <= 0.01 * abs(first32), (first32, first16)
print(f'AMP ok: first loss fp32 {first32:.6f} fp16 {first16:.6f}; '
      f'last fp32 {fp32[-1]["loss"]:.6f} fp16 {amp[-1]["loss"]:.6f}')
PY
    } || FAILED+=(amp)
fi

if wants nccl; then
    echo "== NCCL, $NGPU process(es)"
    { PORT=${PORT:-29531} bash tools/dist_train.sh $CONFIG "$NGPU" --work-dir "$WORK/nccl" \
          --cfg-options "${SHORT[@]}" env_cfg.dist_cfg.backend=nccl 2>&1 | tee "$WORK/nccl.out" &&
      grep -q "nccl" "$WORK"/nccl/*/*.log && test -f "$WORK/nccl/iter_20.pth"; } || FAILED+=(nccl)
fi

if wants train; then
    echo "== short CUDA trainings, fp32 and --amp"
    $PYTHON benchmarks/bench_gpu_train.py --iters "${GPU_TRAIN_ITERS:-300}" \
        --work-dir "$WORK/train" || FAILED+=(train)
fi

if wants bench; then
    echo "== PAC layer on CUDA against unfold"
    $PYTHON benchmarks/bench_pac.py --device cuda || FAILED+=(bench)
fi

if [ ${#FAILED[@]} -gt 0 ]; then echo "== GPU checks FAILED: ${FAILED[*]}" >&2; exit 1; fi
echo "== all GPU checks passed"
