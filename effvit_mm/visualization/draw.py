"""Drawing helpers: heat-map overlays (pytorch_grad_cam's ``show_cam_on_image``, as mmpretrain's
``vis_cam``), query markers, captioned tiles, PNG output. Images are (H, W, 3) uint8 RGB arrays."""
import os
import os.path as osp

import cv2
import numpy as np
import torch
from pytorch_grad_cam.utils.image import show_cam_on_image


def to_image(pixels):
    """(3, H, W) RGB tensor in [0, 1] -> (H, W, 3) uint8 RGB."""
    return (pixels.detach().cpu().clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def overlay(pixels, heat, vmax=None):
    """A jet heat map blended half-and-half on the image: pixels (3, H, W) in [0, 1], heat (H, W)
    >= 0, shown as ``heat / vmax`` (default its maximum; give the same ``vmax`` to compare maps)."""
    heat = torch.as_tensor(heat).detach().cpu().float()
    vmax = float(heat.max()) if vmax is None else float(vmax)
    mask = (heat / max(vmax, 1e-12)).clamp(0, 1).numpy()
    return show_cam_on_image(to_image(pixels).astype(np.float32) / 255, mask, use_rgb=True)


def perturbation_image(delta, epsilon):
    """(3, H, W) perturbation in [-epsilon, epsilon] -> uint8 RGB image, grey for 0."""
    return to_image(0.5 + delta / (2 * max(epsilon, 1e-12)))


def resize(image, height):
    """Resize to ``height`` rows, keeping the aspect ratio (nearest neighbour: pixels stay visible)."""
    width = max(1, round(image.shape[1] * height / image.shape[0]))
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_NEAREST)


def mark(image, point, image_size):
    """Draw a cross at ``point`` = (x, y), given in pixels of an image of ``image_size`` = (H, W)."""
    image = image.copy()
    x = int((point[0] + 0.5) * image.shape[1] / image_size[1])
    y = int((point[1] + 0.5) * image.shape[0] / image_size[0])
    cv2.drawMarker(image, (x, y), (255, 255, 255), cv2.MARKER_CROSS, max(8, image.shape[0] // 16), 2)
    return image


def tile(images, captions, height=224):
    """Images side by side, each resized to ``height`` rows under a caption line."""
    tiles = []
    for image, caption in zip(images, captions):
        image = resize(image, height)
        bar = np.full((20, image.shape[1], 3), 255, np.uint8)
        cv2.putText(bar, caption, (3, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(np.concatenate([bar, image], axis=0))
    gap = np.full((tiles[0].shape[0], 4, 3), 255, np.uint8)
    return np.concatenate([t for pair in zip(tiles, [gap] * len(tiles)) for t in pair][:-1], axis=1)


def save_png(path, image):
    """Write an RGB image as PNG (creating the folder); returns the path."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(image[..., ::-1])):
        raise OSError(f'could not write {path}')
    return path
