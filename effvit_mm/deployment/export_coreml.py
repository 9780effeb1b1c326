"""Core ML export helpers (``tools/deployment/export_coreml.py``): tracing a classifier or a backbone, converting it
with coremltools to an ML program (``.mlpackage``) and checking the saved package's interface.

The model is traced with ``torch.jit.trace``: coremltools' TorchScript frontend is the one that takes
``ImageType`` inputs and output names (its ``torch.export`` frontend infers both from the program and
accepts neither). coremltools 9 warns that torch 2.14 is untested; SHViT and SwiftFormer convert.
LITv2 does not: coremltools has no conversion for ``torchvision::deform_conv2d`` (its DTM), which
:func:`convert_coreml` reports as an :class:`UnsupportedOpError`.

Off macOS coremltools cannot run a model (no ``libcoremlpython``): :func:`check_package` reloads the
package without compiling it and compares its inputs / outputs with the expected ones.
:func:`compare_coreml` (only where :func:`can_predict`) also runs it against PyTorch.

coremltools is imported inside the functions, through :func:`import_coremltools`.
"""
import contextlib
import logging
import re
import sys
import warnings

import torch
import torch.nn as nn

__all__ = ['UnsupportedOpError', 'ExportCheckError', 'Normalise', 'import_coremltools', 'convert_coreml',
           'describe_features', 'check_package', 'can_predict', 'compare_coreml']

PRECISIONS = ('fp16', 'fp32')

# Ops coremltools cannot convert -> what that means for these models.
UNSUPPORTED_HINTS = {
    'torchvision::deform_conv2d': "LITv2's deformable token merging (DTM): LITv2 cannot be exported to Core ML",
}


class UnsupportedOpError(RuntimeError):
    """The traced model has an op that coremltools cannot convert."""


class ExportCheckError(RuntimeError):
    """The saved package does not have the expected interface (or outputs)."""


class Normalise(nn.Module):
    """``model((x - mean) / std)`` for RGB images ``x`` (N, 3, H, W) in 0..255: a classifier's data
    preprocessor inside the exported graph (exact per-channel std, which ``ImageType``'s single
    ``scale`` cannot express)."""

    def __init__(self, model, mean, std):
        super().__init__()
        self.model = model
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        return self.model((x - self.mean) / self.std)


@contextlib.contextmanager
def _coremltools_log_level(level):
    log = logging.getLogger('coremltools')
    before = log.level
    log.setLevel(level)
    try:
        yield
    finally:
        log.setLevel(before)


def import_coremltools():
    """``coremltools``, imported without its import-time warnings (untested torch / scikit-learn
    versions; no ``libcoremlpython`` off macOS)."""
    with _coremltools_log_level(logging.ERROR):
        import coremltools
    return coremltools


def _trace(model, x):
    """``torch.jit.trace(model, x)`` (deprecated in torch, but coremltools' full frontend), checked
    against ``model(x)`` on the same input. Tracer warnings about shapes read as constants are silenced:
    the Core ML model has the fixed input shape of ``x``."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings('ignore', category=FutureWarning, message=r'.*torch\.jit\.trace')
        warnings.filterwarnings('ignore', category=torch.jit.TracerWarning)
        traced = torch.jit.trace(model, x, check_trace=False)
        ref, got = model(x), traced(x)
    ref, got = (r if isinstance(r, (tuple, list)) else [r] for r in (ref, got))
    if len(ref) != len(got) or any(not torch.allclose(r, g, rtol=1e-4, atol=1e-5) for r, g in zip(ref, got)):
        raise ExportCheckError('the traced model does not reproduce the model\'s outputs')
    return traced


def _unsupported_op(err):
    """An :class:`UnsupportedOpError` for coremltools' 'convert function ... not implemented', else None."""
    match = re.search(r"convert function for op '([^']+)' not implemented", str(err))
    if match is None:
        return None
    op = match.group(1)
    hint = UNSUPPORTED_HINTS.get(op, 'the model cannot be exported to Core ML')
    return UnsupportedOpError(f"coremltools has no conversion for op '{op}': {hint}")


