#!/usr/bin/env bash
# tools/dist_train.sh CONFIG NUM_PROCS [train.py args]: one process per GPU (NCCL), or per rank on CPU (gloo).
# MAX_RESTARTS=N: torchrun restarts the processes up to N times when one fails (or exits with 75 after a
# preemption signal's checkpoint); a restarted run resumes from the newest complete checkpoint by itself.
CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
DIR=$(dirname "$0")
source "$DIR/find_python.sh"
PYTHONPATH="$DIR/..":${PYTHONPATH:-} exec "$PYTHON" -m torch.distributed.run \
    --nnodes=$NNODES --node_rank=$NODE_RANK --master_addr=$MASTER_ADDR --nproc_per_node=$GPUS --master_port=$PORT \
    --max-restarts=${MAX_RESTARTS:-0} \
    "$DIR/train.py" "$CONFIG" --launcher pytorch "${@:3}"
