"""Generate the small built-in data sets used by the demos and tests, one subcommand per format.

    python tools/dataset_converters/generate_data.py coco --out data/demo_coco [--num-train N --num-val N
                                       --width W --height H --max-objects K --seed S]
    python tools/dataset_converters/generate_data.py ade20k --out data/demo_ade20k [--num-train N --num-val N --width W
                                         --height H --num-classes K --seed S]
    python tools/dataset_converters/generate_data.py imagenet --out data/demo_imagenet [--num-classes C --num-train N
                                           --num-val N --size S --seed S]   (N: images per class)
"""
import argparse

from effvit_mm.datasets import make_ade20k, make_coco, make_imagenet


def coco(args):
    summary = make_coco(args.out, args.num_train, args.num_val, (args.width, args.height), args.seed,
                        args.max_objects)
    counts = summary['num_annotations']
    return (f"COCO-format set in {summary['root']}: {summary['num_train']} train / {summary['num_val']} val "
            f"images, {counts['train']} / {counts['val']} annotations, classes {', '.join(summary['classes'])}")


def ade20k(args):
    summary = make_ade20k(args.out, args.num_train, args.num_val, (args.width, args.height), args.num_classes,
                          args.seed)
    return (f"ADE20K-style set in {summary['root']}: {summary['num_train']} train / {summary['num_val']} val "
            f"images of {args.width}x{args.height} (images/, annotations/ x training/, validation/; label 0 = "
            f"other, ignored with reduce_zero_label=True), classes {', '.join(summary['classes'])}")


def imagenet(args):
    summary = make_imagenet(args.out, args.num_classes, args.num_train, args.num_val, args.size, args.seed)
    return (f"ImageNet-style set in {summary['root']}: {summary['num_train']} train / {summary['num_val']} val "
            f"images of {summary['size']}x{summary['size']} in {len(summary['classes'])} class folders "
            f"(train/, val/, meta/*.txt), classes {', '.join(summary['classes'])}")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='kind', required=True)
    p = sub.add_parser('coco', help='COCO-format instance segmentation (train2017 / val2017)')
    p.add_argument('--out', default='data/demo_coco', help='root of the set')
    p.add_argument('--num-train', type=int, default=64)
    p.add_argument('--num-val', type=int, default=16)
    p.add_argument('--width', type=int, default=320)
    p.add_argument('--height', type=int, default=256)
    p.add_argument('--max-objects', type=int, default=3, help='objects per image: 1..K')
    p.add_argument('--seed', type=int, default=0)
    p.set_defaults(generate=coco)
    p = sub.add_parser('ade20k', help='ADE20K-style semantic segmentation (ADEChallengeData2016 layout)')
    p.add_argument('--out', default='data/demo_ade20k', help='root of the set')
    p.add_argument('--num-train', type=int, default=64)
    p.add_argument('--num-val', type=int, default=16)
    p.add_argument('--width', type=int, default=128)
    p.add_argument('--height', type=int, default=96)
    p.add_argument('--num-classes', type=int, default=4, help='classes 1..K in the label maps (2..8)')
    p.add_argument('--seed', type=int, default=0)
    p.set_defaults(generate=ade20k)
    p = sub.add_parser('imagenet', help='ImageNet-style classification (train/ and val/ class folders, meta/*.txt)')
    p.add_argument('--out', default='data/demo_imagenet', help='root of the set')
    p.add_argument('--num-classes', type=int, default=4)
    p.add_argument('--num-train', type=int, default=64, help='training images per class')
    p.add_argument('--num-val', type=int, default=16, help='validation images per class')
    p.add_argument('--size', type=int, default=64, help='side of the square images')
    p.add_argument('--seed', type=int, default=0)
    p.set_defaults(generate=imagenet)
    return parser.parse_args()


def main():
    args = parse_args()
    try:
        print(args.generate(args))
    except ValueError as error:  # one line, not a traceback
        raise SystemExit(f'error: {error}')


if __name__ == '__main__':
    main()
