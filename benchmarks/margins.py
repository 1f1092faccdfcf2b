"""How far chapters 08 and 09's one-seed assertions lie from their thresholds, over many seeds.

Those chapters train each experiment once, with seed 42, and assert what the lesson says of that run: one-cycle
reaches 0.97, BatchNorm beats it, the last hidden ReLU stays alive. On another machine (a GPU, another CPU, another
thread count) seed 42 is another draw, so an assertion holds on a learner's machine only if it holds for nearly
every draw, not for ours. This reads the runs of `convnotes reproduce --only one_cycle,batchnorm,batchnorm_before,batchnorm_5
--seeds 40` (`make margins` runs both) and reports, for each assertion, in how many seeds it held, the seed that came
closest to failing it, and the mean's distance from the threshold in standard deviations over seeds. It exits 1 if
any assertion failed for any seed. A benchmark, not a test: 40 seeds take about 25 minutes on 2 CPU cores.
"""
import argparse, datetime, statistics, sys
from collections import defaultdict
from pathlib import Path

from convnotes.data import atomic_write
from convnotes.experiments import EXPERIMENTS, LAST_HIDDEN_CONV, load_records
from convnotes.collapse_map import wilson

NEEDED = ('one_cycle', 'batchnorm', 'batchnorm_before', 'batchnorm_5')
BN = ('batchnorm', 'batchnorm_before')

def _nz(rec, when, layer=LAST_HIDDEN_CONV): return rec.layer(layer)[when]['near_zero']

# (chapter, the assertion in words, the quantity from one seed's runs, the comparison, the threshold), as the chapters assert them
CLAIMS = [
    ('08', "one-cycle's accuracy >= 0.97", lambda r: r['one_cycle'].accuracy, '>=', 0.97),
    ('08', "last hidden conv near zero, first 10% of batches < 80%", lambda r: _nz(r['one_cycle'], 'early'), '<', 0.8),
    ('08', "... and it climbs: last 10% minus first 10% > 0", lambda r: _nz(r['one_cycle'], 'late') - _nz(r['one_cycle'], 'early'), '>', 0),
    ('08', "... but stays < 95% in the last 10%", lambda r: _nz(r['one_cycle'], 'late'), '<', 0.95),
    ('09', "both BatchNorm orders' accuracy >= 0.98", lambda r: min(r[n].accuracy for n in BN), '>=', 0.98),
    ('09', "both beat one-cycle's accuracy: the lower minus one-cycle's > 0", lambda r: min(r[n].accuracy for n in BN) - r['one_cycle'].accuracy, '>', 0),
    ('09', "both beat one-cycle's validation loss: one-cycle's minus the higher > 0", lambda r: r['one_cycle'].valid_loss - max(r[n].valid_loss for n in BN), '>', 0),
    ('09', "the last hidden ReLU's input, near zero in the last 10%: one-cycle's minus the higher BatchNorm's > 0",
     lambda r: r['one_cycle'].relu_input['late']['near_zero'] - max(r[n].relu_input['late']['near_zero'] for n in BN), '>', 0),
    ('09', "BatchNorm before the ReLU: its output (3.1) near zero in the last 10% < 90%", lambda r: _nz(r['batchnorm_before'], 'late', '3.1'), '<', 0.9),
    ('09', "five epochs: accuracy within 0.005 of the book's 0.9912 (distance)", lambda r: abs(r['batchnorm_5'].accuracy - EXPERIMENTS['batchnorm_5'].book), '<=', 0.005),
    ('09', "five epochs beat every one-epoch run: minus the best of them > 0",
     lambda r: r['batchnorm_5'].accuracy - max(r[n].accuracy for n in ('one_cycle', *BN)), '>', 0),
]
OPS = {'>=': lambda q,t: q >= t, '>': lambda q,t: q > t, '<': lambda q,t: q < t, '<=': lambda q,t: q <= t}

def runs_by_seed(records:list)->dict:
    "{seed: {experiment: RunRecord}} for the seeds that ran every experiment the assertions need, with an error naming what is missing"
    by_seed = defaultdict(dict)
    for r in records: by_seed[r.seed][r.experiment] = r
    complete = {s: runs for s,runs in by_seed.items() if all(n in runs for n in NEEDED)}
    if not complete:
        raise ValueError(f"no seed ran all of {', '.join(NEEDED)}; make the runs with "
                         f"`convnotes reproduce --only {','.join(NEEDED)} --seeds 40 --out DIR` and pass DIR/results.json")
    return dict(sorted(complete.items()))

def claim_row(claim, runs:dict)->dict:
    "One assertion over every seed: how many held, the closest seed, and the mean's distance from the threshold in standard deviations"
    chapter, text, quantity, op, threshold = claim
    qs = {s: quantity(r) for s,r in runs.items()}
    held = [s for s,q in qs.items() if OPS[op](q, threshold)]
    closest = min(qs, key=lambda s: abs(qs[s] - threshold))
    sd = statistics.stdev(qs.values()) if len(qs) > 1 else float('nan')
    return dict(chapter=chapter, claim=text, op=op, threshold=threshold, n=len(qs), held=len(held),
                closest_seed=closest, closest=qs[closest], mean=statistics.fmean(qs.values()),
                sds=abs(statistics.fmean(qs.values()) - threshold) / sd if sd > 0 else float('inf'))

def report(rows:list, runs:dict)->str:
    "The rows as a Markdown report, with where and when the runs were made"
    first = next(iter(next(iter(runs.values())).values()))
    lo, hi = wilson(0, rows[0]['n'])
    lines = [f"# Seeds: one-seed assertions over {rows[0]['n']} seeds", "",
             f"Written by `benchmarks/margins.py` on {datetime.date.today().isoformat()} from runs on {first.device} "
             f"({first.machine}), seeds {min(runs)}–{max(runs)}; torch {first.versions.get('torch')}, fastai {first.versions.get('fastai')}. "
             f"Chapters 08 and 09 assert these of seed 42's runs. An assertion that held in every one of {rows[0]['n']} seeds fails "
             f"in at most {hi:.0%} of seeds (the Wilson 95% upper bound); the distance of the mean from the threshold, in standard "
             "deviations over seeds, says how far into the tail a failing seed would lie.", "",
             "| chapter | assertion | held in | closest seed: value | mean | threshold | mean's distance (SDs) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['chapter']} | {r['claim']} | {r['held']} of {r['n']} | {r['closest_seed']}: {r['closest']:.4f} | "
                     f"{r['mean']:.4f} | {r['op']} {r['threshold']} | {r['sds']:.1f} |")
    return '\n'.join(lines) + '\n'

def main(argv=None)->int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('results', type=Path, help="results.json written by `convnotes reproduce --only one_cycle,batchnorm,batchnorm_before,batchnorm_5 --seeds 40`")
    p.add_argument('--out', type=Path, default=None, help="also write the report here (atomically), e.g. benchmarks/MARGINS.md")
    args = p.parse_args(argv)
    try: runs = runs_by_seed(load_records(args.results))
    except (OSError, ValueError) as e: p.error(str(e))
    rows = [claim_row(c, runs) for c in CLAIMS]
    text = report(rows, runs)
    print(text)
    if args.out:
        with atomic_write(args.out, 'w') as f: f.write(text)
    failed = [r['claim'] for r in rows if r['held'] < r['n']]
    if failed: print(f"margins: failed for some seed: {'; '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0

if __name__ == '__main__':
    try: sys.exit(main())
    except KeyboardInterrupt: sys.exit(130)
