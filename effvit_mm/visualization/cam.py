"""Grad-CAM and its relatives (``pytorch_grad_cam``) for any mmpretrain classifier, the way mmpretrain's
``tools/visualization/vis_cam.py`` runs them, on a :class:`~.classifier.PixelClassifier`."""
from functools import partial

import pytorch_grad_cam
import torch
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

METHODS = {'gradcam++': pytorch_grad_cam.GradCAMPlusPlus,
           **{c.__name__.lower(): c for c in pytorch_grad_cam.base_cam.BaseCAM.__subclasses__()}}


def default_target_layer(model, pixels):
    """Name (in ``model.classifier``) of the backbone module whose output the head pools: the last
    one to finish a forward of ``pixels`` with a 4-D output of the head's ``in_channels`` channels,
    first or last (SHViT: the last block, SwiftFormer: its output norm, LITv2: ``norm3``,
    channels-last)."""
    channels = getattr(model.classifier.head, 'in_channels', None)
    finished = []

    def hook(name, module, args, output):
        if torch.is_tensor(output) and output.ndim == 4 and channels in (None, output.shape[1], output.shape[-1]):
            finished.append(name)

    backbone = model.classifier.backbone
    handles = [m.register_forward_hook(partial(hook, name))
               for name, m in backbone.named_modules(prefix='backbone') if m is not backbone]
    try:
        with torch.no_grad():
            model(pixels)
    finally:
        for handle in handles:
            handle.remove()
    if not finished:
        raise ValueError('no backbone module outputs the feature map of the head; pass a target layer')
    return finished[-1]


def channels_first(channels, tensor):
    """``reshape_transform`` for pytorch_grad_cam: a channels-last (B, H, W, channels) map ->
    (B, channels, H, W); anything else unchanged."""
    if tensor.ndim == 4 and tensor.shape[1] != channels and tensor.shape[-1] == channels:
        return tensor.permute(0, 3, 1, 2)
    return tensor


def grad_cam(model, pixels, target_layer=None, categories=None, method='gradcam'):
    """Class activation maps of ``model`` (a PixelClassifier) on pixels (B, 3, H, W) in [0, 1].

    Args:
        target_layer (str, optional): module name in ``model.classifier``; default
            :func:`default_target_layer`.
        categories (Sequence[int], optional): class per image; default the predicted ones.
        method (str): a key of :data:`METHODS` (case-insensitive), e.g. 'gradcam', 'gradcam++'.

    Returns:
        tuple: maps (B, H, W) in [0, 1], the categories (list of int) and the target layer's name.
    """
    if method.lower() not in METHODS:
        raise ValueError(f'unknown CAM method {method}; choose from {", ".join(METHODS)}')
    name = target_layer or default_target_layer(model, pixels)
    try:
        layer = model.classifier.get_submodule(name)
    except AttributeError:
        raise ValueError(f'no module {name} in the classifier') from None
    if categories is None:
        with torch.no_grad():
            categories = model(pixels).argmax(1).tolist()
    reshape = partial(channels_first, getattr(model.classifier.head, 'in_channels', None))
    with METHODS[method.lower()](model=model, target_layers=[layer], reshape_transform=reshape) as cam:
        maps = cam(input_tensor=pixels, targets=[ClassifierOutputTarget(int(c)) for c in categories])
    return torch.from_numpy(maps), list(categories), name
