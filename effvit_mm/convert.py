"""Converting released classification checkpoints to mmpretrain and backbone-only files.

Layouts recognised (after :func:`effvit_mm.checkpoint.extract_state_dict` unwrapped ``model`` /
``state_dict`` and a ``module.`` prefix):

- ``authors``: the authors' classifiers. SHViT: ``patch_embed``, ``blocks1..3``, ``head.bn`` /
  ``head.l`` (``head_dist`` when distilled). SwiftFormer: ``patch_embed``, ``network``, ``norm``,
  ``head``, ``dist_head``. LITv2: ``patch_embed``, ``layers``, ``norm``, ``head``. A file without the
  classifier (e.g. the output of :func:`to_backbone`) is the same layout.
- ``timm``: timm 1.0 ``shvit_*`` / ``swiftformer_*`` state dicts, renamed first with
  :func:`~effvit_mm.checkpoint.shvit_from_timm` / :func:`~effvit_mm.checkpoint.swiftformer_from_timm`.
- ``mmpretrain``: an ``ImageClassifier`` with our backbone and head (the output of
  :func:`to_mmpretrain`): ``backbone.*`` + ``head.head.*`` (+ ``head.dist_head.*``), the authors'
  final norm being the backbone's last output norm (SwiftFormer ``norm6``, LITv2 ``norm3``).

Every function is pure (state dict in, new state dict out) and idempotent on its own output.
"""
import re

from .checkpoint import shvit_from_timm, swiftformer_from_timm

__all__ = ['ConversionError', 'FAMILIES', 'detect', 'detect_family', 'to_authors', 'to_backbone',
           'to_mmpretrain']

FAMILIES = ('shvit', 'swiftformer', 'litv2')

# A key that only this (family, layout) has.
_SIGNATURES = {
    ('shvit', 'authors'): 'blocks1.0.conv.m.c.weight',
    ('shvit', 'timm'): 'stages.0.blocks.0.conv.m.c.weight',
    ('swiftformer', 'authors'): 'network.0.0.dwconv.weight',
    ('swiftformer', 'timm'): 'stages.0.blocks.0.dwconv.weight',
    ('litv2', 'authors'): 'patch_embed.proj.weight',
}
_ADAPTERS = {'shvit': shvit_from_timm, 'swiftformer': swiftformer_from_timm}
# Top-level modules of the authors' classifiers (and dense models): backbone, then classifier.
_BACKBONE_MODULES = {
    'shvit': ('patch_embed', 'blocks1', 'blocks2', 'blocks3'),
    'swiftformer': ('patch_embed', 'network'),
    'litv2': ('patch_embed', 'layers'),
}
# Output norms of the dense-prediction models (the authors' detection backbones).
_DENSE_NORMS = {'shvit': (), 'swiftformer': ('norm0', 'norm2', 'norm4', 'norm6'),
                'litv2': ('norm1', 'norm2', 'norm3')}
_CLASSIFIER_MODULES = {
    'shvit': ('head', 'head_dist'),
    'swiftformer': ('norm', 'head', 'dist_head'),
    'litv2': ('norm', 'head'),
}
# authors' classifier name -> name in the mmpretrain ImageClassifier
_TO_MMPRETRAIN = {
    'shvit': {'head': 'head.head', 'head_dist': 'head.dist_head'},
    'swiftformer': {'norm': 'backbone.norm6', 'head': 'head.head', 'dist_head': 'head.dist_head'},
    'litv2': {'norm': 'backbone.norm3', 'head': 'head.head'},
}


class ConversionError(ValueError):
    """A state dict of an unknown layout, of another family than asked, or without what the
    requested output needs."""


def _first_keys(state_dict, n=4):
    keys = list(state_dict)
    return ', '.join(keys[:n]) + (f' ... ({len(keys)} keys)' if len(keys) > n else '')


def _top(key):
    return key.split('.', 1)[0]


def detect(state_dict):
    """-> ``(family, layout)``: family in :data:`FAMILIES`, layout ``'authors'``, ``'timm'`` or
    ``'mmpretrain'`` (module docstring). Raises :class:`ConversionError` for anything else."""
    if not state_dict:
        raise ConversionError('empty state dict')
    if any(k.startswith('backbone.') for k in state_dict):
        backbone = {k[len('backbone.'):] for k in state_dict if k.startswith('backbone.')}
        for (family, layout), key in _SIGNATURES.items():
            if layout == 'authors' and key in backbone:
                return family, 'mmpretrain'
        raise ConversionError(f'unknown layout: the backbone.* keys are none of {FAMILIES} '
                              f'(first keys: {_first_keys(state_dict)})')
    found = [fl for fl, key in _SIGNATURES.items() if key in state_dict]
    if len(found) != 1:
        raise ConversionError(f'unknown layout: not an SHViT, SwiftFormer or LITv2 checkpoint of the '
                              f'authors, timm or mmpretrain (first keys: {_first_keys(state_dict)})')
    return found[0]


