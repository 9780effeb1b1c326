"""The detection configs: build, train and test on the generated COCO-format set (one iteration each,
small images), and load the authors' released detectors with no missing key."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner, load_checkpoint

from effvit_mm.datasets import CLASSES, make_coco

ROOT = Path(__file__).parents[1]
CONFIGS = sorted(p.name for p in (ROOT / 'configs').glob('*_coco.py'))
# The default suite trains one config per detector, family and LITv2 window; the deeper variants are slow checks.
DEFAULT = {'mask_rcnn_shvit_s4_coco.py', 'retinanet_shvit_s4_coco.py', 'mask_rcnn_swiftformer_l1_coco.py',
           'retinanet_swiftformer_l1_coco.py', 'mask_rcnn_litv2_s_coco.py', 'retinanet_litv2_s_coco.py',
           'mask_rcnn_litv2_s_ws4_coco.py'}


def small_config(name, data_root, work_dir, scale=(160, 128)):
    """The real config, pointed at the generated data, 1 epoch of 1 iteration, from scratch, in fp32
    (mixed precision needs a GPU)."""
    cfg = Config.fromfile(ROOT / 'configs' / name)
    cfg.model.backbone.init_cfg = None
    heads = [cfg.model.roi_head.bbox_head, cfg.model.roi_head.mask_head] if 'roi_head' in cfg.model \
        else [cfg.model.bbox_head]
    for head in heads:
        head.num_classes = len(CLASSES)
    for split in ('train', 'val', 'test'):
        loader = cfg[f'{split}_dataloader']
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
        name = 'train' if split == 'train' else 'val'
        loader.dataset.update(data_root=str(data_root), metainfo=dict(classes=CLASSES),
                              ann_file=f'annotations/instances_{name}2017.json',
                              data_prefix=dict(img=f'{name}2017/'))
        for step in loader.dataset.pipeline:
            if step['type'] == 'Resize':
                step['scale'] = scale
    for split in ('val', 'test'):
        cfg[f'{split}_evaluator'].ann_file = f'{data_root}/annotations/instances_val2017.json'
    cfg.train_cfg.update(max_epochs=1, val_interval=2)  # no validation pass: the test runs runner.test()
    cfg.optim_wrapper.type = 'OptimWrapper'
    cfg.optim_wrapper.pop('loss_scale', None)
    cfg.work_dir = str(work_dir)
    cfg.default_hooks.logger.interval = 1
    return cfg


@pytest.fixture(scope='module')
def coco(tmp_path_factory):
    root = tmp_path_factory.mktemp('coco')
    make_coco(root, num_train=2, num_val=2, img_size=(160, 128), seed=0)
    return root


@pytest.mark.parametrize('name', [n if n in DEFAULT else pytest.param(n, marks=pytest.mark.slow) for n in CONFIGS])
def test_one_train_and_test_iteration(name, coco, tmp_path):
    runner = Runner.from_cfg(small_config(name, coco, tmp_path))
    runner.train()
    assert runner.iter == 1
    modes = []
    runner.model.backbone.register_forward_hook(lambda module, args, out: modes.append(module.training))
    metrics = runner.test()  # an untrained model may predict nothing: CocoMetric then returns {}
    assert modes == [False]  # one test batch, in eval mode
    if metrics:
        assert 'coco/bbox_mAP' in metrics and ('mask_rcnn' not in name or 'coco/segm_mAP' in metrics)


def load_authors_detector(config, backbone_keys, tmp_path, neck_keys=None, mmdet_version='3.2.0'):
    """Build ``config``'s detector, write a detector file with the authors' key names (their
    ``backbone_keys``, their ``neck_keys`` or else mmdet's, mmdet's head names; random values) and
    load it strictly (raises on any missing / unexpected key). Returns (model, written state dict)."""
    from mmdet.registry import MODELS
    cfg = Config.fromfile(ROOT / 'configs' / config)
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    own = model.state_dict()
    keys = [f'backbone.{k}' for k in backbone_keys]
    keys += [f'neck.{k}' for k in neck_keys] if neck_keys else [k for k in own if k.startswith('neck.')]
    keys += [k for k in own if k.split('.')[0] not in ('backbone', 'neck')]
    state = {k: torch.randn(own[k].shape) if own[k].is_floating_point() else own[k] for k in keys}
    path = tmp_path / 'authors_detector.pth'
    torch.save({'meta': {'mmdet_version': mmdet_version, 'epoch': 12}, 'state_dict': state}, path)
    load_checkpoint(model, str(path), strict=True)
    return model, state


@pytest.mark.usefixtures('mmdet_scope')
@pytest.mark.parametrize('kind', ['mask_rcnn', 'retinanet'])
def test_authors_shvit_detector_checkpoint_loads(kind, tmp_path, official_keys, fpn_authors_keys):
    """The authors' released SHViT-S4 detectors (mmdet 2.25: their SHViT and neck names, mmdet's
    head names) load with no missing or unexpected key."""
    official = official_keys('shvit')['s4']
    model, state = load_authors_detector(f'{kind}_shvit_s4_coco.py', [k for k in official if not k.startswith('head')],
                                         tmp_path, neck_keys=fpn_authors_keys[kind], mmdet_version='2.25.0')
    key = 'neck.extra_trans_convs.0.conv.weight'
    assert torch.equal(model.state_dict()[key], state[key])


@pytest.mark.usefixtures('mmdet_scope')
@pytest.mark.parametrize('config', ['mask_rcnn_litv2_s_coco.py', 'retinanet_litv2_s_ws4_coco.py'])
def test_authors_litv2_detector_checkpoint_loads(config, tmp_path, official_keys):
    """The authors' released LITv2 detectors (mmdet 3: their backbone names and shapes, listed in
    tests/data/litv2_official_keys.json, mmdet's neck and head names) load with no missing or
    unexpected key, through the same path as ``load_from``."""
    official = official_keys('litv2')['s']['dense']
    model, state = load_authors_detector(config, official, tmp_path)
    assert {k: tuple(v) for k, v in official.items()} == {
        k[len('backbone.'):]: tuple(v.shape) for k, v in model.state_dict().items() if k.startswith('backbone.')}
    key = 'backbone.layers.2.downsample.dconv.bias'
    assert torch.equal(model.state_dict()[key], state[key])


@pytest.mark.usefixtures('mmdet_scope')
def test_odd_input_sizes_through_the_detector():
    """Images of any size (here 131x97, no padding to a multiple of 64) go through the detector."""
    cfg = Config.fromfile(ROOT / 'configs/mask_rcnn_shvit_s4_coco.py')
    cfg.model.backbone.init_cfg = None
    cfg.model.data_preprocessor.pad_size_divisor = 1
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    from mmdet.structures.mask import BitmapMasks
    model = MODELS.build(cfg.model)
    model.init_weights()
    sample = DetDataSample(metainfo=dict(img_shape=(97, 131), ori_shape=(97, 131), pad_shape=(97, 131),
                                         scale_factor=(1.0, 1.0), batch_input_shape=(97, 131)))
    mask = torch.zeros(1, 97, 131, dtype=torch.uint8)
    mask[0, 20:60, 30:90] = 1
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[30., 20., 90., 60.]]),
                                       labels=torch.tensor([0]), masks=BitmapMasks(mask.numpy(), 97, 131))
    data = dict(inputs=[torch.randint(0, 255, (3, 97, 131), dtype=torch.uint8)], data_samples=[sample])
    model.train()
    batch = model.data_preprocessor(data, True)
    losses = model.loss(batch['inputs'], batch['data_samples'])
    for name, value in losses.items():
        if 'loss' in name:
            assert all(torch.isfinite(v).all() for v in (value if isinstance(value, list) else [value])), name
    model.eval()
    with torch.no_grad():
        batch = model.data_preprocessor(data, False)
        out = model.predict(batch['inputs'], batch['data_samples'])
    assert out[0].pred_instances.bboxes.shape[1] == 4
