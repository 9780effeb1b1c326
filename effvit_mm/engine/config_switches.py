"""The tools' config switches: a config read as the tools read it, early one-line checks (data roots,
pretrained files, the device of mixed precision, a ``load_from`` that does not fit), and what
``--amp``, ``--auto-scale-lr``, ``--show-dir``, ``--out`` and ``--tta`` change in each codebase's config."""
import functools
import os.path as osp

import torch
from mmengine.config import Config, ConfigDict
from mmengine.dataset import BaseDataset

from ..checkpoint import CheckpointMismatchError
from ..apis.model_zoo import resolve_config
from ..checkpoint.safe_load import CheckpointFileError


def load_config(path, work_dir=None, cfg_options=None, launcher='none'):
    """Read a config the way the tools do: ``--cfg-options`` merged, the launcher set, and the work
    dir from the command line, the config, or ``work_dirs/<config name>``. ``path``: a config file or a
    model-zoo name (:func:`effvit_mm.apis.model_zoo.resolve_config`)."""
    path = resolve_config(path)
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
