"""ONNX export helpers (``tools/export_onnx.py``): building what is exported, exporting it with
torch's dynamo-based exporter, and checking it against onnxruntime.

Two ops need a translation of their own (``custom_translation_table``), both standard ONNX:

* ``torchvision::deform_conv2d`` (LITv2's DTM) -> opset 19 ``DeformConv`` (X, W, offset, B[, mask]),
  same offset layout; torch's exporter has no translation for it. onnxruntime's CPU provider runs it.
* ``aten::scaled_dot_product_attention`` (LITv2's HiLo) -> ``Softmax(q * scale @ k^T) @ v``: the
  exporter's own translation accepts only 4D q, k, v, and HiLo's windowed attention is 5D.

onnx / onnxruntime / onnxscript are imported inside the functions that need them, so that
``test_crop`` (shared with ``tools/get_flops.py``) costs no import of them.
"""
import math
import statistics
import time

import torch
import torch.nn as nn

__all__ = ['test_crop', 'parse_spec', 'Logits', 'Features', 'DENSE_SHAPE', 'build_classifier', 'build_dense',
           'build_backbone', 'build_target',
           'custom_translation_table', 'export_onnx', 'max_abs_diff', 'scaled_diff', 'compare_onnxruntime']

# ``family:arch`` specs of the backbones: lower-case family -> registered type.
FAMILIES = {'shvit': 'SHViT', 'swiftformer': 'SwiftFormer', 'litv2': 'LITv2'}


def test_crop(cfg):
    """(H, W) of the classifier config's test pipeline: its centre crop, else its fixed resize (or
    short-edge resize), else the size of the test set's first image (a set of one fixed size)."""
    for step in reversed(cfg.test_dataloader.dataset.pipeline):
        size = step.get('crop_size') if step['type'] == 'CenterCrop' else \
            step.get('scale') if step['type'] in ('Resize', 'ResizeEdge') else None
        if size:
            return (size, size) if isinstance(size, int) else tuple(size[::-1])
    return _first_image_size(cfg)


def _first_image_size(cfg):
    """(H, W) of the first image of the config's test set."""
    from mmengine.registry import DATASETS, DefaultScope
    from PIL import Image

    import effvit_mm  # noqa: F401  (registers the data sets)
    dataset = cfg.test_dataloader.dataset
    try:
        with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmpretrain')):
            path = DATASETS.build(dict(dataset, pipeline=[])).get_data_info(0)['img_path']
        with Image.open(path) as image:
            return image.height, image.width
    except (OSError, IndexError, RuntimeError, ValueError) as error:
        raise ValueError(f'no CenterCrop / Resize / ResizeEdge in the test pipeline, and no image of the test set '
                         f'({dataset.get("data_root")}) to take the size from ({error}): pass the input size '
                         '(--shape / --res H W)') from None


test_crop.__test__ = False  # not a pytest test, whatever imports it


def parse_spec(spec):
    """``'shvit:s1'`` -> ``('SHViT', 's1')``; None for anything that is not a ``family:arch`` spec
    (a config path)."""
    family, sep, arch = spec.partition(':')
    if not sep or family.lower() not in FAMILIES or not arch or spec.endswith('.py'):
        return None
    return FAMILIES[family.lower()], arch


class Logits(nn.Module):
    """A classifier's logits, ``model(x, mode='tensor')``, as a plain ``forward(x)``."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x, mode='tensor')


def build_classifier(cfg, checkpoint=None, partial=False):
    """The mmpretrain classifier of ``cfg`` (a Config) in eval mode, without a distillation teacher,
    with ``checkpoint`` loaded if given (refused if it does not fit, unless ``partial``: see
    :func:`effvit_mm.checkpoint.load_model_checkpoint`). Returns (model, loaded)."""
    from mmengine.registry import MODELS, DefaultScope

    from .checkpoint import load_model_checkpoint
    import effvit_mm  # noqa: F401  (registers the models)
    cfg.model.backbone.init_cfg = None
    if 'teacher' in cfg.model:
        cfg.model.teacher = None  # a distillation teacher is not part of the deployed model
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmpretrain')):
        model = MODELS.build(cfg.model)
    if checkpoint:
        load_model_checkpoint(model, checkpoint, partial)
    return model.eval(), bool(checkpoint)


# Detection / segmentation configs: backbone + neck are exported / timed at these (H, W) by default.
DENSE_SHAPE = {'mmdet': (800, 1333), 'mmseg': (512, 512)}


class Features(nn.Module):
    """A detector's / segmentor's ``extract_feat`` (backbone + neck) as a plain ``forward(x)``."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.extract_feat(x)


