"""Generate the small built-in data sets used by the demos and tests.

    python tools/generate_data.py coco --out data/demo_coco
"""
import argparse

from effvit_mm.datasets import make_coco


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='kind', required=True)
    coco = sub.add_parser('coco', help='COCO-format instance segmentation (train2017 / val2017)')
    coco.add_argument('--out', default='data/demo_coco')
    coco.add_argument('--num-train', type=int, default=64)
    coco.add_argument('--num-val', type=int, default=16)
    coco.add_argument('--width', type=int, default=320)
    coco.add_argument('--height', type=int, default=256)
    coco.add_argument('--max-objects', type=int, default=3)
    coco.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    summary = make_coco(args.out, args.num_train, args.num_val, (args.width, args.height), args.seed,
                        args.max_objects)
    print(f"COCO-format set in {summary['root']}: {summary['num_train']} train / {summary['num_val']} val "
          f"images, {summary['num_annotations']} annotations, classes {summary['classes']}")


if __name__ == '__main__':
    main()
