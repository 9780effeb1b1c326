"""Every tool and package file the README, .ci/run, the metafiles' ``Convert`` lines, the configs and the tools' own
docstrings name exists, and every ``python tools/...`` command written there uses only options that the
tool's parser defines (read from its source and the effvit_mm modules it imports)."""
import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PATH = re.compile(r'(?<![\w/.-])(?:tools|effvit_mm)/[\w/]+\.(?:py|sh)\b')
COMMAND = re.compile(r'(?:python3?|\$PY|"\$PY")\s+(tools/[\w/]+\.py)((?:[^\n#|;&`]|\\\n)*)')


def documents():
    files = [ROOT / 'README.md', ROOT / '.ci/run', *sorted((ROOT / 'configs').rglob('*.yml')),
             *sorted((ROOT / 'configs').rglob('*.py')), *sorted((ROOT / 'tools').rglob('*.py')),
             *sorted((ROOT / 'tools').rglob('*.sh')), *sorted((ROOT / 'docs').rglob('*.md'))]
    return {str(f.relative_to(ROOT)): f.read_text() for f in files}


def defined_options(tool):
    """The ``--options`` of ``add_argument`` calls in the tool and in the effvit_mm modules it imports."""
    sources, seen = [ROOT / tool], set()
    options = {'--help'}
    while sources:
        path = sources.pop()
        if path in seen or not path.exists():
            continue
        seen.add(path)
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, 'attr', None) == 'add_argument':
                options |= {a.value for a in node.args if isinstance(a, ast.Constant) and str(a.value).startswith('--')}
            elif isinstance(node, ast.ImportFrom) and (node.module or '').startswith('effvit_mm'):
                module = ROOT / node.module.replace('.', '/')
                sources += [module.with_suffix('.py'), module / '__init__.py']
    return options


def test_named_tools_exist():
    missing = [f'{name}: {path}' for name, text in documents().items() for path in PATH.findall(text)
               if not (ROOT / path).exists()]
    assert not missing, '\n'.join(missing)


def commands():
    found = []
    for name, text in documents().items():
        for tool, rest in COMMAND.findall(text):
            found.append(pytest.param(tool, rest, id=f'{name}:{tool}:{len(found)}'))
    return found


@pytest.mark.parametrize('tool,rest', commands())
def test_command_options_exist(tool, rest):
    assert (ROOT / tool).exists(), tool
    unknown = set(re.findall(r'(?<![\w-])--[a-z][\w-]*', rest)) - defined_options(tool)
    assert not unknown, f'{tool} has no option {sorted(unknown)}: {rest.strip()[:200]}'


def test_a_wrong_option_is_caught():
    assert '--no-such-option' not in defined_options('tools/train.py')
    assert '--resume' in defined_options('tools/train.py')
