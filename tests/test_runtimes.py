"""The runtimes of the deploy form (effvit_mm/deployment/runtimes.py) give the eager outputs: torch.compile (inductor,
freezing), AOTInductor, onnxruntime and OpenVINO of the ONNX export; LITv2 reaches OpenVINO through its
deploy form (DTM as sampling + GEMM), while its eval form's ONNX DeformConv is refused in one line;
tools/deployment/export_openvino.py writes IR and tools/deployment/export_aot.py a .pt2 package that match the eval model."""
import copy
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import effvit_mm
from effvit_mm.deployment.export_tools import scaled_diff
from effvit_mm.models.layers import switch_to_deploy
from effvit_mm.deployment.runtimes import RUNTIMES, RuntimeUnavailable, as_list, build_runtime

ROOT = Path(__file__).parents[1]


def deployed(name, randomise):
    model = randomise(effvit_mm.get_backbone(name))
    return model, switch_to_deploy(copy.deepcopy(model))


def needs(runtime):
    if runtime not in ('compile', 'aot'):
        pytest.importorskip('onnxruntime' if runtime == 'onnxruntime' else 'openvino')


def cases():
    """Every runtime for one variant per family; compiling SwiftFormer and LITv2 (about a minute each
    here) only in the slow run."""
    for name in ('shvit-s1', 'swiftformer-xs', 'litv2-s'):
        for runtime in RUNTIMES:
            slow = name != 'shvit-s1' and runtime in ('compile', 'aot')
            yield pytest.param(name, runtime, marks=[pytest.mark.slow] if slow else [])


@pytest.mark.parametrize('name,runtime', cases())
def test_runtime_matches_eager(name, runtime, randomise, tmp_path):
    needs(runtime)
    model, deploy = deployed(name, randomise)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    run = build_runtime(runtime, deploy, x, str(tmp_path))
    with torch.no_grad():
        expected = as_list(model(x))
    got = run(x)
    assert len(got) == len(expected) == len(model.out_indices)
    for e, g in zip(expected, got):
        assert g.shape == e.shape and scaled_diff(e, g) < 1e-4


def test_openvino_refuses_the_deformable_conv_in_one_line(randomise, tmp_path):
    needs('openvino')
    model = randomise(effvit_mm.get_backbone('litv2-s', out_indices=(3,)))
    with pytest.raises(RuntimeUnavailable, match='OpenVINO cannot read .*DeformConv'):
        build_runtime('openvino', model, torch.rand(1, 3, 64, 64), str(tmp_path))
    with pytest.raises(ValueError, match='unknown runtime'):
        build_runtime('tensorrt', model, torch.rand(1, 3, 64, 64), str(tmp_path))


@pytest.mark.parametrize('target,outputs', [('litv2:s', 4), ('shvit-s1_3rdparty_in1k', 1)])
def test_export_openvino_tool(target, outputs, tmp_path):
    """tools/deployment/export_openvino.py: LITv2's backbone (through its deploy form) and a classifier by its zoo
    name, to IR with fp32 weights, equal to the eval model in PyTorch."""
    pytest.importorskip('openvino')
    out = tmp_path / 'model.xml'
    result = subprocess.run([sys.executable, 'tools/deployment/export_openvino.py', target, str(out), '--shape', '64',
                             '--runs', '1', '--threads', '2'], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert lines[-1].startswith('OK: max scaled diff') and 'OpenVINO' in lines[-1]
    assert sum(line.strip().startswith(('feat', 'logits')) for line in lines) == outputs
    assert out.with_suffix('.bin').stat().st_size > 4 * 1e6  # fp32 weights (LITv2-S: 28M, SHViT-S1: 6.3M)
    bad = subprocess.run([sys.executable, 'tools/deployment/export_openvino.py', target, str(tmp_path / 'model.onnx')],
                         cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and 'OUT must end with .xml' in bad.stderr


@pytest.mark.slow  # about 40 s of AOTInductor compilation: .ci/run runs it among its slow checks
def test_export_aot_tool(tmp_path):
    """tools/deployment/export_aot.py: a classifier by its zoo name, compiled ahead of time into a .pt2 package that
    torch loads without effvit_mm and that gives the eval model's logits."""
    out = tmp_path / 'model.pt2'
    result = subprocess.run([sys.executable, 'tools/deployment/export_aot.py', 'shvit-s1_3rdparty_in1k', str(out), '--shape',
                             '64', '--batch', '2', '--runs', '1', '--threads', '2'], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert lines[-1].startswith('OK: max scaled diff') and 'AOTInductor' in lines[-1]
    assert 'deploy form' in lines[-3] and lines[-2].strip().startswith('logits: max abs diff')
    load = ('import sys, torch, torch._inductor\n'
            'out = torch._inductor.aoti_load_package(sys.argv[1])(torch.rand(2, 3, 64, 64))\n'
            'print(tuple(out.shape), "effvit_mm" in sys.modules)\n')
    loaded = subprocess.run([sys.executable, '-c', load, str(out)], capture_output=True, text=True, cwd=tmp_path)
    assert loaded.stdout.strip().splitlines()[-1] == '(2, 1000) False', loaded.stderr[-2000:]
    bad = subprocess.run([sys.executable, 'tools/deployment/export_aot.py', 'shvit:s1', str(tmp_path / 'model.so')],
                         cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and 'OUT must end with .pt2' in bad.stderr
