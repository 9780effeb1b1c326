"""Images of any size and aspect ratio through every config: its test pipeline and data preprocessor
turn images from 1x1 to 4000 px sides and 1:50 strips into input tensors, on which the config's
backbone and neck (random weights, eval mode) give finite outputs of the sizes the docstrings state.
By default one config per family and task, images up to 1400 px and only the tensors with a side
under 64 (from 64 px on no stage map is a single row, and the family tests cover such sizes);
``-m slow``: every config, image and tensor."""
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import MODELS, DefaultScope

import effvit_mm  # noqa: F401  (registers the models)
from effvit_mm.models.family import families
from effvit_mm.models.backbones import LITv2, SHViT
from effvit_mm.models.layers.dtm import DTM

CONFIGS = Path(__file__).parents[2] / 'configs'
SMALL_IMAGES = [(1, 1), (1, 50), (50, 1), (33, 1400), (1400, 33)]  # (H, W)
IMAGES = SMALL_IMAGES + [(80, 4000), (4000, 80), (4000, 4000)]
# 1:4000 strips, 1 x 2048 tensors in the ADE20K configs; the Resize of the detection and demo
# segmentation configs rounds their short side to 0 pixels (mmcv then fails, before any model).
HAIRS = [(1, 4000), (4000, 1)]
FAMILIES = {spec.type: spec.name for spec in families()}
# Per family the cheapest detection and segmentation configs (LITv2's detection one with 4x4 HiLo
# windows) and the demo configs, whose small test scale (3 x 128 tensors) or raw images (classification)
# make the smallest tensors; the other classification configs make squares of 224 to 384 px (slow).
DEFAULT = {
    'LITv2': ['fpn_litv2_s_demoade20k.py', 'fpn_litv2_s_ade20k.py', 'retinanet_litv2_s_ws4_coco.py'],
    'SHViT': ['shvit_s1_demoimagenet.py', 'fpn_shvit_s4_ade20k.py', 'mask_rcnn_shvit_s4_coco.py'],
    'SwiftFormer': ['fpn_swiftformer_l1_ade20k.py', 'retinanet_swiftformer_l1_coco.py'],
}


def input_sizes(cfg, images):
    """(H, W) of the tensors the config's test pipeline and data preprocessor make of blank images of
    these (H, W) sizes (image loading and annotations left out)."""
    steps = [t for t in cfg.test_dataloader.dataset.pipeline if t.type not in ('LoadImageFromFile', 'LoadAnnotations')]
    pipeline = Compose(steps)
    preprocessor_cfg = dict(cfg.model.get('data_preprocessor') or cfg.data_preprocessor)
    preprocessor_cfg.setdefault('type', 'ClsDataPreprocessor')  # mmpretrain classifiers' default
    preprocessor = MODELS.build(preprocessor_cfg)
    sizes = set()
    for h, w in images:
        data = pipeline(dict(img=np.zeros((h, w, 3), np.uint8), img_shape=(h, w), ori_shape=(h, w), img_path='x.png'))
        batch = preprocessor(dict(inputs=[data['inputs']], data_samples=[data['data_samples']]), training=False)
        sizes.add(tuple(batch['inputs'].shape[2:]))
    return sizes