def build_dense(cfg, checkpoint=None, partial=False):
    """The mmdet / mmseg model of ``cfg`` (a Config) in eval mode, without loading the backbone's
    pretrained file, with ``checkpoint`` loaded if given (as :func:`build_classifier`). Returns (model, loaded)."""
    from mmengine.registry import MODELS, DefaultScope

    from .checkpoint import load_model_checkpoint
    import effvit_mm  # noqa: F401  (registers the models)
    cfg.model.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
    if checkpoint:
        load_model_checkpoint(model, checkpoint, partial)
    return model.eval(), bool(checkpoint)


def build_backbone(spec, checkpoint=None, partial=False):
    """The backbone of a ``family:arch`` spec, in eval mode (``checkpoint``: its state dict, or the
    ``backbone.`` part of a classifier's; as :func:`build_classifier`)."""
    from mmengine.registry import MODELS

    from .checkpoint import load_model_checkpoint
    import effvit_mm  # noqa: F401
    parsed = parse_spec(spec)
    if parsed is None:
        raise ValueError(f'not a family:arch spec ({", ".join(FAMILIES)}): {spec!r}')
    model = MODELS.build(dict(type=parsed[0], arch=parsed[1]))
    if checkpoint:
        load_model_checkpoint(model, checkpoint, partial, prefix='backbone.')
    return model.eval()


def build_target(target, checkpoint=None, deploy=False, partial=False):
    """What the export tools export, in eval mode (``deploy``: the backbone switched to deploy first;
    ``partial``: accept a checkpoint that fits the model only in part).

    Returns (model, (H, W), cfg): a ``family:arch`` spec gives its backbone (feature maps, 224x224, cfg
    None); a classifier config its :class:`Logits` at the test crop; a detection / segmentation
    config its :class:`Features` (backbone + neck) at :data:`DENSE_SHAPE`. Random weights without
    ``checkpoint`` (a warning says so).
    """
    import warnings

    from mmengine.config import Config
    if parse_spec(target):
        model = backbone = build_backbone(target, checkpoint, partial)
        shape, cfg = (224, 224), None
    else:
        cfg = Config.fromfile(target)
        scope = cfg.get('default_scope', 'mmpretrain')
        if scope == 'mmpretrain':
            model, _ = build_classifier(cfg, checkpoint, partial)
            shape, wrap = test_crop(cfg), Logits
        else:
            model, _ = build_dense(cfg, checkpoint, partial)
            shape, wrap = DENSE_SHAPE[scope], Features
        backbone, model = model.backbone, wrap(model)
    if not checkpoint:
        warnings.warn('no --checkpoint: exporting random weights', stacklevel=2)
    if deploy:
        backbone.switch_to_deploy()
    return model.eval(), shape, cfg


def _deform_conv2d(input, weight, offset, mask, bias, stride_h, stride_w, pad_h, pad_w,
                   dilation_h, dilation_w, groups, offset_groups, use_mask):
    """``torchvision::deform_conv2d`` -> ONNX ``DeformConv`` (opset 19); kernel_shape from W."""
    from onnxscript import opset19 as op
    attrs = dict(strides=[stride_h, stride_w], pads=[pad_h, pad_w, pad_h, pad_w],
                 dilations=[dilation_h, dilation_w], group=groups, offset_group=offset_groups)
    if use_mask:
        return op.DeformConv(input, weight, offset, bias, mask, **attrs)
    return op.DeformConv(input, weight, offset, bias, **attrs)


