"""What the data-set generators share: a set is written once per parameters. Its meta file holds the
parameters and the summary; a second call with the same parameters returns the summary, a call with
other parameters first clears the earlier generated set."""
import json
import os
import os.path as osp


def split_params(version, num_train, num_val, **params):
    """(the parameters a set is generated with, ``{'train': num_train, 'val': num_val}``) of a set with
    a train and a val split."""
    return dict(version=version, num_train=num_train, num_val=num_val, **params), dict(train=num_train, val=num_val)


def reuse_or_reset(meta_file, params, expected_files, clear):
    """The saved summary if ``meta_file`` was written with ``params`` and every path of
    ``expected_files()`` exists. Otherwise None; if an earlier generated set is there (its meta file),
    its meta file is removed and ``clear()`` deletes its files. Without a meta file nothing is deleted:
    the folder may hold a real data set."""
    if not osp.isfile(meta_file):
        return None
    with open(meta_file) as f:
        meta = json.load(f)
    if meta.get('params') == params and all(osp.isfile(p) for p in expected_files()):
        return meta['summary']
    os.remove(meta_file)
    clear()
    return None


def save_summary(meta_file, params, summary):
    """Write ``params`` and ``summary`` to ``meta_file``; returns ``summary``."""
    with open(meta_file, 'w') as f:
        json.dump(dict(params=params, summary=summary), f, indent=1)
    return summary


def remove_numbered(folders, extensions):
    """Delete the numbered files (``000001.jpg``) with one of ``extensions`` from each existing folder:
    an earlier generated set's, which a new one may not all overwrite."""
    for folder in folders:
        for name in os.listdir(folder) if osp.isdir(folder) else []:
            stem, ext = osp.splitext(name)
            if ext in extensions and stem.isdigit():
                os.remove(osp.join(folder, name))
