"""Converting released classification checkpoints to mmpretrain and backbone-only files.

Layouts recognised (after :func:`effvit_mm.checkpoint.extract_state_dict` unwrapped ``model`` /
``state_dict`` and a ``module.`` prefix):

- ``authors``: the authors' classifiers. SHViT: ``patch_embed``, ``blocks1..3``, ``head.bn`` /
  ``head.l`` (``head_dist`` when distilled). SwiftFormer: ``patch_embed``, ``network``, ``norm``,
  ``head``, ``dist_head``. LITv2: ``patch_embed``, ``layers``, ``norm``, ``head``. A file without the
  classifier (e.g. the output of :func:`to_backbone`) is the same layout.
- ``timm``: timm 1.0 ``shvit_*`` / ``swiftformer_*`` state dicts, renamed first with the family's
  ``timm_adapter``.
- ``mmpretrain``: an ``ImageClassifier`` with our backbone and head (the output of
  :func:`to_mmpretrain`): ``backbone.*`` + ``head.head.*`` (+ ``head.dist_head.*``), the authors'
  final norm being the backbone's last output norm (SwiftFormer ``norm6``, LITv2 ``norm3``).

What identifies each family's layouts, and how its classifier is named, is its
:class:`~effvit_mm.models.family.FamilySpec`. Every function is pure (state dict in, new state dict
out) and idempotent on its own output.
"""
import re

from ..models.family import families, get_family

__all__ = ['ConversionError', 'detect', 'to_authors', 'to_backbone', 'to_mmpretrain']


class ConversionError(ValueError):
    """A state dict of an unknown layout, of another family than asked, or without what the
    requested output needs."""


def _first_keys(state_dict, n=4):
    keys = list(state_dict)
    return ', '.join(keys[:n]) + (f' ... ({len(keys)} keys)' if len(keys) > n else '')


def _top(key):
    return key.split('.', 1)[0]


def detect(state_dict):
    """-> ``(family, layout)``: a registered family's name, layout ``'authors'``, ``'timm'`` or
    ``'mmpretrain'`` (module docstring). Raises :class:`ConversionError` for anything else."""
    if not state_dict:
        raise ConversionError('empty state dict')
    names = [spec.name for spec in families()]
    if any(k.startswith('backbone.') for k in state_dict):
        backbone = {k[len('backbone.'):] for k in state_dict if k.startswith('backbone.')}
        for spec in families():
            if spec.signatures['authors'] in backbone:
                return spec.name, 'mmpretrain'
        raise ConversionError(f'unknown layout: the backbone.* keys are none of {names} '
                              f'(first keys: {_first_keys(state_dict)})')
    found = [(spec.name, layout) for spec in families() for layout, key in spec.signatures.items()
             if key in state_dict]
    if len(found) != 1:
        raise ConversionError(f'unknown layout: not a checkpoint of {names} of the authors, timm or '
                              f'mmpretrain (first keys: {_first_keys(state_dict)})')
    return found[0]


def _check_family(state_dict, family):
    detected, layout = detect(state_dict)
    if family is not None and family != detected:
        names = [spec.name for spec in families()]
        if family not in names:
            raise ConversionError(f'unknown family {family!r}; choose one of {names}')
        raise ConversionError(f'asked for {family}, but this is a {detected} checkpoint ({layout} layout)')
    return get_family(detected), layout


def to_authors(state_dict, family=None):
    """Any recognised layout -> the authors' key names (classifier included when present).

    Args:
        family (str, optional): expected family; a checkpoint of another raises ConversionError
            naming both. None: detected.
    Returns:
        (family, layout of the input, new state dict)
    """
    spec, layout = _check_family(state_dict, family)
    family = spec.name
    if layout == 'timm':
        out = spec.timm_adapter(state_dict)
    elif layout == 'mmpretrain':
        back = {v: k for k, v in spec.classifier_modules.items()}
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
    known = spec.backbone_modules + spec.dense_only_keys + tuple(spec.classifier_modules)
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
    spec = get_family(family)
    rename = spec.classifier_modules
    classifier = {_top(k) for k in authors} & set(rename)
    needed = {'head'} | ({'norm'} if 'norm' in rename else set())
    if not needed <= classifier:
        raise ConversionError(f'no classifier in this {family} checkpoint (it lacks '
                              f'{", ".join(sorted(needed - classifier))}): a backbone-only or '
                              'dense-prediction file cannot make an mmpretrain classifier')
    dense = sorted({_top(k) for k in authors} & set(spec.dense_only_keys))
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
    return {k: v for k, v in authors.items() if _top(k) not in get_family(family).classifier_modules}


def describe(state_dict, family):
    """A few facts of a converted state dict for the file's ``meta`` and the CLI's summary."""
    return dict(family=family, tensors=len(state_dict),
                distillation=any('dist_head.' in k or k.startswith('head_dist.') for k in state_dict),
                num_classes=next((int(v.shape[0]) for k, v in state_dict.items()
                                  if re.fullmatch(r'(head\.)?head(\.l)?\.weight', k)), None))
