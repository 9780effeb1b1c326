"""Multiply-add counting (effvit_mm/analysis/mac_count.py, tools/analysis_tools/get_flops.py)."""
import json
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from effvit_mm.analysis.mac_count import flop_analyzer
from effvit_mm.models.layers import OffsetDeformConv2d

ROOT = Path(__file__).parents[1]


def by_operator(model, x):
    analyzer = flop_analyzer(model.eval(), x)
    analyzer.unsupported_ops_warnings(False)
    return analyzer.by_operator()


def test_deform_conv_counts_as_a_conv_of_its_geometry():
    x = torch.randn(2, 8, 14, 10)
    deform = by_operator(OffsetDeformConv2d(8, 16, 2, 2), x)
    plain = by_operator(nn.Conv2d(8, 16, 2, 2), x)
    assert deform['deform_conv'] == plain['conv'] == 2 * 16 * 7 * 5 * 8 * 2 * 2
    assert deform['conv'] == plain['conv'] // 2  # the offset conv: 8 channels out instead of 16


def test_fused_attention_counts_as_its_two_matmuls():
    class Fused(nn.Module):
        def forward(self, q, k, v):
            return F.scaled_dot_product_attention(q, k, v)

    class Explicit(nn.Module):
        def forward(self, q, k, v):
            return (q @ k.transpose(-2, -1)).softmax(-1) @ v

    q, k, v = torch.randn(2, 3, 10, 8), torch.randn(2, 3, 6, 8), torch.randn(2, 3, 6, 5)
    assert by_operator(Fused(), (q, k, v))['attention'] == by_operator(Explicit(), (q, k, v))['matmul'] \
        == 2 * 3 * 10 * 6 * (8 + 5)


def test_get_flops_beside_the_paper(tmp_path):
    out = tmp_path / 'flops.json'
    subprocess.run([sys.executable, 'tools/analysis_tools/get_flops.py', 'configs/litv2_s_in1k.py', '--out', str(out)],
                   cwd=ROOT, check=True, capture_output=True)
    row = json.loads(out.read_text())
    assert row['input'] == [224, 224] and row['params'] == 27_844_000  # the authors' code
    assert abs(row['macs'] / row['paper_macs'] - 1) < 0.02  # 3.74G vs 3.7G: DCN and attention counted
    log = subprocess.run([sys.executable, 'tools/analysis_tools/get_flops.py', 'configs/retinanet_litv2_s_coco.py', '--shape', '128'],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    assert 'backbone + neck at 128x128' in log and 'paper' not in log
