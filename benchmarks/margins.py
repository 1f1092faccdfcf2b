"""How far chapters 05, 08 and 09's one-seed assertions lie from their thresholds, over many seeds.

Those chapters train each experiment once, with seed 42, and assert what the lesson says of that run: the first
CNN tells 3s from 7s, one-cycle reaches 0.97, BatchNorm beats it, the last hidden ReLU stays alive. On another
machine (a GPU, another CPU, another thread count) seed 42 is another draw, so an assertion holds on a learner's
machine only if it holds for nearly every draw, not for ours. This reads the runs of `convnotes reproduce --only
sample,one_cycle,batchnorm,batchnorm_before,batchnorm_5 --seeds 40` (`make margins` runs both; several results files
are read as one) and reports, for each assertion, in how many seeds it held, the seed that came closest to failing
it, and the mean's distance from the threshold in standard deviations over seeds; with `--out`, into the runs'
device's section of the report, keeping the other devices'. It exits 1 if any assertion failed for any seed. A
benchmark, not a test: 40 seeds take about 20 minutes on 2 CPU cores.
"""
import argparse, datetime, operator, statistics, sys
from collections import defaultdict
from pathlib import Path

from convnotes.experiments import EXPERIMENTS, FIRST_CONV, LAST_HIDDEN_CONV, load_records
from convnotes.collapse_map import wilson
from sections import update_sections   # benchmarks/sections.py

NEEDED = ('sample', 'one_cycle', 'batchnorm', 'batchnorm_before', 'batchnorm_5')
BN = ('batchnorm', 'batchnorm_before')

def _nz(rec, when, layer=LAST_HIDDEN_CONV): return rec.layer(layer)[when]['near_zero']

# (chapter, the assertion in words, the quantity from one seed's runs, the comparison, the threshold), as the chapters assert them
CLAIMS = [
    ('05', "the first CNN (3s vs 7s): accuracy >= 0.985", lambda r: r['sample'].accuracy, '>=', 0.985),
    ('05', "... its first conv near zero in the last 10% of batches < 95%", lambda r: _nz(r['sample'], 'late', FIRST_CONV), '<', 0.95),
    ('05', "... its last hidden conv near zero in the last 10% < 90%", lambda r: _nz(r['sample'], 'late'), '<', 0.9),
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
OPS = {'>=': operator.ge, '>': operator.gt, '<': operator.lt, '<=': operator.le}

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
    mean, sd = statistics.fmean(qs.values()), statistics.stdev(qs.values()) if len(qs) > 1 else float('nan')
    return dict(chapter=chapter, claim=text, op=op, threshold=threshold, n=len(qs), held=len(held),
                closest_seed=closest, closest=qs[closest], mean=mean, sds=abs(mean - threshold) / sd if sd > 0 else float('inf'))

TITLE = "# Seeds: one-seed assertions over many seeds"
INTRO = ("Chapters 05, 08 and 09 train each experiment once, with seed 42, and assert what the lesson says of that run. "
         "On a learner's machine the same seed draws another run, so each assertion must hold for nearly every seed, "
         "not only for ours. `make margins` trains 40 seeds of each experiment and counts, for each assertion, the "
         "seeds it held for; the seed that came closest to failing it; and how far the mean over seeds lies from the "
         "threshold, in standard deviations over seeds: how far into the tail a failing seed would lie. Each device's "
         "latest run has its own section, written by `benchmarks/margins.py`.")
HEADINGS = {'cpu': 'On a CPU', 'cuda': 'On a CUDA GPU'}

def first_record(runs:dict): return next(iter(next(iter(runs.values())).values()))

def device_kind(device:str)->str: return device.split(':')[0]

def section(rows:list, runs:dict)->str:
    "One device's section of the report: where and when the runs were made, and a row per assertion"
    first = first_record(runs)
    hi = wilson(0, rows[0]['n'])[1]
    kind = device_kind(first.device)
    lines = [f"## {HEADINGS.get(kind, kind)}", "",
             f"{datetime.date.today().isoformat()}: {rows[0]['n']} seeds ({min(runs)}–{max(runs)}) on {first.device} ({first.machine}); "
             f"torch {first.versions.get('torch')}, fastai {first.versions.get('fastai')}. An assertion that held for every one of "
             f"{rows[0]['n']} seeds fails for at most {hi:.0%} of seeds (the Wilson 95% upper bound).", "",
             "| chapter | assertion | held in | closest seed: value | mean | threshold | mean's distance (SDs) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['chapter']} | {r['claim']} | {r['held']} of {r['n']} | {r['closest_seed']}: {r['closest']:.4f} | "
                     f"{r['mean']:.4f} | {r['op']} {r['threshold']} | {r['sds']:.1f} |")
    return '\n'.join(lines)

def main(argv=None)->int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('results', type=Path, nargs='+', help=f"results.json written by `convnotes reproduce --only {','.join(NEEDED)} --seeds 40`; several are read as one")
    p.add_argument('--out', type=Path, default=None, help="also write the runs' device's section of this report (atomically), keeping the other devices', e.g. benchmarks/MARGINS.md")
    args = p.parse_args(argv)
    try: runs = runs_by_seed([r for path in args.results for r in load_records(path)])
    except (OSError, ValueError) as e: p.error(str(e))
    rows = [claim_row(c, runs) for c in CLAIMS]
    body = section(rows, runs)
    print(body)
    if args.out: update_sections(args.out, {device_kind(first_record(runs).device): body}, f"{TITLE}\n\n{INTRO}", tag='margins')
    failed = [r['claim'] for r in rows if r['held'] < r['n']]
    if failed: print(f"margins: failed for some seed: {'; '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0

if __name__ == '__main__':
    try: sys.exit(main())
    except KeyboardInterrupt: sys.exit(130)
