"""Compare an exported folder with the PyTorch model it came from, on the config's test set: detections
matched one to one (same label, box IoU >= 0.99, score within 1e-3, mask IoU >= 0.98) or pixels with the
same class, and the config's metrics (COCO bbox / segm AP, mIoU) of both.

    python tools/deployment/compare_model.py CONFIG CHECKPOINT DIR [--max-batches N] [--out FILE.json]
        [--cfg-options k=v ...]

Exits 1 when a detection is unmatched, fewer than 99.9% of an image's pixels agree or its logits differ
by more than 1e-4 of their scale, or a metric differs by more than 0.002 (0.2 for mmseg's percentages).
A bf16 / int8 folder (export_model.py --precision) is held to its COCO bbox / segm AP or mIoU instead: it
may lose at most 0.003 / 0.010 (0.3 / 1.0 mIoU); its detections are matched by label and box IoU >= 0.9 (a
share shown).
``--cfg-options model.test_cfg...`` applies to both models (the folder takes the config's test_cfg).
"""
import argparse
import copy
import itertools
import json
import numbers
import re
import sys

from mmengine.config import DictAction
from mmengine.evaluator import Evaluator
from mmengine.registry import MODELS, DefaultScope
from mmengine.runner import Runner

from effvit_mm.engine.config_switches import check_data_roots, load_config
from effvit_mm.deployment import use_deployed
from effvit_mm.deployment.parity import (HEADLINE, LOW_PRECISION_MATCH, METRIC_DROP, METRIC_ROUNDING,
                                         compare_predictions, parity_ok, summarise)
from effvit_mm.apis.targets import build_model


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', help='the mmdet / mmseg config (file or model-zoo name) the folder was exported from')
    p.add_argument('checkpoint', help='the weights the folder was exported with')
    p.add_argument('deployed', metavar='DIR', help='the folder of tools/deployment/export_model.py')
    p.add_argument('--max-batches', type=int, help='compare on the first N test batches only (no metrics)')
    p.add_argument('--out', help='write the per-image figures and metrics to this JSON file')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config entries, k=v')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        cfg = load_config(args.config, cfg_options=args.cfg_options)
        check_data_roots(cfg, ['test'])
        model = build_model(copy.deepcopy(cfg), args.checkpoint)
        deployed_cfg = copy.deepcopy(cfg)
        use_deployed(deployed_cfg, args.deployed)
        deployed = MODELS.build(deployed_cfg.model)
    except (FileNotFoundError, ValueError) as error:  # one line, not a traceback
        sys.exit(f'error: {error}')
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        loader = Runner.build_dataloader(cfg.test_dataloader)
        evaluators = None
        if not args.max_batches:
            evaluators = [Evaluator(copy.deepcopy(cfg.test_evaluator)) for _ in range(2)]
            for evaluator in evaluators:
                evaluator.dataset_meta = loader.dataset.metainfo
        precision = deployed.meta.get('precision', 'fp32')
        stats = compare_predictions(model, deployed, itertools.islice(loader, args.max_batches), evaluators,
                                    None if precision == 'fp32' else LOW_PRECISION_MATCH)
        metrics = [evaluator.evaluate(len(loader.dataset)) for evaluator in evaluators or ()]
    matched_by = f' ({precision}: label and box IoU >= 0.9)' if precision != 'fp32' and stats and 'ref' in stats[0] else ''
    print(summarise(stats) + matched_by)
    ok = parity_ok(stats) if precision == 'fp32' else bool(metrics)
    tol = METRIC_DROP[precision][cfg.default_scope == 'mmseg']
    if metrics:
        for key, value in metrics[0].items():
            if isinstance(value, numbers.Real):  # mmseg's metrics are numpy scalars
                value = float(value)
                diff = float(metrics[1][key]) - value
                judged = precision == 'fp32' or re.search(HEADLINE, key)
                off = abs(diff) if precision == 'fp32' else -diff  # bf16 / int8: held to what they lose
                ok &= not judged or off <= tol + METRIC_ROUNDING
                print(f'{key}: PyTorch {value:.4f}, deployed {metrics[1][key]:.4f} '
                      f'({"diff" if precision == "fp32" else "drop"} {off:.4f}{f", bound {tol}" if judged else ""})')
    elif precision != 'fp32':
        print(f'a {precision} folder is judged by its metrics: run without --max-batches')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(images=stats, metrics=dict(pytorch=metrics[0], deployed=metrics[1]) if metrics else None),
                      f, indent=1, default=float)
    done = "the PyTorch model's predictions" if precision == 'fp32' else f"the PyTorch model's metrics within {tol}"
    print(f'OK: the deployed model gives {done}' if ok else 'FAIL: see the figures above')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
