"""The CPU runtimes a deployed model runs in besides eager PyTorch, each as a callable ``x -> [tensor, ...]``
for an (N, 3, H, W) float32 batch of one fixed shape:

- ``compile``: ``torch.compile`` with inductor, ``freezing=True`` (weights folded in as constants),
  ``dynamic=False``, default mode, under ``torch.no_grad()``;
- ``aot``: ahead-of-time compiled by AOTInductor: ``torch.export`` of the model, then
  ``torch._inductor.aoti_compile_and_package`` (``freezing=True``) into a ``.pt2`` package, which
  ``torch._inductor.aoti_load_package`` runs from Python without re-compiling (:func:`save_aot`,
  :class:`AOTModel`); the same kernels as ``compile`` without its Python guards;
- ``onnxruntime``: the model exported to ONNX (:func:`effvit_mm.deployment.onnx_export.export_onnx`, opset 19) in
  onnxruntime's CPUExecutionProvider, intra-op threads = PyTorch's, thread spinning off (spinning
  threads slow every other entry of an interleaved benchmark);
- ``openvino``: the same ONNX file in OpenVINO's CPU plugin, f32 precision (bf16 for a folder exported at
  bf16: :mod:`effvit_mm.deployment.precision`), one stream, threads = PyTorch's, no CPU pinning (OpenVINO's
  pinning would bind threads that PyTorch shares in the same process).

:func:`open_runtime` runs a file (an ONNX file, OpenVINO IR or AOTInductor package: what an exported
folder holds) in its runtime; :func:`build_runtime` writes a model's file first (or compiles it, for
``compile``). The optional packages (``onnx`` extra, ``openvino``) are imported there, and a missing one
is a :class:`RuntimeUnavailable` naming it.
"""
import os.path as osp
import platform

import torch

__all__ = ['RUNTIMES', 'AOTModel', 'OnnxRuntimeModel', 'OpenVINOModel', 'RuntimeUnavailable', 'as_list',
           'build_runtime', 'cpu_capabilities', 'open_runtime', 'openvino_module', 'refuse_emulated_bf16',
           'save_aot', 'save_openvino']

RUNTIMES = ('compile', 'aot', 'onnxruntime', 'openvino')


class RuntimeUnavailable(RuntimeError):
    """A runtime whose package is missing, or that cannot run this model (the reason in one line)."""


def as_list(out):
    """A model's output as a list of tensors (a tensor, or a tuple / list of them)."""
    return list(out) if isinstance(out, (tuple, list)) else [out]


def openvino_module():
    """The openvino package, or :class:`RuntimeUnavailable` naming it."""
    try:
        import openvino
    except ImportError:
        raise RuntimeUnavailable('openvino is not installed (pip install openvino)') from None
    return openvino


def cpu_capabilities():
    """OpenVINO's optimization capabilities of this CPU, e.g. ['FP32', 'INT8', 'BIN', 'EXPORT_IMPORT']."""
    return list(openvino_module().Core().get_property('CPU', 'OPTIMIZATION_CAPABILITIES'))


def refuse_emulated_bf16():
    """Raise :class:`RuntimeUnavailable` in one line on a CPU without native bf16 (OpenVINO lists no BF16)."""
    if 'BF16' not in cpu_capabilities():
        raise RuntimeUnavailable(f'this CPU ({platform.processor() or platform.machine()}) has no native bf16 '
                                 '(AVX512-BF16 or AMX), where OpenVINO would emulate it more slowly than fp32: '
                                 'use --precision int8 or fp32 here, bf16 on such a CPU')


class _Compiled:
    def __init__(self, model):
        self.compiled = torch.compile(model, dynamic=False)

    def __call__(self, x):
        import torch._inductor.config as inductor_config
        with torch.no_grad(), inductor_config.patch(freezing=True):
            return as_list(self.compiled(x))


def save_aot(model, x, path, dynamic_shapes=None):
    """Compile ``model`` (eval mode) ahead of time for inputs of ``x``'s shape (a tensor or a tuple of
    inputs; ``dynamic_shapes``: torch.export's, one entry per input) into the AOTInductor package ``path``
    (``.pt2``; module docstring). Needs a C++ compiler (the one that built mmcv)."""
    import torch._inductor
    inputs = tuple(x) if isinstance(x, (tuple, list)) else (x, )
    with torch.no_grad():
        try:
            program = torch.export.export(model, inputs, dynamic_shapes=dynamic_shapes)
        except Exception as error:  # torch.export's errors have no common base class
            if dynamic_shapes is None:
                raise
            raise RuntimeUnavailable(f'torch.export cannot trace the model for every input size (AOTInductor): '
                                     f'{str(error).strip().splitlines()[0][:300]}') from None
        try:
            return torch._inductor.aoti_compile_and_package(program, package_path=str(path),
                                                            inductor_configs={'freezing': True})
        except Exception as error:  # a missing compiler surfaces as one of several error types
            raise RuntimeUnavailable(f'AOTInductor cannot compile the model: '
                                     f'{str(error).strip().splitlines()[0][:300]}') from None


