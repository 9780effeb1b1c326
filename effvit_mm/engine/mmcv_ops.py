"""mmcv's compiled ops on CUDA tensors without a CUDA build of mmcv.

The mmcv 2.1.0 that ``tools/install.sh`` builds by default has CPU kernels only (no CUDA compiler
needed). Of its ops, our configs reach on CUDA tensors only ``nms`` (mmcv's ``batched_nms``: RPN,
RetinaNet, RoI head), ``roi_align`` forward / backward (RoI extractors, mmdet's mask targets) and
``sigmoid_focal_loss`` forward / backward (mmdet's ``FocalLoss``). :func:`route_mmcv_ops` replaces
these entries of ``mmcv._ext``, the one extension module every ``mmcv.ops`` file calls into, by
wrappers that send tensors of the routed devices to torchvision (``nms``, ``roi_align``) and to a
PyTorch form of mmcv's focal-loss kernels (the same loss and closed-form gradient), and keep mmcv's own kernels for the other
devices. Every other entry reached with a CUDA tensor fails with one line naming the op.

Differences to a CUDA build of mmcv: on exact score ties ``nms`` may keep another of the tied boxes
(torchvision sorts stably); under autocast torchvision's ``roi_align`` computes in fp32 (mmcv's in
fp16); the focal loss takes log p and log(1 - p) from log-sigmoids, which differs from mmcv's fp32
kernel only where its 1 - sigmoid(x) loses precision (|x| above about 8), and computes fp16 inputs
in fp32.
"""
import contextlib
import functools

import torch
import torch.nn.functional as F

_ROUTED_DEVICES = ()  # device types routed now; () = not routed
_ORIGINALS = {}  # name -> mmcv's own function, while routed

CUDA_BUILD_HINT = ('this mmcv has CPU kernels only; effvit_mm routes nms, roi_align and sigmoid_focal_loss '
                   'for CUDA tensors, other ops need a CUDA build of mmcv: bash tools/install.sh --cuda-ops')


def mmcv_has_cuda_ops():
    """Whether the installed mmcv was compiled with its CUDA kernels (``mmcv.ops.get_compiling_cuda_version``)."""
    import mmcv._ext as ext
    return ext.get_compiling_cuda_version() not in ('not available', '')


def _nms(boxes, scores, iou_threshold, offset):
    """mmcv's ``nms`` entry: indices of the kept boxes, by decreasing score. ``offset`` 1 (boxes
    whose width is x2 - x1 + 1) is computed exactly by widening the boxes by 1."""
    from torchvision.ops import nms
    if offset:
        boxes = boxes + boxes.new_tensor([0, 0, offset, offset])
    return nms(boxes, scores, float(iou_threshold))


def _check_avg(pool_mode):
    if pool_mode != 1:
        raise NotImplementedError(f'mmcv roi_align with pool_mode="max": {CUDA_BUILD_HINT}')


def _roi_align_forward(input, rois, output, argmax_y, argmax_x, aligned_height, aligned_width, spatial_scale,
                       sampling_ratio, pool_mode, aligned):
    """mmcv's ``roi_align_forward`` entry (writes ``output``, N x C x h x w) by torchvision's kernel."""
    _check_avg(pool_mode)
    output.copy_(torch.ops.torchvision.roi_align(input, rois, spatial_scale, aligned_height, aligned_width,
                                                 sampling_ratio, aligned))


def _roi_align_backward(grad_output, rois, argmax_y, argmax_x, grad_input, aligned_height, aligned_width,
                        spatial_scale, sampling_ratio, pool_mode, aligned):
    """mmcv's ``roi_align_backward`` entry (writes ``grad_input``, B x C x H x W) by torchvision's kernel."""
    _check_avg(pool_mode)
    batch, channels, height, width = grad_input.shape
    grad_input.copy_(torch.ops.torchvision._roi_align_backward(
        grad_output, rois, spatial_scale, aligned_height, aligned_width, batch, channels, height, width,
        sampling_ratio, aligned))


