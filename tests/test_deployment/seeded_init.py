"""Detectors and segmentors with mmdet's / mmseg's own initialisation, seeded: the random weights the
deployment tests export."""
import torch
from mmengine.registry import MODELS, DefaultScope


def random_model(cfg, seed=0):
    """The config's model with mmdet's / mmseg's initialisation, seeded, in eval mode: scores that separate.
    A RetinaNet's classifier starts every anchor at its prior (0.01, within 1e-6: a tie of all scores): its
    weights are scaled so that the logits on a random image spread with std 1 (scores about 0.001-0.1)."""
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
        model.init_weights()
    model.eval()
    classifier = getattr(getattr(model, 'bbox_head', None), 'retina_cls', None)
    if classifier is not None:
        with torch.no_grad():
            logits = model.bbox_head(model.extract_feat(torch.randn(1, 3, 128, 160)))[0]
            classifier.weight /= torch.cat([level.flatten() for level in logits]).std()
    return model
