"""Write a wheelhouse: every file `tools/install.sh --wheelhouse DIR` needs to install the stack
offline, for a target Python version and platform.

    bash tools/misc/make_wheelhouse.sh OUT [--python-version 3.12] [--platform TAG ...] [--no-torch]
                                      [--skip NAME,NAME ...]

OUT receives the wheels of tools/requirements*.txt and of everything they depend on (resolved by
pip for the target), torch and torchvision (unless --no-torch, for machines that have them), mmcv's
source package (built on the target: its compiled kernels depend on the target's torch) and a wheel
of effvit_mm. ``--skip`` leaves out packages the target already has, with whatever only they need
(e.g. ``--skip numpy,scipy,opencv-python-headless``); the offline install then uses the target's
copies, so they must satisfy tools/requirements.txt. Pure-Python packages published only as source
(grad-cam) are built into wheels here. Needs the network (package index only) and runs in the
interpreter tools/install.sh set up (for mmcv's source package).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
TORCH, TORCHVISION, MMCV = '2.14.1', '0.29.1', '2.1.0'
# manylinux tags a current x86-64 Linux accepts (glibc 2.17 to 2.35).
LINUX_X86_64 = [f'manylinux_2_{n}_x86_64' for n in range(35, 16, -1)] + ['manylinux2014_x86_64', 'manylinux1_x86_64',
                                                                           'linux_x86_64']


def requirement_lines(path):
    """Requirement strings of a requirements file (comments and blank lines dropped)."""
    lines = (line.split('#', 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def pip(*args, check=True):
    cmd = [sys.executable, '-m', 'pip', '--disable-pip-version-check', *args]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if check and result.returncode:
        raise SystemExit(f'error: {" ".join(cmd[:6])} ... failed:\n{result.stderr[-3000:]}')
    return result


def target_args(args):
    """pip options that select files for the target instead of this interpreter."""
    out = ['--only-binary=:all:', '--python-version', args.python_version, '--implementation', 'cp']
    for tag in args.platform:
        out += ['--platform', tag]
    return out


def marker_environment(python_version):
    env = default_environment()
    env.update(python_version=python_version, python_full_version=python_version + '.0',
               implementation_name='cpython', platform_python_implementation='CPython')
    return env


def resolve(requirements, args, find_links):
    """pip's resolution of ``requirements`` for the target: {name: (version, requires_dist)}. A
    requirement with no wheel for the target is built here into a pure-Python wheel and resolved
    again."""
    for _ in range(5):
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / 'report.json'
            result = pip('install', '--dry-run', '--ignore-installed', '--quiet', '--report', str(report),
                         '--target', str(Path(tmp) / 'target'), '--find-links', str(find_links),
                         *target_args(args), *requirements, check=False)
            if result.returncode == 0:
                items = json.loads(report.read_text())['install']
                return {canonicalize_name(i['metadata']['name']): (i['metadata']['version'],
                                                                   i['metadata'].get('requires_dist', []))
                        for i in items}
        missing = re.search(r'No matching distribution found for (\S+)', result.stderr)
        if not missing:
            raise SystemExit(f'error: pip could not resolve the stack for Python {args.python_version}:\n'
                             f'{result.stderr[-3000:]}')
        build_pure_python_wheel(missing.group(1), find_links)
    raise SystemExit('error: resolution kept failing; see pip\'s messages above')


def build_pure_python_wheel(requirement, out):
    """Build a source-only requirement into ``out``; only a pure-Python wheel serves another target."""
    print(f'[wheelhouse] {requirement}: no wheel for the target, building one from source', file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        pip('wheel', '--quiet', '--no-deps', '-w', tmp, requirement)
        for wheel in Path(tmp).glob('*.whl'):
            if not wheel.name.endswith('-none-any.whl'):
                raise SystemExit(f'error: {requirement} builds {wheel.name}, which is not pure Python: '
                                 'build it on the target')
            shutil.move(str(wheel), out / wheel.name)


def closure(resolved, roots, skip, python_version):
    """Names needed by ``roots`` for the target, not descending into ``skip`` (the target has them)."""
    env = marker_environment(python_version)
    needed, todo = set(), [Requirement(r) for r in roots]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in skip or name in needed:
            continue
        if name not in resolved:
            raise SystemExit(f'error: {name} is required but was not resolved')
        needed.add(name)
        extras = set(req.extras) | {''}
        for dep in map(Requirement, resolved[name][1]):
            if dep.marker is None or any(dep.marker.evaluate(dict(env, extra=e)) for e in extras):
                todo.append(dep)
    return needed


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('out', type=Path, help='folder to write (created; existing files are kept)')
    p.add_argument('--python-version', default='%d.%d' % sys.version_info[:2], help='target Python (3.11, 3.12)')
    p.add_argument('--platform', action='append', help='target platform tag, repeatable '
                   '(default: manylinux / linux x86-64 tags)')
    p.add_argument('--no-torch', action='store_true', help='leave out torch and torchvision (the target has them)')
    p.add_argument('--skip', action='append', default=[], help='comma-separated packages the target has')
    args = p.parse_args()
    if args.python_version not in ('3.11', '3.12'):
        raise SystemExit(f'error: Python {args.python_version} is not supported (3.11, 3.12)')
    args.platform = args.platform or LINUX_X86_64
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    stack = requirement_lines(ROOT / 'tools/requirements.txt')
    torch = [f'torch=={TORCH}', f'torchvision=={TORCHVISION}']
    skip = {canonicalize_name(n) for s in args.skip for n in s.split(',') if n}
    if args.no_torch:
        skip |= {'torch', 'torchvision'}
    resolved = resolve(stack + torch, args, out)
    names = closure(resolved, stack + ([] if args.no_torch else torch), skip, args.python_version)
    pins = sorted(f'{n}=={resolved[n][0]}' for n in names)
    print(f'[wheelhouse] downloading {len(pins)} packages for Python {args.python_version}', file=sys.stderr)
    pip('download', '--quiet', '--no-deps', '--find-links', str(out), '-d', str(out), *target_args(args), *pins)
    pip('download', '--quiet', '--no-deps', '-d', str(out), *target_args(args),
        *requirement_lines(ROOT / 'tools/requirements-nodeps.txt'))

    sdist = out / f'mmcv-{MMCV}.tar.gz'
    cached = Path(os.environ.get('EFFVIT_MM_CACHE', Path.home() / '.cache/effvit_mm')) / 'sdist' / sdist.name
    if cached.is_file():
        shutil.copy(cached, sdist)
    elif not sdist.is_file():
        pip('download', '--quiet', '--no-deps', '--no-binary', ':all:', '--no-build-isolation', f'mmcv=={MMCV}',
            '-d', str(out))
    pip('wheel', '--quiet', '--no-deps', '--no-build-isolation', '-w', str(out), str(ROOT))

    files = sorted(out.iterdir())
    size = sum(f.stat().st_size for f in files)
    for f in files:
        print(f'{f.stat().st_size / 2**20:8.1f} MiB  {f.name}')
    print(f'{size / 2**20:8.1f} MiB in {len(files)} files: {out}')


if __name__ == '__main__':
    main()
