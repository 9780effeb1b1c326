"""Robustness of an mmpretrain classifier to FGSM / PGD (torchattacks, L-inf, in pixel space) on the
config's test set: clean and adversarial top-1, attack success rate, attention disruption (SHViT,
LITv2), as JSON; before / after pictures of the first --show images.

    python tools/analysis_tools/eval_attacks.py CONFIG CHECKPOINT --attack {fgsm,pgd} --epsilon E [--steps K]
        [--alpha A] [--no-random-start] [--data-root DIR] [--num-samples N] [--batch-size B]
        [--show N] [--query X Y] [--layer NAME] [--out FILE.json] [--show-dir DIR] [--seed S]
        [--device cpu] [--partial-checkpoint] [--cfg-options k=v ...]

A checkpoint that does not fit the config's model is refused in one line (--partial-checkpoint: load
what fits). Epsilon and alpha are in pixel units of images in [0, 1] (fractions such as 8/255 are accepted); the
model's normalisation is applied after the perturbation. Metrics: see effvit_mm/evaluation/robustness.py.
"""
import argparse
import json
import os
import os.path as osp
from fractions import Fraction

import torch
from mmengine.config import DictAction
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmengine.utils import ProgressBar

from effvit_mm.evaluation.robustness import ATTACKS, RobustnessMeter, attack_batch, build_attack
from effvit_mm.engine.config_switches import check_data_roots
from effvit_mm.visualization.attention import total_variation
from effvit_mm.visualization.classifier import class_names, load_classifier
from effvit_mm.visualization.draw import mark, overlay, perturbation_image, save_png, tile, to_image


def pixel_value(text):
    """'0.03', '8/255' -> float."""
    return float(Fraction(text))


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', help='mmpretrain classifier config or model-zoo name')
    p.add_argument('checkpoint', help='checkpoint file')
    p.add_argument('--partial-checkpoint', action='store_true', help='load what fits the model, skip the rest')
    p.add_argument('--attack', choices=ATTACKS, required=True)
    p.add_argument('--epsilon', type=pixel_value, required=True, help='L-inf radius, pixels in [0, 1] (e.g. 8/255)')
    p.add_argument('--steps', type=int, default=10, help='PGD iterations')
    p.add_argument('--alpha', type=pixel_value, help='PGD step (default 2.5 * epsilon / steps)')
    p.add_argument('--no-random-start', action='store_true', help='PGD starts at the clean image')
    p.add_argument('--data-root', help='ImageNet-style root (default: the test dataloader\'s data_root)')
    p.add_argument('--num-samples', type=int, help='evaluate the first N images only')
    p.add_argument('--batch-size', type=int, help='default: the test dataloader\'s')
    p.add_argument('--show', type=int, default=4, help='draw before / after pictures of the first N images')
    p.add_argument('--query', type=int, nargs=2, metavar=('X', 'Y'),
                   help='pixel whose attention is drawn (default: the image centre)')
    p.add_argument('--layer', help='attention module to draw (default: the last one with more than one key)')
    p.add_argument('--out', help='JSON file (default <work_dir>/attacks/<attack>_eps<E>.json)')
    p.add_argument('--show-dir', help='folder of the pictures (default: beside the JSON, <name>_vis)')
    p.add_argument('--seed', type=int, default=0, help='seed of PGD\'s random start and the reference noise')
    p.add_argument('--device', default='cpu')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config entries, k=v')
    return p.parse_args()


def build_loader(cfg, args):
    """The config's test dataloader, with the command line's root, subset and batch size."""
    loader = cfg.test_dataloader
    if args.data_root:
        loader.dataset.data_root = args.data_root
    if args.num_samples:
        loader.dataset.indices = args.num_samples
    if args.batch_size:
        loader.batch_size = args.batch_size
    check_data_roots(cfg, ['test'])
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmpretrain')):
        return Runner.build_dataloader(loader)


