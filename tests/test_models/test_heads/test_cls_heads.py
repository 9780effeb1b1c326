import copy
from collections import OrderedDict

import pytest
import timm
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import effvit_mm  # noqa: F401  (registers the backbones)
from effvit_mm.checkpoint import extract_state_dict
from effvit_mm.checkpoint.convert import to_mmpretrain
from effvit_mm.models.backbones import LITv2, SHViT, SwiftFormer
from effvit_mm.models.classifiers import DistilledImageClassifier
from effvit_mm.models.heads import LITv2ClsHead, SHViTClsHead, SwiftFormerClsHead
from effvit_mm.checkpoint.safe_load import safe_load

pytestmark = pytest.mark.usefixtures('mmpretrain_scope')  # see tests/conftest.py

NUM_CLASSES = 1000
# family -> (arch, backbone class, last stage index, head class, the authors' classifier modules)
FAMILIES = {
    'shvit': ('s1', SHViT, 2, SHViTClsHead, ('head',)),
    'swiftformer': ('xs', SwiftFormer, 3, SwiftFormerClsHead, ('head', 'dist_head')),
    'litv2': ('s', LITv2, 3, LITv2ClsHead, ('head',)),
}


def model_cfg(family, distillation=None, **kwargs):
    arch, backbone, stage, head, _ = FAMILIES[family]
    dim = backbone.arch_settings[arch]['embed_dims'][-1]
    head_cfg = dict(type=head.__name__, num_classes=NUM_CLASSES, in_channels=dim)
    if distillation is not None:
        head_cfg['distillation'] = distillation
    return dict(type='ImageClassifier', backbone=dict(type=backbone.__name__, arch=arch, out_indices=(stage,)),
                head=head_cfg, **kwargs)


class AuthorsLayout(nn.Module):
    """The authors' classifier with their key names, from our backbone (whose outputs match theirs,
    see the backbone tests): the backbone's modules, its last output norm as ``norm`` (SwiftFormer
    BatchNorm2d, LITv2 LayerNorm over the tokens), average pooling, the classifier(s) averaged."""

    def __init__(self, family):
        super().__init__()
        arch, backbone_cls, stage, _, heads = FAMILIES[family]
        backbone = backbone_cls(arch, out_indices=(stage,))
        self._backbone = [backbone]  # not a submodule: its children are registered below
        for name, child in backbone.named_children():
            self.add_module('norm' if name.startswith('norm') else name, child)
        dim = backbone.num_features[-1]
        for name in heads:
            self.add_module(name, nn.Sequential(OrderedDict(bn=nn.BatchNorm1d(dim), l=nn.Linear(dim, NUM_CLASSES)))
                            if family == 'shvit' else nn.Linear(dim, NUM_CLASSES))
        self.heads = heads

    def forward(self, x):
        x = self._backbone[0](x)[-1].mean((2, 3))
        return sum(getattr(self, name)(x) for name in self.heads) / len(self.heads)


def official_cls_keys(official_keys, family, arch):
    keys = official_keys(family)[arch]
    return keys if family == 'shvit' else keys['cls']


def check_logits(reference, state_dict, cfg, size=64):
    """``state_dict`` converted to mmpretrain loads strictly into ``cfg``'s classifier and gives
    ``reference``'s logits."""
    model = MODELS.build(cfg)
    model.load_state_dict(to_mmpretrain(state_dict), strict=True)
    model.eval()
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected, got = reference(x), model(x, mode='tensor')
    assert got.shape == (2, NUM_CLASSES)
    diff = (expected - got).abs().max().item()
    print(f'max abs logit diff {diff:.2e}')
    assert diff < 1e-4
    return model


@pytest.mark.parametrize('family', list(FAMILIES))
def test_authors_checkpoint_gives_authors_logits(family, tmp_path, randomise, official_keys):
    authors = randomise(AuthorsLayout(family))
    arch = FAMILIES[family][0]
    official = official_cls_keys(official_keys, family, arch)
    assert {k: list(v.shape) for k, v in authors.state_dict().items()} == official  # their names and shapes
    path = tmp_path / 'release.pth'
    torch.save({'model': authors.state_dict()}, path)  # as the authors release them
    state_dict = extract_state_dict(safe_load(path))
    check_logits(authors, state_dict, model_cfg(family))


@pytest.mark.parametrize('family', ['shvit', 'swiftformer'])
def test_timm_checkpoint_gives_timm_logits(family, randomise):
    reference = randomise(timm.create_model(f'{family}_{FAMILIES[family][0]}'))
    check_logits(reference, reference.state_dict(), model_cfg(family), size=96)


def test_heads_shapes_init_and_errors():
    feats = (torch.randn(3, 64, 5, 4),)
    for head_cls, twins in [(SHViTClsHead, False), (SwiftFormerClsHead, True), (LITv2ClsHead, False)]:
        head = head_cls(num_classes=10, in_channels=64)
        assert head.distillation == twins and (head.dist_head is not None) == twins
        assert head(feats).shape == (3, 10)
        linear = head.head.l if head_cls is SHViTClsHead else head.head
        assert linear.bias.abs().max() == 0 and 0.015 < linear.weight.std() < 0.025
    assert torch.equal(SHViTClsHead(10, 64).head.bn.weight, torch.ones(64))
    with pytest.raises(ValueError, match=r'\(N, 32, H, W\)'):
        LITv2ClsHead(10, 32)(feats)
    with pytest.raises(ValueError, match='num_classes'):
        LITv2ClsHead(0, 32)
    with pytest.raises(ValueError, match='distillation=True'):
        LITv2ClsHead(10, 64).loss(feats, [DataSample().set_gt_label(1)] * 3, teacher_labels=torch.zeros(3).long())


