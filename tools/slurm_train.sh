#!/usr/bin/env bash
# tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args]; GPUS (8), GPUS_PER_NODE (8),
# CPUS_PER_TASK (5) and SRUN_ARGS from the environment.
#
# Preemption: on SIGTERM or SIGUSR1 every task finishes its iteration, saves a checkpoint of it and exits
# with 75. Inside a batch job (sbatch) this script then requeues the job (scontrol requeue); a requeued
# job (SLURM_RESTART_COUNT > 0) resumes from the newest complete checkpoint of WORK_DIR by itself. In the
# batch script:
#   #SBATCH --requeue
#   #SBATCH --signal=USR1@120      # SIGUSR1 to the tasks 120 s before the time limit
#   bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR
set -x
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
DIR=$(dirname "$0")
source "$DIR/find_python.sh"
# The signal reaches this shell too: it waits for the tasks' checkpoint instead of ending.
trap 'echo "signal received: waiting for the tasks to save their checkpoint"' TERM USR1
PYTHONPATH="$DIR/..":${PYTHONPATH:-} srun -p ${PARTITION} --job-name=${JOB_NAME} --gres=gpu:${GPUS_PER_NODE} \
    --ntasks=${GPUS} --ntasks-per-node=${GPUS_PER_NODE} --cpus-per-task=${CPUS_PER_TASK} --kill-on-bad-exit=1 \
    ${SRUN_ARGS:-} "$PYTHON" -u "$DIR/train.py" "$CONFIG" --work-dir="$WORK_DIR" --launcher="slurm" "${@:5}" &
SRUN=$!
while true; do
    wait $SRUN
    RC=$?
    kill -0 $SRUN 2>/dev/null || break  # wait returned for a signal, not for srun's end
done
if [ "$RC" -eq 75 ] && [ -n "${SLURM_JOB_ID:-}" ]; then
    scontrol requeue "$SLURM_JOB_ID"
fi
exit $RC
