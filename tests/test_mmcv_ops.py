"""The routing of mmcv's ops for CUDA tensors (effvit_mm/engine/mmcv_ops.py), forced onto CPU tensors and
compared with mmcv's own compiled CPU kernels (nms, roi_align) and with mmdet's PyTorch focal loss
(mmcv has no CPU kernel for it)."""
import pytest
import torch
from mmcv.ops import RoIAlign, batched_nms, nms, sigmoid_focal_loss
from mmdet.models.losses.focal_loss import py_sigmoid_focal_loss

import effvit_mm  # noqa: F401  (routes CUDA tensors when CUDA and a CPU-only mmcv meet)
from effvit_mm.engine.mmcv_ops import mmcv_has_cuda_ops, mmcv_ops_routed, routed_devices


def random_boxes(n, size, generator, min_side=2.0, max_side=None):
    max_side = max_side or size / 2
    xy = torch.rand(n, 2, generator=generator) * size
    wh = min_side + torch.rand(n, 2, generator=generator) * (max_side - min_side)
    return torch.cat([xy, xy + wh], 1)


def test_import_routes_nothing_without_cuda():
    assert not mmcv_has_cuda_ops()  # the installer's default build: CPU kernels only
    assert routed_devices() == (('cuda', ) if torch.cuda.is_available() else ())


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
@pytest.mark.parametrize('out_size,scale', [(7, 1 / 4), (7, 1 / 8), (7, 1 / 16), (7, 1 / 32), (7, 1 / 64),
                                            (14, 1 / 4), (14, 1 / 16), (28, 1.0)])
def test_roi_align_forward_and_input_gradient_equal_mmcv(out_size, scale, dtype):
    """Aligned, sampling ratio 0: mmdet's RoI extractors (7 boxes, 14 masks, strides 4-64) and its
    mask targets (28 x 28 crops of full-resolution masks, scale 1)."""
    g = torch.Generator().manual_seed(out_size + int(1 / scale))
    image = 512
    feat_side = int(image * scale)
    feats = torch.randn(2, 16, feat_side, feat_side, generator=g, dtype=torch.float64).to(dtype)
    boxes = random_boxes(300, image, g, max_side=image / 1.5).to(dtype)
    rois = torch.cat([torch.randint(0, 2, (300, 1), generator=g).to(dtype), boxes], 1)
    grad_out = torch.randn(300, 16, out_size, out_size, generator=g, dtype=torch.float64).to(dtype)
    layer = RoIAlign((out_size, out_size), scale, sampling_ratio=0, aligned=True)

    def run():
        x = feats.clone().requires_grad_()
        out = layer(x, rois)
        out.backward(grad_out)
        return out.detach(), x.grad

    out_mmcv, grad_mmcv = run()
    with mmcv_ops_routed(('cpu', )):
        out_routed, grad_routed = run()
    assert torch.equal(out_routed, out_mmcv)
    assert torch.equal(grad_routed, grad_mmcv)


@pytest.mark.parametrize('seed', range(5))
@pytest.mark.parametrize('offset', [0, 1])
def test_nms_keeps_the_same_boxes_in_the_same_order(seed, offset):
    g = torch.Generator().manual_seed(seed)
    boxes = random_boxes(1000, 300, g, max_side=80)
    scores = torch.randperm(1000, generator=g).float() / 1000  # distinct
    dets_mmcv, keep_mmcv = nms(boxes, scores, 0.5, offset=offset)
    with mmcv_ops_routed(('cpu', )):
        dets_routed, keep_routed = nms(boxes, scores, 0.5, offset=offset)
    assert 0 < len(keep_mmcv) < 1000
    assert torch.equal(keep_routed, keep_mmcv) and torch.equal(dets_routed, dets_mmcv)


@pytest.mark.parametrize('seed', range(3))
def test_batched_nms_as_in_rpn_and_roi_head(seed):
    g = torch.Generator().manual_seed(seed)
    boxes = random_boxes(2000, 800, g, max_side=200)
    scores = torch.randperm(2000, generator=g).float() / 2000
    labels = torch.randint(0, 80, (2000, ), generator=g)
    cfg = dict(type='nms', iou_threshold=0.7)
    dets_mmcv, keep_mmcv = batched_nms(boxes, scores, labels, cfg)
    with mmcv_ops_routed(('cpu', )):
        dets_routed, keep_routed = batched_nms(boxes, scores, labels, cfg)
    assert torch.equal(keep_routed, keep_mmcv) and torch.equal(dets_routed, dets_mmcv)


