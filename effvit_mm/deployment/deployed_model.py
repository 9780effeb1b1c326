"""Run an exported detector / segmentor folder (:func:`~effvit_mm.deployment.export_model`) like the
PyTorch model: :class:`DeployedModel` is an mmengine model whose ``predict`` takes what the config's
test pipeline gives (uint8 BGR (3, H, W) images and their data samples) and returns mmdet
``DetDataSample`` s (``pred_instances``: bboxes, scores, labels, masks) or mmseg ``SegDataSample`` s
(``seg_logits``, ``pred_sem_seg``), so that mmengine's test loop evaluates it with the config's own
metrics. Nothing of the model is built: the graphs run in their backend, the rest is
:mod:`effvit_mm.deployment.postprocess`.

The graphs run on the CPU, whatever device mmengine's runner has moved the model to: the images come
to the CPU, the predictions go back to the device the images came on (a runner on a GPU machine, as
``tools/test.py --deployed`` and ``tools/dist_test.sh ... --deployed`` have there).

Each image runs alone (batch 1), padded as the config's data preprocessor pads the whole batch
(mmdet: to the batch's largest size, rounded up to ``pad_size_divisor``), so that a batch gives the
PyTorch model's numbers. An image side below the graphs' smallest (``min_side`` in deploy.json: 32 for
ONNX, 65 for AOTInductor) is zero-padded up to it (bottom / right; a segmentation's logits are cropped
back): a detector then sees the padding a larger batch partner would give it; a segmentor's border pixels
can differ from mmseg's, which runs the sliver as it is.
"""
import hashlib
import json
import math
import os.path as osp
from collections import OrderedDict

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.registry import MODELS

from . import postprocess as pp
from .runtimes import as_list, open_runtime

__all__ = ['BACKENDS', 'FORMAT_VERSION', 'DeployedModel', 'PyTorchGraph', 'graph_input', 'init_deployed',
           'min_side_padded', 'model_digest', 'normalise', 'padded_size', 'plain_json', 'read_deploy_meta',
           'use_deployed', 'with_test_cfg']

BACKENDS = ('onnxruntime', 'openvino', 'aot')
FORMAT_VERSION = 2
ANCHOR_CACHE_SIZE = 16  # image sizes whose anchors a DeployedModel keeps


def model_digest(cfg):
    """A digest of ``cfg.model`` without what deployment does not keep (the backbone's ``init_cfg``, a
    distillation teacher) and what the host code takes at test time (``test_cfg``; ``train_cfg``): equal
    for the config a folder was exported from."""
    model = cfg.model.to_dict() if hasattr(cfg.model, 'to_dict') else dict(cfg.model)
    model = json.loads(json.dumps(model, sort_keys=True, default=str))
    model.get('backbone', {}).pop('init_cfg', None)
    for key in ('teacher', 'train_cfg', 'test_cfg'):
        model.pop(key, None)
    return hashlib.sha256(json.dumps(model, sort_keys=True).encode()).hexdigest()[:16]


def plain_json(cfg):
    """A ConfigDict / dict / list of them as plain JSON values."""
    return json.loads(json.dumps(cfg.to_dict() if hasattr(cfg, 'to_dict') else cfg, default=list))


def with_test_cfg(post, test_cfg):
    """deploy.json's ``postprocess`` with the thresholds of a model's ``test_cfg`` (its NMS, score
    thresholds, numbers of boxes, mask threshold: all host code); a segmentor's ``mode`` must stay
    'whole' (the graph takes whole images). Refused in one line where it does not fit."""
    test_cfg = plain_json(test_cfg)
    post = dict(post)
    if post['type'] == 'segmentor':
        if test_cfg.get('mode', 'whole') != 'whole':
            raise ValueError(f"test_cfg.mode={test_cfg['mode']!r}: a deployed segmentor runs whole images "
                             "(mode='whole'); test the PyTorch model for other modes")
    elif post['type'] == 'single_stage':
        post['test_cfg'] = pp.check_nms_cfg(test_cfg, 'test_cfg')
    else:
        missing = [k for k in ('rpn', 'rcnn') if k not in test_cfg]
        if missing:
            raise ValueError(f'test_cfg has no {" / ".join(missing)}: a two-stage detector needs both')
        post['rpn_cfg'] = pp.check_nms_cfg(test_cfg['rpn'], 'test_cfg.rpn')
        post['rcnn_cfg'] = pp.check_nms_cfg(test_cfg['rcnn'], 'test_cfg.rcnn')
    return post


