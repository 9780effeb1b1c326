"""Every registered family's spec (effvit_mm/models/family.py) is complete and agrees with its backbone,
its configs, its key fixture and timm: what a new family must provide (README, "Adding a family")."""
import functools
import json
from pathlib import Path

import pytest
import timm
import torch
from mmengine.registry import MODELS

import effvit_mm  # noqa: F401  (registers the families)
from effvit_mm.models.family import FamilySpec, families, get_family, register_family

ROOT = Path(__file__).parents[2]
FAMILY_NAMES = [spec.name for spec in families()]


def test_the_three_families_are_registered():
    assert sorted(FAMILY_NAMES) == ['litv2', 'shvit', 'swiftformer']
    assert get_family('SHViT') is get_family('shvit')
    with pytest.raises(ValueError, match=r"unknown family 'vit'; choose one of \['litv2', 'shvit', 'swiftformer'\]"):
        get_family('vit')
    with pytest.raises(ValueError, match="family 'shvit' is registered twice"):
        register_family(get_family('shvit'))


@functools.lru_cache(maxsize=None)
def dense_backbone(spec, arch):
    """The backbone with every stage as an output (all the dense model's layers)."""
    return spec.backbone(arch=arch, out_indices=tuple(range(spec.num_stages)))


@pytest.mark.parametrize('name', FAMILY_NAMES)
def test_spec_is_complete(name):
    spec = get_family(name)
    assert isinstance(spec, FamilySpec) and spec.backbone.family is spec and spec.name == name.lower()
    assert MODELS.get(spec.type) is spec.backbone, 'the backbone is registered in the root MODELS under its type'
    assert MODELS.get(spec.head) is not None, f'head {spec.head} is not registered'
    assert spec.variants and spec.num_stages >= 1
    for arch in spec.variants:
        assert (ROOT / 'configs' / f'{name}_{arch}_in1k.py').is_file(), f'no ImageNet config of {name}:{arch}'
    keys = json.loads((ROOT / 'tests' / 'data' / f'{name}_official_keys.json').read_text())
    assert set(keys) == set(spec.variants), 'the key fixture lists every variant'

    # the layout signatures and module lists agree with the backbone's parameters
    for arch in spec.variants:
        own = dense_backbone(spec, arch).state_dict()
        children = {k.split('.')[0] for k in own}
        assert children == set(spec.backbone_modules) | set(spec.dense_only_keys), arch
        assert spec.signatures['authors'] in own
    assert set(spec.signatures) <= {'authors', 'timm'}
    assert all(v.startswith(('head.', 'backbone.')) for v in spec.classifier_modules.values())
    assert not set(spec.classifier_modules) & set(spec.backbone_modules)

    # timm: adapter, signature and model names come together; the adapter maps timm's keys onto ours
    has_timm = spec.timm_adapter is not None
    assert has_timm == ('timm' in spec.signatures) == bool(spec.timm_models)
    if has_timm:
        assert set(spec.timm_models) <= set(spec.variants)
        arch, timm_name = next(iter(spec.timm_models.items()))
        with torch.device('meta'):
            timm_keys = timm.create_model(timm_name, pretrained=False).state_dict()
        assert spec.signatures['timm'] in timm_keys
        mapped = spec.timm_adapter(timm_keys)
        own = dense_backbone(spec, arch).state_dict()
        assert {k for k in own if not k.startswith(spec.dense_only_keys)} <= set(mapped)
        assert spec.timm_adapter(mapped).keys() == mapped.keys(), 'the adapter is idempotent'

    # attention modules the maps can read, and the paper's figures
    for cls in spec.attention:
        assert callable(getattr(cls, 'attention_probs', None))
        assert any(isinstance(m, cls) for m in dense_backbone(spec, spec.variants[0]).modules())
    assert spec.paper and all(arch in spec.variants and res > 0 and params > 0 and macs > 0
                              for (arch, res), (params, macs) in spec.paper.items())
