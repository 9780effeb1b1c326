"""Parameters and multiply-adds (mmengine's FlopAnalyzer, see effvit_mm/analysis.py) of a config's model.

    python tools/get_flops.py CONFIG [--shape H [W]] [--cfg-options k=v ...] [--out FILE.json]

Classifiers are counted whole (backbone + head) at the config's test crop, as the papers count them,
and printed beside the paper's figures where the variant has them at that resolution. Detectors and segmentors are
counted as backbone + neck (the heads' cost depends on the proposals / the image), by default at
1333x800 (mmdet) or 512x512 (mmseg). No weights are loaded.
"""
import argparse
import json

import torch
import torch.nn as nn
from mmengine.config import Config, DictAction

from effvit_mm.analysis import flop_analyzer
from effvit_mm.export import DENSE_SHAPE, Features, Logits, build_classifier, build_dense, test_crop

# ImageNet-1k classifiers of the papers (shared README): (family, arch, resolution) -> (params, multiply-adds).
PAPER = {
    ('SHViT', 's1', 224): (6.3e6, 241e6), ('SHViT', 's2', 224): (11.4e6, 366e6),
    ('SHViT', 's3', 224): (14.2e6, 601e6), ('SHViT', 's4', 256): (16.5e6, 986e6),
    ('SwiftFormer', 'xs', 224): (3.5e6, 0.4e9), ('SwiftFormer', 's', 224): (6.1e6, 1.0e9),
    ('SwiftFormer', 'l1', 224): (12.1e6, 1.6e9), ('SwiftFormer', 'l3', 224): (26.5e6, 4.0e9),
    ('LITv2', 's', 224): (28e6, 3.7e9), ('LITv2', 'm', 224): (49e6, 7.5e9), ('LITv2', 'b', 224): (87e6, 13.2e9),
    ('LITv2', 'b', 384): (87e6, 39.7e9),
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config')
    p.add_argument('--shape', type=int, nargs='+', help='input H [W] (default: see above)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config entries, k=v')
    p.add_argument('--out', help='also write the figures to this JSON file')
    return p.parse_args()


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    scope = cfg.get('default_scope', 'mmpretrain')
    classifier = scope == 'mmpretrain'
    # a distillation teacher is not part of the model (build_classifier leaves it out)
    model, _ = build_classifier(cfg) if classifier else build_dense(cfg)
    if args.shape:
        shape = tuple(args.shape) * (3 - len(args.shape))
    else:
        try:
            shape = test_crop(cfg) if classifier else DENSE_SHAPE[scope]
        except ValueError as error:  # one line, not a traceback
            raise SystemExit(f'error: {error}')
    analyzer = flop_analyzer((Logits if classifier else Features)(model), torch.zeros(1, 3, *shape))
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    counted = model if classifier else nn.ModuleList([model.backbone, model.neck])
    row = dict(config=args.config, counted='whole model' if classifier else 'backbone + neck', input=list(shape),
               params=sum(p.numel() for p in counted.parameters()), macs=analyzer.total())
    backbone = cfg.model.backbone
    square = shape[0] == shape[1]
    paper = PAPER.get((backbone.type, str(backbone.get('arch')).lower(), shape[0])) if classifier and square else None
    if paper:
        row.update(paper_params=paper[0], paper_macs=paper[1])
    print(f"{row['config']}: {row['counted']} at {shape[0]}x{shape[1]}: {row['params'] / 1e6:.2f}M parameters, "
          f"{row['macs'] / 1e9:.3f}G multiply-adds"
          + (f' (paper: {paper[0] / 1e6:.1f}M, {paper[1] / 1e9:.3f}G)' if paper else ''))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(row, f, indent=2)


if __name__ == '__main__':
    main()
