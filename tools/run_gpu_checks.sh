#!/usr/bin/env bash
# The checks a CPU-only CI cannot make, for a lent CUDA machine (run from anywhere):
#   bash tools/run_gpu_checks.sh [WORK_DIR]
# 1. every test marked `cuda` (ops and models on CUDA against the CPU; the nccl
#    process-group and DDP wrapper replacing the CPU-only compat checks),
# 2. AMP: a fp16 (`--amp`, mmengine AmpOptimWrapper) and a fp32 run of the PAC flow
#    config, same seed: finite losses, a loss scale in the log, first losses within 1 %,
# 3. NCCL: tools/dist_train.sh with one process per GPU on the nccl backend.
# Every stage runs; exits non-zero if any failed. A machine without CUDA is an error, not a skip.
set -uo pipefail
FAILED=()
cd "$(dirname "$0")/.."
WORK=${1:-$(mktemp -d /tmp/convdense_gpu_checks.XXXXXX)}
PYTHON=${PYTHON:-python}
NGPU=$($PYTHON -c 'import torch; print(torch.cuda.device_count())')
if [ "$NGPU" -lt 1 ]; then
    echo "run_gpu_checks: torch sees no CUDA device (torch $($PYTHON -c 'import torch; print(torch.__version__)'))" >&2
    exit 2
fi
echo "== $NGPU CUDA device(s); work dir $WORK"

echo "== 1/3 tests marked cuda"
# Only the files that hold cuda-marked tests are collected: a GPU image need not carry
# the packages the rest of the suite imports (pytorch-grad-cam, mlxtend, fvcore).
CUDA_TEST_FILES=$(grep -rlE 'pytest\.mark\.cuda|on_cuda|DEVICES' tests --include='test_*.py')
$PYTHON -m pytest $CUDA_TEST_FILES -q -m cuda -p no:cacheprovider -rs || FAILED+=(tests)

CONFIG=configs/joint_upsampling/pacjointupsample_lite_x4_flow_demo.py
SHORT=(train_cfg.max_iters=20 train_cfg.val_interval=1000 train_dataloader.batch_size=4
       default_hooks.logger.interval=1 default_hooks.checkpoint.interval=20 custom_hooks=[]
       randomness.seed=0 randomness.deterministic=True)

echo "== 2/3 AMP fp16 against fp32"
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

echo "== 3/3 NCCL, $NGPU process(es)"
{ PORT=${PORT:-29531} bash tools/dist_train.sh $CONFIG "$NGPU" --work-dir "$WORK/nccl" \
      --cfg-options "${SHORT[@]}" env_cfg.dist_cfg.backend=nccl 2>&1 | tee "$WORK/nccl.out" &&
  grep -q "nccl" "$WORK"/nccl/*/*.log && test -f "$WORK/nccl/iter_20.pth"; } || FAILED+=(nccl)
if [ ${#FAILED[@]} -gt 0 ]; then echo "== GPU checks FAILED: ${FAILED[*]}" >&2; exit 1; fi
echo "== all GPU checks passed"
