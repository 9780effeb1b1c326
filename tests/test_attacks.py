"""Robustness evaluation: the pixel-space wrapper matches mmpretrain's own inference, FGSM with
epsilon 0 changes nothing, PGD lowers the accuracy of a small SHViT trained here in seconds, and
tools/analysis_tools/eval_attacks.py writes its JSON and before / after pictures."""
import json
import runpy
import sys
import warnings
from pathlib import Path

import cv2
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

import effvit_mm  # noqa: F401
from effvit_mm.datasets import make_imagenet
from effvit_mm.evaluation.robustness import AttackedBatch, RobustnessMeter, attack_batch, build_attack
from effvit_mm.visualization.classifier import load_classifier

ROOT = Path(__file__).parents[1]
NUM_CLASSES = 4
TINY_SHVIT = dict(embed_dims=[32, 48, 64], depths=[1, 1, 1], partial_dims=[8, 12, 16])


def _loader(cfg, split):
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return Runner.build_dataloader(cfg[f'{split}_dataloader'], seed=0)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """(config file, checkpoint) of a tiny SHViT trained for 6 epochs (AdamW, no augmentation) on a
    generated 4-class set at 64 px (128 training images)."""
    tmp = tmp_path_factory.mktemp('attacks')
    summary = make_imagenet(tmp / 'data', num_classes=NUM_CLASSES, num_train_per_class=32, num_val_per_class=8,
                            size=64, seed=0)
    config = tmp / 'tiny_shvit.py'
    config.write_text(
        f"_base_ = ['{ROOT / 'configs/shvit_s1_demoimagenet.py'}']\n"
        f"classes = {tuple(summary['classes'])!r}\n"
        f"data_preprocessor = dict(num_classes={NUM_CLASSES})\n"
        f"model = dict(backbone=dict(arch=dict(_delete_=True, **{TINY_SHVIT!r})), "
        f"head=dict(num_classes={NUM_CLASSES}, in_channels={TINY_SHVIT['embed_dims'][-1]}))\n"
        f"train_dataloader = dict(dataset=dict(data_root='{tmp / 'data'}', metainfo=dict(classes=classes)))\n"
        f"val_dataloader = dict(batch_size=16, dataset=dict(data_root='{tmp / 'data'}', metainfo=dict(classes=classes)))\n"
        f"test_dataloader = val_dataloader\n")
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model, cfg = load_classifier(str(config))
    classifier = model.classifier.train()
    cfg.train_dataloader.dataset.pipeline = cfg.test_dataloader.dataset.pipeline  # no augmentation: load once
    batches = [classifier.data_preprocessor(batch, True) for batch in _loader(cfg, 'train')]
    optimizer = torch.optim.AdamW(classifier.parameters(), lr=3e-3, weight_decay=0.0)
    for _ in range(6):
        for batch in batches:
            loss = classifier(**batch, mode='loss')['loss']
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    checkpoint = tmp / 'tiny_shvit.pth'
    torch.save(dict(state_dict=classifier.state_dict(), meta={}), checkpoint)
    return str(config), str(checkpoint)


def test_pixel_classifier_matches_mmpretrain(trained):
    """PixelClassifier(de-normalised pixels) gives the scores of mmpretrain's own test step."""
    model, cfg = load_classifier(*trained)
    batch = next(iter(_loader(cfg, 'test')))
    pixels, labels = model.pixels(batch)
    assert pixels.shape == (16, 3, 64, 64) and 0 <= pixels.min() and pixels.max() <= 1
    assert labels.tolist() == [s.gt_label.item() for s in batch['data_samples']]
    with torch.no_grad():
        reference = torch.stack([s.pred_score for s in model.classifier.test_step(batch)])
        torch.testing.assert_close(model(pixels).softmax(1), reference, rtol=1e-4, atol=1e-5)


