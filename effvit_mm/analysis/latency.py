"""End-to-end latency of whole detectors and segmentors (``tools/analysis_tools/benchmark.py --whole``).

Each model is timed from the uint8 image the config's test pipeline gives (a random one of the test size,
batch 1) to its final ``DetDataSample`` / ``SegDataSample`` (``test_step``: pre-processing, the tensor
parts, post-processing), in every form, all in the same interleaved rounds:

- ``mmdet`` / ``mmseg``: the config's model in eager PyTorch, as users run it today (the anchor);
- ``pytorch``: our deploy form run eagerly (:func:`~effvit_mm.deployment.export.deployed_in_pytorch`:
  the fused backbone, the same graphs and host code as an exported folder);
- each exported backend (:func:`~effvit_mm.deployment.export.export_model` into a temporary folder), OpenVINO
  at each of ``precisions`` (named ``openvino-int8``, ``openvino-bf16``; int8 calibrated on the benchmark
  image: what is timed, not what is accurate; a precision this CPU does not run is left out with one line).

Weights are mmdet / mmseg's initialisation (seeded), whose class scores all sit near one value: with the
configs' score thresholds a detector then finds nothing (no mask head, no NMS), and with a threshold of 0
every anchor and class passes (RetinaNet sorts 12 million scores at 1333x800). Neither is what a trained
model does, so by default (``candidates``) the final score threshold (RetinaNet's, the R-CNN's) is set,
from one call of the mmdet model on the benchmark image, so that ``candidates`` class scores pass (2000:
the order of what a trained COCO detector passes at 0.05); every form then does the same work, up to
``max_per_img`` detections (100 boxes and, for Mask R-CNN, 100 pasted masks).

Each call's time is split into parts (:data:`PARTS`) by timing the sub-calls: backbone + neck, the dense
head (RPN / RetinaNet) or decode head, the RoI heads (RoI extraction + box / mask heads), and the rest
(pre-processing, anchors, box decoding, NMS, mask pasting, resizing). In an exported backend the
backbone, neck and dense / decode head are one graph: their sum is reported as backbone + neck.
"""
import copy
import statistics
import tempfile
import time
from collections import defaultdict

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope, MODELS

from ..apis.model_zoo import resolve_config
from ..deployment.deployed_model import DeployedModel
from ..deployment.export import deployed_in_pytorch, export_model
from ..deployment.runtimes import RuntimeUnavailable

__all__ = ['PARTS', 'calibrated_threshold', 'score_threshold_key', 'time_whole_models']

PARTS = ('backbone+neck', 'dense/decode head', 'RoI heads', 'pre/post-processing')
# The test sizes: COCO (Resize to 1333x800), ADE20K (512x512).
TEST_SHAPES = {'mmdet': (800, 1333), 'mmseg': (512, 512)}


class PartTimer:
    """Seconds spent in wrapped callables during one call, by part."""

    def __init__(self):
        self.spent = defaultdict(float)

    def wrap(self, owner, attr, part):
        """Time ``owner.attr`` (a module's ``forward``), or ``owner[attr]`` for a dict (a deployed
        model's graphs), as ``part`` from now on."""
        fn = owner[attr] if isinstance(owner, dict) else getattr(owner, attr)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.spent[part] += time.perf_counter() - start

        if isinstance(owner, dict):
            owner[attr] = timed
        else:
            setattr(owner, attr, timed)


def _wrap_modules(timer, model, roi=True):
    """Time the parts of an mmdet detector / mmseg segmentor (the eager anchor, or the modules our
    PyTorch graphs call; ``roi``: its RoI extractors and heads too)."""
    seen = set()

    def wrap(module, part):
        if module is not None and id(module) not in seen:
            seen.add(id(module))
            timer.wrap(module, 'forward', part)

    wrap(model.backbone, PARTS[0])
    wrap(getattr(model, 'neck', None), PARTS[0])
    for name in ('rpn_head', 'bbox_head', 'decode_head'):
        wrap(getattr(model, name, None), PARTS[1])
    roi = getattr(model, 'roi_head', None) if roi else None
    if roi is not None:
        for name in ('bbox_roi_extractor', 'bbox_head', 'mask_roi_extractor', 'mask_head'):
            wrap(getattr(roi, name, None), PARTS[2])


