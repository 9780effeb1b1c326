"""The host side of a deployed model: what runs between and after its graphs, in plain PyTorch and
``torchvision.ops.nms`` (no mmdet model, no mmcv op), step for step as mmdet 3.3 / mmseg 1.2 compute it
on CPU, so that the same tensors give the same detections:

- anchors (mmdet's ``AnchorGenerator``), box deltas decoded (``DeltaXYWHBBoxCoder``);
- a dense head's proposals / detections (``RPNHead`` / ``AnchorHead`` ``predict_by_feat``);
- RoIs mapped to pyramid levels (``SingleRoIExtractor.map_roi_levels``);
- an R-CNN box head's detections (``BBoxHead.predict_by_feat`` + ``multiclass_nms``);
- masks pasted into the original image (``FCNMaskHead`` / ``_do_paste_mask``);
- a segmentor's logits cropped, resized to the original image and turned into classes
  (``BaseSegmentor.postprocess_result``).

Boxes are (x1, y1, x2, y2) float32 tensors; ``img_shape`` / ``ori_shape`` are (H, W);
``scale_factor`` is (w_scale, h_scale), as mmdet's image metas.
"""
import math

import torch
import torch.nn.functional as F
from torchvision.ops import nms

__all__ = ['NMS_KEYS', 'anchors', 'check_nms_cfg', 'decode_deltas', 'batched_nms', 'dense_predictions', 'map_roi_levels', 'rcnn_detections',
           'paste_masks', 'segmentation_result', 'unscale']


def anchors(generator, featmap_sizes):
    """The anchors of every level, each (H * W * A, 4), location-major as mmdet's ``grid_priors``:
    ``generator['base_anchors']`` (A, 4) of each level shifted by its ``strides`` (sw, sh)."""
    out = []
    for base, (sw, sh), (h, w) in zip(generator['base_anchors'], generator['strides'], featmap_sizes):
        base = torch.tensor(base, dtype=torch.float32)
        shift_x = torch.arange(0, w).to(torch.float32) * sw
        shift_y = torch.arange(0, h).to(torch.float32) * sh
        xx = shift_x.repeat(len(shift_y))
        yy = shift_y.view(-1, 1).repeat(1, len(shift_x)).view(-1)
        shifts = torch.stack([xx, yy, xx, yy], dim=-1)
        out.append((base[None, :, :] + shifts[:, None, :]).view(-1, 4))
    return out


def decode_deltas(priors, deltas, coder, max_shape):
    """``DeltaXYWHBBoxCoder.decode`` (means, stds, ``wh_ratio_clip``, ``clip_border``, ``add_ctr_clamp``,
    ``ctr_clamp`` in ``coder``): (N, 4) priors and (N, 4) deltas -> (N, 4) boxes clipped to ``max_shape``."""
    if deltas.numel() == 0:
        return deltas
    means = deltas.new_tensor(coder['means']).view(1, -1)
    stds = deltas.new_tensor(coder['stds']).view(1, -1)
    denorm = deltas * stds + means
    dxy, dwh = denorm[:, :2], denorm[:, 2:]
    pxy = (priors[:, :2] + priors[:, 2:]) * 0.5
    pwh = priors[:, 2:] - priors[:, :2]
    dxy_wh = pwh * dxy
    max_ratio = abs(math.log(coder['wh_ratio_clip']))
    if coder['add_ctr_clamp']:
        dxy_wh = torch.clamp(dxy_wh, max=coder['ctr_clamp'], min=-coder['ctr_clamp'])
        dwh = torch.clamp(dwh, max=max_ratio)
    else:
        dwh = dwh.clamp(min=-max_ratio, max=max_ratio)
    gxy = pxy + dxy_wh
    gwh = pwh * dwh.exp()
    boxes = torch.cat([gxy - gwh * 0.5, gxy + gwh * 0.5], dim=-1)
    if coder['clip_border'] and max_shape is not None:
        boxes[..., 0::2].clamp_(min=0, max=max_shape[1])
        boxes[..., 1::2].clamp_(min=0, max=max_shape[0])
    return boxes


NMS_KEYS = ('type', 'iou_threshold', 'offset', 'score_threshold', 'max_num', 'class_agnostic', 'split_thr')