def _focal_terms(input, target, weight):
    """Per element: p = sigmoid(x), 1 - p, log p, log(1 - p) (from log-sigmoids, exact where fp32's
    1 - sigmoid(x) is not), whether the column is the target class, and the target's class weight
    (or None); fp16 / bf16 inputs are computed in fp32."""
    x = input.float() if input.dtype in (torch.float16, torch.bfloat16) else input
    classes = torch.arange(input.size(1), device=input.device)
    positive = target[:, None] == classes[None, :]
    w = None
    if weight.numel():
        if int(target.max()) >= weight.numel():
            raise ValueError('sigmoid_focal_loss: class weights with background targets (target == num_classes) '
                             'are undefined in mmcv\'s kernel; weight the loss after it instead (as mmdet does)')
        w = weight.to(x.dtype)[target][:, None]
    return torch.sigmoid(x), torch.sigmoid(-x), F.logsigmoid(x), F.logsigmoid(-x), positive, w


def _sigmoid_focal_loss_forward(input, target, weight, output, gamma, alpha):
    """mmcv's ``sigmoid_focal_loss_forward`` entry (writes ``output``, N x C): for the target class
    -alpha (1-p)^gamma log(p), for the others -(1-alpha) p^gamma log(1-p), times ``weight[target]``."""
    p, q, log_p, log_q, positive, w = _focal_terms(input, target, weight)
    loss = torch.where(positive, -alpha * q.pow(gamma) * log_p, -(1 - alpha) * p.pow(gamma) * log_q)
    output.copy_(loss if w is None else loss * w)


def _sigmoid_focal_loss_backward(input, target, weight, grad_input, gamma, alpha):
    """mmcv's ``sigmoid_focal_loss_backward`` entry (writes ``grad_input``, N x C): the derivative of
    the forward's loss with respect to the logits, in the closed form of mmcv's kernel."""
    p, q, log_p, log_q, positive, w = _focal_terms(input, target, weight)
    grad = torch.where(positive, -alpha * q.pow(gamma) * (q - gamma * p * log_p),
                       -(1 - alpha) * p.pow(gamma) * (gamma * q * log_q - p))
    grad_input.copy_(grad if w is None else grad * w)


ROUTES = {
    'nms': _nms,
    'roi_align_forward': _roi_align_forward,
    'roi_align_backward': _roi_align_backward,
    'sigmoid_focal_loss_forward': _sigmoid_focal_loss_forward,
    'sigmoid_focal_loss_backward': _sigmoid_focal_loss_backward,
}


def _device_type(args, kwargs):
    for value in (*args, *kwargs.values()):
        if isinstance(value, torch.Tensor):
            return value.device.type
    return None


def _dispatcher(name, original):
    route = ROUTES.get(name)

    @functools.wraps(original)
    def dispatch(*args, **kwargs):
        device = _device_type(args, kwargs)
        if device in _ROUTED_DEVICES:
            if route is not None:
                return route(*args, **kwargs)
            if device != 'cpu':
                raise NotImplementedError(f'mmcv op {name!r} on a {device} tensor: {CUDA_BUILD_HINT}')
        return original(*args, **kwargs)

    return dispatch


def route_mmcv_ops(devices=('cuda', )):
    """Route the ops of :data:`ROUTES` to torchvision / PyTorch for tensors of ``devices`` (device
    types) and refuse, in one line, every other mmcv op on them except on 'cpu'; idempotent.
    ``devices=()`` restores mmcv's own functions. Tests route 'cpu' to compare with mmcv's CPU kernels."""
    global _ROUTED_DEVICES
    import mmcv._ext as ext
    if not _ORIGINALS:
        for name in dir(ext):
            fn = getattr(ext, name)
            if not name.startswith('_') and callable(fn):
                _ORIGINALS[name] = fn
                setattr(ext, name, _dispatcher(name, fn))
    _ROUTED_DEVICES = tuple(devices)
    if not _ROUTED_DEVICES:
        for name, fn in _ORIGINALS.items():
            setattr(ext, name, fn)
        _ORIGINALS.clear()


def routed_devices():
    """Device types whose mmcv ops are routed now (empty when mmcv's own kernels serve every device)."""
    return _ROUTED_DEVICES


@contextlib.contextmanager
def mmcv_ops_routed(devices):
    """Route ``devices`` within the block, then restore the previous routing."""
    before = _ROUTED_DEVICES
    route_mmcv_ops(devices)
    try:
        yield
    finally:
        route_mmcv_ops(before)


def setup_mmcv_ops():
    """What ``import effvit_mm`` does: on a machine with CUDA whose mmcv lacks CUDA kernels, route
    CUDA tensors (:func:`route_mmcv_ops`); otherwise leave mmcv as it is."""
    if torch.cuda.is_available() and not mmcv_has_cuda_ops():
        route_mmcv_ops(('cuda', ))
