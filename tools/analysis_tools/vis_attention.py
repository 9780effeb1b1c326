"""Draw where a query token of SHViT's single-head attention / LITv2's HiLo (Lo-Fi) attention looks,
one overlay per attention module, for one image through the config's test pipeline.

    python tools/analysis_tools/vis_attention.py CONFIG IMAGE [--checkpoint CKPT [--partial-checkpoint]] [--query X Y]
        [--layers NAME ...] [--head I] [--deploy] [--out FILE.png] [--device cpu] [--cfg-options k=v ...]

The query is the token under pixel (X, Y) of the network's input (default: its centre); each overlay
shows that token's attention probabilities over the keys (averaged over the Lo-Fi heads unless
--head), upsampled and blended on the input, scaled to its own maximum. Without --checkpoint the
weights are random (a warning says so).
"""
import os.path as osp

import torch

from effvit_mm.models.layers import switch_to_deploy
from effvit_mm.visualization.attention import capture_attention
from effvit_mm.visualization.classifier import class_names, image_tool_parser, load_classifier, load_image
from effvit_mm.visualization.draw import mark, overlay, save_png, tile, to_image


def parse_args():
    p = image_tool_parser(__doc__, 'mmpretrain classifier config with a SHViT or LITv2 backbone')
    p.add_argument('--query', type=int, nargs=2, metavar=('X', 'Y'), help='query pixel (default: the centre)')
    p.add_argument('--layers', nargs='+', help='attention modules to draw (default: all with more than one key)')
    p.add_argument('--head', type=int, help='one head instead of the average over heads (LITv2)')
    p.add_argument('--deploy', action='store_true', help='fold Conv-BN pairs first (switch_to_deploy)')
    p.add_argument('--out', help='PNG file (default <work_dir>/vis_attention/<image name>.png)')
    return p.parse_args()


def main():
    args = parse_args()
    try:
        model, cfg = load_classifier(args.config, args.checkpoint, args.device, args.cfg_options,
                                     args.partial_checkpoint)
        pixels = load_image(model, cfg, args.image).to(args.device)
        if args.deploy:
            switch_to_deploy(model)
        with torch.no_grad(), capture_attention(model, args.layers) as captured:
            pred = int(model(pixels).argmax(1))
        maps = {name: a for name, a in captured.items() if a.probs.shape[-1] > 1}  # 1 key: always 1
        if not maps:
            raise ValueError(f'no attention module of {osp.basename(args.config)} with more than one key '
                             f'on this {tuple(pixels.shape[-2:])} input (SHViT / LITv2 only)')
    except (FileNotFoundError, ValueError) as error:  # one line, not a traceback
        raise SystemExit(f'error: {error}')
    size = tuple(pixels.shape[-2:])
    point = args.query or (size[1] // 2, size[0] // 2)
    names = class_names(model, cfg)
    images = [mark(to_image(pixels[0]), point, size)]
    captions = [f'pred {names[pred] if names else pred}, query {point[0]},{point[1]}']
    for name, attention in maps.items():
        images.append(mark(overlay(pixels[0], attention.heat_map(point, size, args.head)[0]), point, size))
        captions.append(name.split('backbone.')[-1])
    out = args.out or osp.join(cfg.work_dir, 'vis_attention', osp.splitext(osp.basename(args.image))[0] + '.png')
    print(f'{len(maps)} attention maps: {save_png(out, tile(images, captions))}')


if __name__ == '__main__':
    main()