class AOTModel:
    """An AOTInductor package (``.pt2``, :func:`save_aot`), ``*inputs -> [tensor, ...]``; inputs of the
    shapes it was compiled for."""

    def __init__(self, path):
        import torch._inductor
        self.path = str(path)
        self.runner = torch._inductor.aoti_load_package(self.path)

    def __call__(self, *xs):
        with torch.no_grad():
            return as_list(self.runner(*xs))


class OnnxRuntimeModel:
    """An ONNX file in onnxruntime's CPUExecutionProvider (module docstring), ``*inputs -> [tensor, ...]``."""

    def __init__(self, path):
        try:
            import onnxruntime as ort
        except ImportError:
            raise RuntimeUnavailable('onnxruntime is not installed (pip install effvit_mm[onnx])') from None
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = torch.get_num_threads()
        opts.add_session_config_entry('session.intra_op.allow_spinning', '0')
        self.session = ort.InferenceSession(str(path), opts, providers=['CPUExecutionProvider'])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def __call__(self, *xs):
        feed = {name: x.numpy() for name, x in zip(self.inputs, xs)}
        return [torch.from_numpy(o) for o in self.session.run(None, feed)]


class OpenVINOModel:
    """An ONNX or OpenVINO IR (.xml) file in OpenVINO's CPU plugin (module docstring),
    ``*inputs -> [tensor, ...]``; ``precision``: 'fp32', 'int8' (a quantized IR: its float parts in f32)
    or 'bf16'."""

    def __init__(self, path, precision='fp32'):
        ov = openvino_module()
        if precision == 'bf16':
            refuse_emulated_bf16()
        config = {'INFERENCE_NUM_THREADS': torch.get_num_threads(), 'NUM_STREAMS': 1,
                  'INFERENCE_PRECISION_HINT': 'bf16' if precision == 'bf16' else 'f32', 'ENABLE_CPU_PINNING': False}
        try:
            self.compiled = ov.Core().compile_model(str(path), 'CPU', config)
        except RuntimeError as error:  # e.g. an ONNX op OpenVINO does not convert
            first = next((line for line in str(error).splitlines() if 'No conversion rule' in line), None)
            raise RuntimeUnavailable(f'OpenVINO cannot read {osp.basename(path)}: '
                                     f'{first or str(error).strip().splitlines()[-1]}') from None
        self.request = self.compiled.create_infer_request()

    @classmethod
    def from_compiled(cls, compiled):
        """An OpenVINO ``CompiledModel`` (e.g. one NNCF compiled) as a callable like the others."""
        self = cls.__new__(cls)
        self.compiled, self.request = compiled, compiled.create_infer_request()
        return self

    def __call__(self, *xs):
        results = self.request.infer({i: x.numpy() for i, x in enumerate(xs)})
        return [torch.from_numpy(results[out].copy()) for out in self.compiled.outputs]


def open_runtime(path, name, precision='fp32'):
    """The file ``path`` run by the runtime ``name`` ('onnxruntime', 'openvino' or 'aot'):
    ``*inputs -> [tensor, ...]``; ``precision`` other than 'fp32' for OpenVINO only."""
    runtimes = dict(onnxruntime=OnnxRuntimeModel, openvino=OpenVINOModel, aot=AOTModel)
    if name not in runtimes:
        raise ValueError(f'unknown runtime {name!r} for a file; choose one of {", ".join(runtimes)}')
    if name == 'openvino':
        return OpenVINOModel(path, precision)
    if precision != 'fp32':
        raise ValueError(f'{name} runs fp32 files, not {precision}')
    return runtimes[name](path)


def build_runtime(name, model, x, workdir):
    """``model`` (eval mode, e.g. its deploy form) in the runtime ``name`` (module docstring), for
    inputs of ``x``'s shape; ONNX files and AOT packages go to ``workdir``. Returns the callable."""
    if name == 'compile':
        return _Compiled(model)
    if name not in RUNTIMES:
        raise ValueError(f'unknown runtime {name!r}; choose one of {RUNTIMES}')
    path = osp.join(workdir, f'model_{id(model)}.{"pt2" if name == "aot" else "onnx"}')
    if not osp.isfile(path):
        if name == 'aot':
            save_aot(model, x, path)
        else:
            from .onnx_export import export_onnx
            try:
                with torch.no_grad():
                    outputs = as_list(model(x))
                export_onnx(model, x, path, [f'output{i}' for i in range(len(outputs))])
            except ImportError as error:
                raise RuntimeUnavailable(f'ONNX export needs the onnx extra ({error})') from None
    return open_runtime(path, name)


def save_openvino(onnx_path, xml_path):
    """Convert an ONNX file to OpenVINO IR (``xml_path`` and the ``.bin`` beside it), weights kept in
    fp32 (OpenVINO's ``save_model`` would compress them to fp16 by default)."""
    ov = openvino_module()
    try:
        model = ov.convert_model(str(onnx_path))
    except Exception as error:  # OpenVINO's conversion errors have no common base class
        raise RuntimeUnavailable(f'OpenVINO cannot convert {osp.basename(onnx_path)}: '
                                 f'{str(error).strip().splitlines()[-1]}') from None
    ov.save_model(model, str(xml_path), compress_to_fp16=False)
