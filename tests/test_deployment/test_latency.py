"""End-to-end timing of whole models (tools/analysis_tools/benchmark.py --whole, effvit_mm/analysis/latency.py): every
form runs the same work (equal outputs under a calibrated score threshold), each call's time is split into parts that the
sub-calls really took (no part counted twice: the rest stays >= 0), and the CLI writes its files and
refuses what it cannot time in one line."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mmengine.config import Config

from effvit_mm.analysis.latency import PARTS, score_threshold_key, time_whole_models
from effvit_mm.deployment.precision import cpu_capabilities

ROOT = Path(__file__).resolve().parents[2]


def test_the_final_score_threshold_is_found():
    assert score_threshold_key(Config.fromfile(str(ROOT / 'configs/mask_rcnn_shvit_s4_coco.py'))) == \
        'model.test_cfg.rcnn.score_thr'
    assert score_threshold_key(Config.fromfile(str(ROOT / 'configs/retinanet_litv2_s_coco.py'))) == \
        'model.test_cfg.score_thr'
    assert score_threshold_key(Config.fromfile(str(ROOT / 'configs/fpn_shvit_s4_ade20k.py'))) is None


def test_each_call_is_split_into_the_parts_it_ran():
    rows = time_whole_models([str(ROOT / 'configs/mask_rcnn_shvit_s4_demococo.py')], backends=(), warmup=1,
                             repeats=2, shape=(96, 128), candidates=1, log=lambda *_: None)
    assert [r['form'] for r in rows] == ['mmdet', 'pytorch']
    anchor, ours = rows
    assert anchor['speedup'] == 1.0
    # the R-CNN score threshold lets exactly one class score pass: one detection (and mask) in both forms
    assert anchor['outputs'] == ours['outputs'] == 1
    for row in rows:
        parts = row['parts']
        assert set(parts) == set(PARTS)
        assert parts[PARTS[0]] > 0 and parts[PARTS[1]] > 0 and parts[PARTS[2]] > 0, row
        assert parts[PARTS[3]] >= 0, row  # negative if a sub-call were timed twice
        assert not row['merged_graph']


@pytest.mark.slow  # an export, about a minute: .ci/run runs it among its slow checks
def test_whole_mode_of_the_benchmark_tool(tmp_path):
    out = tmp_path / 'whole.json'
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, 'tools/analysis_tools/benchmark.py', 'configs/fpn_shvit_s4_ade20k.py', '--whole', '--backends',
           'onnxruntime', 'openvino', '--precisions', 'int8', 'bf16', '--shape', '64', '--warmup', '1', '--repeats', '1',
           '--threads', '2', '--out', str(out)]
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = json.loads(out.read_text())
    bf16 = 'BF16' in cpu_capabilities()
    assert [r['form'] for r in rows] == ['mmseg', 'pytorch', 'onnxruntime', 'openvino-int8'] + ['openvino-bf16'] * bf16
    if not bf16:
        assert 'openvino-bf16 not timed: this CPU' in run.stdout + run.stderr
    assert rows[2]['merged_graph'] and rows[2]['export_s'] > 0 and rows[2]['parts'][PARTS[1]] == 0
    assert len({r['outputs'] for r in rows[:3]}) == 1  # the same classes predicted (fp32)
    table = (tmp_path / 'whole.md').read_text()
    assert '| configs/fpn_shvit_s4_ade20k.py | openvino-int8 |' in table and 'INT8' in table.splitlines()[0]
    bad = subprocess.run([sys.executable, 'tools/analysis_tools/benchmark.py', 'configs/shvit_s1_in1k.py', '--whole'], cwd=ROOT,
                         env=env, capture_output=True, text=True)
    assert bad.returncode != 0
    assert bad.stderr.strip().splitlines()[-1] == (
        'error: configs/shvit_s1_in1k.py is a config of mmpretrain: --whole times mmdet detectors and mmseg '
        'segmentors (a classifier: drop --whole)')