def backbone_sizes(backbone, size):
    """The (H_i, W_i) of the backbone's outputs for an (H, W) input: SHViT ceil(H / 2**(4+i)),
    SwiftFormer ceil(H / 2**(2+i)), LITv2 ceil(H / 4) then halved rounding down but not below 1."""
    if isinstance(backbone, LITv2):
        sizes = [tuple(-(-s // 4) for s in size)]
        for _ in range(3):
            sizes.append(tuple(max(s // 2, 1) for s in sizes[-1]))
    else:
        first = 4 if isinstance(backbone, SHViT) else 2
        sizes = [tuple(-(-s // 2 ** (first + i)) for s in size) for i in range(len(backbone.arch['depths']))]
    return [sizes[i] for i in backbone.out_indices]


def neck_sizes(neck, sizes):
    """Sizes of an (EfficientViT)FPN's outputs on inputs of these sizes: twice the finest for each
    transposed conv, its input levels, then halved rounding up (stride-2 pooling or 3x3 conv)."""
    levels = list(sizes[neck.start_level:neck.backbone_end_level])
    for _ in range(getattr(neck, 'num_extra_trans_convs', 0)):
        levels.insert(0, tuple(2 * s for s in levels[0]))
    while len(levels) < neck.num_outs:
        levels.append(tuple(-(-s // 2) for s in levels[-1]))
    return levels


def check_config(name, checked, images=IMAGES, max_side=None):
    """Run the config's backbone (+ neck) on its pipeline's tensors for ``images`` (and HAIRS for
    the ADE20K configs; those with a side under ``max_side`` if given); ``checked`` holds the
    (model, size) pairs already run, which are skipped."""
    if name.endswith('_ade20k.py'):
        images = images + HAIRS
    cfg = Config.fromfile(CONFIGS / name)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        sizes = {size for size in input_sizes(cfg, images) if max_side is None or min(size) < max_side}
        backbone_cfg = dict(cfg.model.backbone, init_cfg=None)
        neck_cfg = cfg.model.get('neck')
        key = repr((sorted(backbone_cfg.items()), neck_cfg and sorted(neck_cfg.items())))
        todo = sorted(size for size in sizes if (key, size) not in checked)
        if not todo:
            return
        backbone = MODELS.build(backbone_cfg).eval()
        neck = MODELS.build(neck_cfg).eval() if neck_cfg else None
    for size in todo:
        with torch.no_grad():
            feats = backbone(torch.rand(1, 3, *size))
            outs = neck(feats) if neck else feats
        expected = backbone_sizes(backbone, size)
        assert [tuple(f.shape[2:]) for f in feats] == expected, (name, size)
        if neck:
            assert [tuple(o.shape[2:]) for o in outs] == neck_sizes(neck, expected), (name, size)
        assert all(o.isfinite().all() for o in outs), (name, size)
        checked.add((key, size))


@pytest.mark.parametrize('family', FAMILIES)
def test_one_config_per_task(family):
    checked = set()
    for name in DEFAULT[family]:
        check_config(name, checked, SMALL_IMAGES, max_side=64)


@pytest.mark.slow
@pytest.mark.parametrize('family', FAMILIES)
def test_every_config(family):
    checked = set()
    for path in sorted(CONFIGS.glob(f'*{FAMILIES[family]}*.py')):
        check_config(path.name, checked)


def test_pipelines_reach_the_extreme_sizes():
    """What the checks above cover: tensors 1 pixel wide (segmentation), of 3 x 128 (the demo
    segmentation config), 32 px high (detection) and raw images down to 1x1 (the demo
    classification config)."""
    def sizes(name, images=IMAGES):
        cfg = Config.fromfile(CONFIGS / name)
        with DefaultScope.overwrite_default_scope(cfg.default_scope):
            return input_sizes(cfg, images)
    assert {(1, 2048), (2048, 1), (41, 2048), (512, 512)} <= sizes('fpn_litv2_s_ade20k.py', IMAGES + HAIRS)
    assert {(3, 128), (128, 3), (96, 96)} == sizes('fpn_litv2_s_demoade20k.py')
    assert {(32, 1344), (1344, 32), (800, 800)} == sizes('retinanet_litv2_s_ws4_coco.py')
    assert (1, 1) in sizes('shvit_s1_demoimagenet.py')


def test_dtm_pads_only_single_rows_and_columns():
    """A one-row (or column) map is merged as if zero-padded to two, in eval and deploy form; other
    sizes, odd ones included, are not padded (their last odd row is dropped)."""
    dtm = DTM(8).eval()
    nn.init.normal_(dtm.dconv.conv_offset.weight, std=0.5)  # non-zero offsets
    nn.init.normal_(dtm.norm_layer.running_mean)
    x = torch.randn(2, 8, 1, 7)
    with torch.no_grad():
        expected = dtm(F.pad(x, (0, 0, 0, 1)))
        assert torch.equal(dtm(x), expected) and expected.shape == (2, 16, 1, 3)
        assert dtm(x.transpose(2, 3)).shape == (2, 16, 3, 1)
        assert dtm(torch.randn(1, 8, 5, 3)).shape == (1, 16, 2, 1)
        deploy = dtm.fuse()
        assert (deploy(x) - expected).abs().max() < 1e-5
        assert deploy(x[..., :1]).shape == (2, 16, 1, 1)


def test_litv2_deploy_form_takes_any_size():
    model = LITv2(dict(embed_dims=[16, 32, 64, 128], depths=[1, 1, 2, 1], num_heads=[2, 2, 4, 8]),
                  local_ws=(0, 0, 4, 1)).eval()
    inputs = [torch.rand(1, 3, *size) for size in [(1, 1), (3, 130), (130, 3), (9, 9)]]
    with torch.no_grad():
        expected = [model(x) for x in inputs]
        model.switch_to_deploy()
        for x, outs in zip(inputs, expected):
            got = model(x)
            assert [o.shape for o in got] == [o.shape for o in outs]
            assert all((g - o).abs().max() < 1e-4 for g, o in zip(got, outs))
