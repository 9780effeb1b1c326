"""tools/install.sh, tools/misc/make_wheelhouse.py and the launchers' interpreter search (tools/find_python.sh)."""
import importlib.metadata as md
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).parents[1]
CACHE = Path(os.environ.get('EFFVIT_MM_CACHE', Path.home() / '.cache/effvit_mm'))
# Distributions the offline-install test leaves out of the target interpreter: the wheelhouse brings them.
BROUGHT = {'mmengine', 'mmcv', 'mmdet', 'mmsegmentation', 'mmpretrain', 'effvit_mm', 'timm', 'addict', 'yapf',
           'terminaltables', 'modelindex', 'model-index', 'mat4py', 'ordered-set', 'pycocotools'}


def install(*args, env=None, timeout=300):
    env = {**os.environ, 'EFFVIT_MM_PYTHON': sys.executable, **(env or {})}
    return subprocess.run(['bash', str(ROOT / 'tools/install.sh'), *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def error_line(result):
    """The single 'error: ...' line of a refused install (and that it is the only one)."""
    errors = [line for line in result.stderr.splitlines() if line.startswith('error:')]
    assert result.returncode == 2 and len(errors) == 1, result.stderr
    return errors[0]


def test_second_install_does_nothing_heavy():
    """The stack is installed (this test runs in it): the installer only checks and re-links."""
    start = time.time()
    result = install()
    assert result.returncode == 0, result.stderr
    assert 'stack already installed' in result.stderr
    assert 'building mmcv' not in result.stderr and 'installing torch' not in result.stderr
    assert result.stdout.strip().splitlines()[-1] == sys.executable
    assert (CACHE / 'python').read_text().strip() == sys.executable  # for tools/*.sh
    assert time.time() - start < 60


def fake_nvcc(folder, release):
    (folder / 'bin').mkdir(parents=True)
    nvcc = folder / 'bin/nvcc'
    nvcc.write_text(f'#!/bin/sh\necho "Cuda compilation tools, release {release}, V{release}.1"\n')
    nvcc.chmod(0o755)
    return folder


@pytest.mark.skipif(torch.version.cuda is None, reason='needs a CUDA build of torch (PyPI default)')
def test_cuda_ops_refuses_a_missing_or_mismatched_nvcc(tmp_path):
    result = install('--cuda-ops', env=dict(CUDA_HOME=str(tmp_path / 'none')))
    assert error_line(result) == (
        f'error: --cuda-ops: no nvcc at {tmp_path}/none/bin/nvcc (install the CUDA '
        f'{torch.version.cuda.split(".")[0]} toolkit and put its bin/ on PATH or set CUDA_HOME)')
    other = int(torch.version.cuda.split('.')[0]) - 1
    result = install('--cuda-ops', env=dict(CUDA_HOME=str(fake_nvcc(tmp_path / 'old', f'{other}.4'))))
    assert error_line(result) == (
        f'error: --cuda-ops: {tmp_path}/old/bin/nvcc is CUDA {other}.4, torch {torch.__version__} is built for CUDA '
        f'{torch.version.cuda}: the major versions must match')
    assert 'installing' not in result.stderr  # refused before any work


@pytest.mark.skipif(torch.version.cuda is None or torch.cuda.is_available(), reason='CUDA torch, no GPU')
def test_cuda_ops_without_gpu_asks_for_the_arch_list(tmp_path):
    nvcc = fake_nvcc(tmp_path, torch.version.cuda)
    result = install('--cuda-ops', env=dict(CUDA_HOME=str(nvcc)))
    assert error_line(result) == ('error: --cuda-ops: no GPU visible to torch; set TORCH_CUDA_ARCH_LIST (e.g. 9.0) '
                                  'to build for GPUs elsewhere')


def bare_venv(path):
    """A venv of the base interpreter with nothing installed (no pip, no torch)."""
    base = getattr(sys, '_base_executable', sys.executable)
    subprocess.run([base, '-m', 'venv', '--without-pip', str(path)], check=True)
    return path / 'bin/python'


def expose(python, packages, exclude):
    """Make the distributions of ``packages`` (a site-packages folder) but ``exclude`` importable by
    ``python``: a folder of links to their files, on its path through a .pth file."""
    shared = python.parents[1] / 'shared-site'
    shared.mkdir()
    for dist in md.distributions(path=[str(packages)]):
        if dist.metadata['Name'].lower().replace('_', '-') in exclude:
            continue
        for top in {Path(f).parts[0] for f in dist.files or []} | {Path(dist._path).name}:
            if (packages / top).exists() and not (shared / top).exists() and not top.endswith('.pth'):
                (shared / top).symlink_to(packages / top)
    site = subprocess.run([python, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, 'shared.pth').write_text(str(shared) + '\n')


def test_unsupported_torch_is_refused_in_one_line(tmp_path):
    python = bare_venv(tmp_path / 'venv')
    fake = tmp_path / 'fake'
    (fake / 'torch').mkdir(parents=True)
    (fake / 'torch/__init__.py').write_text(
        "__version__ = '2.9.1'\nclass version: cuda = None\nclass cuda:\n    is_available = staticmethod(lambda: False)\n")
    (fake / 'torchvision').mkdir()
    (fake / 'torchvision/__init__.py').write_text("__version__ = '0.24.1'\n")
    site = subprocess.run([python, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, 'fake.pth').write_text(str(fake) + '\n')
    result = install(env=dict(EFFVIT_MM_PYTHON=str(python)))
    assert error_line(result) == (
        f'error: {python} has torch 2.9.1 and torchvision 0.24.1; supported: Python 3.11-3.12, torch 2.11-2.14 with '
        f'its torchvision (0.26-0.29) (use another interpreter, or unset EFFVIT_MM_PYTHON for a venv with torch 2.14.1)')


def offline(cmd):
    """``cmd`` without network: in a new network namespace where possible, else through a dead proxy."""
    if shutil.which('unshare') and subprocess.run(['unshare', '-n', 'true']).returncode == 0:
        return ['unshare', '-n', *cmd], {}
    return cmd, dict(http_proxy='http://127.0.0.1:9', https_proxy='http://127.0.0.1:9')


@pytest.mark.slow  # about a minute: .ci/run runs it among its slow checks
def test_offline_install_from_a_wheelhouse_keeps_the_interpreters_torch(tmp_path):
    """An existing interpreter with torch (and the scientific stack) but nothing of OpenMMLab: a
    wheelhouse made for it (--no-torch, --skip what it has) installs the rest with no network."""
    packages = Path(sysconfig.get_paths()['purelib'])
    have = {d.metadata['Name'].lower().replace('_', '-') for d in md.distributions(path=[str(packages)])} - BROUGHT
    python = bare_venv(tmp_path / 'target')
    expose(python, packages, BROUGHT)
    wheelhouse = tmp_path / 'wheelhouse'
    made = subprocess.run([sys.executable, 'tools/misc/make_wheelhouse.py', wheelhouse, '--no-torch', '--skip',
                           ','.join(sorted(have))], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert made.returncode == 0, made.stderr[-3000:]
    files = {f.name.split('-')[0].lower() for f in wheelhouse.iterdir()}
    assert {'mmengine', 'mmdet', 'mmsegmentation', 'mmpretrain', 'timm', 'effvit_mm'} <= files
    assert (wheelhouse / 'mmcv-2.1.0.tar.gz').is_file() and 'torch' not in files and 'numpy' not in files

    cache = tmp_path / 'cache'  # its own record of the interpreter, the built mmcv wheels shared
    cache.mkdir()
    (cache / 'wheels').symlink_to(CACHE / 'wheels')
    cmd, proxy = offline(['bash', str(ROOT / 'tools/install.sh'), '--wheelhouse', str(wheelhouse)])
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, EFFVIT_MM_PYTHON=str(python), EFFVIT_MM_CACHE=str(cache), **proxy))
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'building mmcv' not in result.stderr  # the cached wheel of this Python and torch
    assert result.stdout.strip().splitlines()[-1] == str(python)
    probe = subprocess.run([python, '-c', 'import effvit_mm, mmdet, mmseg, mmpretrain, torch, mmengine; '
                            'print(torch.__version__, torch.__file__, mmengine.__file__)'],
                           capture_output=True, text=True, cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr[-2000:]
    version, torch_file, mmengine_file = probe.stdout.split()
    assert version == torch.__version__ and 'shared-site' in torch_file  # the interpreter's own torch, kept
    assert str(tmp_path / 'target') in mmengine_file  # installed from the wheelhouse


def test_dist_train_finds_the_installed_interpreter(tmp_path):
    """The README's headline command with a `python` on PATH that has no torch."""
    from toy_task import write_config  # tests/toy_task.py (pytest.ini: pythonpath = tests)
    assert install().returncode == 0  # records this interpreter, as the README's set-up does
    no_torch = bare_venv(tmp_path / 'plain').parent
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHON', 'VIRTUAL_ENV')}
    env.update(PATH=f'{no_torch}:{env["PATH"]}', PORT='29531',
               PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / 'tests')]))
    assert subprocess.run(['python', '-c', 'import torch'], env=env, capture_output=True).returncode != 0
    config = write_config(tmp_path / 'toy.py', tmp_path / 'work', max_iters=2, interval=2)
    result = subprocess.run(['bash', 'tools/dist_train.sh', config, '1'], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / 'work/iter_2.pth').is_file()
    result = subprocess.run(['bash', 'tools/dist_train.sh', config, '1'], cwd=ROOT, capture_output=True, text=True,
                            env=dict(env, EFFVIT_MM_CACHE=str(tmp_path / 'empty')), timeout=60)
    assert result.returncode == 2 and result.stderr.strip() == (
        f'error: `python` on PATH lacks torch / mmengine / mmcv and {tmp_path}/empty/python names no installed '
        'interpreter: run `bash tools/install.sh`, or set PYTHON=/path/to/python')
