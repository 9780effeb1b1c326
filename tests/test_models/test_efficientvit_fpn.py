import pytest
import torch

from effvit_mm.models import EfficientViTFPN

# The authors' neck (SHViT downstream/efficientvit_fpn.py, mmdet 2.25): parameter names as listed
# from their code for the two SHViT-S4 detection configs.
AUTHORS_KEYS = {
    'mask_rcnn': [f'{m}.{i}.conv.{p}' for m, n in (('lateral_convs', 3), ('fpn_convs', 3),
                                                   ('extra_trans_convs', 2), ('extra_fpn_convs', 2))
                  for i in range(n) for p in ('weight', 'bias')],
    'retinanet': [f'{m}.{i}.conv.{p}' for m, n in (('lateral_convs', 3), ('fpn_convs', 4),
                                                   ('extra_trans_convs', 1), ('extra_fpn_convs', 1))
                  for i in range(n) for p in ('weight', 'bias')],
}
CFGS = {
    'mask_rcnn': dict(num_outs=5, num_extra_trans_convs=2),
    'retinanet': dict(num_outs=5, num_extra_trans_convs=1, add_extra_convs='on_input'),
}


@pytest.mark.parametrize('kind,strides', [('mask_rcnn', [4, 8, 16, 32, 64]), ('retinanet', [8, 16, 32, 64, 128])])
def test_levels_and_names(kind, strides):
    neck = EfficientViTFPN([224, 336, 448], 256, **CFGS[kind])
    assert sorted(neck.state_dict()) == sorted(AUTHORS_KEYS[kind])
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
