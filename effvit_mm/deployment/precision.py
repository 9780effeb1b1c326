"""The precision an exported OpenVINO folder runs at (``export_model.py --precision``):

- ``fp32``: the graphs as exported, run at OpenVINO's f32 inference precision (every backend);
- ``bf16``: the same fp32 files, run at OpenVINO's bf16 inference precision. Only on a CPU that computes
  bf16 natively (OpenVINO's CPU capabilities list BF16: AVX512-BF16 or AMX); elsewhere it is refused, at
  export and when the folder is opened, since emulated bf16 is slower than fp32;
- ``int8``: the image graph (backbone, neck and dense head; a segmentor's whole graph) quantized after
  training by NNCF (``nncf.quantize``) on calibration images: ``calib_images`` images of the config's train
  set, through its test pipeline, normalised and padded as :class:`~effvit_mm.deployment.DeployedModel`
  feeds them. NNCF's transformer model type keeps LayerNorm, softmax and element-wise operations in float
  and smooths the activations of matrix products (SmoothQuant). The RoI graphs and the host code (box
  decoding, NMS, RoI extraction, mask pasting, the segmentation resize) stay in fp32.
"""
import os
import os.path as osp
import platform

import torch
from mmengine.config import ConfigDict
from mmengine.registry import DATASETS, DefaultScope

from .deployed_model import graph_input
from .runtimes import RuntimeUnavailable, cpu_capabilities, openvino_module, refuse_emulated_bf16

__all__ = ['IMAGE_GRAPHS', 'NNCF_VERSION', 'PRECISIONS', 'calibration_inputs', 'check_precision', 'cpu_capabilities',
           'quantize_graph', 'tuned_on']

PRECISIONS = ('fp32', 'bf16', 'int8')
NNCF_VERSION = '3.4.0'  # tools/requirements.txt
IMAGE_GRAPHS = ('detector', 'segmentor')  # the graphs int8 quantizes (module docstring)


def _nncf():
    try:
        import nncf
    except ImportError:
        raise RuntimeUnavailable(f'--precision int8 needs NNCF (pip install nncf=={NNCF_VERSION}; tools/install.sh '
                                 'installs it)') from None
    return nncf


def check_precision(precision, backend):
    """Refuse, in one line, a precision this backend or CPU does not run (module docstring)."""
    if precision not in PRECISIONS:
        raise ValueError(f'unknown precision {precision!r}; choose one of {", ".join(PRECISIONS)}')
    if precision == 'fp32':
        return
    if backend != 'openvino':
        raise ValueError(f'--precision {precision} is exported for --backend openvino only; {backend} folders are fp32')
    if precision == 'bf16':
        refuse_emulated_bf16()
    if precision == 'int8':
        _nncf()


def _train_set_cfg(cfg):
    """The config's train set with its test pipeline (wrappers such as RepeatDataset taken off)."""
    dataset = cfg.train_dataloader.dataset
    while 'dataset' in dataset:
        dataset = dataset.dataset
    if 'datasets' in dataset:
        raise ValueError('calibration images are drawn from one train set, not a ConcatDataset: '
                         'set train_dataloader.dataset to one dataset (--cfg-options)')
    dataset = ConfigDict(dataset.to_dict() if hasattr(dataset, 'to_dict') else dataset)
    dataset.pipeline = cfg.test_dataloader.dataset.pipeline
    return dataset


def calibration_inputs(cfg, meta, count, seed=0, images=None):
    """``count`` images of ``cfg``'s train set (a seeded random choice), or the given uint8 (3, H, W) ``images``,
    as the image graph's (1, 3, H, W) inputs, and a description of them for deploy.json. A train set with
    fewer images is refused in one line."""
    if images is not None:
        return [graph_input(meta, img) for img in images], dict(dataset='given', images=len(images))
    dataset_cfg = _train_set_cfg(cfg)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        dataset = DATASETS.build(dataset_cfg)
    if count < 1 or count > len(dataset):
        raise ValueError(f'--calib-images {count}: the train set ({dataset_cfg.get("data_root", "")}) has '
                         f'{len(dataset)} '
                         f'images; choose 1 to {len(dataset)}')
    chosen = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:count].tolist()
    inputs = [graph_input(meta, dataset[i]['inputs']) for i in chosen]
    source = dict(dataset=dataset_cfg.type, data_root=dataset_cfg.get('data_root'),
                  ann_file=dataset_cfg.get('ann_file'),
                  split='train', pipeline='test', images=count, seed=seed)
    return inputs, source


def quantize_graph(xml_path, inputs):
    """Quantize the OpenVINO IR ``xml_path`` (and its .bin) in place to int8 with NNCF on ``inputs`` (a list of
    input tensors; module docstring). Returns NNCF's settings for deploy.json."""
    nncf, ov = _nncf(), openvino_module()
    model = ov.Core().read_model(str(xml_path))
    quantized = nncf.quantize(model, nncf.Dataset([x.numpy() for x in inputs]), subset_size=len(inputs),
                              model_type=nncf.ModelType.TRANSFORMER)
    stem = osp.splitext(xml_path)[0]
    ov.save_model(quantized, f'{stem}.int8.xml', compress_to_fp16=False)
    del model, quantized
    for ext in ('.xml', '.bin'):
        os.replace(f'{stem}.int8{ext}', f'{stem}{ext}')
    return dict(tool='nncf', version=nncf.__version__, method='quantize', model_type='transformer', preset='mixed')


def tuned_on():
    """The machine a folder was exported on (deploy.json): its CPU, OpenVINO's capabilities of it and version."""
    ov = openvino_module()
    name = next((line.split(':', 1)[1].strip() for line in open('/proc/cpuinfo') if line.startswith('model name')),
                platform.processor()) if osp.isfile('/proc/cpuinfo') else platform.processor()
    return dict(cpu=name, capabilities=cpu_capabilities(), openvino=ov.get_version())
