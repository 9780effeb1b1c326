"""CPU/GPU throughput of effvit_mm backbones in eval mode and deploy (fused) mode, in one process.

    python tools/benchmark.py shvit:s1 swiftformer:xs litv2:s --batch 16 --threads 2 --repeats 7 --timm

Every entry (model x mode, plus timm's model of the same variant with ``--timm``) is timed on the
same input: warm-up batches, then ``--repeats`` rounds in which every entry of one input size times
one batch (interleaved, so that machine noise hits all entries alike). The table gives median
images/s and the ratios deploy/eval and ours/timm (timm's ``forward_features``, eval mode), and is
written as JSON. Input size defaults to the paper resolution of the variant (SHViT-S4: 256, others 224).
"""
import argparse
import copy
import json
import os.path as osp
import statistics
import time

import timm
import torch
from mmengine import mkdir_or_exist
from mmengine.registry import MODELS

import effvit_mm  # noqa: F401  (registers the backbones)

FAMILIES = {'shvit': 'SHViT', 'swiftformer': 'SwiftFormer', 'litv2': 'LITv2'}
TIMM_FAMILIES = {'shvit', 'swiftformer'}  # families that timm 1.0 ships
PAPER_RES = {'shvit:s4': 256}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('models', nargs='+', help='family:arch, e.g. shvit:s4, swiftformer:l1, litv2:s')
    p.add_argument('--batch', type=int, default=16)
    p.add_argument('--res', type=int, help='input size (default: the paper resolution)')
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--repeats', type=int, default=7)
    p.add_argument('--modes', nargs='+', default=['eval', 'deploy'], choices=['eval', 'deploy'])
    p.add_argument('--timm', action='store_true', help="also time timm's model of each SHViT/SwiftFormer variant")
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--out', default='work_dirs/benchmark.json')
    return p.parse_args()


def build(spec):
    family, _, arch = spec.partition(':')
    if family not in FAMILIES or not arch:
        raise SystemExit(f"unknown model '{spec}': use family:arch with family in {sorted(FAMILIES)}")
    return MODELS.build(dict(type=FAMILIES[family], arch=arch)).eval()


class TimmFeatures(torch.nn.Module):
    """timm's model of the same variant, up to its last feature map (no pooling, no head)."""

    def __init__(self, name):
        super().__init__()
        self.model = timm.create_model(name, pretrained=False).eval()

    def forward(self, x):
        return self.model.forward_features(x)


def entries(spec, modes, with_timm, device):
    """{entry name: model} for one variant."""
    model = build(spec).to(device)
    builders = {'eval': lambda: model, 'deploy': lambda: copy.deepcopy(model).switch_to_deploy()}
    out = {f'{spec} {mode}': builders[mode]() for mode in modes}
    family, _, arch = spec.partition(':')
    if with_timm and family in TIMM_FAMILIES:
        out[f'{spec} timm'] = TimmFeatures(f'{family}_{arch}').to(device)
    return out


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
    by_res = {}  # input size -> the variants timed together
    for spec in args.models:
        by_res.setdefault(args.res or PAPER_RES.get(spec, 224), []).append(spec)
    rows = []
    for res, specs in by_res.items():
        models = {}
        for spec in specs:
            models.update(entries(spec, args.modes, args.timm, args.device))
        x = torch.randn(args.batch, 3, res, res, device=args.device)
        speeds = images_per_second(models, x, args.warmup, args.repeats)
        for spec in specs:
            row = dict(model=spec, res=res, batch=args.batch, device=args.device, threads=torch.get_num_threads())
            row.update({f'{kind}_img_s': round(speeds[f'{spec} {kind}'], 2)
                        for kind in (*args.modes, 'timm') if f'{spec} {kind}' in speeds})
            for mode, peer in [('deploy', 'eval'), ('eval', 'timm'), ('deploy', 'timm')]:
                if f'{mode}_img_s' in row and f'{peer}_img_s' in row:
                    row[f'{mode}_vs_{peer}'] = round(row[f'{mode}_img_s'] / row[f'{peer}_img_s'], 3)
            rows.append(row)
            print('  '.join(f'{k}={v}' for k, v in row.items()), flush=True)
    mkdir_or_exist(osp.dirname(osp.abspath(args.out)))
    with open(args.out, 'w') as f:
        json.dump(rows, f, indent=2)
    print(f'written to {args.out}')


if __name__ == '__main__':
    main()
