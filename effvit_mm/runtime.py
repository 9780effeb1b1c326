"""What the tools need beyond mmengine on torch 2.14: safe checkpoint loading, CPU distributed
launches, early checks of config and data paths, and the per-codebase switches of ``--show-dir``,
``--out`` and ``--amp``."""
import argparse
import functools
import os
import os.path as osp
import pickle
import subprocess

import numpy as np
import torch
import torch.distributed as dist
from mmengine.config import Config, ConfigDict
from mmengine.dataset import BaseDataset
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.model import MMDistributedDataParallel, revert_sync_batchnorm
from mmengine.registry import MODEL_WRAPPERS, RUNNERS
from mmengine.runner import Runner

from .checkpoint import CheckpointFileError, CheckpointMismatchError, translate_load_errors

# numpy dtype codes of the arrays and scalars a checkpoint may hold: bool, integers, floats,
# complex numbers, bytes and str (no object dtype).
_NUMPY_DTYPE_CODES = '?bBhHiIlLqQefdgFDGSU'


def _history_buffer_method(owner, name):
    """Stand-in for ``builtins.getattr`` in torch's ``weights_only`` unpickler. mmengine pickles
    each ``HistoryBuffer`` with its statistics functions, referenced as ``getattr(HistoryBuffer,
    'mean')``; exactly those four references are resolved, any other ``getattr`` is refused."""
    if owner is HistoryBuffer and name in ('min', 'max', 'current', 'mean'):
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(f'refusing getattr({owner!r}, {name!r}) in a checkpoint')


def register_safe_globals():
    """Allow-list for torch's ``weights_only`` unpickler (the default of ``torch.load``) the data
    classes of mmengine's own checkpoints (message hub), numpy arrays and scalars (numpy 1 and 2
    names) and argparse namespaces (the ``args`` of timm / DeiT-style checkpoints), so that
    ``--resume`` and ``load_from`` work without switching that protection off; a file it refuses, or
    cannot read, raises a one-line ``CheckpointFileError`` (:func:`translate_load_errors`). Idempotent."""
    translate_load_errors()
    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    numpy_functions = [(getattr(multiarray, fn), f'{module}.multiarray.{fn}')
                       for fn in ('_reconstruct', 'scalar') for module in ('numpy.core', 'numpy._core')]
    torch.serialization.add_safe_globals([
        HistoryBuffer, (_history_buffer_method, 'builtins.getattr'),
        np.ndarray, np.dtype, *{type(np.dtype(code)) for code in _NUMPY_DTYPE_CODES}, *numpy_functions,
        argparse.Namespace,
    ])


def load_config(path, work_dir=None, cfg_options=None, launcher='none'):
    """Read a config the way the tools do: ``--cfg-options`` merged, the launcher set, and the work
    dir from the command line, the config, or ``work_dirs/<config name>``."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'config {path} not found (relative paths start at {os.getcwd()})')
    cfg = Config.fromfile(path)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.work_dir = work_dir or cfg.get('work_dir') or osp.join('work_dirs', osp.splitext(osp.basename(path))[0])
    return cfg


class EmptyDatasetError(ValueError):
    """A data set that holds no sample once built and filtered."""


def _refuse_empty(serialize):
    """mmengine's ``BaseDataset._serialize_data``, failing in one line on an empty data set (instead of
    numpy's 'need at least one array to concatenate')."""
    @functools.wraps(serialize)
    def refusing(self):
        if not self.data_list:
            classes = list(self.metainfo.get('classes') or [])
            listed = ', '.join(map(str, classes[:4])) + (f', ... ({len(classes)} in all)' if len(classes) > 4 else '')
            raise EmptyDatasetError(
                f'{type(self).__name__} {self.ann_file or self.data_root} is empty after filtering (classes: '
                f'{listed or "none"}): do the classes of the config match those of the annotations?')
        return serialize(self)

    refusing.refuses_empty = True
    return refusing


# What the tools report in one line when it is raised inside mmengine's runner.
RUN_ERRORS = (FileNotFoundError, CheckpointFileError, CheckpointMismatchError, EmptyDatasetError)


def check_data_roots(cfg, splits):
    """Fail early, in one line, when a dataloader's data root (or its wrapped dataset's) is missing;
    and, when the data sets are built, when one of them is empty after filtering (``EmptyDatasetError``)."""
    if not getattr(BaseDataset._serialize_data, 'refuses_empty', False):
        BaseDataset._serialize_data = _refuse_empty(BaseDataset._serialize_data)
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


# The mixed-precision twin of each optimiser wrapper (--amp keeps the clipping rule of the recipe).
AMP_WRAPPERS = {'OptimWrapper': 'AmpOptimWrapper', 'AGCOptimWrapper': 'AGCAmpOptimWrapper'}


def enable_amp(cfg):
    """Train with the mixed-precision twin of the config's optimiser wrapper (``--amp``)."""
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper in AMP_WRAPPERS.values():
        raise ValueError(f'--amp: the config already trains with {wrapper}; drop --amp')
    if wrapper not in AMP_WRAPPERS:
        raise ValueError(f'--amp: no mixed-precision variant of {wrapper} (known: {sorted(AMP_WRAPPERS)})')
    if not torch.cuda.is_available():
        raise ValueError('--amp needs a GPU (mmengine\'s AmpOptimWrapper does not run on CPU)')
    cfg.optim_wrapper.type = AMP_WRAPPERS[wrapper]
    cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')