@pytest.mark.parametrize('reduction', ['none', 'mean', 'sum'])
@pytest.mark.parametrize('dtype,rtol', [(torch.float32, 1e-6), (torch.float64, 1e-12)])
def test_sigmoid_focal_loss_and_gradient_equal_mmdet(reduction, dtype, rtol):
    """Against mmdet's PyTorch focal loss (and its autograd gradient) evaluated in float64 on the
    same inputs; logits up to +-12 (saturated sigmoids included), targets 0..C with C = background.
    Differences are relative to the largest value."""
    g = torch.Generator().manual_seed(0)
    num_classes = 80
    logits = (torch.randn(500, num_classes, generator=g, dtype=torch.float64) * 4).clamp(-12, 12).to(dtype)
    labels = torch.randint(0, num_classes + 1, (500, ), generator=g)
    grad_out = torch.rand(500, num_classes, generator=g, dtype=dtype) if reduction == 'none' else torch.tensor(
        0.7, dtype=dtype)

    x_ref = logits.double().clone().requires_grad_()
    one_hot = torch.nn.functional.one_hot(labels, num_classes + 1)[:, :num_classes].double()
    ref = py_sigmoid_focal_loss(x_ref, one_hot, gamma=2.0, alpha=0.25, reduction=reduction)
    if reduction == 'mean':  # mmcv's 'mean' divides by the number of samples, mmdet's by all elements
        ref = ref * num_classes
    ref.backward(grad_out.double())

    x = logits.clone().requires_grad_()
    with mmcv_ops_routed(('cpu', )):
        loss = sigmoid_focal_loss(x, labels, 2.0, 0.25, None, reduction)
        loss.backward(grad_out)
    assert loss.dtype == x.grad.dtype == dtype
    assert (loss.double() - ref).abs().max() <= rtol * ref.abs().max()
    assert (x.grad.double() - x_ref.grad).abs().max() <= rtol * x_ref.grad.abs().max()


def test_focal_loss_class_weights_follow_mmcv():
    """mmcv multiplies each sample's loss by the weight of its target class."""
    g = torch.Generator().manual_seed(1)
    logits, labels = torch.randn(40, 5, generator=g, dtype=torch.float64), torch.randint(0, 5, (40, ), generator=g)
    weight = torch.rand(5, generator=g, dtype=torch.float64)
    with mmcv_ops_routed(('cpu', )):
        weighted = sigmoid_focal_loss(logits, labels, 2.0, 0.25, weight, 'none')
        plain = sigmoid_focal_loss(logits, labels, 2.0, 0.25, None, 'none')
        assert torch.allclose(weighted, plain * weight[labels][:, None], rtol=1e-14)
        with pytest.raises(ValueError, match='background targets'):
            sigmoid_focal_loss(logits, torch.full((40, ), 5), 2.0, 0.25, weight, 'none')


def test_other_ops_on_a_routed_device_fail_in_one_line():
    """'meta' stands in for CUDA: any op without a route is refused, naming it and the way out."""
    import mmcv._ext as ext
    boxes = torch.empty(3, 4, device='meta')
    with mmcv_ops_routed(('meta', )):
        with pytest.raises(NotImplementedError) as error:
            ext.bbox_overlaps(boxes, boxes, torch.empty(3, 3, device='meta'), mode=0, aligned=False, offset=0)
        with pytest.raises(NotImplementedError, match='pool_mode="max"'):
            RoIAlign(7, 1.0, pool_mode='max')(torch.empty(1, 2, 8, 8, device='meta'), torch.empty(1, 5, device='meta'))
    message = str(error.value)
    assert '\n' not in message and "'bbox_overlaps'" in message and 'tools/install.sh --cuda-ops' in message
    assert routed_devices() == (('cuda', ) if torch.cuda.is_available() else ())
