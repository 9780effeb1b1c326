"""Convert an SHViT / SwiftFormer / LITv2 classification checkpoint (the authors' release, timm's, or
one of ours) into an mmpretrain ``ImageClassifier`` checkpoint or a backbone-only file.

    python tools/model_converters/convert_checkpoint.py SRC DST [--family shvit|swiftformer|litv2] [--to mmpretrain|backbone]
                                       [--model NAME_OR_CONFIG]

``--to mmpretrain`` (default): for ``load_from`` / ``tools/test.py`` with our classification configs.
``--to backbone``: for ``init_cfg=dict(type='Pretrained', checkpoint=DST)`` of the backbone (e.g. the
detection configs); the classifier and its final norm are left out. The family is detected when
``--family`` is absent; given, a file of another family is an error. ``--model``: a model-zoo name or a
config that the output is for (``python tools/misc/model_zoo.py show NAME`` gives the command): ``--to``
follows from it (a classifier: mmpretrain, a detector / segmentor: backbone) and the written file is
loaded into that model strictly, so that a file of another variant fails here. See :mod:`effvit_mm.checkpoint.convert`.
"""
import argparse
import os
import os.path as osp

import torch
from mmengine.runner import CheckpointLoader

import effvit_mm  # noqa: F401  (its weights_only allow-list)
from effvit_mm.checkpoint import extract_state_dict, load_model_checkpoint
from effvit_mm.checkpoint.convert import describe, detect, to_backbone, to_mmpretrain
from effvit_mm.models.family import families
from effvit_mm.apis.targets import build_target


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('src', help='checkpoint to convert')
    p.add_argument('dst', help='file to write')
    p.add_argument('--family', choices=[spec.name for spec in families()], help='expected family (default: detected)')
    p.add_argument('--to', choices=['mmpretrain', 'backbone'], help='output layout (default: mmpretrain; as --model)')
    p.add_argument('--model', metavar='NAME_OR_CONFIG', help='the model the output is for: checked by loading it')
    return p.parse_args()


def convert(src, dst, family=None, to='mmpretrain'):
    """Read ``src`` (torch ``weights_only``: an unsafe or unreadable file raises ``CheckpointFileError``),
    convert, write ``{'state_dict', 'meta'}`` to ``dst``; returns the one-line summary."""
    if not osp.isfile(src):
        raise FileNotFoundError(f'checkpoint {src} not found')
    state_dict = extract_state_dict(CheckpointLoader.load_checkpoint(src, map_location='cpu', logger='silent'))
    convert_fn = to_mmpretrain if to == 'mmpretrain' else to_backbone
    detected, layout = detect(state_dict)
    out = convert_fn(state_dict, family)
    meta = dict(describe(out, detected), source=osp.abspath(src), source_layout=layout, layout=to,
                effvit_mm_version=effvit_mm.__version__)
    if osp.dirname(dst):
        os.makedirs(osp.dirname(dst), exist_ok=True)
    torch.save({'state_dict': out, 'meta': meta}, dst)
    what = ('mmpretrain ImageClassifier' + (' with distillation head' if meta['distillation'] else '')
            if to == 'mmpretrain' else 'backbone only (no classifier, no final norm)')
    return (f'{src} ({detected}, {layout} layout) -> {dst}: {what}, {len(out)} tensors'
            + (f', {meta["num_classes"]} classes' if to == 'mmpretrain' else ''))


def check_loads(dst, target):
    """Load ``dst`` strictly into the classifier, or else the backbone, of a built target."""
    if target.kind == 'classifier':
        load_model_checkpoint(target.model, dst, logger='silent')
    else:
        target.backbone.init_cfg = dict(type='Pretrained', checkpoint=dst)
        target.backbone.init_weights()
    return f'{dst} loads into the {"classifier" if target.kind == "classifier" else "backbone"} of {target.source}'


def main():
    args = parse_args()
    try:
        target = build_target(args.model, warn=False) if args.model else None
        if target:
            target.source = args.model
        to = args.to or ('backbone' if target and target.kind != 'classifier' else 'mmpretrain')
        print(convert(args.src, args.dst, args.family, to))
        if target:
            print(check_loads(args.dst, target))
    except (FileNotFoundError, ValueError) as error:  # one line, not a traceback
        raise SystemExit(f'error: {error}')


if __name__ == '__main__':
    main()