def score_threshold_key(cfg):
    """The config key of the final score threshold (``cfg_options`` form), None for a segmentor."""
    test_cfg = cfg.model.get('test_cfg') or {}
    if 'rcnn' in test_cfg:
        return 'model.test_cfg.rcnn.score_thr'
    if 'score_thr' in test_cfg:
        return 'model.test_cfg.score_thr'
    return None


def _build(cfg, seed):
    from ..apis.targets import build_model
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = build_model(copy.deepcopy(cfg))
        model.init_weights()
    return model.eval()


def calibrated_threshold(cfg, key, image, candidates, seed=0):
    """The score threshold at ``key`` under which ``candidates`` class scores of ``image`` pass, read from
    one call of the config's model (score threshold 0, weights as :func:`_runners` builds them)."""
    cfg = copy.deepcopy(cfg)
    cfg.merge_from_dict({key: 0.0})
    model = _build(cfg, seed)
    rcnn = key.endswith('rcnn.score_thr')
    head = model.roi_head.bbox_head if rcnn else model.bbox_head
    captured = []
    forward = head.forward
    head.forward = lambda *args, **kwargs: captured.append(forward(*args, **kwargs)) or captured[-1]
    with DefaultScope.overwrite_default_scope(cfg.default_scope), torch.no_grad():
        model.test_step(_batch(cfg.default_scope, image))
    cls_scores = captured[0][0]
    if rcnn:  # softmax over the classes and background
        scores = cls_scores.softmax(-1)[:, :-1].flatten()
    else:  # a dense head: sigmoid scores of every level
        scores = torch.cat([c.sigmoid().flatten() for c in cls_scores])
    kth = scores.topk(min(candidates, scores.numel())).values[-1].item()
    return float(torch.nextafter(torch.tensor(kth), torch.tensor(-1.0)))  # ``scores > thr`` keeps the k-th


def _forms(backends, precisions):
    """(name, backend, precision) of the exported forms to time."""
    return [(backend if precision == 'fp32' else f'{backend}-{precision}', backend, precision)
            for backend in backends for precision in (precisions if backend == 'openvino' else ('fp32', ))]


def _runners(config, backends, workdir, image_shape, candidates, log, seed=0, precisions=('fp32', )):
    """[(name, model, PartTimer)] for one config (module docstring), its scope and the benchmark image."""
    cfg = Config.fromfile(resolve_config(config))
    scope = cfg.get('default_scope')
    if scope not in TEST_SHAPES:
        raise ValueError(f'{config} is a config of {scope}: --whole times mmdet detectors and mmseg segmentors '
                         '(a classifier: drop --whole)')
    h, w = image_shape or TEST_SHAPES[scope]
    image = torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    key, options = score_threshold_key(cfg), {}
    if key and candidates:
        options[key] = calibrated_threshold(cfg, key, image, candidates, seed)
        log(f'{config}: {key.split(".", 1)[1]} = {options[key]:.6g} ({candidates} candidates)')
    cfg.merge_from_dict(options)
    model = _build(cfg, seed)
    with DefaultScope.overwrite_default_scope(scope):
        ours = deployed_in_pytorch(cfg, model)
    checkpoint = f'{workdir}/weights.pth'
    torch.save({'state_dict': model.state_dict()}, checkpoint)
    runners = []
    timer = PartTimer()
    _wrap_modules(timer, model)
    runners.append((scope, model, timer))
    timer = PartTimer()
    dense = ours.graphs['segmentor' if 'segmentor' in ours.graphs else 'detector'].module
    _wrap_modules(timer, dense.segmentor if hasattr(dense, 'segmentor') else dense.detector, roi=False)
    for name in ('bbox_head', 'mask_head'):
        if name in ours.graphs:
            timer.wrap(ours.graphs[name], 'module', PARTS[2])
    runners.append(('pytorch', ours, timer))
    for form, backend, precision in _forms(backends, precisions):
        folder = f'{workdir}/{form}'
        start = time.perf_counter()
        try:
            export_model(config, folder, checkpoint, backend, cfg_options=options, precision=precision,
                         calib_data=[image])
        except RuntimeUnavailable as error:
            log(f'{config}: {form} not timed: {error}')
            continue
        deployed = DeployedModel(folder)
        deployed.export_s = time.perf_counter() - start
        timer = PartTimer()
        for name in deployed.graphs:
            timer.wrap(deployed.graphs, name, PARTS[2] if name.endswith('_head') else PARTS[0])
        runners.append((form, deployed, timer))
    return runners, scope, image


