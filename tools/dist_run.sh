#!/usr/bin/env bash
# What tools/dist_train.sh and tools/dist_test.sh share: torchrun with upstream's variables.
#   tools/dist_run.sh NUM_PROCESSES SCRIPT [SCRIPT's arguments]
# NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1) and PORT (29500) describe the nodes.
set -euo pipefail
NPROC=$1
shift
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PYTHONPATH="$(dirname "$0")/..${PYTHONPATH:+:$PYTHONPATH}" \
exec "${PYTHON:-python}" -m torch.distributed.run --nnodes="$NNODES" --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" --nproc_per_node="$NPROC" --master_port="$PORT" "$@"