def _sdpa(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
    """``aten::scaled_dot_product_attention`` of any rank >= 2, without mask / causality / dropout
    (the only form these models use): ``Softmax(q * scale @ k^T) @ v``."""
    from onnxscript import opset19 as op
    if attn_mask is not None or is_causal or enable_gqa or dropout_p:
        raise NotImplementedError('only unmasked, non-causal attention without dropout is translated')
    rank = len(query.shape)
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1])
    perm = list(range(rank - 2)) + [rank - 1, rank - 2]
    attn = op.MatMul(op.Mul(query, op.Constant(value_float=float(scale))), op.Transpose(key, perm=perm))
    return op.MatMul(op.Softmax(attn, axis=-1), value)


def custom_translation_table():
    """Translations of the ops the dynamo exporter lacks (see the module doc)."""
    import torchvision  # noqa: F401  (registers torch.ops.torchvision)
    return {torch.ops.torchvision.deform_conv2d.default: _deform_conv2d,
            torch.ops.aten.scaled_dot_product_attention.default: _sdpa}


def export_onnx(model, x, path, output_names, opset=19, dynamic_batch=False):
    """Export ``model(x)`` to ``path`` with the dynamo-based exporter (input ``input``), then
    ``onnx.checker.check_model`` it. Returns the loaded ``onnx.ModelProto``."""
    import onnx
    if opset < 19 and any(type(m).__name__ == 'DeformConv2dPack' for m in model.modules()):
        raise ValueError(f'deformable convolutions (LITv2) need opset >= 19 (ONNX DeformConv), not {opset}')
    kwargs = {}
    if dynamic_batch:
        kwargs['dynamic_shapes'] = ({0: torch.export.Dim('batch', min=1, max=4096)},)
    torch.onnx.export(model, (x,), path, dynamo=True, opset_version=opset, input_names=['input'],
                      output_names=list(output_names), custom_translation_table=custom_translation_table(),
                      verbose=False, **kwargs)
    onnx.checker.check_model(path, full_check=True)
    return onnx.load(path)


def max_abs_diff(a, b):
    """max |a - b| of two arrays / tensors of one shape (a float)."""
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    if a.shape != b.shape:
        raise ValueError(f'shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}')
    return (a.double() - b.double()).abs().max().item() if a.numel() else 0.0


def scaled_diff(ref, got):
    """max |ref - got| / max(1, max |ref|): absolute for outputs within [-1, 1], relative to the
    output's largest magnitude beyond."""
    ref = torch.as_tensor(ref)
    scale = max(1.0, ref.abs().max().item()) if ref.numel() else 1.0
    return max_abs_diff(ref, got) / scale


def _median_time(fn, runs):
    for _ in range(2):  # warm-up
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def compare_onnxruntime(model, x, path, runs=5, threads=None):
    """Run ``path`` in onnxruntime (CPUExecutionProvider) and ``model`` in PyTorch on ``x``, both with
    ``threads`` intra-op threads (default: PyTorch's current number; PyTorch's is restored after).

    Returns dict: ``diffs`` (max abs diff per output), ``scaled`` (:func:`scaled_diff` per output),
    ``torch_ips`` / ``ort_ips`` (images/s, median of ``runs`` after two warm-up runs; None if
    ``runs`` is 0)."""
    import onnxruntime as ort
    before = torch.get_num_threads()
    try:
        if threads:
            torch.set_num_threads(threads)
        return _compare(ort, model, x, path, runs)
    finally:
        torch.set_num_threads(before)


def _compare(ort, model, x, path, runs):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    sess = ort.InferenceSession(str(path), opts, providers=['CPUExecutionProvider'])
    feed = {sess.get_inputs()[0].name: x.numpy()}
    got = sess.run(None, feed)
    with torch.no_grad():
        ref = model(x)
    ref = list(ref) if isinstance(ref, (tuple, list)) else [ref]
    if len(ref) != len(got):
        raise ValueError(f'{len(ref)} PyTorch outputs vs {len(got)} onnxruntime outputs')
    res = dict(diffs=[max_abs_diff(r, g) for r, g in zip(ref, got)],
               scaled=[scaled_diff(r, g) for r, g in zip(ref, got)], torch_ips=None, ort_ips=None)
    if runs > 0:
        with torch.no_grad():
            res['torch_ips'] = x.shape[0] / _median_time(lambda: model(x), runs)
        res['ort_ips'] = x.shape[0] / _median_time(lambda: sess.run(None, feed), runs)
    return res
