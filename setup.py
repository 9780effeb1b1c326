from setuptools import find_packages, setup


def read_version():
    with open('effvit_mm/version.py') as f:
        scope = {}
        exec(f.read(), scope)
        return scope['__version__']


EXTRAS = {
    'onnx': ['onnx>=1.17', 'onnxruntime>=1.20', 'onnxscript>=0.2'],
    'openvino': ['openvino>=2025.0', 'nncf==3.4.0'],
    'coreml': ['coremltools==9.0'],
    'cam': ['grad-cam==1.5.7'],
}

setup(
    name='effvit_mm',
    version=read_version(),
    description='SHViT, SwiftFormer and LITv2 backbones for the OpenMMLab stack '
    '(mmdet, mmseg, mmpretrain)',
    packages=find_packages(include=['effvit_mm', 'effvit_mm.*']),
    # Supported: Python 3.11-3.12, torch 2.11-2.14 with its torchvision (tools/install.sh checks it).
    python_requires='>=3.11,<3.13',
    # mmcv 2.1.0 must be built from source with its ops: tools/install.sh does it (tools/requirements*.txt).
    install_requires=[
        'torch>=2.11,<2.15', 'torchvision>=0.26,<0.30', 'mmengine==0.10.7', 'mmcv==2.1.0', 'mmdet==3.3.0',
        'mmsegmentation==1.2.2', 'mmpretrain==1.2.0', 'timm>=1.0.20,<1.1', 'ftfy', 'regex',
        'pycocotools', 'setuptools<81', 'model-index',  # model-index: mmpretrain's metafile reader
    ],
    # Optional tools: onnx (tools/deployment/export_onnx.py), openvino (the benchmark's runtimes), coreml
    # (tools/deployment/export_coreml.py), cam (tools/analysis_tools/vis_cam.py);
    # `all` is the four. tools/install.sh installs every extra (tools/requirements*.txt); torchattacks
    # 3.5.1 (`attacks`) pins requests~=2.25, so it installs it with --no-deps.
    extras_require={**EXTRAS, 'all': sorted({r for reqs in EXTRAS.values() for r in reqs}),
                    'tests': ['pytest>=8'], 'attacks': ['torchattacks==3.5.1']},
)