def detect_family(state_dict):
    """-> ``'shvit'``, ``'swiftformer'`` or ``'litv2'`` (see :func:`detect`)."""
    return detect(state_dict)[0]


def _check_family(state_dict, family):
    detected, layout = detect(state_dict)
    if family is not None and family != detected:
        if family not in FAMILIES:
            raise ConversionError(f'unknown family {family!r}; choose one of {FAMILIES}')
        raise ConversionError(f'asked for {family}, but this is a {detected} checkpoint ({layout} layout)')
    return detected, layout


def to_authors(state_dict, family=None):
    """Any recognised layout -> the authors' key names (classifier included when present).

    Args:
        family (str, optional): expected family; a checkpoint of another raises ConversionError
            naming both. None: detected.
    Returns:
        (family, layout of the input, new state dict)
    """
    family, layout = _check_family(state_dict, family)
    if layout == 'timm':
        out = _ADAPTERS[family](state_dict)
    elif layout == 'mmpretrain':
        back = {v: k for k, v in _TO_MMPRETRAIN[family].items()}
        out = {}
        for key, value in state_dict.items():
            prefix = next((p for p in back if key.startswith(p + '.')), None)
            if prefix is not None:
                out[back[prefix] + key[len(prefix):]] = value
            elif key.startswith('backbone.'):
                out[key[len('backbone.'):]] = value
            else:
                raise ConversionError(f'{key}: not a key of an mmpretrain {family} classifier with '
                                      "effvit_mm's head (backbone.*, head.head.*, head.dist_head.*); "
                                      'a detector or segmentor loads directly through the init_cfg '
                                      'of the backbone')
    else:
        out = dict(state_dict)
    known = _BACKBONE_MODULES[family] + _DENSE_NORMS[family] + _CLASSIFIER_MODULES[family]
    stray = sorted({_top(k) for k in out} - set(known))
    if stray:
        raise ConversionError(f'unknown layout: {family} checkpoint with modules {stray} that the '
                              f'authors\' {family} has not (known: {", ".join(known)})')
    return family, layout, out


def to_mmpretrain(state_dict, family=None):
    """-> the state dict of mmpretrain's ``ImageClassifier`` with our backbone (last stage as its
    only output: ``out_indices=(3,)``, SHViT ``(2,)``) and head (``SHViTClsHead``,
    ``SwiftFormerClsHead``, ``LITv2ClsHead``): ``backbone.*`` + ``head.head.*`` (+ ``head.dist_head.*``);
    the authors' final ``norm`` becomes ``backbone.norm6`` (SwiftFormer) / ``backbone.norm3``
    (LITv2). Needs the classifier: a backbone-only or dense-model file raises ConversionError."""
    family, _, authors = to_authors(state_dict, family)
    rename = _TO_MMPRETRAIN[family]
    classifier = {_top(k) for k in authors} & set(rename)
    needed = {'head'} | ({'norm'} if 'norm' in rename else set())
    if not needed <= classifier:
        raise ConversionError(f'no classifier in this {family} checkpoint (it lacks '
                              f'{", ".join(sorted(needed - classifier))}): a backbone-only or '
                              'dense-prediction file cannot make an mmpretrain classifier')
    dense = sorted({_top(k) for k in authors} & set(_DENSE_NORMS[family]))
    if dense:
        raise ConversionError(f'this {family} checkpoint has the output norms {dense} of a '
                              'dense-prediction model besides its classifier; cannot tell which to keep')
    out = {}
    for key, value in authors.items():
        top = _top(key)
        out[rename[top] + key[len(top):] if top in rename else 'backbone.' + key] = value
    return out


def to_backbone(state_dict, family=None):
    """-> the backbone's keys in the authors' names, for ``init_cfg=dict(type='Pretrained',
    checkpoint=...)`` of the backbone (e.g. in the detection configs), which loads it strictly.

    The classifier is left out, including its final norm (SwiftFormer ``norm`` = ``norm6`` in an
    mmpretrain file, LITv2 ``norm`` = ``norm3``): as in the authors' detection runs, the backbone's
    output norms then start fresh. Output norms of a dense-prediction source file are kept."""
    family, layout, authors = to_authors(state_dict, family)
    return {k: v for k, v in authors.items() if _top(k) not in _CLASSIFIER_MODULES[family]}


def describe(state_dict, family):
    """A few facts of a converted state dict for the file's ``meta`` and the CLI's summary."""
    return dict(family=family, tensors=len(state_dict),
                distillation=any('dist_head.' in k or k.startswith('head_dist.') for k in state_dict),
                num_classes=next((int(v.shape[0]) for k, v in state_dict.items()
                                  if re.fullmatch(r'(head\.)?head(\.l)?\.weight', k)), None))
