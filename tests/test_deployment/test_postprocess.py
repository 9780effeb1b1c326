"""The host code of a deployed model (effvit_mm/deployment/postprocess.py) against mmdet's / mmseg's own
heads on the same raw outputs: equal to the bit (same boxes, scores, labels, masks, classes), ties of
equal scores included (a constant region, as padding gives, makes them)."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS

import effvit_mm  # noqa: F401  (registers the models)
from effvit_mm.deployment import postprocess as pp
from effvit_mm.deployment.export import postprocess_params

ROOT = Path(__file__).resolve().parents[2]
META = dict(img_shape=(230, 300), ori_shape=(345, 450), scale_factor=(300 / 450, 230 / 345))


def build(name):
    cfg = Config.fromfile(ROOT / 'configs' / name)
    cfg.model.backbone.init_cfg = None
    return MODELS.build(cfg.model).eval()


@pytest.fixture(scope='module')
def mask_rcnn():
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield build('mask_rcnn_shvit_s4_coco.py')


@pytest.fixture(scope='module')
def retinanet():
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield build('retinanet_swiftformer_l1_coco.py')


def dense_outputs(head, sizes, scale, seed=0):
    """Random (1, A*C, h, w) scores and (1, A*4, h, w) deltas per level; the right third of every map is
    constant (equal scores and boxes shifted by the stride: ties, as padding gives)."""
    g = torch.Generator().manual_seed(seed)
    a, c = head.num_base_priors, head.cls_out_channels
    cls, reg = [], []
    for h, w in sizes:
        s = torch.randn(1, a * c, h, w, generator=g) * scale
        d = torch.randn(1, a * 4, h, w, generator=g) * 0.5
        s[..., 2 * w // 3:], d[..., 2 * w // 3:] = s[..., -1:], d[..., -1:]
        cls.append(s)
        reg.append(d)
    return cls, reg


def assert_same(ref, boxes, scores, labels):
    assert torch.equal(ref.bboxes, boxes) and torch.equal(ref.scores, scores) and torch.equal(ref.labels, labels)


@pytest.mark.parametrize('which', ['mask_rcnn', 'retinanet'])
def test_anchors_equal_mmdet(which, request):
    model = request.getfixturevalue(which)
    head = model.rpn_head if which == 'mask_rcnn' else model.bbox_head
    params = postprocess_params(model)['rpn' if which == 'mask_rcnn' else 'head']['anchors']
    for sizes in ([(1, 1)] * 5, [(29, 38), (15, 19), (8, 10), (4, 5), (2, 3)]):
        for ours, theirs in zip(pp.anchors(params, sizes), head.prior_generator.grid_priors(sizes, device='cpu')):
            assert torch.equal(ours, theirs)


@pytest.mark.parametrize('scale', [1.0, 4.0])
def test_rpn_proposals_equal_mmdet(mask_rcnn, scale):
    post = postprocess_params(mask_rcnn)
    sizes = [(58, 75), (29, 38), (15, 19), (8, 10), (4, 5)]
    cls, reg = dense_outputs(mask_rcnn.rpn_head, sizes, scale)
    ref = mask_rcnn.rpn_head.predict_by_feat(cls, reg, batch_img_metas=[META], cfg=mask_rcnn.test_cfg.rpn,
                                              rescale=False)[0]
    ours = pp.dense_predictions([c[0] for c in cls], [r[0] for r in reg], pp.anchors(post['rpn']['anchors'], sizes),
                                post['rpn'], post['rpn_cfg'], META['img_shape'], META['scale_factor'], rescale=False)
    assert len(ref) == 1000
    assert_same(ref, *ours)


@pytest.mark.parametrize('scale', [0.5, 3.0, -1])  # -1: every score below the threshold, no detection
def test_retinanet_detections_equal_mmdet(retinanet, scale):
    post = postprocess_params(retinanet)
    sizes = [(29, 38), (15, 19), (8, 10), (4, 5), (2, 3)]
    cls, reg = dense_outputs(retinanet.bbox_head, sizes, abs(scale))
    if scale < 0:
        cls = [c - 20 for c in cls]
    ref = retinanet.bbox_head.predict_by_feat(cls, reg, batch_img_metas=[META], rescale=True)[0]
    ours = pp.dense_predictions([c[0] for c in cls], [r[0] for r in reg], pp.anchors(post['head']['anchors'], sizes),
                                post['head'], post['test_cfg'], META['img_shape'], META['scale_factor'], rescale=True)
    assert len(ref) == (0 if scale < 0 else 100)
    assert_same(ref, *ours)


def rois_and_outputs(bbox_head, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 250
    wh = torch.rand(n, 2, generator=g) * 120 + 1
    rois = torch.cat([torch.zeros(n, 1), xy, xy + wh], 1)
    rois[n // 2:, 1:] = rois[n // 2, 1:]  # equal boxes
    cls = torch.randn(n, bbox_head.num_classes + 1, generator=g) * 3
    cls[n // 2:] = cls[n // 2]  # with equal scores
    reg = torch.randn(n, 4 * bbox_head.num_classes, generator=g) * 0.3
    return rois, cls, reg


def test_map_roi_levels_equal_mmdet(mask_rcnn):
    rois, _, _ = rois_and_outputs(mask_rcnn.roi_head.bbox_head, 500)
    rois[:, 3:] = rois[:, 1:3] + torch.logspace(0, 3, 500)[:, None]
    extractor = mask_rcnn.roi_head.bbox_roi_extractor
    assert torch.equal(pp.map_roi_levels(rois, 4, extractor.finest_scale), extractor.map_roi_levels(rois, 4))


@pytest.mark.parametrize('rescale', [False, True])
def test_rcnn_detections_and_masks_equal_mmdet(mask_rcnn, rescale):
    post, roi = postprocess_params(mask_rcnn), mask_rcnn.roi_head
    rois, cls, reg = rois_and_outputs(roi.bbox_head, 300)
    ref = roi.bbox_head.predict_by_feat((rois, ), (cls, ), (reg, ), batch_img_metas=[META],
                                        rcnn_test_cfg=mask_rcnn.test_cfg.rcnn, rescale=rescale)[0]
    ours = pp.rcnn_detections(rois, cls, reg, post['bbox_head'], post['rcnn_cfg'], META['img_shape'],
                              META['scale_factor'], rescale=rescale)
    assert len(ref) == 100
    assert_same(ref, *ours)
    if rescale:
        return
    logits = torch.randn(len(ref), roi.mask_head.num_classes, 28, 28, generator=torch.Generator().manual_seed(1))
    boxes, labels = ref.bboxes.clone(), ref.labels
    masked = roi.mask_head.predict_by_feat((logits, ), [ref], batch_img_metas=[META],
                                           rcnn_test_cfg=mask_rcnn.test_cfg.rcnn, rescale=True)[0]
    masks, boxes = pp.paste_masks(logits, boxes, labels, META['ori_shape'], META['scale_factor'],
                                  post['rcnn_cfg']['mask_thr_binary'])
    assert masks.shape == (100, *META['ori_shape']) and masks.any()
    assert torch.equal(masked.masks, masks)
    assert torch.equal(masked.bboxes, boxes)


@pytest.mark.parametrize('classes', [4, 1])
def test_segmentation_result_equals_mmseg(classes):
    from mmengine.registry import DefaultScope
    from mmseg.structures import SegDataSample
    with DefaultScope.overwrite_default_scope('mmseg'):
        cfg = Config.fromfile(ROOT / 'configs/fpn_litv2_s_demoade20k.py')
        cfg.model.backbone.init_cfg = None
        cfg.model.decode_head.num_classes = classes
        if classes == 1:
            cfg.model.decode_head.update(out_channels=1, threshold=0.4,
                                         loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=True))
        model = MODELS.build(cfg.model).eval()
    post = postprocess_params(model)
    logits = torch.randn(1, classes, 96, 128, generator=torch.Generator().manual_seed(0))
    sample = SegDataSample(metainfo=dict(img_shape=(96, 128), ori_shape=(101, 133)))
    ref = model.postprocess_result(logits.clone(), [sample])[0]
    ours = pp.segmentation_result(logits[0], (0, 0, 0, 0), (101, 133), post['align_corners'], post['threshold'])
    assert torch.equal(ref.seg_logits.data, ours[0]) and torch.equal(ref.pred_sem_seg.data, ours[1])


def test_refuses_what_it_cannot_export(mask_rcnn):
    from mmengine.registry import DefaultScope
    cfg = Config.fromfile(ROOT / 'configs/mask_rcnn_shvit_s4_coco.py')
    cfg.model.backbone.init_cfg = None
    cfg.model.test_cfg.rcnn.nms = dict(type='soft_nms', iou_threshold=0.5)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
    with pytest.raises(ValueError, match='only nms is exported, not soft_nms'):
        postprocess_params(model)


@pytest.mark.parametrize('nms_cfg', [dict(iou_threshold=0.5, offset=1), dict(iou_threshold=0.6, score_threshold=0.4),
                                     dict(iou_threshold=0.5, offset=1, score_threshold=0.3, max_num=20),
                                     dict(iou_threshold=0.5, score_threshold=0.3, split_thr=50)])
def test_nms_options_equal_mmcv(nms_cfg):
    """``offset`` and ``score_threshold`` of mmcv's nms are honoured (distinct scores: the standard leaves
    ties open); an option the host code does not know is refused in one line."""
    from mmcv.ops import batched_nms
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(300, 2, generator=g) * 100
    boxes = torch.cat([xy, xy + torch.rand(300, 2, generator=g) * 30 + 1], 1)
    scores, idxs = torch.randperm(300, generator=g).float() / 300, torch.randint(0, 4, (300, ), generator=g)
    ref_dets, ref_keep = batched_nms(boxes, scores, idxs, dict(type='nms', **nms_cfg))
    dets, keep = pp.batched_nms(boxes, scores, idxs, dict(type='nms', **nms_cfg))
    assert torch.equal(ref_keep, keep) and torch.equal(ref_dets, dets) and 0 < len(keep) < 300
    with pytest.raises(ValueError, match=r"nms config \{.*'sigma': 0.5.*\}: only mmcv nms with iou_threshold, "):
        pp.batched_nms(boxes, scores, idxs, dict(type='nms', sigma=0.5, **nms_cfg))


def test_a_segmentation_threshold_of_zero_is_kept():
    from mmengine.registry import DefaultScope
    cfg = Config.fromfile(ROOT / 'configs/fpn_litv2_s_ade20k.py')
    cfg.model.backbone.init_cfg = None
    cfg.model.decode_head.update(num_classes=2, out_channels=1, threshold=0.0, loss_decode=dict(
        type='CrossEntropyLoss', use_sigmoid=True))
    with DefaultScope.overwrite_default_scope('mmseg'):
        assert postprocess_params(MODELS.build(cfg.model))['threshold'] == 0.0
