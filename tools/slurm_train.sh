#!/usr/bin/env bash
# Training on a Slurm cluster, one task per GPU (mmengine's 'slurm' launcher), as upstream's:
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS="..."] \
#   tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py options]
# GPUS=16 with GPUS_PER_NODE=8 spans two nodes; MASTER_PORT (default 29500) picks the port.
set -euo pipefail
exec bash "$(dirname "$0")/slurm_run.sh" "$1" "$2" "$(dirname "$0")/train.py" "$3" \
    --work-dir="$4" --launcher="slurm" "${@:5}"
