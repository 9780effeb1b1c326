"""Parameters and multiply-adds (mmengine's FlopAnalyzer, see effvit_mm/analysis/mac_count.py) of a config's model.

    python tools/analysis_tools/get_flops.py CONFIG [--shape H [W]] [--cfg-options k=v ...] [--out FILE.json]

Classifiers are counted whole (backbone + head) at the config's test crop, as the papers count them,
and printed beside the paper's figures (from the family's spec) where the variant has them at that
resolution. Detectors and segmentors are counted as backbone + neck (the heads' cost depends on the
proposals / the image), by default at 1333x800 (mmdet) or 512x512 (mmseg); a ``family:arch`` spec as its
backbone at 224x224. No weights are loaded.
"""
import argparse
import json

from mmengine.config import DictAction

from effvit_mm.analysis.mac_count import count
from effvit_mm.apis.targets import build_target, input_shape


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', help='config file or model-zoo name (tools/misc/model_zoo.py list)')
    p.add_argument('--shape', '--res', type=int, nargs='+', help='input H [W] (default: see above)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config entries, k=v')
    p.add_argument('--out', help='also write the figures to this JSON file')
    return p.parse_args()


def main():
    args = parse_args()
    try:
        target = build_target(args.config, cfg_options=args.cfg_options, warn=False, shape=input_shape(args.shape))
    except (FileNotFoundError, ValueError) as error:  # one line, not a traceback
        raise SystemExit(f'error: {error}')
    shape = target.shape
    macs, params = count(target)
    counted = {'classifier': 'whole model', 'dense': 'backbone + neck', 'backbone': 'backbone'}[target.kind]
    row = dict(config=args.config, counted=counted, input=list(shape), params=params, macs=macs)
    family = getattr(target.backbone, 'family', None)  # the spec of our families, with the paper's figures
    paper = None
    if family and target.kind == 'classifier' and shape[0] == shape[1]:
        paper = family.paper.get((str(target.cfg.model.backbone.get('arch')).lower(), shape[0]))
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
