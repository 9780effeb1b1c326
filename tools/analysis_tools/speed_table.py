"""The backend tables of docs/en/deployment/benchmark_results.md from the JSON files of
``bash tools/analysis_tools/run_speed.sh`` (its runtimes and latency groups): one row per run (one model, ours
beside its reference: timm's twin, or the authors' LITv2 given as ``--external authors_...``),
every backend's img/s (batch > 1) or ms (batch 1), then three ratios per run:

- ours deploy + torch.compile over the reference's compiled form (timm fused + compile, or the
  authors' LITv2 compiled);
- the fastest of our backends over the reference's fastest;
- our fastest backend's share of the fp32 GEMM peak of the same run.

    python tools/analysis_tools/speed_table.py work_dirs/speed [--out work_dirs/speed/backends.md]
"""
import argparse
import glob
import json
import os.path as osp

MODES = ('eval', 'deploy', 'compile', 'aot', 'onnxruntime', 'openvino')


def summarise(rows):
    """One run's figures (one of our models): {'model', 'batch', 'input', 'ours': {mode: row},
    'ref': {mode: row}, 'ref_name', 'peak'}."""
    ours = {r['mode']: r for r in rows if r['role'] == 'ours'}
    refs = [r for r in rows if r['role'] in ('timm', 'external')]
    refs = [r for r in refs if r['model'] == refs[0]['model']]  # the first reference (timm's twin, if any)
    model = next(iter(ours.values()))['target']
    return dict(model=model, batch=rows[0]['batch'], input=rows[0]['input'], ours=ours,
                ref={r['mode']: r for r in refs}, ref_name=refs[0]['model'] if refs else '-',
                peak=max((r['gflop_s'] for r in rows if r['role'] == 'gemm'), default=None))


def figure(row, latency):
    if row is None:
        return '-'
    value = row['ms'] if latency else row['img_s']
    return f'{value:.0f}' if value >= 100 else f'{value:.1f}'


def fastest(side, latency):
    """(mode, row) of the fastest backend of one side."""
    if not side:
        return None, None
    mode = max(side, key=lambda m: side[m]['img_s'])
    return mode, side[mode]


def tables(runs):
    """Markdown: the backends table, then the ratios table, of runs of one batch size."""
    latency = runs[0]['batch'] == 1
    unit = 'ms per image (batch 1)' if latency else f"img/s (batch {runs[0]['batch']})"
    head = ' | '.join([f'ours {m}' for m in MODES] + [f'ref. {m}' for m in MODES])
    lines = [f'Backends, {unit}; ours, then the reference ("ref. deploy": timm fused):', '',
             f'| model | input | reference | {head} |',
             '|---|---|---|' + '---|' * 2 * len(MODES)]
    for r in runs:
        cells = [figure(r['ours'].get(m), latency) for m in MODES] + [figure(r['ref'].get(m), latency) for m in MODES]
        lines.append(f"| {r['model']} | {r['input']} | {r['ref_name']} | " + ' | '.join(cells) + ' |')
    lines += ['', '| model | ours compile vs reference compile | fastest: ours vs reference '
              '| ours fastest, of GEMM peak |', '|---|---|---|---|']
    for r in runs:
        compiled = r['ref'].get('compile')
        vs_compile = (f"{r['ours']['compile']['img_s'] / compiled['img_s']:.2f}x"
                      if compiled and 'compile' in r['ours'] else '-')
        (our_mode, our_best), (ref_mode, ref_best) = fastest(r['ours'], latency), fastest(r['ref'], latency)
        vs_best = f"{our_best['img_s'] / ref_best['img_s']:.2f}x ({our_mode} vs {ref_mode})" if ref_best else '-'
        peak = f"{our_best['peak_frac']:.0%} ({our_mode})" if our_best['peak_frac'] else '-'
        lines.append(f"| {r['model']} | {vs_compile} | {vs_best} | {peak} |")
    return lines


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('dir', help='the OUT_DIR of tools/analysis_tools/run_speed.sh')
    p.add_argument('--out', help='Markdown file (default: DIR/backends.md)')
    args = p.parse_args()
    files = sorted(glob.glob(osp.join(args.dir, 'cpu_runtimes_*.json')) +
                   glob.glob(osp.join(args.dir, 'cpu_latency_*.json')))
    if not files:
        raise SystemExit(f'error: no cpu_runtimes_*.json / cpu_latency_*.json in {args.dir} '
                         f'(run: bash tools/analysis_tools/run_speed.sh {args.dir} runtimes latency)')
    runs = []
    for path in files:
        with open(path) as f:
            runs.append(summarise(json.load(f)))
    order = [f'{fam}:{a}' for fam, archs in (('shvit', 's1 s2 s3 s4'), ('swiftformer', 'xs s l1 l3'),
                                             ('litv2', 's m b')) for a in archs.split()]
    runs.sort(key=lambda r: (r['batch'] == 1, order.index(r['model']) if r['model'] in order else len(order)))
    lines = []
    for batch in sorted({r['batch'] for r in runs}, reverse=True):
        lines += tables([r for r in runs if r['batch'] == batch]) + ['']
    text = '\n'.join(lines)
    print(text)
    out = args.out or osp.join(args.dir, 'backends.md')
    with open(out, 'w') as f:
        f.write(text)
    print(f'written to {out}')


if __name__ == '__main__':
    main()
