"""Export a whole detector or segmentor (an mmdet / mmseg config, or its model-zoo name) into a folder
that :class:`~effvit_mm.deployment.DeployedModel` runs without building the model:

- its graphs (:mod:`effvit_mm.deployment.graphs`) for one backend: ``onnxruntime`` (``.onnx``),
  ``openvino`` (IR ``.xml`` + ``.bin``, fp32 weights, converted from the ONNX file) or ``aot``
  (AOTInductor ``.pt2`` packages; they call torchvision's ``roi_align`` kernel, so torchvision must be
  importable where they run). Inputs have dynamic height and width (RoI counts too), so one folder serves
  every image size; the backbone is in its portable deploy form (LITv2's DTM as sampling + GEMM).
- OpenVINO folders at a lower precision (``precision``: bf16, or int8 with the image graph quantized by
  NNCF on calibration images; :mod:`effvit_mm.deployment.precision`).
- ``deploy.json``: the backend and precision, the graphs' files and inputs / outputs, the pre-processing (mean, std,
  channel order, padding), the post-processing parameters (anchors, box coders, test_cfg, RoI
  extraction), the class names and palette, and a digest of the config's model (a folder used with
  another config is refused).

The folder is written beside ``out_dir`` and renamed into place once complete: a failed or killed
export leaves an earlier folder as it was.

Each graph is checked once written (an int8 graph before it is quantized): run by its backend on inputs of
other sizes than the traced ones (:func:`probe_inputs`), it must give PyTorch's outputs within
:data:`VERIFY_TOL` of their scale, or the export fails (:func:`verify_graph`); the largest difference is
kept in ``deploy.json``.
"""
import contextlib
import json
import os
import os.path as osp
import shutil

import torch
from mmengine.config import Config
from mmengine.registry import DATASETS

from ..models.layers import fuse
from .deployed_model import BACKENDS, FORMAT_VERSION, DeployedModel, PyTorchGraph, plain_json, model_digest
from .graphs import DenseGraph, RoIGraph, SegGraph, roi_align_params, symbolic_upsampling
from .postprocess import check_nms_cfg
from .precision import IMAGE_GRAPHS, AccuracyControl, calibration_inputs, check_precision, quantize_graph, tuned_on
from .runtimes import RuntimeUnavailable, open_runtime, save_aot, save_openvino

__all__ = ['VERIFY_TOL', 'deployed_in_pytorch', 'describe', 'export_model', 'graphs', 'postprocess_params',
           'probe_inputs', 'verify_graph']

# Largest difference of an exported graph from PyTorch, scaled (max |diff| / max(1, max |output|)): fp32 graphs
# of every config, random and trained weights, stay within 2e-6 in onnxruntime and OpenVINO.
VERIFY_TOL = 1e-5

# The traced example: a multiple of 128 whose every pyramid level is at least 2 wide (sizes of 0 and 1
# would be specialised by torch.export).
EXAMPLE_SHAPE = (384, 512)


def _class_meta(cfg):
    """(classes, palette) of the config's test set: its ``metainfo``, else its dataset type's."""
    dataset = cfg.test_dataloader.dataset
    while 'dataset' in dataset and 'metainfo' not in dataset:  # wrappers (RepeatDataset, ...)
        dataset = dataset.dataset
    meta = dict(dataset.get('metainfo') or {})
    kind = dataset.get('type')
    if kind and '.' not in kind:  # the config's scope, whichever scope is the default now
        kind = f'{cfg.default_scope}.{kind}'
    default = getattr(DATASETS.get(kind), 'METAINFO', {}) if kind else {}
    classes = meta.get('classes') or default.get('classes')
    palette = meta.get('palette') or default.get('palette')
    return [str(c) for c in classes], [list(map(int, p)) for p in palette] if palette else None


def _bbox_coder(coder):
    if type(coder).__name__ != 'DeltaXYWHBBoxCoder':
        raise ValueError(f'only DeltaXYWHBBoxCoder boxes are exported, not {type(coder).__name__}')
    return dict(means=list(map(float, coder.means)), stds=list(map(float, coder.stds)), wh_ratio_clip=16 / 1000,
                clip_border=bool(coder.clip_border), add_ctr_clamp=bool(coder.add_ctr_clamp),
                ctr_clamp=float(coder.ctr_clamp))