def _nms(boxes, scores, iou, offset=0, score_threshold=0):
    """mmcv's CPU ``nms``: boxes scored above ``score_threshold`` (when positive), in the order of torch's
    (unstable) descending sort of ``scores``, which decides between equal scores (torchvision's NMS sorts
    stably, so it keeps that order); ``offset`` 1 counts box sides as x2 - x1 + 1, which torchvision's
    IoU gives for boxes whose x2, y2 are one larger."""
    valid = None
    if score_threshold > 0:
        valid = torch.nonzero(scores > score_threshold).view(-1)
        boxes, scores = boxes[valid], scores[valid]
    if offset:
        boxes = torch.cat([boxes[:, :2], boxes[:, 2:] + offset], 1)
    order = scores.sort(0, descending=True)[1]
    keep = order[nms(boxes[order], scores[order], iou)]
    return keep if valid is None else valid[keep]


def check_nms_cfg(cfg, where):
    """``cfg`` (a test_cfg part with ``nms``), refused in one line when its NMS is not one this code runs."""
    nms_cfg = cfg['nms']
    if nms_cfg.get('type', 'nms') != 'nms':
        raise ValueError(f"{where}: only nms is exported, not {nms_cfg['type']}")
    unknown = sorted(set(nms_cfg) - set(NMS_KEYS))
    if unknown:
        raise ValueError(f"{where}: nms option(s) {', '.join(unknown)} are not supported (supported: "
                         f"{', '.join(NMS_KEYS[1:])})")
    return cfg


def batched_nms(boxes, scores, idxs, nms_cfg):
    """mmcv's ``batched_nms`` on CPU: NMS within each ``idxs`` group (``class_agnostic``: across them),
    boxes offset per group below ``split_thr`` boxes, one NMS per group above; at most ``max_num``;
    ``iou_threshold``, ``offset`` and ``score_threshold`` as mmcv's ``nms``. Returns (dets (K, 5) with the
    score last, keep (K,)) in descending score order."""
    unknown = set(nms_cfg) - set(NMS_KEYS)
    if unknown or nms_cfg.get('type', 'nms') != 'nms':
        raise ValueError(f'nms config {dict(nms_cfg)}: only mmcv nms with {", ".join(NMS_KEYS[1:])} is supported')
    iou, offset, score_thr = nms_cfg['iou_threshold'], nms_cfg.get('offset', 0), nms_cfg.get('score_threshold', 0)
    if nms_cfg.get('class_agnostic', False):
        boxes_for_nms = boxes
    elif boxes.numel() == 0:
        boxes_for_nms = boxes
    else:
        boxes_for_nms = boxes + (idxs.to(boxes) * (boxes.max() + 1))[:, None]
    split_thr = nms_cfg.get('split_thr', 10000)
    if boxes_for_nms.shape[0] < split_thr:
        keep = _nms(boxes_for_nms, scores, iou, offset, score_thr)
        scores_kept = scores[keep]
    else:
        total_mask = scores.new_zeros(scores.size(), dtype=torch.bool)
        kept_scores = scores.new_zeros(scores.size())
        for group in torch.unique(idxs):
            mask = (idxs == group).nonzero(as_tuple=False).view(-1)
            keep = _nms(boxes_for_nms[mask], scores[mask], iou, offset, score_thr)
            total_mask[mask[keep]] = True
            kept_scores[mask[keep]] = scores[mask][keep]
        keep = total_mask.nonzero(as_tuple=False).view(-1)
        scores_kept, order = kept_scores[keep].sort(descending=True)
        keep = keep[order]
    max_num = nms_cfg.get('max_num', -1)
    if max_num > 0:
        keep, scores_kept = keep[:max_num], scores_kept[:max_num]
    return torch.cat([boxes[keep], scores_kept[:, None]], -1), keep


