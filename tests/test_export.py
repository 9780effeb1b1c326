"""ONNX export (effvit_mm/deployment/onnx_export.py, tools/deployment/export_onnx.py): one variant per family exported with the
dynamo exporter and run in onnxruntime (random weights and BN statistics), deploy mode, the CLI."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS

import effvit_mm  # noqa: F401  (registers the backbones)
from effvit_mm.apis.targets import parse_spec, test_crop
from effvit_mm.deployment.export_tools import compare_onnxruntime, max_abs_diff, scaled_diff
from effvit_mm.deployment.onnx_export import export_onnx

ROOT = Path(__file__).resolve().parents[1]

onnx = pytest.importorskip('onnx')
ort = pytest.importorskip('onnxruntime')
pytest.importorskip('onnxscript')


def test_parse_spec():
    assert parse_spec('shvit:s1') == ('SHViT', 's1')
    assert parse_spec('SwiftFormer:xs') == ('SwiftFormer', 'xs')
    assert parse_spec('litv2:s') == ('LITv2', 's')
    assert parse_spec('configs/shvit_s1_in1k.py') is None
    assert parse_spec('vit:b') is None and parse_spec('shvit:') is None


def test_test_crop():
    assert test_crop(Config.fromfile(ROOT / 'configs/shvit_s1_in1k.py')) == (224, 224)
    assert test_crop(Config.fromfile(ROOT / 'configs/litv2_b_384px_in1k.py')) == (384, 384)


def test_diffs():
    a = torch.tensor([[0.0, 10.0]])
    assert max_abs_diff(a, np.array([[0.5, 10.0]], dtype=np.float32)) == 0.5
    assert scaled_diff(a, a + 0.5) == pytest.approx(0.05)
    with pytest.raises(ValueError):
        max_abs_diff(a, a[0])


@pytest.mark.parametrize('family, arch, deploy', [
    ('SHViT', 's1', False), ('SwiftFormer', 'xs', True), ('LITv2', 's', False)])
def test_backbone_export_matches_onnxruntime(tmp_path, family, arch, deploy, randomise):
    model = randomise(MODELS.build(dict(type=family, arch=arch)))
    if deploy:
        model.switch_to_deploy()
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        n_out = len(model(x))
    path = tmp_path / f'{family}.onnx'
    proto = export_onnx(model, x, str(path), [f'feat{i}' for i in range(n_out)])
    ops = {n.op_type for n in proto.graph.node}
    assert [o.name for o in proto.graph.output] == [f'feat{i}' for i in range(n_out)]
    if family == 'LITv2':
        assert 'DeformConv' in ops  # torchvision's deform_conv2d, one to one
    if deploy:
        assert 'BatchNormalization' not in ops or family == 'SwiftFormer'  # SwiftFormer's output norms stay
    res = compare_onnxruntime(model, x, path, runs=1, threads=1)
    assert len(res['diffs']) == n_out
    assert max(res['diffs']) < 1e-4, res['diffs']
    assert res['torch_ips'] > 0 and res['ort_ips'] > 0


def test_deform_conv_needs_opset_19(tmp_path):
    model = MODELS.build(dict(type='LITv2', arch='s')).eval()
    with pytest.raises(ValueError, match='opset >= 19'):
        export_onnx(model, torch.zeros(1, 3, 64, 64), str(tmp_path / 'x.onnx'), ['feat0'], opset=17)


def test_cli_classifier_deploy_dynamic_batch(tmp_path):
    out = tmp_path / 'shvit_s1.onnx'
    log = subprocess.run(
        [sys.executable, 'tools/deployment/export_onnx.py', 'configs/shvit_s1_in1k.py', str(out), '--shape', '64',
         '--batch', '2', '--deploy', '--dynamic-batch', '--runs', '0', '--threads', '1'],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert log.returncode == 0, log.stdout + log.stderr
    assert 'OK: max scaled diff' in log.stdout and 'random weights' in log.stderr
    sess = ort.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    assert [o.name for o in sess.get_outputs()] == ['logits']
    logits, = sess.run(None, {'input': np.zeros((3, 3, 64, 64), np.float32)})  # batch 3 != 2: dynamic
    assert logits.shape == (3, 1000)


def test_cli_detector_backbone_and_neck(tmp_path):
    """A detection config: backbone + neck (FPN levels), deploy mode, checked against onnxruntime."""
    out = tmp_path / 'retinanet_shvit_s4.onnx'
    log = subprocess.run(
        [sys.executable, 'tools/deployment/export_onnx.py', 'configs/retinanet_shvit_s4_coco.py', str(out), '--shape', '64', '96',
         '--deploy', '--runs', '0', '--threads', '1'], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert log.returncode == 0, log.stdout + log.stderr
    assert 'OK: max scaled diff' in log.stdout
    sess = ort.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    names = [o.name for o in sess.get_outputs()]
    assert names == [f'feat{i}' for i in range(len(names))] and len(names) >= 3


def test_an_export_that_fails_says_why_in_one_line(tmp_path):
    """The exporter's own error runs for pages (banners, graph dumps): OnnxExportError carries its innermost
    reason in one line, which the tools print as ``error: ...``."""
    from effvit_mm.deployment.onnx_export import OnnxExportError

    class DataDependent(torch.nn.Module):
        def forward(self, x):
            return x * 2 if x.sum() > 0 else x.nonzero().float()

    with pytest.raises(OnnxExportError) as error:
        export_onnx(DataDependent().eval(), torch.rand(1, 3, 8, 8), str(tmp_path / 'x.onnx'), ['out'],
                    dynamic_batch=True)
    message = str(error.value)
    assert '\n' not in message and '\x1b' not in message and len(message) < 400, message
    assert message.startswith('the ONNX export of DataDependent failed (TorchExportError): Could not guard on '
                              'data-dependent expression'), message
