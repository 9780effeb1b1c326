"""CPU/GPU throughput of effvit_mm backbones in eval mode and deploy (fused) mode, in one process.

    python tools/benchmark.py shvit:s1 shvit:s4 --batch 16 --threads 2 --repeats 7

Each model is timed in every mode on the same input: warm-up batches, then ``--repeats`` rounds
in which every mode times one batch (interleaved, so that machine noise hits all modes alike); the
table gives the median images/s and the deploy/eval ratio, and is written as JSON.
Input size defaults to the paper resolution of the variant (SHViT-S4: 256, others 224).
"""
import argparse
import copy
import json
import os.path as osp
import statistics
import time

import torch
from mmengine import mkdir_or_exist
from mmengine.registry import MODELS

import effvit_mm  # noqa: F401  (registers the backbones)

FAMILIES = {'shvit': 'SHViT'}
PAPER_RES = {'shvit:s4': 256}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('models', nargs='+', help='family:arch, e.g. shvit:s4')
    p.add_argument('--batch', type=int, default=16)
    p.add_argument('--res', type=int, help='input size (default: the paper resolution)')
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--repeats', type=int, default=7)
    p.add_argument('--modes', nargs='+', default=['eval', 'deploy'], choices=['eval', 'deploy'])
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--out', default='work_dirs/benchmark.json')
    return p.parse_args()


def build(spec):
    family, _, arch = spec.partition(':')
    if family not in FAMILIES or not arch:
        raise SystemExit(f"unknown model '{spec}': use family:arch with family in {sorted(FAMILIES)}")
    return MODELS.build(dict(type=FAMILIES[family], arch=arch)).eval()


@torch.no_grad()
def images_per_second(models, x, warmup, repeats):
    """Median images/s of each model in ``models`` (a dict), timed in interleaved rounds."""
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    for model in models.values():
        for _ in range(warmup):
            model(x)
    times = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            sync()
            start = time.perf_counter()
            model(x)
            sync()
            times[name].append(time.perf_counter() - start)
    return {name: x.shape[0] / statistics.median(t) for name, t in times.items()}


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for spec in args.models:
        res = args.res or PAPER_RES.get(spec, 224)
        x = torch.randn(args.batch, 3, res, res, device=args.device)
        eval_model = build(spec).to(args.device)
        builders = {'eval': lambda: eval_model, 'deploy': lambda: copy.deepcopy(eval_model).switch_to_deploy()}
        models = {mode: builders[mode]() for mode in args.modes}
        row = dict(model=spec, res=res, batch=args.batch, device=args.device, threads=torch.get_num_threads())
        for mode, speed in images_per_second(models, x, args.warmup, args.repeats).items():
            row[f'{mode}_img_s'] = round(speed, 2)
        if {'eval', 'deploy'} <= set(args.modes):
            row['deploy_vs_eval'] = round(row['deploy_img_s'] / row['eval_img_s'], 3)
        rows.append(row)
        print('  '.join(f'{k}={v}' for k, v in row.items()), flush=True)
    mkdir_or_exist(osp.dirname(osp.abspath(args.out)))
    with open(args.out, 'w') as f:
        json.dump(rows, f, indent=2)
    print(f'written to {args.out}')


if __name__ == '__main__':
    main()