@pytest.fixture(scope='module')
def teacher_file(tmp_path_factory, randomise):
    teacher = randomise(timm.create_model('resnet10t', num_classes=1000), seed=3)
    path = tmp_path_factory.mktemp('teacher') / 'teacher.pth'
    torch.save({'model': teacher.state_dict()}, path)  # DeiT's layout of regnety_160
    return path, teacher


def batch(n=4, soft=False, size=64):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 3, size, size, generator=g)
    labels = torch.randint(0, NUM_CLASSES, (n,), generator=g)
    samples = [DataSample().set_gt_label(int(y)) for y in labels]
    if soft:  # mixup-like targets
        scores = 0.6 * F.one_hot(labels, NUM_CLASSES) + 0.4 * F.one_hot(labels.roll(1), NUM_CLASSES)
        for s, score in zip(samples, scores.float()):
            s.set_gt_score(score)
    return x, samples


def twins(model, x):
    pooled = model.extract_feat(x)[-1].mean((2, 3))
    return model.head.head(pooled), model.head.dist_head(pooled)


@pytest.mark.parametrize('soft', [False, True])
def test_hard_distillation_loss(teacher_file, soft):
    path, teacher = teacher_file
    cfg = model_cfg('swiftformer', data_preprocessor=None)
    cfg['head']['loss'] = (dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original') if soft
                           else dict(type='CrossEntropyLoss'))
    cfg.update(type='DistilledImageClassifier', distill_alpha=0.3,
               teacher=dict(name='resnet10t', checkpoint=str(path)))
    model = MODELS.build(cfg)
    assert isinstance(model, DistilledImageClassifier)
    model.train()
    x, samples = batch(soft=soft)
    losses = model(x, samples, mode='loss')

    with torch.no_grad():
        cls, dist = twins(model, x)  # train mode too: the same batch statistics
        teacher_labels = teacher.eval()(x).argmax(1)
    if soft:
        base = model.head.loss_module(cls, torch.stack([s.gt_score for s in samples]), avg_factor=len(x))
    else:
        base = F.cross_entropy(cls, torch.cat([s.gt_label for s in samples]))
    expected = 0.7 * base + 0.3 * F.cross_entropy(dist, teacher_labels)
    assert torch.allclose(losses['loss'], expected, atol=1e-5)
    total, log_vars = model.parse_losses(losses)  # what the runner optimises and logs
    assert torch.equal(total, losses['loss']) and {'ce_cls', 'ce_dist'} <= set(log_vars)

    losses['loss'].backward()
    assert model.head.head.weight.grad.abs().sum() > 0 and model.head.dist_head.weight.grad.abs().sum() > 0
    assert model.teacher is not None and not model.teacher.training
    assert all(p.grad is None and not p.requires_grad for p in model.teacher.parameters())
    teacher_params = {id(p) for p in model.teacher.parameters()}
    assert not teacher_params & {id(p) for p in model.parameters()}
    assert all(k.startswith(('backbone.', 'head.')) for k in model.state_dict())
    assert copy.deepcopy(model).teacher is model.teacher  # an EMA copy shares it


def test_no_teacher_trains_both_twins_and_inference_averages():
    model = MODELS.build(dict(model_cfg('swiftformer', data_preprocessor=None), type='DistilledImageClassifier'))
    assert model.teacher is None
    model.train()
    x, samples = batch()
    losses = model(x, samples, mode='loss')
    with torch.no_grad():
        cls, dist = twins(model, x)
    gt = torch.cat([s.gt_label for s in samples])
    assert torch.allclose(losses['loss'], (F.cross_entropy(cls, gt) + F.cross_entropy(dist, gt)) / 2, atol=1e-5)
    losses['loss'].backward()
    assert model.head.head.weight.grad.abs().sum() > 0 and model.head.dist_head.weight.grad.abs().sum() > 0

    model.eval()
    with torch.no_grad():
        cls, dist = twins(model, x)
        logits = model(x, mode='tensor')
        preds = model(x, samples, mode='predict')
    assert torch.allclose(logits, (cls + dist) / 2, atol=1e-6)
    assert torch.allclose(preds[0].pred_score, logits[0].softmax(0), atol=1e-6)


def test_teacher_errors(tmp_path):
    missing = tmp_path / 'regnety_160.pth'
    cfg = dict(model_cfg('swiftformer', data_preprocessor=None), type='DistilledImageClassifier',
               teacher=dict(name='resnet10t', checkpoint=str(missing)))
    model = MODELS.build(cfg)  # the teacher is built on first use: inference needs no teacher file
    with pytest.raises(FileNotFoundError, match=rf'{missing}.*model\.teacher=None'):
        model.teacher
    cfg = dict(model_cfg('litv2', data_preprocessor=None), type='DistilledImageClassifier',
               teacher=dict(name='resnet10t', checkpoint=str(missing)))
    with pytest.raises(ValueError, match='distillation twin'):
        MODELS.build(cfg)