def read_deploy_meta(path):
    """``path``/deploy.json, checked: the folder exists, holds deploy.json of this format and every graph
    file it names. Raises FileNotFoundError / ValueError with one line."""
    meta_file = osp.join(path, 'deploy.json')
    if not osp.isdir(path):
        raise FileNotFoundError(f'deployed model folder {path} not found (write one with '
                                'tools/deployment/export_model.py)')
    if not osp.isfile(meta_file):
        raise FileNotFoundError(f'{path} has no deploy.json: not a folder written by tools/deployment/export_model.py')
    try:
        with open(meta_file) as f:
            meta = json.load(f)
    except ValueError as error:
        raise ValueError(f'{meta_file} is not valid JSON ({error}): export the model again') from None
    if meta.get('format') != FORMAT_VERSION:
        raise ValueError(f'{meta_file} has format {meta.get("format")}, this effvit_mm reads {FORMAT_VERSION}: '
                         'export the model again')
    for name, graph in meta['graphs'].items():
        files = [graph['file']] + ([graph['file'][:-4] + '.bin'] if graph['file'].endswith('.xml') else [])
        for file in files:
            if not osp.isfile(osp.join(path, file)):
                raise FileNotFoundError(f'{path} lacks {file} (graph {name!r} of deploy.json): export the model again')
    return meta


def use_deployed(cfg, path):
    """Make ``cfg`` (a detection / segmentation Config) run the exported folder ``path`` instead of its
    model (``tools/test.py --deployed``, ``tools/demo.py --deployed``), with the config's ``test_cfg``
    (``--cfg-options model.test_cfg...`` applies without a new export); a folder exported from a config
    with another model is refused in one line. In a distributed run the model is not wrapped in
    DistributedDataParallel (it has no parameter); each process tests its share of the test set."""
    meta = read_deploy_meta(path)
    if meta['model_digest'] != model_digest(cfg):
        raise ValueError(f"{path} was exported from {meta['config']}, whose model differs from this config's: "
                         'export this config (tools/deployment/export_model.py) or use that one')
    test_cfg = cfg.model.get('test_cfg')
    cfg.model = dict(type='DeployedModel', path=str(path), test_cfg=plain_json(test_cfg) if test_cfg else None)
    cfg.model_wrapper_cfg = dict(type='InferenceOnlyWrapper')
    cfg.load_from = None
    return meta


def init_deployed(config, path, cfg_options=None, device='cpu'):
    """The exported folder ``path`` of ``config`` (a file or model-zoo name; ``cfg_options`` merged, e.g.
    ``{'model.test_cfg.rcnn.score_thr': 0.5}``) as a model for mmdet's ``inference_detector`` or mmseg's
    ``inference_model`` (an image path or array in, a data sample out), on ``device``: what
    ``init_detector`` / ``init_model`` give for a checkpoint. The config's default scope is made current."""
    from mmengine.registry import init_default_scope

    from ..engine.config_switches import load_config
    cfg = load_config(config, cfg_options=cfg_options)
    use_deployed(cfg, path)
    init_default_scope(cfg.get('default_scope'))
    model = MODELS.build(cfg.model)
    model.cfg = cfg
    return model.to(device).eval()


def normalise(pre, img):
    """A uint8 (3, H, W) image as the graphs take it: channels reordered, mean / std of deploy.json's
    ``preprocess`` applied (float32)."""
    if pre['bgr_to_rgb'] and img.shape[0] == 3:
        img = img[[2, 1, 0], ...]
    img = img.float()
    if pre['mean'] is not None:
        img = (img - torch.tensor(pre['mean']).view(-1, 1, 1)) / torch.tensor(pre['std']).view(-1, 1, 1)
    return img


def padded_size(meta, imgs):
    """(H, W) a detector's batch of (3, h, w) ``imgs`` is padded to: the largest side, at least the folder's
    ``min_side``, rounded up to ``pad_size_divisor`` (mmdet's DetDataPreprocessor)."""
    divisor, least = meta['preprocess']['pad_size_divisor'], meta['min_side']
    return tuple(math.ceil(max(least, *(i.shape[d] for i in imgs)) / divisor) * divisor for d in (1, 2))