def _dense_head(head, kind):
    gen = head.prior_generator
    if type(gen).__name__ != 'AnchorGenerator':
        raise ValueError(f'only AnchorGenerator priors are exported, not {type(gen).__name__}')
    return dict(type=kind, use_sigmoid=bool(head.use_sigmoid_cls), cls_out_channels=int(head.cls_out_channels),
                num_levels=len(gen.strides), bbox_coder=_bbox_coder(head.bbox_coder),
                anchors=dict(strides=[[float(s) for s in st] for st in gen.strides],
                             base_anchors=[a.tolist() for a in gen.base_anchors]))


def _preprocess(model):
    pre = model.data_preprocessor
    meta = dict(type=type(pre).__name__, mean=pre.mean.view(-1).tolist() if pre._enable_normalize else None,
                std=pre.std.view(-1).tolist() if pre._enable_normalize else None,
                bgr_to_rgb=bool(getattr(pre, '_channel_conversion', None) or getattr(pre, 'channel_conversion', 0)))
    if meta['type'] == 'DetDataPreprocessor':
        meta.update(pad_size_divisor=int(pre.pad_size_divisor), pad_value=float(pre.pad_value))
    elif meta['type'] == 'SegDataPreProcessor':
        if pre.test_cfg:
            raise ValueError('segmentors whose data preprocessor pads test images (test_cfg) are not exported')
    else:
        raise ValueError(f'only DetDataPreprocessor / SegDataPreProcessor are exported, not {meta["type"]}')
    return meta


def _kind(model):
    """'two_stage' (StandardRoIHead with RPNHead), 'single_stage' (RetinaHead / AnchorHead) or 'segmentor'
    (EncoderDecoder, whole-image inference); anything else is refused in one line."""
    name = type(model).__name__
    if hasattr(model, 'decode_head'):
        if name != 'EncoderDecoder':
            raise ValueError(f'only EncoderDecoder segmentors are exported, not {name}')
        mode = model.test_cfg.get('mode', 'whole') if model.test_cfg else 'whole'
        if mode != 'whole':
            raise ValueError(f"only test_cfg.mode='whole' is exported, not {mode!r}")
        return 'segmentor'
    if getattr(model, 'with_rpn', False) and type(model.roi_head).__name__ == 'StandardRoIHead':
        if type(model.rpn_head).__name__ != 'RPNHead':
            raise ValueError(f'only RPNHead proposals are exported, not {type(model.rpn_head).__name__}')
        if getattr(model.roi_head.bbox_head, 'custom_cls_channels', False):
            raise ValueError('box heads with custom class channels are not exported')
        return 'two_stage'
    if type(getattr(model, 'bbox_head', None)).__name__ in ('RetinaHead', 'AnchorHead'):
        return 'single_stage'
    head = getattr(model, 'roi_head', None) or getattr(model, 'bbox_head', None)
    raise ValueError(f'{name} with {type(head).__name__} cannot be exported: Mask R-CNN (RPNHead + '
                     'StandardRoIHead), RetinaNet and EncoderDecoder segmentors are')


def _mask_extractor(roi):
    extractor = roi.bbox_roi_extractor if roi.share_roi_extractor else roi.mask_roi_extractor
    if roi_align_params(extractor)['strides'] != roi_align_params(roi.bbox_roi_extractor)['strides']:
        raise ValueError('mask and box RoI extractors on different levels are not exported')
    return extractor


