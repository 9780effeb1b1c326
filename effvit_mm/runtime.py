"""What the tools need beyond mmengine on torch 2.14: safe checkpoint loading, CPU distributed
launches, early checks of data paths, and the per-codebase switches of ``--show-dir``."""
import collections
import copyreg
import os
import os.path as osp

import numpy as np
import torch
import torch.distributed as dist
from mmengine.config import Config, DictAction
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.registry import RUNNERS
from mmengine.runner import Runner


def _reduce_history_buffer(buffer):
    """Pickle a ``HistoryBuffer`` as its constructor arguments (numpy arrays and an int) instead of
    its ``__dict__``, which also holds the class's statistics functions (``getattr`` references)."""
    return HistoryBuffer, (buffer._log_history, buffer._count_history, buffer.max_length)


def register_safe_globals():
    """Let torch's ``weights_only`` unpickler (the default of ``torch.load``) read mmengine's own
    checkpoints, so that ``--resume`` works without switching that protection off.

    Allow-listed: ``HistoryBuffer`` (the message hub's log buffers, rebuilt from arrays), the numpy
    array / scalar / dtype rebuilders they contain, and ``collections.Counter`` (a dict). None of
    them can run code, so files that would execute code when unpickled are still refused; the
    ``getattr`` that plain mmengine pickles for ``HistoryBuffer`` is not allowed, and buffers are
    pickled from their arrays instead. Checkpoints written by mmengine without effvit_mm imported
    still need ``weights_only=False``. Idempotent."""
    copyreg.pickle(HistoryBuffer, _reduce_history_buffer)
    dtype_classes = [type(np.dtype(t)) for t in (np.float64, np.float32, np.int64, np.int32, np.bool_)]
    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray  # numpy 2 / 1
    torch.serialization.add_safe_globals([
        HistoryBuffer, collections.Counter,
        np.ndarray, np.dtype, *dtype_classes,
        multiarray._reconstruct, multiarray.scalar,
    ])


def add_common_arguments(parser):
    """The arguments train.py and test.py share: ``--cfg-options``, ``--launcher``, ``--local-rank``."""
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config entries, k=v')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser


def load_config(path, work_dir=None, cfg_options=None, launcher='none'):
    """Read a config the way the tools do: ``--cfg-options`` merged, the launcher set, and the work
    dir from the command line, the config, or ``work_dirs/<config name>``."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'config {path} not found')
    cfg = Config.fromfile(path)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.work_dir = work_dir or cfg.get('work_dir') or osp.join('work_dirs', osp.splitext(osp.basename(path))[0])
    return cfg


def run(cfg, mode):
    """Build the config's runner (``runner_type``, default mmengine's), set up for CPU-only
    launches, and run ``mode`` ('train' or 'test'). The process group is closed at the end: gloo
    processes that exit with it open can abort ("terminate called without an active exception")."""
    setup_cpu_distributed(cfg, cfg.launcher)
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
    try:
        return getattr(runner, mode)()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def setup_cpu_distributed(cfg, launcher):
    """On a machine without CUDA, start a gloo process group for ``launcher`` (torchrun's or
    slurm's environment) so that mmengine skips its CUDA-only ``init_dist``, and wrap the model in
    DDP without device ids. With CUDA, or ``launcher='none'``, nothing changes."""
    if launcher == 'none' or torch.cuda.is_available() or dist.is_initialized():
        return
    env = os.environ
    if launcher == 'slurm':
        nodes = env.get('SLURM_NODELIST', 'localhost').split(',')[0].split('[')[0]
        env.setdefault('MASTER_ADDR', nodes)
        env.setdefault('MASTER_PORT', '29500')
        env['RANK'], env['WORLD_SIZE'] = env['SLURM_PROCID'], env['SLURM_NTASKS']
        env['LOCAL_RANK'] = env.get('SLURM_LOCALID', '0')
    elif launcher != 'pytorch':
        raise ValueError(f"launcher '{launcher}' needs CUDA here; on CPU use 'pytorch' (torchrun) or 'slurm'")
    dist.init_process_group('gloo', rank=int(env['RANK']), world_size=int(env['WORLD_SIZE']))
    cfg.setdefault('model_wrapper_cfg', dict(type='MMDistributedDataParallel', device_ids=None))
    _replace_syncbn(cfg.model)


def _replace_syncbn(node):
    """SyncBN has no CPU kernel: use BatchNorm (statistics per process) in CPU runs."""
    if isinstance(node, dict):
        if node.get('type') in ('SyncBN', 'MMSyncBN'):
            node['type'] = 'BN'
        for value in node.values():
            _replace_syncbn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _replace_syncbn(value)


def check_data_roots(cfg, splits):
    """Fail early, in one line, when a dataloader's data root does not exist."""
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        dataset = loader.get('dataset') if loader else None
        while dataset is not None:
            root = dataset.get('data_root')
            if root and not osp.isdir(root):
                raise FileNotFoundError(
                    f'data root {root} ({split} set) not found: put the data set there or pass '
                    f'--cfg-options {split}_dataloader.dataset.data_root=PATH')
            dataset = dataset.get('dataset')


def enable_visualization(cfg, show_dir=None, show=False, wait_time=2.0):
    """Turn on the test-time drawing hook of the config's codebase (mmdet, mmseg or mmpretrain)."""
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        raise ValueError('--show / --show-dir need default_hooks.visualization in the config')
    scope = cfg.get('default_scope', 'mmengine')
    if scope == 'mmpretrain':
        hook.update(enable=True, show=show, wait_time=wait_time, out_dir=show_dir)
        return
    hook.update(draw=True, show=show, wait_time=wait_time)
    if show_dir and scope == 'mmdet':
        hook['test_out_dir'] = show_dir
    elif show_dir:
        cfg.visualizer['save_dir'] = show_dir
