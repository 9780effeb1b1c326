"""The model zoo: every config of ``configs/`` as a named entry of its family's metafile.

``configs/model-index.yml`` lists one metafile per family (``configs/<family>_metafile.yml``, mmpretrain's
schema: Name, Config, Metadata with ``FLOPs`` (multiply-adds as ``tools/analysis_tools/get_flops.py`` counts them) and
``Parameters``, the paper's Results, and ``Converted From``: the authors' weights and code, with the
``Convert`` command that turns their download into a file the config loads, or ``null`` when it loads as
published; ``Weights: null`` there says that the authors released none). Names follow the codebases'
conventions (``shvit-s4_3rdparty_in1k``, ``mask-rcnn_litv2-s_fpn_1x_coco``,
``fpn_litv2-s_8xb2-80k_ade20k-512x512``).

- :func:`list_models`, :func:`get_entry`: the entries by name (``fnmatch`` pattern); an unknown name
  raises :class:`UnknownModelError` naming the closest ones;
- :func:`resolve_config`: a config path or an entry name -> the config path (what every tool calls);
- :func:`register_with_mmpretrain`: the classification entries into mmpretrain's ``ModelHub`` (on
  ``import effvit_mm``), so that ``mmpretrain.list_models`` / ``get_model`` / its inferencers know them.
"""
import difflib
import fnmatch
import functools
import os.path as osp
import re
from dataclasses import dataclass

from modelindex.load_model_index import load

__all__ = ['MODEL_INDEX', 'TASKS', 'Entry', 'UnknownModelError', 'get_entry', 'list_models',
           'readme_blocks', 'register_with_mmpretrain', 'render_readme', 'resolve_config']

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MODEL_INDEX = osp.join(REPO_ROOT, 'configs', 'model-index.yml')
# Results' ``Task`` (mmpretrain / mmdet / mmseg metafiles) -> the codebase that runs the entry.
TASKS = {'Image Classification': 'mmpretrain', 'Object Detection': 'mmdet', 'Instance Segmentation': 'mmdet',
         'Semantic Segmentation': 'mmseg'}


class UnknownModelError(ValueError):
    """A name that is neither a model-zoo entry nor an existing file."""


@dataclass(frozen=True)
class Entry:
    """One metafile entry.

    Attributes:
        name: the entry's name.
        config: absolute path of its config.
        codebase: ``'mmpretrain'``, ``'mmdet'`` or ``'mmseg'``.
        metainfo: the ``modelindex`` model (collection fields merged in), as mmpretrain's ModelHub holds it.
    """
    name: str
    config: str
    codebase: str
    metainfo: object

    @property
    def metrics(self):
        """``{metric: value}`` of the paper's results (empty when none were published)."""
        return {k: v for result in (self.metainfo.results or []) for k, v in result.metrics.items()}


def _codebase(model):
    """The codebase of a modelindex model: its results' task, else its ``Metadata.Task``."""
    tasks = {result.task for result in (model.results or [])} or {model.metadata.data.get('Task')}
    codebases = {TASKS.get(task) for task in tasks}
    if len(codebases) != 1 or None in codebases:
        raise ValueError(f'{model.filepath}: entry {model.name} has tasks {sorted(map(str, tasks))}; each entry '
                         f'needs one of {sorted(TASKS)} (Results, or Metadata.Task without results)')
    return codebases.pop()


@functools.lru_cache(maxsize=None)
def _entries():
    """name (lower case) -> :class:`Entry`, from :data:`MODEL_INDEX`."""
    if not osp.isfile(MODEL_INDEX):
        raise FileNotFoundError(f'the model index {MODEL_INDEX} is missing: model names need the repository\'s '
                                'configs/ beside the package (pip install -e .)')
    index = load(MODEL_INDEX)
    errors = index.check(silent=True)
    if errors:
        raise ValueError(f'{MODEL_INDEX}: ' + '; '.join(errors))
    index.build_models_with_collections()
    entries = {}
    for model in index.models:
        key = model.name.lower()
        if key in entries:
            raise ValueError(f'model name {model.name} appears twice in {MODEL_INDEX} and its metafiles')
        model.config = osp.join(REPO_ROOT, model.config)
        entries[key] = Entry(model.name, model.config, _codebase(model), model)
    return entries


def list_models(pattern='*', codebase=None):
    """Sorted entry names matching the ``fnmatch`` ``pattern`` (case-insensitive), of one codebase
    (``'mmpretrain'``, ``'mmdet'``, ``'mmseg'``) or all."""
    return sorted(e.name for key, e in _entries().items()
                  if fnmatch.fnmatch(key, pattern.lower()) and codebase in (None, e.codebase))


def _closest(name, n=3):
    names = {e.name.lower(): e.name for e in _entries().values()}
    return [names[k] for k in difflib.get_close_matches(name.lower(), names, n=n, cutoff=0.4)]