def postprocess_params(model):
    """What the host code (:mod:`~effvit_mm.deployment.postprocess`) needs of a built detector /
    segmentor, as plain JSON values (``deploy.json``'s ``postprocess``)."""
    kind = _kind(model)
    if kind == 'segmentor':
        head = model.decode_head
        threshold = getattr(head, 'threshold', None)  # mmseg sets it for one-channel heads (0.3 unless given)
        return dict(type=kind, align_corners=bool(head.align_corners),
                    threshold=None if threshold is None else float(threshold))
    if kind == 'single_stage':
        return dict(type=kind, head=_dense_head(model.bbox_head, 'anchor'),
                    test_cfg=check_nms_cfg(plain_json(model.test_cfg), 'test_cfg'))
    roi, bbox_head = model.roi_head, model.roi_head.bbox_head
    post = dict(type=kind, rpn=_dense_head(model.rpn_head, 'rpn'),
                rpn_cfg=check_nms_cfg(plain_json(model.test_cfg.rpn), 'rpn'),
                rcnn_cfg=check_nms_cfg(plain_json(model.test_cfg.rcnn), 'rcnn'),
                bbox_roi=roi_align_params(roi.bbox_roi_extractor),
                bbox_head=dict(num_classes=int(bbox_head.num_classes),
                               reg_class_agnostic=bool(bbox_head.reg_class_agnostic),
                               bbox_coder=_bbox_coder(bbox_head.bbox_coder)))
    if roi.with_mask:
        post.update(mask_roi=roi_align_params(_mask_extractor(roi)),
                    mask_head=dict(num_classes=int(roi.mask_head.num_classes),
                                   class_agnostic=bool(roi.mask_head.class_agnostic)))
    return post


# The smallest image side the graphs are exported for; the runner zero-pads smaller images up to it
# (bottom / right, and crops segmentation logits back). ONNX graphs are traced for sides >= 32 (LITv2's
# DTM pads a one-pixel level, a branch the trace does not keep); torch.export (AOTInductor) refuses a
# symbolic pyramid level of size 1 at stride 64, so its graphs take sides of 65 and up.
MIN_SIDE = {'onnxruntime': 32, 'openvino': 32, 'aot': 65}


def _image_dims(min_side):
    return ({2: torch.export.Dim('height', min=min_side, max=8192),
             3: torch.export.Dim('width', min=min_side, max=8192)}, )


def graphs(model, min_side=32):
    """The graphs of a built detector / segmentor: {name: (module, input names, output names, example
    inputs, torch.export dynamic shapes)}; image sides from ``min_side`` (:data:`MIN_SIDE`) to 8192."""
    kind = _kind(model)
    image = (torch.randn(1, 3, *EXAMPLE_SHAPE, generator=torch.Generator().manual_seed(0)), )
    if kind == 'segmentor':
        graph = SegGraph(symbolic_upsampling(model))
        return {'segmentor': (graph, ['image'], ['logits'], image, _image_dims(min_side))}
    head = model.bbox_head if kind == 'single_stage' else model.rpn_head
    n = len(head.prior_generator.strides)
    scores = [f'cls{i}' for i in range(n)] + [f'reg{i}' for i in range(n)]
    if kind == 'single_stage':
        return {'detector': (DenseGraph(model, head), ['image'], scores, image, _image_dims(min_side))}
    roi = model.roi_head
    levels = len(roi.bbox_roi_extractor.featmap_strides)
    feats_out = [f'feat{i}' for i in range(levels)]
    out = {'detector': (DenseGraph(model, head, levels), ['image'], feats_out + scores, image, _image_dims(min_side))}
    with torch.no_grad():
        feats = model.extract_feat(image[0])[:levels]
    boxes = torch.tensor([[0., 0, 40, 40], [8, 8, 100, 60], [20, 30, 300, 200]])
    rois = [torch.cat([torch.zeros(3, 1), boxes], 1) for _ in range(levels)]
    # RoIGraph.forward(*feats_and_rois): one entry, a tuple with the feature maps' and the RoIs' dimensions
    roi_dims = (tuple({2: torch.export.Dim(f'h{i}', min=1, max=4096), 3: torch.export.Dim(f'w{i}', min=1, max=4096)}
                      for i in range(levels)) +
                tuple({0: torch.export.Dim(f'rois{i}', min=1, max=100000)} for i in range(levels)), )
    roi_inputs = feats_out + [f'rois{i}' for i in range(levels)]
    out['bbox_head'] = (RoIGraph(roi.bbox_roi_extractor, roi.bbox_head), roi_inputs, ['cls_score', 'bbox_pred'],
                        (*feats, *rois), roi_dims)
    if roi.with_mask:
        out['mask_head'] = (RoIGraph(_mask_extractor(roi), roi.mask_head), roi_inputs, ['mask_logits'],
                            (*feats, *rois), roi_dims)
    return out


