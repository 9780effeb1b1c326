"""Draw a model's predictions on an image or a folder of images, one PNG per image, with the inferencer
and visualiser of the config's codebase (its default_scope decides): mmdet (boxes, masks, class names,
scores), mmseg (colour overlay) or mmpretrain (class name and score).

    python tools/demo.py CONFIG INPUT [--checkpoint CKPT [--partial-checkpoint] | --deployed DIR] [--out-dir DIR]
                         [--device DEV] [--score-thr T] [--palette P] [--opacity A] [--resize N]
                         [--cfg-options k=v ...]

--deployed DIR draws the predictions of a detector / segmentor exported from CONFIG by
tools/deployment/export_model.py (its graphs in their backend, no PyTorch model).

Without --checkpoint the model has random weights (a warning says so); nothing is downloaded.
Files that cannot be decoded as images are skipped with a warning and listed at the end; the exit
status is then 1 (0 when every image was drawn).
"""
import argparse
import os.path as osp
import sys

from mmengine.config import DictAction

from effvit_mm.apis.inference import run_demo


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', help='config file or model-zoo name (tools/misc/model_zoo.py list)')
    p.add_argument('input', help='image file, or folder of images')
    p.add_argument('--checkpoint', help='weights (default: random weights)')
    p.add_argument('--partial-checkpoint', action='store_true', help='load what fits the model, skip the rest')
    p.add_argument('--deployed', metavar='DIR', help='an exported detector / segmentor folder of this config')
    p.add_argument('--out-dir', help='where the PNGs go (default work_dirs/demo/<config name>)')
    p.add_argument('--device', help='e.g. cpu, cuda:0 (default: cuda if available, else cpu)')
    p.add_argument('--score-thr', type=float, default=0.3, help='detection: lowest score drawn')
    p.add_argument('--palette', default='none', choices=['none', 'coco', 'voc', 'citys', 'random'],
                   help="detection: mmdet's colours ('none': the checkpoint's or config's)")
    p.add_argument('--opacity', type=float, default=0.8, help='segmentation: opacity of the colour overlay')
    p.add_argument('--resize', type=int, help='classification: draw on the image resized to this short edge')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config entries, k=v')
    return p.parse_args()


def main():
    args = parse_args()
    out_dir = args.out_dir or osp.join('work_dirs', 'demo', osp.splitext(osp.basename(args.config))[0])
    try:
        task, paths, skipped = run_demo(args.config, args.input, out_dir, args.checkpoint, args.device,
                                        args.cfg_options, args.partial_checkpoint, score_thr=args.score_thr,
                                        palette=args.palette, opacity=args.opacity, resize=args.resize,
                                        deployed=args.deployed)
    except (FileNotFoundError, ValueError) as error:  # one line, not a traceback
        raise SystemExit(f'error: {error}')
    print(f'{task}: {len(paths)} image(s) drawn into {out_dir}')
    if skipped:
        print(f'skipped {len(skipped)} unreadable file(s):', *(f'  {path}: {reason}' for path, reason in skipped),
              sep='\n', file=sys.stderr)
        raise SystemExit(1)


if __name__ == '__main__':
    main()