def get_entry(name):
    """The :class:`Entry` of ``name`` (case-insensitive); :class:`UnknownModelError` with the closest
    names otherwise."""
    entry = _entries().get(str(name).lower())
    if entry is None:
        close = _closest(str(name))
        raise UnknownModelError(f"unknown model '{name}'" + (f"; closest: {', '.join(close)}" if close else '')
                                + ' (python tools/misc/model_zoo.py list: all names)')
    return entry


def resolve_config(name_or_path):
    """The config file of a model-zoo name, or the path itself when it is an existing file. A missing
    ``.py`` path raises ``FileNotFoundError``; any other unknown string :class:`UnknownModelError`."""
    path = str(name_or_path)
    if osp.isfile(path):
        return path
    if path.endswith('.py') or osp.sep in path:
        raise FileNotFoundError(f'config {path} not found (relative paths start at {osp.abspath(".")})')
    return get_entry(path).config


def register_with_mmpretrain():
    """Add the classification entries to mmpretrain's ``ModelHub`` (once; names it already has are
    kept). mmpretrain's ``register_model_index`` would register every entry of the index, and mmpretrain
    cannot build our detectors and segmentors, so the entries go in one by one."""
    from mmpretrain.apis import ModelHub
    for key, entry in _entries().items():
        if entry.codebase == 'mmpretrain' and not ModelHub.has(key):
            ModelHub._models_dict[key] = entry.metainfo


# README tables ---------------------------------------------------------------------------------------

README = osp.join(REPO_ROOT, 'README.md')
_BEGIN, _END = '<!-- model-zoo {} (python tools/misc/model_zoo.py readme) -->', '<!-- model-zoo end -->'


def _release(entry):
    """The authors' weights cell: the download linked by file name, and how it loads."""
    converted = entry.metainfo.data.get('Converted From') or {}
    url = converted.get('Weights')
    if not url:
        return 'none released' if converted else 'ours (generated data)'
    filename = url.rstrip('/').split('/')[-1]
    if 'drive.google.com' in url:  # a Drive link names no file: the file name is in the command
        filename = converted['Convert'].split()[2]
    return f"[{filename}]({url}), {'converted' if converted.get('Convert') else 'as published'}"


def _macs(value):
    return f'{value / 1e6:.0f}M' if value < 1e9 else f'{value / 1e9:.2f}G'


def readme_table(codebase, family=None):
    """The Markdown table of a codebase's entries (one family's, or all), from the metafiles."""
    rows = [e for e in _entries().values() if e.codebase == codebase
            and (family is None or e.metainfo.in_collection.lower() == family.lower())]
    metrics = {'mmpretrain': ['Top 1 Accuracy'], 'mmdet': ['box AP', 'mask AP'], 'mmseg': ['mIoU']}[codebase]
    size = 'res' if codebase == 'mmpretrain' else 'iterations' if codebase == 'mmseg' else 'epochs'
    counted = 'with head' if codebase == 'mmpretrain' else 'backbone + neck'
    head = ['name', 'config', size, f'params ({counted})', 'MACs', *[m.replace('Top 1 Accuracy', 'top-1')
                                                                     for m in metrics], "authors' weights"]
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for e in rows:
        meta = e.metainfo.metadata.data
        value = meta.get('Resolution') or meta.get('Iterations') or meta.get('Epochs')
        cells = [f'`{e.name}`', f'`{osp.relpath(e.config, REPO_ROOT)}`', str(value),
                 f"{meta['Parameters'] / 1e6:.2f}M", _macs(meta['FLOPs']),
                 *[str(e.metrics.get(m, '-')) for m in metrics], _release(e)]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def readme_blocks():
    """Block name (``<codebase>`` or ``<codebase>-<family>``) -> its table."""
    blocks = {'mmdet': readme_table('mmdet'), 'mmseg': readme_table('mmseg')}
    collections = {e.metainfo.in_collection for e in _entries().values()}
    blocks.update({f'mmpretrain-{c.lower()}': readme_table('mmpretrain', c) for c in sorted(collections)})
    return blocks


def render_readme(text):
    """``text`` (the README) with every model-zoo block replaced by its current table; a block the
    README lacks, or one it has that the metafiles do not make, is a ``ValueError``."""
    blocks = readme_blocks()
    pattern = re.compile(re.escape(_BEGIN).replace(r'\{\}', r'(\S+)') + r'\n.*?' + re.escape(_END), re.S)
    found = pattern.findall(text)
    if sorted(found) != sorted(blocks):
        raise ValueError(f'README model-zoo blocks {sorted(found)} != those of the metafiles {sorted(blocks)}')
    return pattern.sub(lambda m: f'{_BEGIN.format(m.group(1))}\n{blocks[m.group(1)]}\n{_END}', text)