def dense_predictions(cls_scores, bbox_preds, level_anchors, head, cfg, img_shape, scale_factor, rescale):
    """One image's boxes from a dense head's outputs: (A*C, H, W) ``cls_scores`` and (A*4, H, W)
    ``bbox_preds`` per level. ``head['type']`` ``'rpn'`` (mmdet's ``RPNHead``: top ``nms_pre`` per level,
    NMS per level, labels 0) or ``'anchor'`` (``AnchorHead`` / ``RetinaHead``: scores above
    ``score_thr``, top ``nms_pre``, NMS per class). Returns (boxes (K, 4), scores (K,), labels (K,))."""
    rpn = head['type'] == 'rpn'
    nms_pre = cfg.get('nms_pre', -1)
    kept_deltas, kept_priors, kept_scores, kept_ids = [], [], [], []
    for level, (cls_score, bbox_pred, priors) in enumerate(zip(cls_scores, bbox_preds, level_anchors)):
        bbox_pred = bbox_pred.permute(1, 2, 0).reshape(-1, 4)
        cls_score = cls_score.permute(1, 2, 0).reshape(-1, head['cls_out_channels'])
        scores = cls_score.sigmoid() if head['use_sigmoid'] else cls_score.softmax(-1)[:, :-1]
        if rpn:
            scores = torch.squeeze(scores)
            if 0 < nms_pre < scores.shape[0]:
                scores, order = scores.sort(descending=True)
                scores, order = scores[:nms_pre], order[:nms_pre]
                bbox_pred, priors = bbox_pred[order, :], priors[order]
            ids = scores.new_full((scores.size(0), ), level, dtype=torch.long)
        else:
            valid = scores > cfg.get('score_thr', 0)
            scores = scores[valid]
            valid_idxs = torch.nonzero(valid)
            num_topk = min(nms_pre, valid_idxs.size(0))
            scores, order = scores.sort(descending=True)
            scores = scores[:num_topk]
            keep_idxs, ids = valid_idxs[order[:num_topk]].unbind(dim=1)
            bbox_pred, priors = bbox_pred[keep_idxs], priors[keep_idxs]
        kept_deltas.append(bbox_pred)
        kept_priors.append(priors)
        kept_scores.append(scores)
        kept_ids.append(ids)
    boxes = decode_deltas(torch.cat(kept_priors), torch.cat(kept_deltas), head['bbox_coder'], img_shape)
    scores, ids = torch.cat(kept_scores), torch.cat(kept_ids)
    if rescale:
        boxes = unscale(boxes, scale_factor)
    if cfg.get('min_bbox_size', -1) >= 0:
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        valid = (w > cfg['min_bbox_size']) & (h > cfg['min_bbox_size'])
        if not valid.all():
            boxes, scores, ids = boxes[valid], scores[valid], ids[valid]
    if boxes.numel() == 0:
        return boxes.new_zeros(0, 4), scores.new_zeros(0), scores.new_zeros(0, dtype=torch.long)
    dets, keep = batched_nms(boxes, scores, ids, cfg['nms'])
    dets, keep = dets[:cfg['max_per_img']], keep[:cfg['max_per_img']]
    labels = torch.zeros_like(keep) if rpn else ids[keep]
    return boxes[keep], dets[:, -1], labels


def unscale(boxes, scale_factor):
    """Boxes of the network input back in the original image, as mmdet's ``scale_boxes`` (times the
    reciprocal scale factor)."""
    return boxes * boxes.new_tensor([1 / s for s in scale_factor]).repeat((1, 2))


def map_roi_levels(rois, num_levels, finest_scale):
    """``SingleRoIExtractor.map_roi_levels``: the pyramid level of each (N, 5) RoI by its scale."""
    scale = torch.sqrt((rois[:, 3] - rois[:, 1]) * (rois[:, 4] - rois[:, 2]))
    levels = torch.floor(torch.log2(scale / finest_scale + 1e-6))
    return levels.clamp(min=0, max=num_levels - 1).long()