def probe_inputs(model, name, graph_inputs, kind):
    """Inputs of other sizes than the traced ones for the graph ``name``: two images (sides that are not
    multiples of 64 among them), or the features of such an image with 1 to 7 RoIs per level."""
    sizes = [(97, 131), (224, 288)] if kind == 'segmentor' else [(224, 288), (96, 160)]
    g = torch.Generator().manual_seed(1)
    probes = []
    for h, w in sizes:
        image = torch.randn(1, 3, h, w, generator=g)
        if name in ('detector', 'segmentor'):
            probes.append((image, ))
            continue
        levels = len(graph_inputs) // 2
        with torch.no_grad():
            feats = model.extract_feat(image)[:levels]
        rois = []
        for n in [(1, 5, 2, 7)[i % 4] for i in range(levels)]:
            xy = torch.rand(n, 2, generator=g) * torch.tensor([w, h]) * 0.7
            rois.append(torch.cat([torch.zeros(n, 1), xy, xy + torch.rand(n, 2, generator=g) * 90 + 1], 1))
        probes.append((*feats, *rois))
    return probes


def verify_graph(module, run, probes, name):
    """Run the exported graph (``run``: a callable ``*inputs -> [tensor, ...]``) and ``module`` on each of
    ``probes``; raise RuntimeError when an output differs by more than :data:`VERIFY_TOL` of its scale (a
    shape the tracer baked in, an op the backend computes otherwise). Returns the largest scaled difference."""
    from .export_tools import scaled_diff
    from .runtimes import as_list
    worst = 0.0
    for inputs in probes:
        with torch.no_grad():
            ref = as_list(module(*inputs))
        diff = max(scaled_diff(r, o) for r, o in zip(ref, run(*inputs)))
        if diff > VERIFY_TOL:
            shapes = ', '.join('x'.join(map(str, t.shape)) for t in inputs)
            raise RuntimeError(f'the exported {name} graph differs from PyTorch on inputs {shapes} by {diff:.3g} '
                               '(scaled): this model does not export to a graph of every input size')
        worst = max(worst, diff)
    return worst


def _save_graph(module, inputs, input_names, output_names, dynamic_shapes, backend, out_dir, name):
    """Export one graph; returns its file name (relative to ``out_dir``)."""
    from .onnx_export import export_onnx
    if backend == 'aot':
        file = f'{name}.pt2'
        save_aot(module, inputs, osp.join(out_dir, file), dynamic_shapes=dynamic_shapes)
        return file
    onnx_file = osp.join(out_dir, f'{name}.onnx')
    try:
        export_onnx(module, inputs, onnx_file, output_names, input_names=input_names,
                    dynamic_shapes=dynamic_shapes)
    except ImportError as error:
        raise RuntimeUnavailable(f'ONNX export needs the onnx extra ({error})') from None
    if backend == 'onnxruntime':
        return f'{name}.onnx'
    save_openvino(onnx_file, osp.join(out_dir, f'{name}.xml'))
    os.remove(onnx_file)
    return f'{name}.xml'


def describe(cfg, model, backend, config=None, checkpoint=None, precision='fp32'):
    """``deploy.json``'s contents for the built detector / segmentor ``model`` of ``cfg`` (its
    ``graphs`` still empty); ``backend`` 'pytorch' (no graph file: :func:`deployed_in_pytorch`) takes
    images of every size. Folders at another precision than fp32 record the machine they were made on."""
    classes, palette = _class_meta(cfg)
    machine = dict(exported_on=tuned_on()) if precision != 'fp32' else {}
    return dict(format=FORMAT_VERSION, task='detection' if cfg.default_scope == 'mmdet' else 'segmentation',
                backend=backend, precision=precision, **machine, config=osp.basename(str(config)) if config else None,
                model_digest=model_digest(cfg),
                min_side=MIN_SIDE.get(backend, 1), checkpoint=osp.basename(checkpoint or '') or None, graphs={},
                preprocess=_preprocess(model), postprocess=postprocess_params(model), classes=classes, palette=palette)