def draw(pixels, batch, labels, index, names, args):
    """Before / after picture of image ``index`` of the batch: clean, adversarial, perturbation and,
    with attention, the chosen query's attention on both (same colour scale)."""
    def name(label):
        return names[label] if names else str(label)

    adv = batch.adversarial[index]
    clean_pred, adv_pred = int(batch.clean_pred[index]), int(batch.adv_pred[index])
    images = [to_image(pixels[index]), to_image(adv), perturbation_image(adv - pixels[index], args.epsilon)]
    captions = [f'gt {name(int(labels[index]))}, pred {name(clean_pred)}', f'attacked: {name(adv_pred)}',
                f'perturbation x{0.5 / max(args.epsilon, 1e-12):.0f}']
    informative = [n for n, a in batch.clean_attention.items() if a.probs.shape[-1] > 1]  # > 1 key
    layer = args.layer or (informative[-1] if informative else None)
    if layer is not None:
        size = pixels.shape[-2:]
        point = args.query or (size[1] // 2, size[0] // 2)
        clean, attacked = batch.clean_attention[layer], batch.adv_attention[layer]
        heat = [a.heat_map(point, size)[index] for a in (clean, attacked)]
        vmax = max(float(h.max()) for h in heat)
        q = clean.query_index(point, size)
        tv = float(total_variation(clean.image_probs()[index, q], attacked.image_probs()[index, q]))
        images += [mark(overlay(p, h, vmax), point, size) for p, h in zip((pixels[index], adv), heat)]
        captions += [f'attention {layer.split("backbone.")[-1]}', f'attacked (TV {tv:.2f})']
    return tile(images, captions)


def save_json(path, result):
    """Write ``result`` as indented JSON, creating the folder."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(result, f, indent=2)


def main():
    args = parse_args()
    try:
        model, cfg = load_classifier(args.config, args.checkpoint, args.device, args.cfg_options,
                                     args.partial_checkpoint)
        loader = build_loader(cfg, args)
        attack = build_attack(model, args.attack, args.epsilon, args.steps, args.alpha, not args.no_random_start)
    except (FileNotFoundError, ValueError) as error:  # one line, not a traceback
        raise SystemExit(f'error: {error}')
    out = args.out or osp.join(cfg.work_dir, 'attacks', f'{args.attack}_eps{args.epsilon:.4f}.json')
    show_dir = args.show_dir or osp.splitext(out)[0] + '_vis'
    names = class_names(model, cfg)
    torch.manual_seed(args.seed)  # PGD's random start
    noise = torch.Generator().manual_seed(args.seed)

    meter, drawn = RobustnessMeter(), []
    bar = ProgressBar(len(loader))
    for data in loader:
        pixels, labels = model.pixels(data)
        pixels, labels = pixels.to(args.device), labels.to(args.device)
        batch = attack_batch(model, attack, pixels, labels, noise)
        meter.update(batch, labels)
        for i in range(min(args.show - len(drawn), len(labels))):
            drawn.append(save_png(osp.join(show_dir, f'{len(drawn):04d}.png'), draw(pixels, batch, labels, i, names, args)))
        bar.update()
    print()

    attack_cfg = dict(name=args.attack, epsilon=args.epsilon, norm='Linf', pixel_range=[0, 1])
    if args.attack == 'pgd':
        attack_cfg.update(steps=attack.steps, alpha=attack.alpha, random_start=attack.random_start)
    summary = meter.summary()
    save_json(out, dict(config=args.config, checkpoint=args.checkpoint, attack=attack_cfg, seed=args.seed,
                        **summary, pictures=drawn))
    success = summary['attack_success_rate']
    line = (f"{args.attack} eps={args.epsilon:.4f}: clean top-1 {summary['clean_top1']:.2f} %, "
            f"adversarial top-1 {summary['adv_top1']:.2f} %, success rate "
            f"{'n/a' if success is None else f'{success:.2f} %'}")
    if summary['attention_disruption']:
        line += (f", attention disruption (TV) {summary['attention_disruption']['mean']:.4f} "
                 f"(random noise {summary['noise_disruption']['mean']:.4f})")
    print(f'{line}\nresults: {out}' + (f', pictures: {show_dir}' if drawn else ''))


if __name__ == '__main__':
    main()