def drop_amp_options(cfg):
    """A mixed-precision config switched to a plain wrapper (``--cfg-options
    optim_wrapper.type=OptimWrapper``, the override :func:`check_amp_device` names) loses the options
    only the mixed-precision wrappers take (``loss_scale``, ``dtype``), which the plain ones refuse."""
    wrapper = cfg.get('optim_wrapper') or {}
    if wrapper.get('type', 'OptimWrapper') in AMP_WRAPPERS:
        for key in ('loss_scale', 'dtype'):
            wrapper.pop(key, None)


def check_pretrained(cfg):
    """Fail early, in one line, when a file the model loads while it is built or initialised is
    missing: the backbone's ``Pretrained`` checkpoint or a distillation teacher's weights."""
    model = cfg.get('model', {})
    init_cfg = model.get('backbone', {}).get('init_cfg') or {}
    pretrained = init_cfg.get('checkpoint') if init_cfg.get('type') == 'Pretrained' else None
    files = [('backbone', pretrained, 'model.backbone.init_cfg', 'trains from scratch'),
             ('teacher', (model.get('teacher') or {}).get('checkpoint'), 'model.teacher', 'trains without a teacher')]
    for what, path, key, meaning in files:
        if path and '://' not in path and not osp.isfile(path):
            raise FileNotFoundError(f'{what} checkpoint {path} not found: put the file there or pass '
                                    f'--cfg-options {key}.checkpoint=PATH ({key}=None {meaning})')


def check_checkpoint_fit(cfg, partial=False):
    """Make the runner refuse, in one line and before loading it, a ``load_from`` checkpoint that does
    not fit the model (:class:`~effvit_mm.checkpoint.CheckpointFitHook`); ``partial``: load what fits,
    with one line of what is skipped."""
    hooks = [h for h in cfg.get('custom_hooks') or [] if h.get('type') != 'CheckpointFitHook']
    cfg.custom_hooks = hooks + [dict(type='CheckpointFitHook', source=cfg.load_from, partial=partial)]


def check_amp_device(cfg):
    """A config that trains in mixed precision (e.g. the LITv2 detectors) needs a GPU: say so in one
    line, with the switch that trains it in fp32 instead."""
    if cfg.get('optim_wrapper', {}).get('type') in AMP_WRAPPERS.values() and not torch.cuda.is_available():
        raise ValueError('this config trains in mixed precision (AmpOptimWrapper), which needs a GPU; '
                         'to train in fp32 on CPU pass --cfg-options optim_wrapper.type=OptimWrapper')


def enable_progress_bar(cfg):
    """Show a progress bar over the batches of each evaluation (:class:`effvit_mm.engine.ProgressBarHook`)."""
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(h.get('type') == 'ProgressBarHook' for h in hooks):
        cfg.custom_hooks = hooks + [dict(type='ProgressBarHook')]


def enable_auto_scale_lr(cfg):
    """Scale the learning rate to the actual total batch size (``--auto-scale-lr``)."""
    scaling = cfg.get('auto_scale_lr') or {}
    if 'base_batch_size' not in scaling:
        why = scaling.get('refuse', 'it needs auto_scale_lr = dict(base_batch_size=N) in the config')
        raise ValueError(f'--auto-scale-lr: {why}')
    cfg.auto_scale_lr.enable = True


def enable_visualization(cfg, show_dir=None, show=False, wait_time=2.0):
    """Turn on the test-time drawing of the config's codebase, as its own tools/test.py does:
    mmdet's hook draws into ``test_out_dir`` (under ``<work_dir>/<timestamp>/``), mmseg's
    visualizer into ``<save_dir>/vis_data``, mmpretrain's hook into ``out_dir``. mmseg's and
    mmpretrain's hooks draw every image (their defaults: every 50th / 5000th), unless the config
    sets an ``interval``."""
    hook = cfg.get('default_hooks', {}).get('visualization')
    if hook is None:
        raise ValueError("--show / --show-dir need default_hooks.visualization in the config")
    scope = cfg.get('default_scope')
    if scope in ('mmseg', 'mmpretrain'):
        hook.setdefault('interval', 1)
    if scope == 'mmpretrain':
        hook.update(enable=True, show=show, wait_time=wait_time, out_dir=show_dir)
        return
    hook.update(draw=True, show=show, wait_time=wait_time)
    if show_dir and scope == 'mmseg':
        cfg.visualizer['save_dir'] = show_dir
    elif show_dir:
        hook['test_out_dir'] = show_dir


def dump_predictions(cfg, out):
    """Save the test predictions (``--out``) the way the config's codebase does: mmdet's
    ``DumpDetResults`` pickle, mmseg's ``IoUMetric`` output directory, otherwise ``DumpResults``."""
    if cfg.get('default_scope') == 'mmseg':
        cfg.test_evaluator.output_dir = out
        return
    if not out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out {out}: the predictions are dumped to a .pkl file')
    metric = 'DumpDetResults' if cfg.get('default_scope') == 'mmdet' else 'DumpResults'
    evaluators = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else [cfg.test_evaluator]
    cfg.test_evaluator = [*evaluators, dict(type=metric, out_file_path=out)]


def enable_tta(cfg):
    """Test with the config's ``tta_model`` around the model and its ``tta_pipeline`` (``--tta``)."""
    if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
        raise ValueError('--tta needs tta_model and tta_pipeline in the config')
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` for gloo on CPU: SyncBN layers, which have no CPU kernel,
    become BatchNorm (statistics per process)."""

    def __init__(self, module, **kwargs):
        super().__init__(module=revert_sync_batchnorm(module), **kwargs)


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
    dist.init_process_group('gloo', rank=int(env['RANK']), world_size=int(env['WORLD_SIZE']))
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