def test_fgsm_epsilon_zero_changes_nothing(trained):
    model, cfg = load_classifier(*trained)
    attack = build_attack(model, 'fgsm', 0.0)
    meter = RobustnessMeter()
    for data in _loader(cfg, 'test'):
        pixels, labels = model.pixels(data)
        batch = attack_batch(model, attack, pixels, labels)
        assert torch.equal(batch.adversarial, pixels) and torch.equal(batch.adv_pred, batch.clean_pred)
        meter.update(batch, labels)
    result = meter.summary()
    assert result['num_samples'] == 8 * NUM_CLASSES
    assert result['adv_top1'] == result['clean_top1'] and result['attack_success_rate'] == 0
    assert result['attention_disruption']['mean'] == 0 == result['noise_disruption']['mean']


def test_success_rate_definition():
    """Success rate: the share of the correctly classified clean images that the attack flips."""
    meter = RobustnessMeter()
    labels = torch.tensor([0, 1, 2, 3])
    meter.update(AttackedBatch(None, torch.tensor([0, 1, 2, 0]), torch.tensor([0, 2, 1, 3]), {}, {}, {}), labels)
    result = meter.summary()
    assert (result['clean_top1'], result['adv_top1']) == (75, 50)
    assert result['attack_success_rate'] == pytest.approx(100 * 2 / 3)
    assert result['attention_disruption'] is None
    with pytest.raises(ValueError, match='unknown attack'):
        build_attack(None, 'cw', 0.1)


def _run_tool(argv, monkeypatch):
    monkeypatch.setattr(sys, 'argv', ['eval_attacks', *map(str, argv)])
    runpy.run_path(str(ROOT / 'tools' / 'analysis_tools' / 'eval_attacks.py'), run_name='__main__')


def test_pgd_lowers_accuracy_of_trained_model(trained, tmp_path, monkeypatch, capsys):
    """tools/analysis_tools/eval_attacks.py, PGD at 16/255 on the trained toy model (well above chance clean): accuracy
    drops, the attention moves more than under random noise of the same size; JSON and pictures written."""
    out = tmp_path / 'pgd.json'
    _run_tool([*trained, '--attack', 'pgd', '--epsilon', '16/255', '--steps', 5, '--show', 3, '--out', out],
              monkeypatch)
    result = json.loads(out.read_text())
    print(capsys.readouterr().out.splitlines()[-2])  # the numbers, shown with -s
    chance = 100 / NUM_CLASSES
    assert result['num_samples'] == 8 * NUM_CLASSES and result['clean_top1'] >= 2.5 * chance
    assert result['adv_top1'] <= result['clean_top1'] - 30 and result['attack_success_rate'] > 30
    assert result['attack'] == dict(name='pgd', epsilon=16 / 255, norm='Linf', pixel_range=[0, 1], steps=5,
                                    alpha=2.5 * 16 / 255 / 5, random_start=True)
    disruption, noise = result['attention_disruption'], result['noise_disruption']
    assert list(disruption['layers']) == ['classifier.backbone.blocks2.3.mixer.m']  # stage 3 is 1 x 1 at 64 px
    assert disruption['mean'] > noise['mean'] > 0
    assert len(result['pictures']) == 3
    picture = cv2.imread(result['pictures'][0])
    assert picture.shape == (244, 5 * 228 - 4, 3)  # clean, attacked, perturbation, attention before / after


def test_eval_attacks_errors(trained, tmp_path, monkeypatch):
    config, checkpoint = trained
    with pytest.raises(SystemExit, match='checkpoint .* not found'):
        _run_tool([config, tmp_path / 'none.pth', '--attack', 'fgsm', '--epsilon', 0.1], monkeypatch)
    with pytest.raises(SystemExit, match='data root .* not found'):
        _run_tool([config, checkpoint, '--attack', 'fgsm', '--epsilon', 0.1, '--data-root', tmp_path / 'x'],
                  monkeypatch)
    with pytest.raises(SystemExit, match='epsilon'):
        _run_tool([config, checkpoint, '--attack', 'pgd', '--epsilon', -1], monkeypatch)
    assert Config.fromfile(config).test_dataloader.batch_size == 16