def graph_input(meta, img, size=None):
    """The (1, 3, H, W) input of the image graph for the uint8 (3, h, w) ``img``, as :class:`DeployedModel`
    feeds it alone, or a detector in a batch padded to ``size`` (H, W) (data for quantization)."""
    x = normalise(meta['preprocess'], img)
    if meta['task'] == 'detection':
        h, w = size or padded_size(meta, [x])
        return F.pad(x, (0, w - x.shape[2], 0, h - x.shape[1]), value=meta['preprocess']['pad_value'])[None]
    return min_side_padded(meta, x)[None]


def min_side_padded(meta, x):
    """A segmentor's (C, h, w) image zero-padded (bottom / right) up to the folder's ``min_side``."""
    least = meta['min_side']
    return F.pad(x, (0, max(least - x.shape[2], 0), 0, max(least - x.shape[1], 0)))


class PyTorchGraph:
    """A graph module (:mod:`~effvit_mm.deployment.graphs`) run eagerly as a backend runs its file:
    ``*inputs -> [tensor, ...]``, without gradients."""

    def __init__(self, module):
        self.module = module.eval()

    @torch.no_grad()
    def __call__(self, *xs):
        return as_list(self.module(*xs))


@MODELS.register_module()
class DeployedModel(BaseModel):
    """An exported folder (module docstring) as an mmengine model that predicts.

    Args:
        path (str): the folder (``deploy.json`` and the graphs).
        backend (str, optional): must be the folder's backend when given (a check for configs).
        test_cfg (dict, optional): the model's ``test_cfg``, in place of the exported one
            (:func:`with_test_cfg`).
        data_preprocessor: ignored (mmengine's Runner passes a config's top-level one): the folder's
            ``deploy.json`` holds the pre-processing, applied in :meth:`predict`.
    """

    def __init__(self, path, backend=None, test_cfg=None, data_preprocessor=None, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.meta = read_deploy_meta(path)
        if backend is not None and backend != self.meta['backend']:
            raise ValueError(f'{path} was exported for {self.meta["backend"]}, not {backend}')
        if self.meta['backend'] not in BACKENDS:
            raise ValueError(f'{path}: unknown backend {self.meta["backend"]!r}')
        if test_cfg:
            self.meta['postprocess'] = with_test_cfg(self.meta['postprocess'], test_cfg)
        self.path = path
        precision = self.meta.get('precision', 'fp32')  # folders written before precisions were all fp32
        self._use({name: open_runtime(osp.join(path, g['file']), self.meta['backend'], precision)
                   for name, g in self.meta['graphs'].items()})

    @classmethod
    def from_graphs(cls, meta, graphs):
        """A runner of in-memory ``graphs`` ({name: callable ``*inputs -> [tensor, ...]``}, e.g. the
        PyTorch modules of :func:`~effvit_mm.deployment.export.graphs`) with ``meta`` as deploy.json holds it."""
        self = cls.__new__(cls)
        BaseModel.__init__(self)
        self.meta, self.path = meta, None
        self._use(graphs)
        return self

    def _use(self, graphs):
        self.graphs = graphs
        self.task = self.meta['task']
        self.dataset_meta = dict(classes=tuple(self.meta['classes']), palette=self.meta['palette'])
        self._anchor_cache = OrderedDict()

    def forward(self, inputs, data_samples=None, mode='predict'):
        if mode != 'predict':
            raise ValueError(f"a deployed model only predicts (mode='predict'), not mode={mode!r}")
        return self.predict(inputs, data_samples)

    def predict(self, inputs, data_samples):
        """``inputs``: uint8 (3, H, W) images (a list or a stacked batch) on any device; ``data_samples``:
        their mmdet / mmseg data samples with the test pipeline's metainfo. Returns the samples with
        predictions, on the images' device."""
        device = inputs[0].device
        imgs = [normalise(self.meta['preprocess'], img.cpu()) for img in inputs]
        if self.task == 'detection':
            h, w = padded_size(self.meta, imgs)
            for img, sample in zip(imgs, data_samples):
                x = F.pad(img, (0, w - img.shape[2], 0, h - img.shape[1]), value=self.meta['preprocess']['pad_value'])
                sample.set_metainfo(dict(batch_input_shape=(h, w), pad_shape=(h, w)))
                sample.pred_instances = self._detect(x[None], sample.metainfo).to(device)
        else:
            from mmengine.structures import PixelData
            post = self.meta['postprocess']
            for img, sample in zip(imgs, data_samples):
                h, w = img.shape[1:]
                logits = self.graphs['segmentor'](min_side_padded(self.meta, img)[None])[0][0, :, :h, :w]
                logits, pred = pp.segmentation_result(logits, (0, 0, 0, 0), sample.metainfo['ori_shape'],
                                                      post['align_corners'], post['threshold'])
                sample.set_data(dict(seg_logits=PixelData(data=logits.to(device)),
                                     pred_sem_seg=PixelData(data=pred.to(device))))
        return data_samples

    # detection ------------------------------------------------------------------------------------
    def _detect(self, x, meta):
        from mmengine.structures import InstanceData
        post = self.meta['postprocess']
        img_shape, scale_factor = meta['img_shape'][:2], meta['scale_factor']
        outs = self.graphs['detector'](x)
        if post['type'] == 'single_stage':
            head = post['head']
            n = head['num_levels']
            boxes, scores, labels = pp.dense_predictions(
                [c[0] for c in outs[:n]], [r[0] for r in outs[n:]], self._anchors(head, outs[:n]), head,
                post['test_cfg'], img_shape, scale_factor, rescale=True)
            return InstanceData(bboxes=boxes, scores=scores, labels=labels)
        levels, rpn = len(post['bbox_roi']['strides']), post['rpn']
        n = rpn['num_levels']
        feats, cls, reg = outs[:levels], outs[levels:levels + n], outs[levels + n:]
        proposals, _, _ = pp.dense_predictions([c[0] for c in cls], [r[0] for r in reg], self._anchors(rpn, cls), rpn,
                                               post['rpn_cfg'], img_shape, scale_factor, rescale=False)
        with_mask = 'mask_head' in self.graphs
        results = InstanceData(bboxes=proposals.new_zeros(0, 4), scores=proposals.new_zeros(0),
                               labels=proposals.new_zeros(0, dtype=torch.long))
        if len(proposals):
            rois = torch.cat([proposals.new_zeros(len(proposals), 1), proposals], 1)
            cls_score, bbox_pred = self._roi_forward('bbox_head', feats, rois, post['bbox_roi'])
            boxes, scores, labels = pp.rcnn_detections(rois, cls_score, bbox_pred, post['bbox_head'], post['rcnn_cfg'],
                                                       img_shape, scale_factor, rescale=not with_mask)
            results = InstanceData(bboxes=boxes, scores=scores, labels=labels)
        if with_mask:
            ori_h, ori_w = meta['ori_shape'][:2]
            masks = torch.zeros(0, ori_h, ori_w, dtype=torch.bool)
            if len(results):
                rois = torch.cat([results.bboxes.new_zeros(len(results), 1), results.bboxes], 1)
                (logits, ) = self._roi_forward('mask_head', feats, rois, post['mask_roi'])
                masks, results.bboxes = pp.paste_masks(logits, results.bboxes, results.labels, (ori_h, ori_w),
                                                       scale_factor, post['rcnn_cfg']['mask_thr_binary'],
                                                       post['mask_head']['class_agnostic'])
            results.masks = masks
        return results

    def _anchors(self, head, cls_scores):
        """The anchors of each level for these score maps (the last :data:`ANCHOR_CACHE_SIZE` feature-map
        sizes cached)."""
        sizes = tuple(tuple(c.shape[-2:]) for c in cls_scores)
        key, cache = (head['type'], sizes), self._anchor_cache
        if key in cache:
            cache.move_to_end(key)
        else:
            cache[key] = pp.anchors(head['anchors'], sizes)
            if len(cache) > ANCHOR_CACHE_SIZE:
                cache.popitem(last=False)
        return cache[key]

    def _roi_forward(self, graph, feats, rois, params):
        """Run an RoI graph on ``rois`` (N, 5): each RoI on its level (an empty level gets one dummy RoI,
        dropped after), outputs back in the order of ``rois``."""
        levels = pp.map_roi_levels(rois, len(params['strides']), params['finest_scale'])
        dummy = rois.new_tensor([[0, 0, 0, 1, 1]])
        index = [torch.nonzero(levels == i).view(-1) for i in range(len(params['strides']))]
        outs = self.graphs[graph](*feats, *[rois[i] if len(i) else dummy for i in index])
        order = torch.cat(index)
        results = []
        for out in outs:
            parts = out.split([max(len(i), 1) for i in index])
            kept = torch.cat([p for p, i in zip(parts, index) if len(i)])
            result = torch.empty_like(kept)
            result[order] = kept
            results.append(result)
        return results
