"""tools/analysis_tools/benchmark.py on tiny cases (timings are not checked, only what the tool measures and writes).
The deploy-mode kernels it times are tested in tests/test_models/test_layers/test_fused.py."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).parents[1]


def run(*cmd, ok=True):
    result = subprocess.run([sys.executable, 'tools/analysis_tools/benchmark.py', *map(str, cmd)], cwd=ROOT, capture_output=True,
                            text=True, timeout=600, env={'PYTHONPATH': str(ROOT), 'PATH': '/usr/bin:/bin'})
    log = result.stdout + result.stderr
    assert (result.returncode == 0) == ok, log[-3000:]
    return log


def test_families_timm_peers_external_and_gemm(tmp_path):
    external = tmp_path / 'authors.py'
    external.write_text('import torch\n\ndef make(width):\n    return torch.nn.Conv2d(3, int(width), 3)\n')
    out = tmp_path / 'bench.json'
    log = run('shvit:s1', 'swiftformer:xs', 'litv2:s', '--timm', '--peers', 'mobilevitv2_050',
              '--external', f'authors={external}:make:8', '--res', 64, '--batch', 2, '--warmup', 0, '--repeats', 1,
              '--gemm-size', 128, '--out', out)
    rows = {r['entry']: r for r in json.loads(out.read_text())}
    gemms = {'gemm fp32 128 torch.mm', 'gemm fp32 128 oneDNN'}
    assert set(rows) == gemms | {'shvit:s1 eval', 'shvit:s1 deploy', 'timm:shvit_s1 eval', 'timm:shvit_s1 fused',
                         'swiftformer:xs eval', 'swiftformer:xs deploy', 'timm:swiftformer_xs eval',
                         'timm:swiftformer_xs fused', 'litv2:s eval', 'litv2:s deploy',
                         'timm:mobilevitv2_050 eval', 'timm:mobilevitv2_050 fused', 'authors'}, log
    gemm = max((rows[g] for g in gemms), key=lambda r: r['gflop_s'])  # the peak: the faster GEMM
    assert all(rows[g]['gmacs'] == round(128 ** 3 / 1e9, 4) and rows[g]['img_s'] is None for g in gemms)
    assert gemm['peak_frac'] == 1.0
    # multiply-adds: the external conv exactly; ours as get_flops counts them
    assert rows['authors']['gmacs'] == round(8 * 27 * 62 * 62 / 1e9, 4)
    for name, r in rows.items():
        assert r['ms'] > 0 and r['gflop_s'] > 0 and r['input'] == '64x64' and r['batch'] == 2
        if r['role'] != 'gemm':
            assert r['img_s'] > 0 and r['peak_frac'] == round(r['gflop_s'] / gemm['gflop_s'], 3)
    ratios = rows['shvit:s1 deploy']['ratios']
    assert set(ratios) == {'shvit:s1 eval', 'timm:shvit_s1 eval', 'timm:shvit_s1 fused',
                           'timm:mobilevitv2_050 eval', 'timm:mobilevitv2_050 fused', 'authors'}
    assert ratios['shvit:s1 eval'] == pytest.approx(rows['shvit:s1 deploy']['img_s'] / rows['shvit:s1 eval']['img_s'],
                                                    rel=1e-2)
    assert 'timm:shvit_s1 eval' not in rows['litv2:s deploy']['ratios']  # twins pair with their own variant
    with open(out.with_suffix('.csv')) as f:
        assert [r['entry'] for r in csv.DictReader(f)] == [r['entry'] for r in json.loads(out.read_text())]


def test_detection_config_times_backbone_and_neck(tmp_path):
    out = tmp_path / 'det.json'
    run('configs/retinanet_shvit_s4_coco.py', '--res', 64, 96, '--batch', 1, '--warmup', 0, '--repeats', 1,
        '--modes', 'deploy', '--gemm-size', 0, '--out', out)
    (row, ) = json.loads(out.read_text())
    assert row['entry'] == 'configs/retinanet_shvit_s4_coco.py deploy' and row['input'] == '64x96'
    assert row['peak_frac'] is None and row['gmacs'] > 0


@pytest.mark.slow  # about 40 s: .ci/run runs it among its slow checks
def test_features_mode_and_errors(tmp_path):
    out = tmp_path / 'feat.json'
    run('shvit:s1', '--features', '--res', 64, '--batch', 1, '--warmup', 0, '--repeats', 1, '--modes', 'eval',
        '--gemm-size', 0, '--out', out)
    (row, ) = json.loads(out.read_text())
    assert row['entry'] == 'shvit:s1 eval' and row['gmacs'] > 0
    if not torch.cuda.is_available():
        assert 'no CUDA device here' in run('shvit:s1', '--preset', 'shvit-gpu', ok=False)
    assert 'on CPU the models run in fp32' in run('shvit:s1', '--amp', '--device', 'cpu', ok=False)
    assert 'neither a family:arch spec' in run('shvit:s9x.py', '--out', out, ok=False)
    assert 'expected NAME=FILE.py:FUNC' in run('shvit:s1', '--external', 'oops', '--out', out, ok=False)


@pytest.mark.slow  # about 30 s: .ci/run runs it among its slow checks
def test_runtimes_are_checked_then_timed(tmp_path):
    """onnxruntime and OpenVINO of our deploy form, of timm's fused twin and of an external model: each
    compared with its eager eval model before timing; the fastest backend of each model marked
    (torch.compile and AOTInductor: test_runtimes.py)."""
    pytest.importorskip('onnxruntime')
    pytest.importorskip('openvino')
    external = tmp_path / 'authors.py'
    external.write_text('import torch\n\ndef make():\n    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), '
                        'torch.nn.BatchNorm2d(8).eval(), torch.nn.GELU())\n')
    out = tmp_path / 'cpu_runtimes_shvit_s1.json'  # as tools/analysis_tools/run_speed.sh names it
    run('shvit:s1', '--timm', '--features', '--modes', 'eval', 'deploy', 'onnxruntime', 'openvino', '--res', 64,
        '--external', f'authors={external}:make', '--batch', 2, '--warmup', 0, '--repeats', 1, '--gemm-size', 0,
        '--out', out)
    rows = {r['entry']: r for r in json.loads(out.read_text())}
    assert set(rows) == {'shvit:s1 eval', 'shvit:s1 deploy', 'shvit:s1 onnxruntime', 'shvit:s1 openvino',
                         'timm:shvit_s1 eval', 'timm:shvit_s1 fused', 'timm:shvit_s1 fused onnxruntime',
                         'timm:shvit_s1 fused openvino', 'authors', 'authors onnxruntime', 'authors openvino'}
    assert rows['shvit:s1 eval']['diff'] == 0 and all(r['diff'] < 1e-4 for r in rows.values())
    assert {r['model'] for r in rows.values() if r['fastest']} == {'shvit:s1', 'timm:shvit_s1', 'authors'}
    assert set(rows['shvit:s1 openvino']['ratios']) >= {'shvit:s1 eval', 'timm:shvit_s1 fused openvino',
                                                        'authors', 'authors openvino'}
    assert '| model | fastest backend | img/s | of GEMM peak |' in out.with_suffix('.md').read_text()
    # the README's tables from it (tools/analysis_tools/speed_table.py): ours beside timm's twin, every backend, the ratios
    table = subprocess.run([sys.executable, 'tools/analysis_tools/speed_table.py', str(tmp_path)], cwd=ROOT, capture_output=True,
                           text=True)
    lines = table.stdout.splitlines()
    row = next(line for line in lines if line.startswith('| shvit:s1 | 64x64 | timm:shvit_s1 |')).split(' | ')
    shown = {name: f"{r['img_s']:.0f}" if r['img_s'] >= 100 else f"{r['img_s']:.1f}" for name, r in rows.items()}
    assert row[3:5] == [shown['shvit:s1 eval'], shown['shvit:s1 deploy']]
    assert row[5:7] == ['-', '-'] and row[-1] == shown['timm:shvit_s1 fused openvino'] + ' |'
    best, twin = (max((r for r in rows.values() if r['role'] == role), key=lambda r: r['img_s'])
                  for role in ('ours', 'timm'))
    ratio = best['img_s'] / twin['img_s']  # no compile timed, no GEMM peak (--gemm-size 0): '-'
    assert f"| shvit:s1 | - | {ratio:.2f}x ({best['mode']} vs {twin['mode']}) | - |" in lines
    assert (tmp_path / 'backends.md').read_text().strip() == '\n'.join(lines[:-1]).strip()
    assert 'outputs differ from eager' in run('shvit:s1', '--features', '--modes', 'eval', '--tol', -1, '--res', 64,
                                              '--batch', 1, '--gemm-size', 0, '--out', out, ok=False)
