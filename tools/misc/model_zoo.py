"""The model zoo (configs/model-index.yml and the families' metafiles, see effvit_mm/apis/model_zoo.py).

    python tools/misc/model_zoo.py list [PATTERN] [--codebase mmpretrain|mmdet|mmseg]   # names, configs, paper metrics
    python tools/misc/model_zoo.py show NAME          # one entry: config, results, the authors' weights and how they load
    python tools/misc/model_zoo.py readme [--check]   # rewrite README.md's model tables from the metafiles
    python tools/misc/model_zoo.py count [PATTERN]    # recount FLOPs and parameters, compare with the metafiles

Every tool that takes a config path takes a name too (``python tools/test.py shvit-s4_3rdparty_in1k FILE``).
``readme --check`` exits 1 when README.md differs from what the metafiles make; ``count`` exits 1 on a
difference.
"""
import argparse
import json
import os.path as osp

from effvit_mm.apis.model_zoo import README, get_entry, list_models, render_readme
from effvit_mm.analysis.mac_count import count_entry


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='command', required=True)
    ls = sub.add_parser('list')
    ls.add_argument('pattern', nargs='?', default='*')
    ls.add_argument('--codebase', choices=['mmpretrain', 'mmdet', 'mmseg'])
    sub.add_parser('show').add_argument('name')
    sub.add_parser('readme').add_argument('--check', action='store_true', help='compare only (exit 1 if stale)')
    sub.add_parser('count').add_argument('pattern', nargs='?', default='*')
    return p.parse_args()


def show(name):
    entry = get_entry(name)
    data = entry.metainfo.data
    out = dict(name=entry.name, codebase=entry.codebase, config=osp.relpath(entry.config),
               metadata=entry.metainfo.metadata.data, results=entry.metrics or None,
               converted_from=data.get('Converted From'))
    print(json.dumps(out, indent=2))


def main():
    args = parse_args()
    try:
        if args.command == 'list':
            for name in list_models(args.pattern, args.codebase):
                entry = get_entry(name)
                metrics = ', '.join(f'{k} {v}' for k, v in entry.metrics.items()) or 'no paper result'
                print(f'{name:48s} {osp.relpath(entry.config):40s} {metrics}')
        elif args.command == 'show':
            show(args.name)
        elif args.command == 'readme':
            with open(README) as f:
                text = f.read()
            rendered = render_readme(text)
            if args.check:
                raise SystemExit(0 if rendered == text else f'{README} is stale: python tools/misc/model_zoo.py readme')
            with open(README, 'w') as f:
                f.write(rendered)
            print(f'{README}: model tables {"unchanged" if rendered == text else "rewritten"}')
        else:
            stale = 0
            for name in list_models(args.pattern):
                entry = get_entry(name)
                flops, params = count_entry(entry)
                meta = entry.metainfo.metadata.data
                same = (flops, params) == (meta['FLOPs'], meta['Parameters'])
                stale += not same
                print(f'{name:48s} FLOPs {flops} params {params}' + ('' if same else
                      f"   metafile: FLOPs {meta['FLOPs']} params {meta['Parameters']}  DIFFERENT"))
            if stale:
                raise SystemExit(f'{stale} entries differ from their metafile')
    except (FileNotFoundError, ValueError) as error:  # one line, not a traceback
        raise SystemExit(f'error: {error}')


if __name__ == '__main__':
    main()
