"""Loading checkpoints into effvit_mm backbones and whole models, loudly.

``load_pretrained`` reads a file with torch's ``weights_only`` protection (mmengine's loader; the
harmless classes that mmengine checkpoints hold are allow-listed in :mod:`effvit_mm.checkpoint.safe_load`), finds
the state dict (``state_dict`` / ``model`` / ``module``, an optional ``module.`` prefix, a detector's
``backbone.`` prefix), renames keys with the family's adapter and loads it. A checkpoint that matches
none of the backbone's parameters, misses any of them (other than layers that only the
dense-prediction model has), has a parameter of the wrong shape, or has parameters inside the
backbone's modules that the backbone lacks (a deeper arch) raises ``CheckpointMismatchError``; keys
outside them (classification heads) are ignored and listed in the log.

Key adapters (each family's ``timm_adapter``, beside its backbone) are pure functions
``state_dict -> state_dict`` that are safe to run twice.

Whole models (the tools' ``CHECKPOINT`` / ``--checkpoint``, ``load_from``) load with
``load_model_checkpoint`` or, inside mmengine's runner, ``CheckpointFitHook``: a checkpoint that does
not fit the model raises ``CheckpointMismatchError`` in one line, unless a partial load is asked for
(``--partial-checkpoint``). A file that torch refuses (it could run code when unpickled) or cannot read
(truncated, not a checkpoint) raises :class:`~effvit_mm.checkpoint.safe_load.CheckpointFileError` in one line.
"""
import os.path as osp
import re
from collections import OrderedDict

import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.registry import HOOKS
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint, load_state_dict

__all__ = ['CheckpointMismatchError', 'CheckpointFitHook', 'extract_state_dict', 'fit_state_dict',
           'load_model_checkpoint', 'load_pretrained', 'rename_keys']

PARTIAL_OPTION = '--partial-checkpoint'  # the tools' switch for loading only what fits


class CheckpointMismatchError(ValueError):
    """A checkpoint's keys or shapes do not fit the model it is loaded into."""


def _summarise(keys, limit=8):
    keys = sorted(keys)
    more = f' ... and {len(keys) - limit} more' if len(keys) > limit else ''
    return ', '.join(keys[:limit]) + more


def extract_state_dict(checkpoint, prefix=None):
    """Return the parameter dict held by a loaded checkpoint.

    Unwraps ``state_dict`` / ``model`` / ``module`` containers, strips a ``module.`` prefix, and
    keeps only the keys under ``prefix`` (e.g. ``'backbone.'``), with the prefix removed.
    """
    state_dict = checkpoint
    for container in ('state_dict', 'model', 'module'):
        if isinstance(state_dict, dict) and isinstance(state_dict.get(container), dict):
            state_dict = state_dict[container]
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise CheckpointMismatchError('no state dict of tensors found in the checkpoint (looked at the '
                                      "top level and under 'state_dict', 'model', 'module')")
    state_dict = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state_dict.items()}
    if prefix:
        state_dict = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    return state_dict


def rename_keys(state_dict, rules):
    """``state_dict`` with each ``(regex, replacement)`` rule applied in order to every key (its
    ``_metadata`` kept)."""
    out = OrderedDict()
    for key, value in state_dict.items():
        for pattern, repl in rules:
            key = re.sub(pattern, repl, key)
        out[key] = value
    out._metadata = getattr(state_dict, '_metadata', None)
    return out


def load_pretrained(model, filename, adapter=None, prefix=None, optional=(), logger='current'):
    """Load ``filename`` into ``model`` strictly (see module docstring); returns the ignored keys.

    Args:
        adapter (callable, optional): maps the file's key names to the model's.
        prefix (str, optional): take only keys under this prefix. By default, a detector/segmentor
            checkpoint whose keys start with ``backbone.`` is recognised and its backbone taken.
        optional (tuple[str]): prefixes of model keys that may be missing from the file (layers that
            exist only in the dense-prediction model, e.g. output norms).
    """
    if '://' not in str(filename) and not osp.isfile(filename):
        raise FileNotFoundError(f'pretrained checkpoint {filename} not found: put the released file '
                                'there, or set init_cfg=None to train from scratch')
    checkpoint = CheckpointLoader.load_checkpoint(filename, map_location='cpu', logger=logger)
    state_dict = extract_state_dict(checkpoint, prefix)
    target = model.state_dict()
    if prefix is None and not set(state_dict) & set(target) and any(k.startswith('backbone.') for k in state_dict):
        state_dict = extract_state_dict(state_dict, 'backbone.')
    if adapter is not None:
        state_dict = adapter(state_dict)

    name = type(model).__name__
    matched = {k: v for k, v in state_dict.items() if k in target}
    if not matched:
        raise CheckpointMismatchError(
            f'{filename} matches none of the {len(target)} parameters of {name} (its first keys: '
            f'{_summarise(state_dict, 5)}). Is it a checkpoint of another model family or arch?')
    for key, value in matched.items():  # 1x1 conv weights stored as linear weights in some releases
        if value.dim() == 2 and target[key].shape == value.shape + (1, 1):
            matched[key] = value[:, :, None, None]
    wrong = [f'{k}: file {tuple(v.shape)} vs model {tuple(target[k].shape)}'
             for k, v in matched.items() if v.shape != target[k].shape]
    if wrong:
        raise CheckpointMismatchError(f'{filename}: {len(wrong)} parameters of {name} have another '
                                      f'shape (wrong arch?): {_summarise(wrong, 4)}')
    missing = [k for k in target if k not in matched and not k.endswith('num_batches_tracked')
               and not k.startswith(tuple(optional))]
    if missing:
        raise CheckpointMismatchError(f'{filename} misses {len(missing)} parameters of {name}: '
                                      f'{_summarise(missing)}. Is it the right arch?')
    ignored = sorted(set(state_dict) - set(matched))
    modules = {child for child, _ in model.named_children()}
    stray = [k for k in ignored if k.split('.')[0] in modules]
    if stray:
        raise CheckpointMismatchError(f'{filename} has {len(stray)} parameters inside the modules of {name} '
                                      f'that {name} does not have: {_summarise(stray)}. Is it a deeper arch?')
    model.load_state_dict(matched, strict=False)
    print_log(f'Loaded {len(matched)} tensors of {name} from {filename}'
              + (f'; ignored {len(ignored)} not in the backbone: {_summarise(ignored, 4)}' if ignored else ''),
              logger=logger)
    return ignored


