"""Which checkpoint ``--resume`` continues a run from, and what killed saves left behind.

``--resume`` alone (and a job that torchrun restarted or Slurm requeued) takes the newest complete
*training* checkpoint of the work dir (:func:`newest_training_checkpoint`):

1. the file that ``last_checkpoint`` names, when it is a complete training checkpoint (mmengine's
   checkpoint hook and the preemption hook write ``last_checkpoint`` once the checkpoint is complete; in
   a work dir that was moved, the name is looked up in the work dir);
2. else the ``iter_N.pth`` / ``epoch_N.pth`` files, the furthest trained first (the iteration their
   ``meta`` records, then N), each damaged one passed over with one line.

A training checkpoint is a whole file with weights, optimiser state, message hub and meta. Other files
(``best_*.pth``, which mmengine saves without optimiser state, published or copied-in files) are taken
only when named (``--resume PATH``). The run says in one line which file it resumes from.
"""
import logging
import os
import os.path as osp
import re
import zipfile

from mmengine.logging import print_log

from .atomic import TEMPORARY
from .safe_load import CheckpointFileError, safe_load

__all__ = ['TRAINING_KEYS', 'checkpoint_problem', 'newest_training_checkpoint', 'remove_partial_writes',
           'resume_from', 'training_checkpoint_problem']

TRAINING_KEYS = ('meta', 'state_dict', 'optimizer', 'message_hub')
_NUMBERED = re.compile(r'(?:iter|epoch)_(\d+)\.pth')


def _first_process():
    """Whether this is the job's first process (before the process group exists: from the launcher's env)."""
    return os.environ.get('RANK', os.environ.get('SLURM_PROCID', '0')) == '0'


def _say(message, level=logging.INFO):
    if _first_process():
        print_log(message, logger='current', level=level)


def checkpoint_problem(path):
    """None for a whole checkpoint file (a torch zip archive whose records' CRCs check out), else why not."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        return f'unreadable ({error})'
    if bad is not None:
        return f'damaged (record {bad})'
    if not any(name.endswith('/data.pkl') or name == 'data.pkl' for name in names):
        return 'not a torch checkpoint (no data.pkl)'
    return None


def _contents(path):
    """The checkpoint's top level, its tensors memory-mapped (only the pickle is read)."""
    return safe_load(path, mmap=True)


def training_checkpoint_problem(path):
    """(None, meta) for a complete training checkpoint (module docstring), else (why not, meta or {})."""
    problem = checkpoint_problem(path)
    if problem:
        return problem, {}
    try:
        checkpoint = _contents(path)
    except CheckpointFileError as error:
        return f'unreadable ({error})', {}
    meta = checkpoint.get('meta') or {} if isinstance(checkpoint, dict) else {}
    missing = [key for key in TRAINING_KEYS if not isinstance(checkpoint, dict) or key not in checkpoint]
    if missing:
        return f'not a training checkpoint (no {", ".join(missing)})', meta
    return None, meta


def _named_by_last_checkpoint(work_dir):
    """The file ``work_dir/last_checkpoint`` names (looked up in ``work_dir`` when that path is gone), or None."""
    try:
        with open(osp.join(work_dir, 'last_checkpoint')) as f:
            named = f.read().strip()
    except OSError:
        return None
    if not named:
        return None
    return named if osp.isfile(named) else osp.join(work_dir, osp.basename(named))


def _progress(path):
    """(iteration recorded in the file's meta, N of its name) of an ``iter_N`` / ``epoch_N`` file; None if
    it cannot be read."""
    try:
        meta = _contents(path).get('meta') or {}
    except (CheckpointFileError, AttributeError, OSError):
        return None
    return int(meta.get('iter', -1)), int(_NUMBERED.fullmatch(osp.basename(path))[1])


def newest_training_checkpoint(work_dir):
    """(path, meta, how it was found) of the checkpoint ``--resume`` takes in ``work_dir`` (module
    docstring), or None without one. Each file passed over is reported in one line."""
    named = _named_by_last_checkpoint(work_dir)
    if named is not None:
        problem, meta = training_checkpoint_problem(named)
        if problem is None:
            return named, meta, 'named by last_checkpoint'
        _say(f'checkpoint {named}, named by last_checkpoint, is {problem}: looking for the newest iter_N / epoch_N '
             'file', logging.WARNING)
    numbered = []
    for name in os.listdir(work_dir):  # no glob: a work dir may hold [ ] * ? in its name
        path = osp.join(work_dir, name)
        if _NUMBERED.fullmatch(name) and path != named:  # a damaged named file: said once
            if (progress := _progress(path)) is None:
                _say(f'checkpoint {path} is unreadable: passed over', logging.WARNING)
            else:
                numbered.append((progress, path))
    for _, path in sorted(numbered, reverse=True):
        problem, meta = training_checkpoint_problem(path)
        if problem is None:
            return path, meta, 'the furthest trained iter_N / epoch_N file'
        _say(f'checkpoint {path} is {problem}: passed over', logging.WARNING)
    return None


def remove_partial_writes(work_dir):
    """Remove the temporary files (``*.tmpPID``) that saves killed before their rename left in ``work_dir``,
    one line each; a resumed run never reads them. One process per machine does it (``LOCAL_RANK`` 0)."""
    if os.environ.get('LOCAL_RANK', '0') != '0':
        return
    for name in sorted(os.listdir(work_dir)):
        if re.fullmatch(rf'.+{re.escape(TEMPORARY)}\d+', name):
            path = osp.join(work_dir, name)
            try:
                os.remove(path)
            except FileNotFoundError:  # removed by a process of another launch on a shared file system
                continue
            print_log(f'removed {path}, left by a save that was killed before it ended', logger='current')


def resume_from(work_dir, resume):
    """The checkpoint ``--resume`` means, said in one line: ``resume`` 'auto' ->
    :func:`newest_training_checkpoint` of ``work_dir`` (None: none yet, the run starts from the
    beginning); a path -> that path (a missing or damaged file is refused in one line when it is loaded;
    one without weights, meta or message hub is refused here; one without optimiser state resumes with
    a warning). Partial writes in ``work_dir`` are removed first (:func:`remove_partial_writes`)."""
    if osp.isdir(work_dir):
        remove_partial_writes(work_dir)
    if resume != 'auto':
        if osp.isfile(resume):
            _check_named(resume)
        return resume
    found = newest_training_checkpoint(work_dir) if osp.isdir(work_dir) else None
    if found is None:
        _say(f'no complete training checkpoint in {work_dir}: training from the start')
        return None
    path, meta, how = found
    _say(f'resuming from {path} (epoch {meta.get("epoch")}, iteration {meta.get("iter")}; {how})')
    return path


def _check_named(path):
    """A checkpoint named by ``--resume PATH``: refused in one line if a run cannot go on from it."""
    if checkpoint_problem(path):
        return  # the loader refuses it in one line
    try:
        checkpoint = _contents(path)
    except CheckpointFileError:
        return
    missing = [key for key in TRAINING_KEYS if not isinstance(checkpoint, dict) or key not in checkpoint]
    if missing == ['optimizer']:
        _say(f'{path} holds no optimiser state: the optimiser starts afresh (not an exact continuation)',
             logging.WARNING)
    elif missing:
        raise ValueError(f'--resume {path}: not a training checkpoint (no {", ".join(missing)}), a run cannot go on '
                         f'from it; to start a new run from its weights, pass --cfg-options load_from={path} instead')