def rcnn_detections(rois, cls_score, bbox_pred, head, cfg, img_shape, scale_factor, rescale):
    """One image's detections from an R-CNN box head: (N, 5) ``rois``, (N, C + 1) ``cls_score``, (N, 4C) or
    (N, 4) ``bbox_pred`` (``reg_class_agnostic``) -> (boxes (K, 4), scores (K,), labels (K,)), score
    threshold, per-class NMS and ``max_per_img`` of ``cfg``."""
    scores = F.softmax(cls_score, dim=-1)
    num_rois = rois.size(0)
    num_classes = 1 if head['reg_class_agnostic'] else head['num_classes']
    boxes = decode_deltas(rois.repeat_interleave(num_classes, dim=0)[:, 1:], bbox_pred.view(-1, 4),
                          head['bbox_coder'], img_shape)
    if rescale and boxes.size(0) > 0:
        boxes = unscale(boxes, scale_factor)
    boxes = boxes.view(num_rois, -1)
    num_classes = scores.size(1) - 1
    if boxes.shape[1] > 4:
        boxes = boxes.view(scores.size(0), -1, 4)
    else:
        boxes = boxes[:, None].expand(scores.size(0), num_classes, 4)
    scores = scores[:, :-1]
    labels = torch.arange(num_classes, dtype=torch.long).view(1, -1).expand_as(scores)
    boxes, scores, labels = boxes.reshape(-1, 4), scores.reshape(-1), labels.reshape(-1)
    inds = (scores > cfg['score_thr']).nonzero(as_tuple=False).squeeze(1)
    boxes, scores, labels = boxes[inds], scores[inds], labels[inds]
    if boxes.numel() == 0:
        return boxes, scores, labels
    dets, keep = batched_nms(boxes, scores, labels, cfg['nms'])
    if cfg['max_per_img'] > 0:
        dets, keep = dets[:cfg['max_per_img']], keep[:cfg['max_per_img']]
    return dets[:, :4], dets[:, -1], labels[keep]


def paste_masks(mask_logits, boxes, labels, ori_shape, scale_factor, threshold, class_agnostic=False):
    """``FCNMaskHead._predict_by_feat_single`` on CPU, rescaled: (N, C, h, w) mask logits of (N, 4) boxes
    in the network input's scale -> ((N, H, W) bool masks of the original image (``ori_shape``), each mask
    sampled bilinearly into its box rescaled by ``scale_factor`` and thresholded; the rescaled boxes)."""
    img_h, img_w = ori_shape
    probs = mask_logits.sigmoid()
    boxes = boxes / boxes.new_tensor(scale_factor).repeat((1, 2))
    n = len(probs)
    masks = torch.zeros(n, img_h, img_w, dtype=torch.bool)
    if not class_agnostic:
        probs = probs[range(n), labels][:, None]
    for i in range(n):
        box = boxes[i:i + 1]
        x0_int, y0_int = torch.clamp(box.min(dim=0).values.floor()[:2] - 1, min=0).to(dtype=torch.int32)
        x1_int = torch.clamp(box[:, 2].max().ceil() + 1, max=img_w).to(dtype=torch.int32)
        y1_int = torch.clamp(box[:, 3].max().ceil() + 1, max=img_h).to(dtype=torch.int32)
        x0, y0, x1, y1 = torch.split(box, 1, dim=1)
        img_y = torch.arange(y0_int, y1_int).to(torch.float32) + 0.5
        img_x = torch.arange(x0_int, x1_int).to(torch.float32) + 0.5
        img_y = (img_y - y0) / (y1 - y0) * 2 - 1
        img_x = (img_x - x0) / (x1 - x0) * 2 - 1
        img_x[torch.isinf(img_x)] = 0
        img_y[torch.isinf(img_y)] = 0
        gx = img_x[:, None, :].expand(1, img_y.size(1), img_x.size(1))
        gy = img_y[:, :, None].expand(1, img_y.size(1), img_x.size(1))
        pasted = F.grid_sample(probs[i:i + 1].float(), torch.stack([gx, gy], dim=3), align_corners=False)
        masks[i, y0_int:y1_int, x0_int:x1_int] = pasted[0, 0] >= threshold
    return masks, boxes


def segmentation_result(logits, padding, ori_shape, align_corners, threshold=0.3):
    """``BaseSegmentor.postprocess_result`` for one image: (C, H, W) ``logits`` at the network input's size,
    ``padding`` (left, right, top, bottom) cropped, resized (bilinear) to ``ori_shape``. Returns (logits
    (C, H', W'), classes (1, H', W')): argmax, or for one channel (probabilities, probability above
    ``threshold``)."""
    left, right, top, bottom = padding
    h, w = logits.shape[1:]
    logits = logits[None, :, top:h - bottom, left:w - right]
    logits = F.interpolate(logits, size=tuple(ori_shape), mode='bilinear', align_corners=align_corners)[0]
    if logits.shape[0] > 1:
        return logits, logits.argmax(dim=0, keepdim=True)
    probs = logits.sigmoid()
    return probs, (probs > threshold).to(probs)
