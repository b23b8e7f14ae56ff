#!/usr/bin/env bash
# Distributed testing through torchrun (mmengine's 'pytorch' launcher), as upstream's:
#   [NNODES=1] [NODE_RANK=0] [MASTER_ADDR=127.0.0.1] [PORT=29500] \
#   tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCESSES [test.py options]
# Several machines: as tools/dist_train.sh. On a CPU-only machine the process group is gloo.
set -euo pipefail
exec bash "$(dirname "$0")/dist_run.sh" "$3" "$(dirname "$0")/test.py" "$1" "$2" --launcher pytorch "${@:4}"
