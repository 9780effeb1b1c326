"""The package's layout: modules grouped by concern (apis, checkpoint, datasets, deployment, engine,
evaluation, models, visualization, analysis), no import cycle between its modules (imports inside functions
included), and every ``effvit_mm.x.y`` name that the README, the documentation (docs/**/*.md) or a docstring
of the tools shows resolves."""
import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / 'effvit_mm'
SUBPACKAGES = {'analysis', 'apis', 'checkpoint', 'datasets', 'deployment', 'engine', 'evaluation', 'models', 'visualization'}


def module_name(path):
    parts = path.relative_to(ROOT).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def import_graph():
    """{module: {modules it imports}} over effvit_mm's own modules; ``from pkg import name`` points at the
    submodule ``pkg.name`` when there is one, else at ``pkg``."""
    modules = {module_name(p): p for p in PACKAGE.rglob('*.py')}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == '__init__.py' else name.rpartition('.')[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ''
                if node.level:
                    anchor = package.split('.')[:len(package.split('.')) - node.level + 1]
                    base = '.'.join(anchor + ([base] if base else []))
                if not base.startswith('effvit_mm'):
                    continue
                for alias in node.names:
                    edges.add(f'{base}.{alias.name}' if f'{base}.{alias.name}' in modules else base)
        graph[name] = {e for e in edges if e in modules and e != name}
    return graph


def find_cycle(graph):
    """One import cycle as a list of modules, or None (depth-first search)."""
    state, stack = {}, []

    def visit(node):
        state[node] = 'open'
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 'open':
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 'done'
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_modules_are_grouped_by_concern():
    top = {p.stem for p in PACKAGE.glob('*.py')} | {p.name for p in PACKAGE.iterdir() if (p / '__init__.py').exists()}
    assert top == {'__init__', 'version'} | SUBPACKAGES


def test_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 60 and 'effvit_mm.deployment.runtimes' in graph['effvit_mm.deployment.export']
    # A package imports its submodules and they import each other: only cycles between modules count.
    modules = {m: {e for e in edges if not (e in m.split('.') or m.startswith(e + '.'))}
               for m, edges in graph.items()}
    assert find_cycle(modules) is None, ' -> '.join(find_cycle(modules))


def test_the_cycle_finder_finds_a_cycle():
    graph = import_graph()
    graph['effvit_mm.deployment.runtimes'].add('effvit_mm.deployment.export')
    assert find_cycle(graph) is not None


def shown_names():
    texts = ([(ROOT / 'README.md').read_text()] + [p.read_text() for p in (ROOT / 'docs').rglob('*.md')]
             + [p.read_text() for p in (ROOT / 'tools').rglob('*.py')])
    return sorted({m.rstrip('.') for text in texts for m in re.findall(r'(?<![\w/])effvit_mm(?:\.\w+)+', text)})


@pytest.mark.parametrize('name', shown_names())
def test_names_shown_to_users_resolve(name):
    parts = name.split('.')
    for i in range(len(parts), 0, -1):  # the longest importable prefix, then attributes
        try:
            obj = importlib.import_module('.'.join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for attr in parts[i:]:
            assert hasattr(obj, attr), f'{name}: {".".join(parts[:i])} has no {attr}'
            obj = getattr(obj, attr)
        return
    pytest.fail(f'{name} does not resolve')
