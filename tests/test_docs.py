"""The documentation (docs/en, Sphinx + MyST): it builds without a warning (``-W -n``: broken cross-references
and anchors fail), and every relative Markdown link of docs/en/**/*.md and README.md points at an existing file
and, into a Markdown page, at a heading anchor of that page as MyST makes it (``myst_heading_anchors = 3``)."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / 'docs/en'
LINK = re.compile(r'(?<!!)\[[^\]]*\]\(([^)\s]+)\)')
FENCE = re.compile(r'^(```|~~~).*?^\1', re.M | re.S)
HEADING = re.compile(r'^(#{1,3}) +(.+?) *#*$', re.M)


def pages():
    return [ROOT / 'README.md', *sorted(DOCS.rglob('*.md'))]


def slug(title):
    """A heading's anchor as MyST computes it (GitHub style) from its text, inline markup removed."""
    text = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', title)  # links: their text
    text = text.replace('`', '').replace('**', '').replace('*', '')
    return re.sub(r'[^\w\u4e00-\u9fff\- ]', '', text.lower().replace(' ', '-'))


def anchors(page):
    found, text = set(), FENCE.sub('', page.read_text())
    for _, title in HEADING.findall(text):
        name, n = slug(title), 1
        while name in found:  # repeated headings get -1, -2, ...
            name, n = f'{slug(title)}-{n}', n + 1
        found.add(name)
    return found


def broken_links(files):
    """'file: link (why)' for every relative link whose target or anchor does not exist."""
    broken = []
    for page in files:
        name = page.relative_to(ROOT) if page.is_relative_to(ROOT) else page.name
        for target in LINK.findall(FENCE.sub('', page.read_text())):
            if re.match(r'[a-z]+:', target):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition('#')
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                broken.append(f'{name}: {target} (no such file)')
            elif anchor and dest.suffix == '.md' and anchor not in anchors(dest):
                broken.append(f'{name}: {target} (no heading with this anchor)')
    return broken


def test_sphinx_is_installed():
    try:
        import furo  # noqa: F401  (the theme of docs/en/conf.py)
        import myst_parser  # noqa: F401
        import sphinx  # noqa: F401
    except ImportError as e:
        pytest.fail(f'the documentation tools are missing ({e}): bash tools/install.sh installs them '
                    '(or pip install -r tools/requirements-docs.txt)')


def test_docs_build_without_warnings(tmp_path):
    result = subprocess.run([sys.executable, '-m', 'sphinx', '-W', '--keep-going', '-n', '-b', 'html', '-q',
                             str(DOCS), str(tmp_path / 'html')], capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert 'WARNING' not in output, output[-5000:]
    assert (tmp_path / 'html/index.html').is_file()


def test_links_point_at_existing_files_and_anchors():
    broken = broken_links(pages())
    assert not broken, '\n'.join(broken)


def test_every_page_is_in_the_table_of_contents():
    index = (DOCS / 'index.md').read_text()
    listed = set(re.findall(r'^([\w/]+\.md)$', index, re.M))
    pages_ = {str(p.relative_to(DOCS)) for p in DOCS.rglob('*.md')} - {'index.md'}
    assert pages_ == listed, f'not in index.md: {sorted(pages_ - listed)}; missing: {sorted(listed - pages_)}'


def test_the_link_check_finds_a_broken_link(tmp_path):
    page = tmp_path / 'page.md'
    (tmp_path / 'other.md').write_text('# Other\n\n## A `code` heading (with brackets)\n\n## Other\n')
    page.write_text('[ok](other.md#a-code-heading-with-brackets) [ok](other.md#other-1) [ok](#title)\n# Title\n'
                    '```\n[in code](nowhere.md)\n```\n')
    assert broken_links([page]) == []
    page.write_text('[bad](missing.md) [bad anchor](other.md#no-such-heading)\n')
    assert len(broken_links([page])) == 2


def test_development_notes_stay_out_of_the_user_docs():
    """Users read what was measured, where and how, not the project's issue numbers or targets."""
    for page in pages():
        text = page.read_text()
        for pattern in (r'\bissue \d+', r'\(goal', r'\bgoals?\b', r'>= ?1\.\d+x'):
            assert not re.search(pattern, text, re.I), f'{page.relative_to(ROOT)}: {pattern}'


LEAD_LINES = 12  # the first command starts within this many lines after the page title
PARAGRAPH_CHARS = 600  # the longest paragraph of prose a page may have
# Pages without a leading command, and why; every other page under docs/en is checked.
NO_LEADING_COMMAND = {'index.md': 'the landing page: a summary and the table of contents',
                      'notes/changelog.md': 'a list of releases'}
COMMAND_FENCE = re.compile(r'^(```|~~~)\s*(bash|python|shell|sh|console)?\s*$')


def layout_problems(page):
    """Why a page does not lead with a command or has a paragraph of prose longer than PARAGRAPH_CHARS."""
    lines, problems = page.read_text().splitlines(), []
    title = next((i for i, line in enumerate(lines) if line.startswith('# ')), None)
    if title is None:
        return ['no "# " title']
    for i, line in enumerate(lines[title + 1:], title + 1):
        if line.startswith('## '):
            problems.append(f'the first "##" heading (line {i + 1}) comes before any command block')
            break
        if COMMAND_FENCE.match(line):
            if i - title > LEAD_LINES:
                problems.append(f'the first command block starts {i - title} lines after the title '
                                f'(line {i + 1}; at most {LEAD_LINES})')
            break
    else:
        problems.append('no command block (```bash, ```python, ```shell or a bare ```)')
    # Paragraphs: runs of non-blank lines outside code, less headings, table rows, HTML comments and lists
    # (a list item, its indented lines and its lazy continuation lines).
    blocks = re.split(r'\n\s*\n', FENCE.sub('\n', page.read_text()))
    for block in blocks:
        prose = []
        for line in block.splitlines():
            if line[:1].isspace() or re.match(r'\s*([-*+]|\d+\.) ', line):
                break  # a list, or a list item's indented continuation, until the blank line
            if not re.match(r'(#{1,6} |\||<!--)', line):
                prose.append(line.strip())
        text = ' '.join(prose)
        if len(text) > PARAGRAPH_CHARS:
            problems.append(f'a paragraph of {len(text)} characters (at most {PARAGRAPH_CHARS}): {text[:70]}...')
    return problems


def test_pages_lead_with_a_command():
    """Every page but the landing page and the changelog shows its command first (a code block within the
    first lines after the title, before any section), then short paragraphs, lists and tables."""
    every = {str(p.relative_to(DOCS)) for p in DOCS.rglob('*.md')}
    assert set(NO_LEADING_COMMAND) <= every, f'exempt but missing: {sorted(set(NO_LEADING_COMMAND) - every)}'
    checked = sorted(every - set(NO_LEADING_COMMAND))
    assert len(checked) == len(every) - len(NO_LEADING_COMMAND) > 0
    problems = [f'{name}: {why}' for name in checked for why in layout_problems(DOCS / name)]
    assert not problems, '\n'.join(problems)
