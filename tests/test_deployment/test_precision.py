"""Exports at a lower precision (tools/deployment/export_model.py --precision, effvit_mm.deployment.precision):
the refusals, in one line, of what a backend or CPU does not run; calibration images that are what the
folder is fed at test time; an int8 folder of the demo Mask R-CNN whose image graph alone is quantized,
close to fp32 and run by tools/test.py --deployed. The accuracy of int8 folders of trained models against
fp32: test_trained_parity.py and test_segmentation.py.
"""
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from effvit_mm.datasets import make_coco
from effvit_mm.deployment import precision as precision_module
from effvit_mm.deployment.precision import calibration_inputs, check_precision, cpu_capabilities
from effvit_mm.deployment.runtimes import OpenVINOModel, RuntimeUnavailable

ROOT = Path(__file__).resolve().parents[2]
DEMO = 'mask_rcnn_shvit_s4_demococo.py'

pytest.importorskip('openvino')


@pytest.fixture(scope='module')
def coco(tmp_path_factory):
    root = tmp_path_factory.mktemp('coco')
    make_coco(root, num_train=6, num_val=3, img_size=(256, 192), seed=3)
    return root


def demo_config(coco):
    """The demo Mask R-CNN on the generated set (train and test splits)."""
    cfg = Config.fromfile(ROOT / 'configs' / DEMO)
    for loader in (cfg.train_dataloader, cfg.test_dataloader):
        loader.dataset.data_root = f'{coco}/'
    cfg.test_evaluator.ann_file = f'{coco}/annotations/instances_val2017.json'
    return cfg


def tool(*args):
    result = subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=900,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return result.returncode, result.stdout + result.stderr


def test_precisions_a_backend_or_cpu_does_not_run_are_refused_in_one_line(coco, monkeypatch):
    with pytest.raises(ValueError, match='for --backend openvino only; onnxruntime folders are fp32'):
        check_precision('int8', 'onnxruntime')
    with pytest.raises(ValueError, match="unknown precision 'fp16'; choose one of fp32, bf16, int8"):
        check_precision('fp16', 'openvino')
    if 'BF16' in cpu_capabilities():
        check_precision('bf16', 'openvino')
    else:  # the CPUs of CI: bf16 refused at export and when a bf16 folder is opened
        for refused in (lambda: check_precision('bf16', 'openvino'), lambda: OpenVINOModel('any.xml', 'bf16')):
            with pytest.raises(RuntimeUnavailable, match='has no native bf16 .AVX512-BF16 or AMX.'):
                refused()
    with pytest.raises(ValueError, match="--max-drop bounds an int8 export's accuracy loss; add --precision int8"):
        check_precision('fp32', 'openvino', max_drop=0.01)
    with pytest.raises(ValueError, match='--max-drop 0: give the largest metric drop to accept, e.g. 0.01'):
        check_precision('int8', 'openvino', max_drop=0)
    monkeypatch.setitem(sys.modules, 'nncf', None)  # NNCF not installed
    with pytest.raises(RuntimeUnavailable, match=r'--precision int8 needs NNCF \(pip install nncf==3\.4\.0'):
        check_precision('int8', 'openvino')
    code, log = tool('tools/deployment/export_model.py', ROOT / 'configs' / DEMO, '--out', coco / 'unused',
                     '--precision', 'int8', '--backend', 'aot')
    assert code == 1 and log.strip().splitlines()[-1] == \
        'error: --precision int8 is exported for --backend openvino only; aot folders are fp32', log[-2000:]
    assert not (coco / 'unused').exists()


