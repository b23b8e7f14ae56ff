#!/usr/bin/env bash
# Testing on a Slurm cluster, one task per GPU (mmengine's 'slurm' launcher), as upstream's:
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS="..."] \
#   tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py options]
set -euo pipefail
exec bash "$(dirname "$0")/slurm_run.sh" "$1" "$2" "$(dirname "$0")/test.py" "$3" "$4" \
    --launcher="slurm" "${@:5}"
