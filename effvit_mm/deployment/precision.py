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

  With ``max_drop`` (``--max-drop``) the quantization is accuracy-controlled
  (``nncf.quantize_with_accuracy_control``): the whole folder is evaluated with the config's val evaluator
  on ``val_images`` val images (test images for a config without a val set), fp32 and int8, and judged by
  the largest drop of its headline metrics (COCO bbox and segm AP, mIoU); while that exceeds ``max_drop``
  (in the metrics' units: 0.01 AP, 1.0 mIoU), NNCF puts back into float the quantized operations whose
  removal brings the image graph's outputs closest to fp32's (on the first :data:`RANKING_IMAGES` of those
  images), one group at a time, and evaluates again.
  deploy.json names the operations kept in float and the metrics; a bound still missed with every
  operation tried is an error.
"""
import copy
import os
import os.path as osp
import platform
import re
import tempfile

import torch
from mmengine.config import ConfigDict
from mmengine.evaluator import Evaluator
from mmengine.registry import DATASETS, DefaultScope

from .deployed_model import DeployedModel, graph_input, padded_size
from .parity import HEADLINE, METRIC_ROUNDING
from .runtimes import (OpenVINOModel, RuntimeUnavailable, cpu_capabilities, open_runtime, openvino_module,
                       refuse_emulated_bf16)

__all__ = ['IMAGE_GRAPHS', 'NNCF_VERSION', 'PRECISIONS', 'AccuracyControl', 'calibration_inputs', 'check_precision',
           'cpu_capabilities', 'quantize_graph', 'tuned_on']

PRECISIONS = ('fp32', 'bf16', 'int8')
NNCF_VERSION = '3.4.0'  # tools/requirements.txt
IMAGE_GRAPHS = ('detector', 'segmentor')  # the graphs int8 quantizes (module docstring)
RANKING_IMAGES = 32  # --max-drop: the val images NNCF ranks operations on (by their outputs' error)


def _nncf():
    try:
        import nncf
    except ImportError:
        raise RuntimeUnavailable(f'--precision int8 needs NNCF (pip install nncf=={NNCF_VERSION}; tools/install.sh '
                                 'installs it)') from None
    return nncf


def check_precision(precision, backend, max_drop=None):
    """Refuse, in one line, a precision this backend or CPU does not run, or a ``max_drop`` that does not
    apply (module docstring)."""
    if precision not in PRECISIONS:
        raise ValueError(f'unknown precision {precision!r}; choose one of {", ".join(PRECISIONS)}')
    if max_drop is not None and precision != 'int8':
        raise ValueError("--max-drop bounds an int8 export's accuracy loss; add --precision int8")
    if max_drop is not None and not max_drop > 0:
        raise ValueError(f'--max-drop {max_drop}: give the largest metric drop to accept, e.g. 0.01 (COCO AP) '
                         'or 1.0 (mIoU)')
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


class AccuracyControl:
    """The evaluation ``nncf.quantize_with_accuracy_control`` runs (module docstring): the exported fp32
    folder ``folder`` (``meta``: its deploy.json) with its image graph replaced by the model under test, on
    the first ``count`` images of ``cfg``'s val set, judged by the largest drop of its headline metrics."""

    def __init__(self, cfg, meta, folder, max_drop, count=None):
        split = next((s for s in ('val', 'test') if cfg.get(f'{s}_dataloader') and cfg.get(f'{s}_evaluator')), None)
        if split is None:
            raise ValueError('--max-drop evaluates on the config\'s val (or test) set: the config has neither '
                             'a val_dataloader nor a test_dataloader with an evaluator')
        dataset_cfg = copy.deepcopy(cfg[f'{split}_dataloader'].dataset)
        with DefaultScope.overwrite_default_scope(cfg.default_scope):
            dataset = DATASETS.build(dataset_cfg)
        count = len(dataset) if count is None else count
        if count < 1 or count > len(dataset):
            raise ValueError(f'--val-images {count}: the {split} set has {len(dataset)} images; choose 1 to '
                             f'{len(dataset)}')
        self.batch_size = cfg[f'{split}_dataloader'].get('batch_size', 1)
        items = [(d['inputs'], d['data_samples']) for d in (dataset[i] for i in range(count))]
        # (image, data sample, the size its test batch pads it to)
        self.items = [(img, sample, padded_size(meta, [i for i, _ in items[b:b + self.batch_size]])
                       if meta['task'] == 'detection' else None)
                      for b in range(0, count, self.batch_size) for img, sample in items[b:b + self.batch_size]]
        self.split, self.evaluator_cfg = split, cfg[f'{split}_evaluator']
        self.scope, self.meta, self.max_drop, self.dataset_meta = cfg.default_scope, meta, max_drop, dataset.metainfo
        self.image_graph = next(name for name in IMAGE_GRAPHS if name in meta['graphs'])
        self.others = {name: open_runtime(osp.join(folder, g['file']), 'openvino')
                       for name, g in meta['graphs'].items() if name != self.image_graph}
        self.metric = self.reference = None

    def evaluate(self, graph, items):
        """The config's val metrics of the folder with ``graph`` as its image graph on ``items`` (batched as
        the config's loader batches them), and the graph's outputs for each image (NNCF ranks by them)."""
        outputs = []

        def recorded(*xs):
            out = graph(*xs)
            outputs.append([o.numpy() for o in out])
            return out

        model = DeployedModel.from_graphs(self.meta, {**self.others, self.image_graph: recorded})
        evaluator = Evaluator(copy.deepcopy(self.evaluator_cfg))
        evaluator.dataset_meta = self.dataset_meta
        samples = [item[1].clone() for item in items]
        for metric in evaluator.metrics:  # COCO: only these images count
            if hasattr(metric, 'img_ids'):
                metric.img_ids = [s.img_id for s in samples]
        with DefaultScope.overwrite_default_scope(self.scope):
            for i in range(0, len(items), self.batch_size):  # batched as the test loop batches (padding)
                evaluator.process(model.predict([item[0] for item in items[i:i + self.batch_size]],
                                                samples[i:i + self.batch_size]))
            metrics = evaluator.evaluate(len(items))
        if self.metric is None:
            self.metric = next((k for k in metrics if re.search(HEADLINE, k)), None)
            if self.metric is None:
                raise ValueError(f'--max-drop needs a COCO AP or mIoU val metric; the config gives '
                                 f'{", ".join(metrics)}')
        return {k: round(float(v), 6) for k, v in metrics.items() if re.search(HEADLINE, k)}, outputs

    def __call__(self, compiled, items):  # NNCF's validation_fn
        """The first headline metric less the largest drop of any from :attr:`reference` (fp32's): NNCF's drop
        is then the worst metric's (e.g. segm AP where it drops more than bbox AP)."""
        metrics, outputs = self.evaluate(OpenVINOModel.from_compiled(compiled), list(items))
        return self.reference[self.metric] - max(self.reference[k] - metrics[k] for k in self.reference), outputs


def _compiled(model):
    """An OpenVINO model compiled for the CPU at f32 (as NNCF compiles the models it validates)."""
    ov = openvino_module()
    return OpenVINOModel.from_compiled(ov.Core().compile_model(model, 'CPU', {'INFERENCE_PRECISION_HINT': 'f32'}))


def _quantized_operations(model):
    """The operations of an OpenVINO model whose activations are quantized (fed by a FakeQuantize of a
    computed value, not of weights)."""
    return {t.get_node().get_friendly_name() for op in model.get_ops() if op.get_type_name() == 'FakeQuantize'
            and op.input(0).get_source_output().get_node().get_type_name() != 'Constant'
            for t in op.output(0).get_target_inputs()}


def quantize_graph(xml_path, inputs, control=None):
    """Quantize the OpenVINO IR ``xml_path`` (and its .bin) in place to int8 with NNCF on ``inputs`` (a list of
    input tensors), accuracy-controlled by ``control`` (an :class:`AccuracyControl`; module docstring).
    Returns NNCF's settings and, with ``control``, its outcome for deploy.json."""
    nncf, ov = _nncf(), openvino_module()
    model = ov.Core().read_model(str(xml_path))
    calibration = nncf.Dataset([x.numpy() for x in inputs])
    settings = dict(tool='nncf', version=nncf.__version__, method='quantize', model_type='transformer',
                    preset='mixed')
    if control is None:
        quantized = nncf.quantize(model, calibration, subset_size=len(inputs), model_type=nncf.ModelType.TRANSFORMER)
    else:
        from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters
        control.reference = control.evaluate(_compiled(model), control.items)[0]
        validation = nncf.Dataset(control.items, lambda item: graph_input(control.meta, item[0], item[2]).numpy())
        with tempfile.TemporaryDirectory() as tmp:
            quantized = nncf.quantize_with_accuracy_control(
                model, calibration, validation, control, max_drop=control.max_drop + METRIC_ROUNDING,
                subset_size=len(inputs), model_type=nncf.ModelType.TRANSFORMER,
                advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(
                    ranking_subset_size=min(len(control.items), RANKING_IMAGES), intermediate_model_dir=tmp))
            every_model = ov.Core().read_model(osp.join(tmp, 'intermediate_model.xml'))  # every operation quantized
        every = _quantized_operations(every_model)
        whole, int8 = (control.evaluate(_compiled(m), control.items)[0] for m in (every_model, quantized))
        fp32 = control.reference
        drop = max(fp32[k] - int8[k] for k in fp32)
        kept = sorted(every - _quantized_operations(quantized))
        if drop > control.max_drop + METRIC_ROUNDING:
            raise ValueError(f'int8 loses {drop:.4f} ({", ".join(fp32)}: the largest drop) on {len(control.items)} '
                             f'{control.split} images with {len(kept)} operations kept in float, more than --max-drop '
                             f'{control.max_drop}: export at fp32, or accept a larger drop')
        settings.update(method='quantize_with_accuracy_control', max_drop=control.max_drop,
                        validation=dict(split=control.split, images=len(control.items), metrics=list(fp32), fp32=fp32,
                                        int8_every_operation=whole, int8=int8),
                        quantized_operations=len(every), kept_in_float=kept)
    stem = osp.splitext(xml_path)[0]
    ov.save_model(quantized, f'{stem}.int8.xml', compress_to_fp16=False)
    del model, quantized
    for ext in ('.xml', '.bin'):
        os.replace(f'{stem}.int8{ext}', f'{stem}{ext}')
    return settings


def tuned_on():
    """The machine a folder was exported on (deploy.json): its CPU, OpenVINO's capabilities of it and version."""
    ov = openvino_module()
    name = next((line.split(':', 1)[1].strip() for line in open('/proc/cpuinfo') if line.startswith('model name')),
                platform.processor()) if osp.isfile('/proc/cpuinfo') else platform.processor()
    return dict(cpu=name, capabilities=cpu_capabilities(), openvino=ov.get_version())