def test_calibration_images_are_the_inputs_the_folder_is_fed(coco):
    """The calibration inputs of 3 train images equal what DeployedModel gives its detector graph for each
    alone (normalised, padded to the divisor); more images than the train set has are refused."""
    from effvit_mm.apis.targets import build_model
    from effvit_mm.deployment.export import deployed_in_pytorch
    cfg = demo_config(coco)
    with DefaultScope.overwrite_default_scope('mmdet'):
        deployed = deployed_in_pytorch(cfg, build_model(copy.deepcopy(cfg)))
        inputs, source = calibration_inputs(cfg, deployed.meta, 3)
        assert source == dict(dataset='CocoDataset', data_root=f'{coco}/',
                              ann_file='annotations/instances_train2017.json',
                              split='train', pipeline='test', images=3, seed=0)
        fed, graph = [], deployed.graphs['detector']
        deployed.graphs['detector'] = lambda x: (fed.append(x), graph(x))[1]
        from mmengine.registry import DATASETS

        from effvit_mm.deployment.precision import _train_set_cfg
        dataset = DATASETS.build(_train_set_cfg(cfg))
        chosen = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[:3].tolist()
        for i in chosen:
            item = dataset[i]
            deployed.predict([item['inputs']], [item['data_samples']])
        with pytest.raises(ValueError, match=r'--calib-images 7: the train set .* has 6 images; choose 1 to 6'):
            calibration_inputs(cfg, deployed.meta, 7)
    assert len(fed) == 3 and all(torch.equal(a, b) for a, b in zip(inputs, fed))
    assert all(x.shape[2] % 32 == 0 and x.shape[3] % 32 == 0 for x in inputs)


@pytest.mark.slow  # .ci/run runs it
def test_an_int8_folder_quantizes_the_image_graph_and_runs_in_the_tools(coco, tmp_path):
    """The demo Mask R-CNN (seeded random weights) at int8 on 6 calibration images: deploy.json records the
    precision, NNCF's settings, the calibration set and the machine; the detector graph holds FakeQuantize
    operations and the RoI graphs none; its outputs on the test images are within 2% of PyTorch's (scaled)
    but not equal to them; tools/test.py --deployed evaluates it."""
    from seeded_init import random_model

    from effvit_mm.deployment import DeployedModel
    from effvit_mm.deployment.deployed_model import graph_input
    from effvit_mm.deployment.export import deployed_in_pytorch
    from effvit_mm.deployment.export_tools import scaled_diff
    cfg = demo_config(coco)
    cfg.dump(tmp_path / DEMO)
    model = random_model(cfg)
    torch.save(dict(state_dict=model.state_dict()), tmp_path / 'model.pth')
    out = tmp_path / 'int8'
    code, log = tool('tools/deployment/export_model.py', tmp_path / DEMO, tmp_path / 'model.pth', '--out', out,
                     '--backend', 'openvino', '--precision', 'int8', '--calib-images', 6)
    assert code == 0 and 'for openvino at int8' in log, log[-3000:]
    meta = json.loads((out / 'deploy.json').read_text())
    assert meta['precision'] == 'int8' and meta['quantization']['graphs'] == ['detector']
    assert meta['quantization']['calibration']['images'] == 6 and meta['quantization']['version'] == '3.4.0'
    assert 'INT8' in meta['exported_on']['capabilities']
    quantized = {name: (out / g['file']).read_text().count('type="FakeQuantize"') for name, g in meta['graphs'].items()}
    assert quantized['detector'] >= 50 and quantized['bbox_head'] == quantized['mask_head'] == 0, quantized
    folder = DeployedModel(str(out))
    reference = deployed_in_pytorch(cfg, model)
    from mmengine.registry import DATASETS
    with DefaultScope.overwrite_default_scope('mmdet'):
        dataset = DATASETS.build(cfg.test_dataloader.dataset)
        diffs = []
        for i in range(len(dataset)):
            x = graph_input(folder.meta, dataset[i]['inputs'])
            diffs += [scaled_diff(r, o) for r, o in zip(reference.graphs['detector'](x), folder.graphs['detector'](x))]
    print(f'\nint8 detector graph vs PyTorch on {len(dataset)} test images: scaled differences up to {max(diffs):.4f}')
    assert 1e-4 < max(diffs) < 0.02, diffs
    code, log = tool('tools/test.py', tmp_path / DEMO, out, '--deployed', '--work-dir', tmp_path / 'test')
    assert code == 0 and 'coco/bbox_mAP:' in log and 'coco/segm_mAP:' in log, log[-3000:]
