import pytest
import torch

from effvit_mm.models import EfficientViTFPN

CFGS = {
    'mask_rcnn': dict(num_outs=5, num_extra_trans_convs=2),
    'retinanet': dict(num_outs=5, num_extra_trans_convs=1, add_extra_convs='on_input'),
}


@pytest.mark.parametrize('kind,strides', [('mask_rcnn', [4, 8, 16, 32, 64]), ('retinanet', [8, 16, 32, 64, 128])])
def test_levels_and_names(kind, strides, fpn_authors_keys):
    """Our neck's parameter names are the authors' (``fpn_authors_keys``, tests/conftest.py)."""
    neck = EfficientViTFPN([224, 336, 448], 256, **CFGS[kind])
    assert sorted(neck.state_dict()) == sorted(fpn_authors_keys[kind])
    h, w = 256, 320
    feats = [torch.rand(1, c, h // s, w // s) for c, s in zip([224, 336, 448], [16, 32, 64])]
    outs = neck(feats)
    assert [tuple(o.shape) for o in outs] == [(1, 256, -(-h // s), -(-w // s)) for s in strides]


def test_odd_sizes_and_bad_args():
    neck = EfficientViTFPN([8, 16, 24], 16, **CFGS['mask_rcnn'])
    feats = [torch.rand(1, 8, 9, 7), torch.rand(1, 16, 5, 4), torch.rand(1, 24, 3, 2)]
    outs = neck(feats)
    assert [tuple(o.shape[2:]) for o in outs] == [(36, 28), (18, 14), (9, 7), (5, 4), (3, 2)]
    with pytest.raises(ValueError, match='num_extra_trans_convs'):
        EfficientViTFPN([8, 16, 24], 16, num_outs=4, num_extra_trans_convs=2)
