import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_second_install_does_nothing_heavy():
    """The stack is installed (this test runs in it): the installer only checks and re-links."""
    start = time.time()
    result = subprocess.run(['bash', str(ROOT / 'tools/install.sh')], capture_output=True, text=True,
                            env=dict(os.environ, EFFVIT_MM_PYTHON=sys.executable), timeout=300)
    assert result.returncode == 0, result.stderr
    assert 'stack already installed' in result.stderr
    assert 'building mmcv' not in result.stderr and 'installing torch' not in result.stderr
    assert result.stdout.strip().splitlines()[-1] == sys.executable
    assert time.time() - start < 120