def deployed_in_pytorch(cfg, model):
    """The deploy form of the built ``model`` of ``cfg`` run eagerly: a
    :class:`~effvit_mm.deployment.DeployedModel` whose graphs are the PyTorch modules of :func:`graphs`
    (:class:`~effvit_mm.deployment.deployed_model.PyTorchGraph`, on a copy of ``model`` with its backbone
    fused), with the same host code as an exported folder."""
    import copy
    model = copy.deepcopy(model).eval()
    fuse(model.backbone)
    return DeployedModel.from_graphs(describe(cfg, model, 'pytorch'),
                                     {name: PyTorchGraph(part[0]) for name, part in graphs(model, 1).items()})


def export_model(config, out_dir, checkpoint=None, backend='onnxruntime', partial=False, cfg_options=None,
                 precision='fp32', calib_images=300, calib_data=None, max_drop=None, val_images=None):
    """Export the detector / segmentor of ``config`` (a path or model-zoo name) with ``checkpoint``'s
    weights (random without) for ``backend`` into ``out_dir`` (module docstring), at ``precision``
    (:mod:`~effvit_mm.deployment.precision`; int8 calibrated on ``calib_images`` train images, or on
    ``calib_data``: uint8 (3, H, W) images; with ``max_drop``, accuracy-controlled on ``val_images`` val images,
    all without). Returns the ``deploy.json`` contents."""
    from ..apis.model_zoo import resolve_config
    from ..apis.targets import build_model
    if backend not in BACKENDS:
        raise ValueError(f'unknown backend {backend!r}; choose one of {", ".join(BACKENDS)}')
    check_precision(precision, backend, max_drop)
    cfg = Config.fromfile(resolve_config(config))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    scope = cfg.get('default_scope')
    if scope not in ('mmdet', 'mmseg'):
        raise ValueError(f'{config} is a {scope or "scope-less"} config: only mmdet detectors and mmseg segmentors '
                         'are exported whole (tools/deployment/export_onnx.py exports classifiers)')
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope(scope):
        model = build_model(cfg, checkpoint, partial)
        fuse(model.backbone)
        parts = graphs(model, MIN_SIDE[backend])
        meta = describe(cfg, model, backend, config, checkpoint, precision)
        calibration = calibration_inputs(cfg, meta, calib_images, images=calib_data) if precision == 'int8' else None
        if max_drop is not None:
            from ..engine.config_switches import check_data_roots
            check_data_roots(cfg, ['val', 'test'])
    with _new_folder(out_dir) as tmp:
        for name, (module, input_names, output_names, inputs, dims) in parts.items():
            module.eval()
            file = _save_graph(module, inputs, input_names, output_names, dims, backend, tmp, name)
            probes = probe_inputs(model, name, input_names, meta['postprocess']['type'])
            diff = verify_graph(module, open_runtime(osp.join(tmp, file), backend), probes, name)
            meta['graphs'][name] = dict(file=file, inputs=input_names, outputs=output_names,
                                        verified_max_scaled_diff=diff)
        if calibration:
            name = next(name for name in IMAGE_GRAPHS if name in meta['graphs'])
            control = AccuracyControl(cfg, meta, tmp, max_drop, val_images) if max_drop is not None else None
            meta['quantization'] = dict(quantize_graph(osp.join(tmp, meta['graphs'][name]['file']), calibration[0],
                                                       control), graphs=[name], calibration=calibration[1])
        with open(osp.join(tmp, 'deploy.json'), 'w') as f:
            json.dump(meta, f, indent=1)
    return meta


@contextlib.contextmanager
def _new_folder(out_dir):
    """A temporary folder beside ``out_dir`` to fill; at the end of the block it replaces ``out_dir`` (an
    earlier export's folder is renamed away first, then removed); on an error it is removed and ``out_dir``
    stays as it was. A folder that holds files but no deploy.json is refused (not ours to replace)."""
    out_dir = osp.abspath(out_dir)
    if osp.isdir(out_dir) and os.listdir(out_dir) and not osp.isfile(osp.join(out_dir, 'deploy.json')):
        raise ValueError(f'--out {out_dir} holds files and no deploy.json: not an exported folder to replace; '
                         'choose another --out')
    tmp, old = f'{out_dir}.tmp{os.getpid()}', f'{out_dir}.old{os.getpid()}'
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if osp.exists(out_dir):
        os.rename(out_dir, old)
    os.rename(tmp, out_dir)
    shutil.rmtree(old, ignore_errors=True)
