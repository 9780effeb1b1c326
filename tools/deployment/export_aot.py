"""Compile a classifier (its logits), a backbone or a detector's / segmentor's backbone + neck ahead of time
with AOTInductor into one ``.pt2`` package, and check it against PyTorch.

    python tools/deployment/export_aot.py CONFIG_NAME_OR_SPEC OUT.pt2 [--checkpoint CKPT] [--partial-checkpoint]
        [--shape H [W]] [--batch N] [--runs 5] [--threads N] [--tol 1e-4]

What is compiled, and the default input size, are those of tools/deployment/export_onnx.py (a config, its model-zoo
name, or a ``family:arch`` spec). The model goes in its portable deploy form
(``effvit_mm.models.layers.fuse``: BatchNorms folded, LITv2's DTM as grid sampling + one GEMM) through
``torch.export`` to ``torch._inductor.aoti_compile_and_package`` (weights frozen in as constants, the
fixed input shape --batch x 3 x H x W), the same kernels ``torch.compile`` would make, compiled once. A
C++ compiler is needed here (the one that built mmcv), none where the package runs:

    import torch, torch._inductor
    model = torch._inductor.aoti_load_package('OUT.pt2')   # no re-compilation, no effvit_mm needed
    logits = model(images)                                  # float32, the shape it was compiled for

The package then runs beside the eval-mode model in PyTorch on the same random input: max abs diff per
output, images/s of both (median of --runs), one summary line; exit 1 if an output's diff, divided by
max(1, max |output|), exceeds --tol.
"""
import sys

from effvit_mm.deployment.export_tools import export_parser, export_deploy_form
from effvit_mm.deployment.runtimes import AOTModel, save_aot


def main(argv=None):
    return export_deploy_form(export_parser(__doc__, '.pt2'), argv,
                              lambda deployed, x, names, out: save_aot(deployed, x, out), AOTModel,
                              'AOTInductor', 'AOTInductor package, fp32')


if __name__ == '__main__':
    sys.exit(main())
