#!/usr/bin/env bash
# Distributed training through torchrun (mmengine's 'pytorch' launcher), as upstream's:
#   [NNODES=1] [NODE_RANK=0] [MASTER_ADDR=127.0.0.1] [PORT=29500] \
#   tools/dist_train.sh CONFIG NUM_PROCESSES [train.py options]
# Several machines: run it on each with NNODES, NODE_RANK (0..NNODES-1), MASTER_ADDR
# (node 0's address) and PORT set alike. On a CPU-only machine the process group is gloo.
set -euo pipefail
exec bash "$(dirname "$0")/dist_run.sh" "$2" "$(dirname "$0")/train.py" "$1" --launcher pytorch "${@:3}"
