"""Export a classifier (its logits), a backbone or a detector's / segmentor's backbone + neck to OpenVINO IR
(OUT.xml + OUT.bin, fp32 weights) and check it against PyTorch.

    python tools/deployment/export_openvino.py CONFIG_NAME_OR_SPEC OUT.xml [--checkpoint CKPT] [--partial-checkpoint]
        [--shape H [W]] [--batch N] [--runs 5] [--threads N] [--tol 1e-4]

What is exported, and the default input size, are those of tools/deployment/export_onnx.py (a config, its model-zoo
name, or a ``family:arch`` spec). The model goes in its portable deploy form
(``effvit_mm.models.layers.fuse``: BatchNorms folded; LITv2's DTM as grid sampling + one GEMM, since
OpenVINO has no ONNX ``DeformConv``), through the ONNX exporter (opset 19), to OpenVINO's IR. The IR then
runs in OpenVINO's CPU plugin (f32, one stream, --threads or PyTorch's thread count) beside the eval-mode
model in PyTorch on the same random input: max abs diff per output, images/s of both (median of --runs),
one summary line; exit 1 if an output's diff, divided by max(1, max |output|), exceeds --tol.
"""
import os.path as osp
import sys
import tempfile

from effvit_mm.deployment.export_tools import export_deploy_form, export_parser
from effvit_mm.deployment.onnx_export import export_onnx
from effvit_mm.deployment.runtimes import OpenVINOModel, save_openvino


def save(deployed, x, names, out):
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = osp.join(tmp, 'model.onnx')
        export_onnx(deployed, x, onnx_path, names)
        save_openvino(onnx_path, out)


def main(argv=None):
    return export_deploy_form(export_parser(__doc__, '.xml'), argv, save, OpenVINOModel, 'OpenVINO',
                              '+ .bin, fp32')


if __name__ == '__main__':
    sys.exit(main())
