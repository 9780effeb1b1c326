"""Backbone families: what the tools know of a family, declared once beside its backbone.

Each backbone file ends with ``register_family(FamilySpec(...))``. The converter, the export,
benchmark and FLOPs tools, the attention maps and the generic tests read the specs; no other module
names a family. ``tests/test_models/test_family.py`` checks that every registered spec is complete and
agrees with its backbone.
"""
from dataclasses import dataclass, field
from typing import Callable, Optional

__all__ = ['FamilySpec', 'register_family', 'get_family', 'families']

_FAMILIES = {}


@dataclass(frozen=True, eq=False)  # one object per family: compared and hashed by identity
class FamilySpec:
    """One backbone family.

    Attributes:
        name: lower-case key: ``family:arch`` specs (``shvit:s4``), ``configs/<name>_<arch>_in1k.py``,
            ``tests/data/<name>_official_keys.json``.
        backbone: the registered backbone class (its ``arch_settings`` names the variants).
        head: the registered mmpretrain head that rebuilds the authors' classifier.
        signatures: layout (``'authors'``, ``'timm'``) -> a key that only this family's checkpoints
            of that layout have (the converter detects layouts with them).
        backbone_modules: top-level modules of the authors' checkpoints that make the backbone.
        classifier_modules: the authors' classifier modules -> their names in mmpretrain's
            ``ImageClassifier`` (a final norm becomes the backbone's last output norm).
        dense_only_keys: prefixes of the layers only the dense-prediction model has (output norms):
            a classification checkpoint may lack them.
        timm_adapter: ``state_dict -> state_dict`` from timm 1.0's names to the authors' (None when
            timm does not ship the family); idempotent.
        timm_models: variant -> timm model name.
        attention: the attention module classes whose maps :mod:`effvit_mm.visualization.attention`
            reads; each has ``attention_probs(x)`` (see there) and may have ``attention_readable``
            (False: nothing to read).
        paper: ``(variant, resolution) -> (parameters, multiply-adds)`` of the paper's ImageNet table.
    """
    name: str
    backbone: type
    head: str
    signatures: dict
    backbone_modules: tuple
    classifier_modules: dict
    dense_only_keys: tuple = ()
    timm_adapter: Optional[Callable] = None
    timm_models: dict = field(default_factory=dict)
    attention: tuple = ()
    paper: dict = field(default_factory=dict)

    @property
    def type(self):
        """The registered type name (``model.backbone.type`` of the configs)."""
        return self.backbone.__name__

    @property
    def variants(self):
        return tuple(self.backbone.arch_settings)

    @property
    def num_stages(self):
        return len(next(iter(self.backbone.arch_settings.values()))['embed_dims'])


def register_family(spec):
    """Register ``spec`` (by name) and attach it to its backbone as ``backbone.family``."""
    if spec.name in _FAMILIES:
        raise ValueError(f'family {spec.name!r} is registered twice')
    _FAMILIES[spec.name] = spec
    spec.backbone.family = spec
    return spec


def families():
    """The registered specs, in registration order."""
    return list(_FAMILIES.values())


def get_family(name):
    """The spec of ``name`` (case-insensitive: ``'shvit'`` or the type ``'SHViT'``)."""
    spec = _FAMILIES.get(str(name).lower())
    if spec is None:
        raise ValueError(f'unknown family {name!r}; choose one of {sorted(_FAMILIES)}')
    return spec