def convert_coreml(model, x, path, output_names, image_input=False, precision='fp16'):
    """Trace ``model(x)`` (x: (1, 3, H, W)), convert it to an ML program and save it to ``path``
    (``.mlpackage``). The input is ``image`` (``ImageType``, RGB; give a model that takes 0..255, e.g.
    :class:`Normalise`) if ``image_input``, else ``input`` (``TensorType`` float32); the outputs are
    ``output_names`` (float32; ``precision`` is that of the computation). Returns the ``MLModel``.

    Raises :class:`UnsupportedOpError` (one line) for an op coremltools cannot convert, and for tensors
    of rank > 5, which Core ML refuses (deployed LITv2, whose DTM no longer uses the deformable conv)."""
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {PRECISIONS}, not {precision!r}')
    ct = import_coremltools()
    traced = _trace(model, x)
    inp = ct.ImageType(name='image', shape=tuple(x.shape), color_layout=ct.colorlayout.RGB) if image_input \
        else ct.TensorType(name='input', shape=tuple(x.shape))
    compute_precision = ct.precision.FLOAT16 if precision == 'fp16' else ct.precision.FLOAT32
    try:
        with _coremltools_log_level(logging.CRITICAL):  # a failure is raised below, not logged twice
            mlmodel = ct.convert(traced, inputs=[inp], outputs=[ct.TensorType(name=n) for n in output_names],
                                 convert_to='mlprogram', compute_precision=compute_precision)
    except NotImplementedError as e:
        unsupported = _unsupported_op(e)
        if unsupported is None:
            raise
        raise unsupported from e
    except ValueError as e:
        if 'only supports tensors with rank <= 5' not in str(e):
            raise
        raise UnsupportedOpError(f'{e} (LITv2\'s HiLo windows reshape to rank 8): the model cannot be '
                                 'exported to Core ML') from e
    mlmodel.save(str(path))
    return mlmodel


def _describe(feature):
    """(name, kind, shape) of a spec feature: kind ``'image RGB'`` (shape (1, C, H, W)) or the
    multi-array's data type (``'FLOAT32'``, ...)."""
    kind = feature.type.WhichOneof('Type')
    if kind == 'imageType':
        img = feature.type.imageType
        space = img.ColorSpace.Name(img.colorSpace)
        channels = 1 if space.startswith('GRAYSCALE') else 3
        return feature.name, f'image {space}', (1, channels, img.height, img.width)
    if kind == 'multiArrayType':
        arr = feature.type.multiArrayType
        return feature.name, arr.ArrayDataType.Name(arr.dataType), tuple(arr.shape)
    return feature.name, kind, ()


def describe_features(spec):
    """``(inputs, outputs)`` of a model spec: lists of (name, kind, shape), see ``_describe``."""
    return [_describe(f) for f in spec.description.input], [_describe(f) for f in spec.description.output]


def check_package(path, inputs, outputs):
    """Reload the ``.mlpackage`` at ``path`` without compiling it (works off macOS) and check that it is
    an ML program whose inputs / outputs are ``inputs`` / ``outputs`` (lists of (name, kind, shape)).
    Returns the reloaded ``MLModel``; raises :class:`ExportCheckError` (one line) on a mismatch."""
    ct = import_coremltools()
    mlmodel = ct.models.MLModel(str(path), skip_model_load=True)
    spec = mlmodel.get_spec()
    if spec.WhichOneof('Type') != 'mlProgram':
        raise ExportCheckError(f'{path}: a {spec.WhichOneof("Type")}, not an mlProgram')
    for what, expected, got in zip(('inputs', 'outputs'), (inputs, outputs), describe_features(spec)):
        if [tuple(f) for f in expected] != got:
            raise ExportCheckError(f'{path}: {what} {got}, expected {[tuple(f) for f in expected]}')
    return mlmodel


def can_predict():
    """Whether this coremltools can run models (macOS with its native ``libcoremlpython``)."""
    ct = import_coremltools()
    return sys.platform == 'darwin' and getattr(ct.models.model, '_MLModelProxy', None) is not None


def compare_coreml(model, x, path, output_names, image_input=False):
    """Run the package at ``path`` (needs :func:`can_predict`) and ``model`` on ``x`` (1, 3, H, W; 0..255
    integers if ``image_input``). Returns the scaled diff per output (``export.scaled_diff``)."""
    import numpy as np
    from PIL import Image

    from effvit_mm.deployment.export_tools import scaled_diff
    ct = import_coremltools()
    mlmodel = ct.models.MLModel(str(path))
    feed = {'image': Image.fromarray(x[0].permute(1, 2, 0).to(torch.uint8).numpy())} if image_input \
        else {'input': x.numpy().astype(np.float32)}
    got = mlmodel.predict(feed)
    with torch.no_grad():
        ref = model(x)
    ref = ref if isinstance(ref, (tuple, list)) else [ref]
    return [scaled_diff(r, got[n]) for r, n in zip(ref, output_names)]
