"""Grad-CAM (or another pytorch_grad_cam method) of an mmpretrain classifier on one image, as
mmpretrain's visualization tool vis_cam.py, for any config here (SHViT, SwiftFormer, LITv2).

    python tools/analysis_tools/vis_cam.py CONFIG IMAGE [--checkpoint CKPT [--partial-checkpoint]] [--target-layer NAME]
        [--target-category C] [--method gradcam] [--out FILE.png] [--device cpu] [--cfg-options k=v ...]

The target layer defaults to the backbone module whose output the head pools (the last stage's
output; LITv2's channels-last map is transposed for the CAM), the category to the predicted class.
Writes the input beside the CAM overlay. Without --checkpoint the weights are random (with a warning).
"""
import os.path as osp

from effvit_mm.visualization.cam import METHODS, grad_cam
from effvit_mm.visualization.classifier import class_names, image_tool_parser, load_classifier, load_image
from effvit_mm.visualization.draw import overlay, save_png, tile, to_image


def parse_args():
    p = image_tool_parser(__doc__)
    p.add_argument('--target-layer', help='module name in the classifier, e.g. backbone.norm3')
    p.add_argument('--target-category', type=int, help='class to explain (default: the predicted one)')
    p.add_argument('--method', default='gradcam', help=f'one of {", ".join(METHODS)}')
    p.add_argument('--out', help='PNG file (default <work_dir>/vis_cam/<image name>.png)')
    return p.parse_args()


def main():
    args = parse_args()
    try:
        model, cfg = load_classifier(args.config, args.checkpoint, args.device, args.cfg_options,
                                     args.partial_checkpoint)
        pixels = load_image(model, cfg, args.image).to(args.device)
        categories = None if args.target_category is None else [args.target_category]
        cams, categories, layer = grad_cam(model, pixels, args.target_layer, categories, args.method)
    except (FileNotFoundError, ValueError) as error:  # one line, not a traceback
        raise SystemExit(f'error: {error}')
    names = class_names(model, cfg)
    category = names[categories[0]] if names else categories[0]
    image = tile([to_image(pixels[0]), overlay(pixels[0], cams[0], vmax=1)],
                 ['input', f'{args.method} "{category}" @ {layer.split("backbone.")[-1]}'])
    out = args.out or osp.join(cfg.work_dir, 'vis_cam', osp.splitext(osp.basename(args.image))[0] + '.png')
    print(f'{args.method} of class {category} at {layer}: {save_png(out, image)}')


if __name__ == '__main__':
    main()