def _batch(scope, image):
    if scope == 'mmdet':
        from mmdet.structures import DetDataSample as Sample
    else:
        from mmseg.structures import SegDataSample as Sample
    h, w = image.shape[1:]
    return dict(inputs=[image], data_samples=[Sample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                                                    scale_factor=(1.0, 1.0)))])


def _count(sample):
    """Detections of a DetDataSample, or classes present in a SegDataSample's prediction."""
    if 'pred_instances' in sample:
        return len(sample.pred_instances)
    return int(sample.pred_sem_seg.data.unique().numel())


@torch.no_grad()
def time_whole_models(configs, backends=('onnxruntime', 'openvino'), warmup=1, repeats=5, shape=None,
                      candidates=2000, log=print, precisions=('fp32', )):
    """Time each config's model in every form (module docstring; ``candidates`` None: the configs' own
    score thresholds; ``precisions``: OpenVINO's). Returns one row (dict) per config and form: median ms per
    image, median ms of each part, the ratio to the eager anchor, the detections (or classes) of the first
    call, the export time."""
    rows = []
    for config in configs:
        with tempfile.TemporaryDirectory() as workdir:
            log(f'{config}: building and exporting ({", ".join(backends) or "no backend"})')
            runners, scope, image = _runners(config, backends, workdir, shape, candidates, log, precisions=precisions)
            h, w = image.shape[1:]
            counts = {}
            with DefaultScope.overwrite_default_scope(scope):
                for name, model, timer in runners:
                    for _ in range(warmup):
                        counts[name] = _count(model.test_step(_batch(scope, image))[0])
                totals, parts = defaultdict(list), defaultdict(lambda: defaultdict(list))
                for _ in range(repeats):
                    for name, model, timer in runners:
                        batch = _batch(scope, image)
                        timer.spent.clear()
                        start = time.perf_counter()
                        model.test_step(batch)
                        total = time.perf_counter() - start
                        totals[name].append(total)
                        inner = sum(timer.spent.values())
                        for part in PARTS[:3]:
                            parts[name][part].append(timer.spent.get(part, 0.0))
                        parts[name][PARTS[3]].append(total - inner)
            anchor = statistics.median(totals[scope])
            for name, model, timer in runners:
                ms = statistics.median(totals[name]) * 1e3
                rows.append(dict(config=config, form=name, input=f'{h}x{w}', threads=torch.get_num_threads(),
                                 ms=round(ms, 1), speedup=round(anchor * 1e3 / ms, 3),
                                 parts={p: round(statistics.median(parts[name][p]) * 1e3, 1) for p in PARTS},
                                 merged_graph=name not in (scope, 'pytorch'), outputs=counts[name],
                                 export_s=round(getattr(model, 'export_s', 0.0), 1) or None,
                                 candidates=candidates, repeats=repeats))
                log(_line(rows[-1]))
    return rows


def _line(row):
    parts = ' '.join(f'{p} {v:.0f}' for p, v in row['parts'].items())
    merged = ' (backbone+neck includes the head: one graph)' if row['merged_graph'] else ''
    return (f"{row['config']:36s} {row['form']:12s} {row['ms']:8.1f} ms {row['speedup']:5.2f}x  {parts}{merged}  "
            f"outputs {row['outputs']}")


def markdown(rows):
    """The rows as a Markdown table: per config, each form's median ms, speed-up over the eager anchor
    and its parts (ms)."""
    lines = ['| config | form | ms / image | vs eager | backbone + neck | dense / decode head | RoI heads | '
             'pre / post | outputs |', '|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        p = r['parts']
        head = 'in graph' if r['merged_graph'] else f"{p[PARTS[1]]:.0f}"
        bn = f"{p[PARTS[0]]:.0f}" + (' (with head)' if r['merged_graph'] else '')
        roi = f"{p[PARTS[2]]:.0f}" if p[PARTS[2]] else '-'
        lines.append(f"| {r['config']} | {r['form']} | {r['ms']:.0f} | {r['speedup']:.2f}x | {bn} | {head} | {roi} | "
                     f"{p[PARTS[3]]:.0f} | {r['outputs']} |")
    return '\n'.join(lines) + '\n'
