"""Core ML export (effvit_mm/deployment/export_coreml.py, tools/deployment/export_coreml.py): SHViT and SwiftFormer convert to
ML programs whose saved package has the expected inputs / outputs (off macOS a package cannot be run), LITv2
fails with a one-line error naming the op, the CLI. Small inputs (64x64), random weights."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.registry import MODELS

import effvit_mm  # noqa: F401  (registers the backbones)
from effvit_mm.deployment.export_coreml import (ExportCheckError, UnsupportedOpError, check_package, convert_coreml,
                                     describe_features)

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip('coremltools')


@pytest.fixture
def tool(monkeypatch):
    """tools/deployment/export_coreml.py as a module (its TQDM_DISABLE default kept out of this process)."""
    monkeypatch.setenv('TQDM_DISABLE', '1')
    spec = importlib.util.spec_from_file_location('export_coreml_tool', ROOT / 'tools' / 'deployment' / 'export_coreml.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_backbone_deploy_converts(tmp_path, randomise):
    model = randomise(MODELS.build(dict(type='SHViT', arch='s1')))
    model.switch_to_deploy()
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        feats = model(x)
    names = [f'feat{i}' for i in range(len(feats))]
    path = tmp_path / 'shvit_s1.mlpackage'
    mlmodel = convert_coreml(model, x, path, names)
    inputs = [('input', 'FLOAT32', (1, 3, 64, 64))]
    outputs = [(n, 'FLOAT32', tuple(f.shape)) for n, f in zip(names, feats)]
    assert describe_features(mlmodel.get_spec()) == (inputs, outputs)
    assert outputs[-1][2] == (1, 320, 1, 1)  # stride 64
    check_package(path, inputs, outputs)
    with pytest.raises(ExportCheckError, match='outputs'):
        check_package(path, inputs, outputs[:-1])


def test_cli_classifier_image_input(tmp_path):
    out = tmp_path / 'swiftformer_xs.mlpackage'
    log = subprocess.run(
        [sys.executable, 'tools/deployment/export_coreml.py', 'configs/swiftformer_xs_in1k.py', str(out), '--res', '64',
         '--deploy'], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert log.returncode == 0, log.stdout + log.stderr
    assert 'output logits: FLOAT32 1x1000' in log.stdout and 'random weights' in log.stderr
    for noise in ('has not been tested', 'libcoremlpython', 'Converting PyTorch Frontend', 'TracerWarning'):
        assert noise not in log.stdout + log.stderr
    check_package(out, [('image', 'image RGB', (1, 3, 64, 64))], [('logits', 'FLOAT32', (1, 1000))])


def test_litv2_unsupported(tmp_path):
    model = MODELS.build(dict(type='LITv2', arch='s')).eval()
    with pytest.raises(UnsupportedOpError, match=r"'torchvision::deform_conv2d'.*LITv2 cannot be exported") as e:
        convert_coreml(model, torch.zeros(1, 3, 64, 64), tmp_path / 'litv2.mlpackage', ['feat0'])
    assert '\n' not in str(e.value)
    assert not (tmp_path / 'litv2.mlpackage').exists()
    # deployed, the DTM is grid sampling + GEMM, and the rank-8 window partition of HiLo is refused
    with pytest.raises(UnsupportedOpError, match=r'rank <= 5.*cannot be exported to Core ML') as e:
        convert_coreml(model.switch_to_deploy(), torch.zeros(1, 3, 64, 64), tmp_path / 'litv2.mlpackage',
                       [f'feat{i}' for i in range(4)])
    assert '\n' not in str(e.value)


def test_cli_errors(tool, tmp_path, monkeypatch):
    def fail(msg):
        raise UnsupportedOpError(msg)

    with pytest.raises(SystemExit):
        tool.parse_args(['shvit:s1', str(tmp_path / 'x.mlpackage'), '--input', 'image'])  # no mean / std
    with pytest.raises(SystemExit):
        tool.parse_args(['shvit:s1', str(tmp_path / 'x.mlmodel')])
    monkeypatch.setattr(tool, 'convert_coreml', lambda *a, **k: fail("no conversion for op 'x'"))
    with pytest.raises(SystemExit, match="^error: shvit:s1: no conversion for op 'x'$"), \
            pytest.warns(UserWarning, match='random weights'):
        tool.main(['shvit:s1', str(tmp_path / 'x.mlpackage'), '--res', '32'])
