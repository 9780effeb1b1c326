"""How close a deployed model's predictions are to the PyTorch model's, per image:

- detections (:func:`match_detections`): each reference detection is matched to the deployed detection
  of the same label with the highest box IoU, one to one, in descending reference score; a match counts
  when box IoU >= ``box_iou``, |score difference| <= ``score_tol`` and (with masks) mask IoU >= ``mask_iou``;
- segmentation (:func:`pixel_agreement`): the share of pixels with the same class, and the largest logit
  difference, scaled as the exports' checks scale it (max |diff| / max(1, max |logit|)).

:data:`LOGIT_TOL` and :func:`parity_ok` are the bounds that ``tools/deployment/compare_model.py`` and the
tests hold an fp32 folder to. A bf16 or int8 folder computes other numbers by design: its detections are
matched by label and box IoU >= 0.9 alone (:data:`LOW_PRECISION_MATCH`, a share to report) and it is held
to its metrics, within :data:`METRIC_DROP` of the PyTorch model's.
"""
import torch
from torchvision.ops import box_iou as _box_iou

__all__ = ['HEADLINE', 'LOGIT_TOL', 'LOW_PRECISION_MATCH', 'METRIC_DROP', 'METRIC_ROUNDING', 'PIXEL_SHARE',
           'compare_predictions', 'match_detections', 'parity_ok', 'pixel_agreement', 'summarise']

PIXEL_SHARE = 0.999  # of each image's pixels with the same class
LOGIT_TOL = 1e-4  # scaled logit difference
LOW_PRECISION_MATCH = dict(box_iou=0.9, score_tol=float('inf'), mask_iou=0.0)
# The largest metric difference from fp32 a lower precision may show: (COCO AP, mmseg's percentages: mIoU)
METRIC_DROP = {'fp32': (0.002, 0.2), 'bf16': (0.003, 0.3), 'int8': (0.010, 1.0)}
HEADLINE = r'(bbox|segm)_mAP$|^mIoU$'  # the metrics a bf16 / int8 folder is held to (COCO AP, mIoU)
METRIC_ROUNDING = 1e-9  # metrics come rounded (mmdet: 3 decimals): a difference equal to a bound is within it


def _mask_iou(a, b):
    inter = (a & b).sum().item()
    union = (a | b).sum().item()
    return 1.0 if union == 0 else inter / union


def match_detections(ref, got, box_iou=0.99, score_tol=1e-3, mask_iou=0.98):
    """``ref``, ``got``: mmdet ``InstanceData`` (bboxes, scores, labels[, masks]) of one image. Returns a
    dict: ``ref`` / ``got`` counts, ``matched`` (pairs meeting every bound), and the worst box IoU, score
    difference and mask IoU over the pairs (None without pairs)."""
    n_ref, n_got = len(ref.scores), len(got.scores)
    ious = _box_iou(ref.bboxes.float(), got.bboxes.float()) if n_ref and n_got else torch.zeros(n_ref, n_got)
    masks = 'masks' in ref and 'masks' in got
    used, matched = set(), 0
    worst = dict(box_iou=None, score_diff=None, mask_iou=None)
    for i in torch.argsort(ref.scores, descending=True).tolist():
        candidates = [j for j in range(n_got) if j not in used and got.labels[j] == ref.labels[i]]
        if not candidates:
            continue
        j = max(candidates, key=lambda k: ious[i, k].item())
        used.add(j)
        stats = dict(box_iou=ious[i, j].item(), score_diff=abs(ref.scores[i] - got.scores[j]).item())
        if masks:
            stats['mask_iou'] = _mask_iou(ref.masks[i].bool(), got.masks[j].bool())
        ok = stats['box_iou'] >= box_iou and stats['score_diff'] <= score_tol and \
            (not masks or stats['mask_iou'] >= mask_iou)
        matched += ok
        for key, value in stats.items():
            better = max if key == 'score_diff' else min
            worst[key] = value if worst[key] is None else better(worst[key], value)
    return dict(ref=n_ref, got=n_got, matched=matched, **worst)


def pixel_agreement(ref, got):
    """The share of pixels of two (1, H, W) class maps that agree."""
    if ref.shape != got.shape:
        raise ValueError(f'class maps of different shapes: {tuple(ref.shape)} vs {tuple(got.shape)}')
    return (ref == got).float().mean().item()


def compare_predictions(model, deployed, batches, evaluators=None, match=None):
    """Run the PyTorch ``model`` and the :class:`~effvit_mm.deployment.DeployedModel` ``deployed`` on the
    same test batches (dicts of ``inputs`` and ``data_samples``, as a test dataloader yields them), and
    feed each one's predictions to its mmengine ``Evaluator`` of ``evaluators`` (model's, deployed's) if
    given; ``match``: :func:`match_detections`' bounds (e.g. :data:`LOW_PRECISION_MATCH`). Returns one
    dict per image: :func:`match_detections`' for a detector, ``{'pixels':
    agreement, 'logits': scaled max abs diff}`` for a segmentor."""
    import copy
    stats = []
    for batch in batches:
        with torch.no_grad():
            ref = model.test_step(copy.deepcopy(batch))
        got = deployed.test_step(copy.deepcopy(batch))
        for evaluator, outputs in zip(evaluators or (), (ref, got)):
            evaluator.process(data_samples=outputs, data_batch=batch)
        for r, g in zip(ref, got):
            if 'pred_instances' in r:
                stats.append(match_detections(r.pred_instances, g.pred_instances, **(match or {})))
            else:
                ref_logits = r.seg_logits.data.cpu()
                scale = max(1.0, ref_logits.abs().max().item())
                stats.append(dict(pixels=pixel_agreement(r.pred_sem_seg.data.cpu(), g.pred_sem_seg.data.cpu()),
                                  logits=(ref_logits - g.seg_logits.data.cpu()).abs().max().item() / scale))
    return stats


def parity_ok(stats):
    """Whether :func:`compare_predictions`' figures show the same predictions: every detection matched one
    to one and none extra; for a segmentor, :data:`PIXEL_SHARE` of each image's pixels and logits within
    :data:`LOGIT_TOL`."""
    return all(s['matched'] == s['ref'] == s['got'] for s in stats if 'ref' in s) and \
        all(s['pixels'] >= PIXEL_SHARE and s['logits'] <= LOGIT_TOL for s in stats if 'pixels' in s)


def summarise(stats):
    """One line for :func:`compare_predictions`' result."""
    if stats and 'pixels' in stats[0]:
        worst = min(s['pixels'] for s in stats)
        return (f'{len(stats)} images: pixels with the same class {100 * worst:.3f}% (worst image), logits within '
                f'{max(s["logits"] for s in stats):.2g} (scaled)')
    ref, matched = sum(s['ref'] for s in stats), sum(s['matched'] for s in stats)
    return (f'{len(stats)} images: {matched} of {ref} detections matched ({100 * matched / max(ref, 1):.2f}%), '
            f'{sum(s["got"] for s in stats)} deployed; images with no detection: {sum(s["ref"] == 0 for s in stats)}, '
            f'with 100 or more: {sum(s["ref"] >= 100 for s in stats)}')