def _unwrap(model):
    """The model inside DDP-style wrappers and test-time-augmentation models."""
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    return model


def fit_state_dict(model, state_dict, source, partial=False, logger='current'):
    """What of ``state_dict`` fits ``model`` (same key, same shape), completed with the model's own
    tensors, so that it loads strictly.

    Missing keys (other than BatchNorm's ``num_batches_tracked``), unexpected keys or keys of another
    shape raise :class:`CheckpointMismatchError` in one line (counts and first keys); with ``partial``
    one line says what is skipped instead. A checkpoint of which nothing fits raises in any case.
    """
    target = model.state_dict()
    name = type(model).__name__
    reshaped = {k: f'{k} {tuple(v.shape)} vs {tuple(target[k].shape)}' for k, v in state_dict.items()
                if k in target and getattr(v, 'shape', None) != target[k].shape}
    fitting = {k: v for k, v in state_dict.items() if k in target and k not in reshaped}
    if not fitting:
        raise CheckpointMismatchError(f'{source} fits none of the {len(target)} tensors of {name} (its first '
                                      f'keys: {_summarise(state_dict, 3)}): a checkpoint of another model?')
    missing = [k for k in target if k not in state_dict and not k.endswith('num_batches_tracked')]
    unexpected = [k for k in state_dict if k not in target]
    skipped = '; '.join(f'{len(keys)} {what} ({_summarise(keys, 3)})' for what, keys in (
        ('missing', missing), ('unexpected', unexpected), ('of another shape', list(reshaped.values()))) if keys)
    if skipped and not partial:
        raise CheckpointMismatchError(f'{source} does not fit {name}: {skipped}; {PARTIAL_OPTION} loads only '
                                      'what fits')
    if skipped:
        print_log(f'partial load of {source} into {name}: {len(fitting)} of {len(target)} tensors loaded; '
                  f'skipped {skipped}', logger=logger)
    fitted = OrderedDict(target)
    fitted.update(fitting)
    fitted._metadata = getattr(state_dict, '_metadata', None)
    return fitted


def load_model_checkpoint(model, filename, partial=False, revise_keys=((r'^module\.', ''),), prefix=None,
                          map_location='cpu', logger='current'):
    """Load ``filename`` (mmengine's loader: local file or URL, ``weights_only``) into ``model`` (a
    wrapper's or TTA model's inner model), refusing a checkpoint that does not fit (see
    :func:`fit_state_dict`; ``partial``: load what fits). ``revise_keys``: ``(pattern, replacement)``
    renames of the file's keys; ``prefix``: keep only the keys under it (e.g. ``'backbone.'``) if the
    file has any. Returns the loaded checkpoint (a dict)."""
    checkpoint = _load_checkpoint(filename, map_location=map_location, logger=logger)
    state_dict = rename_keys(checkpoint.get('state_dict', checkpoint), revise_keys)
    if prefix and any(k.startswith(prefix) for k in state_dict):
        state_dict = rename_keys({k: v for k, v in state_dict.items() if k.startswith(prefix)},
                                 [(f'^{re.escape(prefix)}', '')])
    model = _unwrap(model)
    fitted = fit_state_dict(model, state_dict, filename, partial, logger)
    load_state_dict(model, fitted, strict=True, logger=logger)
    return checkpoint


@HOOKS.register_module()
class CheckpointFitHook(Hook):
    """Refuses, before mmengine loads it, a ``load_from`` checkpoint that does not fit the runner's
    model (:func:`fit_state_dict`); with ``partial``, hands mmengine only what fits, so that one line
    (not mmengine's warnings) says what is skipped. Runs before the other hooks see the checkpoint
    (e.g. ``EMAHook``).

    Args:
        source (str): the checkpoint's name in the messages.
        partial (bool): load only what fits instead of refusing a mismatch.
    """
    priority = 'VERY_HIGH'

    def __init__(self, source='checkpoint', partial=False):
        self.source = source
        self.partial = partial

    def after_load_checkpoint(self, runner, checkpoint):
        # as Runner.load_checkpoint
        state_dict = rename_keys(checkpoint.get('state_dict', checkpoint), [(r'^module.', '')])
        checkpoint['state_dict'] = fit_state_dict(_unwrap(runner.model), state_dict, self.source, self.partial)
