"""Launching a config's runner (tools/train.py, tools/test.py), with CPU-only distributed launches
(a gloo process group and :class:`~effvit_mm.engine.CPUDistributedDataParallel`) and process groups
that survive torchrun's restarts."""
import datetime
import os
import subprocess

import torch
import torch.distributed as dist
from mmengine.registry import RUNNERS
from mmengine.runner import Runner


def init_attempt_process_group(backend, timeout=None):
    """``torch.distributed.init_process_group`` from torchrun's (``env://``) variables, on keys of this
    attempt only: after a torchrun restart (``MAX_RESTARTS``) the agent's store still holds the addresses
    of the failed attempt's processes, which the new ones would wait for forever. ``timeout`` in seconds,
    as mmengine's ``dist_cfg``."""
    store, rank, world_size = next(dist.rendezvous('env://'))
    store = dist.PrefixStore(f'attempt_{os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")}', store)
    kwargs = {} if timeout is None else dict(timeout=datetime.timedelta(seconds=timeout))
    dist.init_process_group(backend, store=store, rank=rank, world_size=world_size, **kwargs)


def setup_gpu_restarts(cfg, launcher):
    """Under torchrun with CUDA, start the config's process group (``env_cfg.dist_cfg``, NCCL by default)
    with :func:`init_attempt_process_group`, on the GPU of ``LOCAL_RANK``, as mmengine's ``init_dist``
    would, so that a restarted job does not hang; mmengine then finds the group started."""
    if launcher != 'pytorch' or not torch.cuda.is_available() or dist.is_initialized():
        return
    dist_cfg = dict((cfg.get('env_cfg') or {}).get('dist_cfg') or {})
    torch.cuda.set_device(int(os.environ['LOCAL_RANK']))
    init_attempt_process_group(dist_cfg.pop('backend', 'nccl'), dist_cfg.pop('timeout', None))


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
    init_attempt_process_group('gloo')
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
    setup_gpu_restarts(cfg, cfg.launcher)
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
