"""The runtimes of the deploy form (effvit_mm/runtimes.py) give the eager outputs: torch.compile (inductor,
freezing), onnxruntime and OpenVINO of the ONNX export; LITv2 reaches OpenVINO through its deploy form
(DTM as sampling + GEMM), while its eval form's ONNX DeformConv is refused in one line."""
import copy

import pytest
import torch

import effvit_mm
from effvit_mm.export import scaled_diff
from effvit_mm.models.layers import switch_to_deploy
from effvit_mm.runtimes import RUNTIMES, RuntimeUnavailable, as_list, build_runtime


def deployed(name, randomise):
    model = randomise(effvit_mm.get_backbone(name))
    return model, switch_to_deploy(copy.deepcopy(model))


def needs(runtime):
    if runtime != 'compile':
        pytest.importorskip('onnxruntime' if runtime == 'onnxruntime' else 'openvino')


@pytest.mark.parametrize('runtime', RUNTIMES)
@pytest.mark.parametrize('name', ['shvit-s1', 'litv2-s'])
def test_runtime_matches_eager(name, runtime, randomise, tmp_path):
    if name == 'litv2-s' and runtime == 'compile':
        pytest.skip('slow here (about a minute); compile of LITv2: tests/test_compile_export.py')
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
