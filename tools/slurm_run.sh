#!/usr/bin/env bash
# What tools/slurm_train.sh and tools/slurm_test.sh share: srun with upstream's variables.
#   tools/slurm_run.sh PARTITION JOB_NAME SCRIPT [SCRIPT's arguments]
# GPUS (8 tasks), GPUS_PER_NODE (8), CPUS_PER_TASK (5), SRUN_ARGS (more srun options).
set -euo pipefail
set -x
PARTITION=$1
JOB_NAME=$2
shift 2
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
# SRUN_ARGS is split on spaces on purpose: it holds several srun options
# shellcheck disable=SC2086
PYTHONPATH="$(dirname "$0")/..${PYTHONPATH:+:$PYTHONPATH}" \
exec srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    $SRUN_ARGS \
    "${PYTHON:-python}" -u "$@"
