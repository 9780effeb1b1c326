"""Launching a config's runner (tools/train.py, tools/test.py), with CPU-only distributed launches:
a gloo process group and :class:`~effvit_mm.engine.CPUDistributedDataParallel`."""
import os
import subprocess

import torch
import torch.distributed as dist
from mmengine.registry import RUNNERS
from mmengine.runner import Runner


def setup_cpu_distributed(cfg, launcher):
    """On a machine without CUDA, start a gloo process group from torchrun's, slurm's or Open
    MPI's environment, so that mmengine skips its CUDA-only ``init_dist``, and wrap the model in
    ``CPUDistributedDataParallel`` (no device ids, SyncBN reverted), keeping the options of the
    config's ``MMDistributedDataParallel`` if it sets one; other wrapper types are left as they are.
    With CUDA, or ``launcher='none'``, nothing changes."""
    if launcher == 'none' or torch.cuda.is_available() or dist.is_initialized():
        return
    env = os.environ
    if launcher == 'slurm':
        if 'MASTER_ADDR' not in env:  # the first node of the job
            env['MASTER_ADDR'] = subprocess.getoutput(f'scontrol show hostname {env["SLURM_NODELIST"]} | head -n1')
        env.update(RANK=env['SLURM_PROCID'], WORLD_SIZE=env['SLURM_NTASKS'],
                   LOCAL_RANK=env.get('SLURM_LOCALID', '0'))
    elif launcher == 'mpi':
        env.update(RANK=env['OMPI_COMM_WORLD_RANK'], WORLD_SIZE=env['OMPI_COMM_WORLD_SIZE'],
                   LOCAL_RANK=env['OMPI_COMM_WORLD_LOCAL_RANK'])
    env.setdefault('MASTER_ADDR', '127.0.0.1')
    env.setdefault('MASTER_PORT', '29500')
    # keys of this attempt only: after a torchrun restart (MAX_RESTARTS) the agent's store still holds the
    # addresses of the failed attempt's processes, which gloo would wait for forever
    store, rank, world_size = next(dist.rendezvous('env://'))
    store = dist.PrefixStore(f'attempt_{env.get("TORCHELASTIC_RESTART_COUNT", "0")}', store)
    dist.init_process_group('gloo', store=store, rank=rank, world_size=world_size)
    cfg.pop('sync_bn', None)  # no SyncBN conversion on CPU
    wrapper = cfg.get('model_wrapper_cfg') or dict(  # mmengine's defaults
        broadcast_buffers=False, find_unused_parameters=cfg.get('find_unused_parameters', False))
    if wrapper.get('type', 'MMDistributedDataParallel') == 'MMDistributedDataParallel':
        wrapper.update(type='CPUDistributedDataParallel', device_ids=None)
    cfg.model_wrapper_cfg = wrapper


def run(cfg, mode):
    """Build the config's runner (``runner_type``, default mmengine's), set up for CPU-only
    launches, and run ``mode`` ('train' or 'test'). The process group is closed at the end, after a
    barrier: a gloo rank that tears its connections down while another still talks to it, or exits
    with the group open, can abort ("terminate called without an active exception")."""
    setup_cpu_distributed(cfg, cfg.launcher)
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
    try:
        result = getattr(runner, mode)()
        if dist.is_initialized():
            dist.barrier()  # every rank done before any closes its connections
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return result
