"""One epoch of `fit_one_cycle(1, 0.06)` on full MNIST with the 10-class `simple_cnn`, three ways, on each device:

1. book:      the fastai book's pipeline, `mnist_datablock_dls` (PNG decoded by PIL every epoch) + `Learner` (fastai's `Adam`)
2. convnotes: `mnist_dls` (tensors decoded once, kept on the device, each epoch's order drawn by torch's `randperm`) + `LeanLearner` (fastai's `Learner`, calling
              only the callbacks that handle each event, its one-cycle schedule computed without tensor operations,
              each epoch's values at its start, its smoothed loss and validation metrics kept on the device, accuracy
              on plain tensors, its per-batch callbacks reading the learner's attributes and one hyper-parameter
              directly) with `torch_adam`, as `make_learner` builds it
3. floor:     a plain PyTorch loop over the same tensors on the same device: same model, torch's fused `AdamW`
              with fastai's `Adam` defaults (biases not decayed, as fastai's `Learner` does), one-cycle schedule,
              shuffled batch order and validation pass

each with and without activation statistics (`with_hist=True`): fastai's `ActivationStats` for the book,
convnotes' `LeanActivationStats` (the same numbers; on a CPU, all four in one pass of compiled C where there is a C
compiler) for convnotes, and forward hooks computing the same statistics with torch for the floor, kept on the device
and read once per epoch as convnotes does; at bs 512 and 64; and what each statistic's
arithmetic costs by itself, timed outside training (each of torch's four passes, and, on a CPU, the one pass), and (on a CPU) the time an epoch spends in the hooks; and the
host time per batch convnotes adds to the floor, on tiny CPU batches (where, as on a GPU, a batch's time is mostly the host's Python). Measures the CPU,
and a CUDA GPU too when there is one. Writes each device's table, dated, with its machine and versions, into its
own section of the report, so the other device's latest results stay. Then the cost of two processes training at
once on the CPU (what `make nbtest` does: with torch's default threads, and with the cores shared out), and, with `--profile`, where one epoch's time goes
(cProfile's parts of a convnotes epoch on the CPU; on a GPU, torch's profiler: what each pipeline asks of the GPU). Timings are a
benchmark, not a test.
"""
import argparse, cProfile, datetime, gc, importlib.util, math, os, platform, pstats, resource, statistics, subprocess, sys, time, timeit, warnings
from functools import partial
from pathlib import Path
warnings.filterwarnings('ignore')
import torch, torch.nn.functional as F
import fastai
from fastai.vision.all import Learner, ActivationStats, Adam, accuracy, set_seed, flatten_model, has_params, hook_outputs
from convnotes.data import load_mnist, mnist_dls, mnist_datablock_dls
from convnotes.models import simple_cnn
from convnotes.cli import positive_int, number_list
from convnotes.experiments import (LeanActivationStats, LeanLearner, activation_hist, one_pass_kernel, one_pass_stats, release_free_memory,
                                   torch_adam, machine as device_name)
import convnotes.experiments
from fastai.callback.schedule import ParamScheduler
from fastai.learner import Recorder
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity
from sections import update_sections   # benchmarks/sections.py

LR, EPOCHS = 0.06, 1

def sync(device):
    "Wait for the device to finish what it was given, so a timer stops when the work is done"
    if torch.device(device).type == 'cuda': torch.cuda.synchronize(device)

def fastai_epoch(dls, stats, stats_cls=LeanActivationStats, opt_func=torch_adam, learner_cls=LeanLearner):
    learn = learner_cls(dls, simple_cnn(10), loss_func=F.cross_entropy, metrics=accuracy, opt_func=opt_func,
                    cbs=[stats_cls(with_hist=True)] if stats else [])
    with learn.no_bar(), learn.no_logging():
        sync(dls.device); t = time.perf_counter(); learn.fit_one_cycle(EPOCHS, LR); sync(dls.device)
        return time.perf_counter() - t

STATISTICS = dict(mean=lambda o: o.mean(), std=lambda o: o.std(), near_zero=lambda o: torch.count_nonzero(o <= 0.05),
                  histogram=activation_hist)   # each as `LeanActivationStats.hook` computes it with torch (`one_pass=False`)

def one_pass(device)->dict:
    "All four statistics in one pass of C, as `LeanActivationStats` computes them on a CPU where a compiler built it; empty elsewhere"
    kernel = one_pass_kernel() if torch.device(device).type == 'cpu' else None
    return {'one pass': lambda o: one_pass_stats(o, kernel)} if kernel else {}

def _stats_hook(store):
    "The statistics `LeanActivationStats` records, computed as it computes them, for training batches only, kept on the device"
    def hook(m, i, o):
        if not m.training: return
        o = o.detach().float()
        store.append(tuple(stat(o) for stat in STATISTICS.values()))
    return hook

def read_back(store):
    "The epoch's statistics to Python numbers and CPU histograms, one copy each, as `LeanActivationStats` does"
    return (torch.stack([s for b in store for s in b[:2]]).tolist(), torch.stack([b[2] for b in store]).tolist(),
            torch.stack([b[3] for b in store]).cpu())

def floor_epoch(x, y, xv, yv, bs, stats):
    "A plain PyTorch epoch matching fastai's fit_one_cycle defaults (Adam: betas (0.9, 0.99), eps 1e-5, wd 0.01 decoupled, not on biases)"
    model = simple_cnn(10).to(x.device)
    groups = [dict(params=[p for p in model.parameters() if p.ndim > 1]),                      # weights: decayed
              dict(params=[p for p in model.parameters() if p.ndim <= 1], weight_decay=0.)]   # biases: not (fastai's wd_bn_bias=False)
    opt = torch.optim.AdamW(groups, lr=LR, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.01, fused=True)
    n_batches = (len(x) + bs - 1)//bs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=n_batches*EPOCHS, pct_start=0.25,
                                                div_factor=25, final_div_factor=1e5, base_momentum=0.85, max_momentum=0.95)
    store, hooks = [], []
    if stats: hooks = [m.register_forward_hook(_stats_hook(store)) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    sync(x.device); t = time.perf_counter()
    for _ in range(EPOCHS):
        model.train()
        for idx in torch.randperm(len(x), device=x.device).split(bs):
            loss = F.cross_entropy(model(x.index_select(0, idx)), y.index_select(0, idx))   # as `TensorDL` copies a batch
            loss.backward(); opt.step(); opt.zero_grad(); sched.step()
        if store: read_back(store)
        model.eval()
        with torch.no_grad():
            correct = sum((model(xb).argmax(1) == yb).sum() for xb,yb in zip(xv.split(bs), yv.split(bs))).item()
    sync(x.device); elapsed = time.perf_counter() - t
    for h in hooks: h.remove()
    return elapsed

def lean_and_floor(dls, bs:int, stats:bool, stats_cls=LeanActivationStats)->dict:
    "convnotes' epoch and the floor's on the same tensors of `dls`, each a function that trains one epoch and returns its seconds"
    (x, y), (xv, yv) = (dl.dataset.tensors for dl in (dls.train, dls.valid))
    return dict(floor=lambda: floor_epoch(x, y, xv, yv, bs, stats), convnotes=lambda: fastai_epoch(dls, stats, stats_cls=stats_cls))

def timed(f):
    "`f()`, after freeing earlier runs' leftovers, so that every pipeline's epoch starts from the same state"
    gc.collect()  # earlier runs' Learners (reference cycles) are freed now, not in the middle of this one
    release_free_memory()   # and the C allocator's free memory handed back, as `LeanActivationStats` does at a fit's end:
    return f()              # else the epoch after one of its fits, whichever pipeline's, would pay to take it back

def interleaved_times(fns:dict, repeats:dict)->dict:
    "Each function's times, run in interleaved rounds (so drift in the machine's speed hits all alike), after a warm-up"
    times = {k: [] for k in fns}
    for k,f in fns.items(): timed(f)
    for r in range(max(repeats.values())):
        for k in (list(fns) if r % 2 == 0 else list(fns)[::-1]):   # every other round backwards: none always runs after the same one
            if r < repeats[k]: times[k].append(timed(fns[k]))
    return times

def round_ratios(a:list, b:list)->list:
    "`a[i]/b[i]`: two pipelines compared within each round, a minute apart, rather than across the whole run"
    return sorted(x/y for x,y in zip(a, b))

def median_coverage(n:int, i:int)->float:
    "How often `[xs[i], xs[n-1-i]]` of `n` sorted independent draws holds the median they are drawn around: whatever their distribution"
    return 1 - 2*sum(math.comb(n, j) for j in range(i+1))/2**n   # it misses when i+1 or fewer draws fall on one side

def median_interval(xs:list, level=0.95):
    "The narrowest `(xs[i], xs[-1-i])` of sorted `xs` that holds their median with probability at least `level`; None with too few"
    ok = [i for i in range(len(xs)//2) if median_coverage(len(xs), i) >= level]
    return (xs[ok[-1]], xs[-1-ok[-1]]) if ok else None

def child_epochs(bs:int, n:int):
    "Run by `bench.py --child BS N` in a fresh process: a warm-up convnotes epoch on the CPU, then the median of `n` timed ones"
    dls = mnist_dls(bs=bs, device='cpu')
    fastai_epoch(dls, False)
    print(statistics.median(fastai_epoch(dls, False) for _ in range(n)))

def epochs_in_processes(n_procs:int, bs:int, n:int, env_vars:dict)->list:
    "Median epoch time of each of `n_procs` processes training at once, with `env_vars` (`OMP_WAIT_POLICY`, `OMP_NUM_THREADS`) set"
    env = {k:v for k,v in os.environ.items() if k not in ('OMP_WAIT_POLICY', 'OMP_NUM_THREADS')} | env_vars
    procs = [subprocess.Popen([sys.executable, __file__, '--child', str(bs), str(n)], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(n_procs)]
    outs = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs): raise RuntimeError(f"a child training process failed (exit codes {[p.returncode for p in procs]}); see its error above")
    return [float(o.split()[-1]) for o in outs]

def shared_threads()->int:
    "Torch threads per process when two share this machine's CPUs: what `make nbtest` gives each notebook, asked of tools/nbtest.py itself"
    spec = importlib.util.spec_from_file_location('nbtest', Path(__file__).parents[1]/'tools'/'nbtest.py')
    nbtest = importlib.util.module_from_spec(spec); spec.loader.exec_module(nbtest)
    return int(nbtest.torch_threads(2, {}, nbtest.usable_cpus()))

def concurrency_rows(bs:int, n:int)->list:
    "Epoch times alone and two at once: torch's default threads with the default (spinning) and the passive OpenMP wait policy, then the cores shared out"
    t = shared_threads()
    settings = [('default threads, default (spin) waiting', {}), ('default threads, `OMP_WAIT_POLICY=PASSIVE`', {'OMP_WAIT_POLICY': 'PASSIVE'}),
                (f"cores shared out: `OMP_NUM_THREADS={t}`", {'OMP_NUM_THREADS': str(t)})]
    rows = []
    for name, env_vars in settings:
        alone, two = epochs_in_processes(1, bs, n, env_vars), epochs_in_processes(2, bs, n, env_vars)
        rows.append(dict(setting=name, alone=alone[0], two=statistics.mean(two)))
        print(f"{name}: alone {alone[0]:.2f}s, two at once {two}", flush=True)
    return rows

HOST_BS = 8   # `host_rows`: tiny batches, so that most of a batch's time is the host's Python
AS_ON_A_GPU = partial(LeanActivationStats, one_pass=False)   # `host_rows`: the statistics computed with torch, as on a GPU (and as the floor does)

def host_rows(repeats:int)->tuple:
    "convnotes and the floor on tiny CPU batches (3s and 7s, bs 8, one torch thread), with and without statistics computed as on a GPU; and where they ran"
    threads = torch.get_num_threads(); torch.set_num_threads(1)   # one thread, as the one that drives a GPU
    try:
        dls = mnist_dls(bs=HOST_BS, sample=True, device='cpu')
        rows = []
        for stats in (False, True):
            fns = lean_and_floor(dls, HOST_BS, stats, stats_cls=AS_ON_A_GPU)   # not the CPU's one pass of C: the host's Python is what this measures
            times = interleaved_times(fns, dict(floor=repeats, convnotes=repeats))
            rows.append(dict(stats=stats, batches=len(dls.train) + len(dls.valid), ratios=round_ratios(times['convnotes'], times['floor']),
                             added=sorted(a - b for a, b in zip(times['convnotes'], times['floor'])), **{k: statistics.median(v) for k,v in times.items()}))
            print(f"host, bs {HOST_BS}, ActivationStats {stats}: convnotes {rows[-1]['convnotes']:.2f}s, floor {rows[-1]['floor']:.2f}s", flush=True)
        return rows, provenance('cpu')   # while torch has one thread
    finally: torch.set_num_threads(threads)

def host_section(rows:list, where:str, repeats:int)->str:
    "The host time per batch convnotes adds to the floor, from `host_rows`"
    lines = ["## Host time per batch (CPU, tiny batches)\n",
             "On a GPU the arithmetic of a small batch takes little time, and what a batch costs is mostly the host's Python: "
             "the training loop, the callbacks, and queuing each operation. The same Python runs on a CPU, so tiny batches here "
             "show what convnotes adds to a plain loop for each batch. One epoch of 3s and 7s (`mnist_dls(sample=True)`) at "
             f"bs {HOST_BS}, torch on one thread (median seconds of {repeats} interleaved rounds after a warm-up, every other one in reverse order; what convnotes adds: the median "
             f"of the differences within each round, over every training and validation batch). With statistics, convnotes computes them with torch's "
             "operations, as it does on a GPU and as the floor does (`LeanActivationStats(one_pass=False)`), not in the one pass of C it uses on a CPU; "
             f"{where}:\n",
             "| ActivationStats | batches | convnotes (s) | floor (s) | convnotes/floor | convnotes adds per batch (µs) | its range over rounds (µs) |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {'with_hist' if r['stats'] else 'no'} | {r['batches']} | {r['convnotes']:.2f} | {r['floor']:.2f} | {statistics.median(r['ratios']):.2f} "
              f"| {1e6*statistics.median(r['added'])/r['batches']:.0f} | {1e6*r['added'][0]/r['batches']:.0f}–{1e6*r['added'][-1]/r['batches']:.0f} |" for r in rows]
    return '\n'.join(lines)

def provenance(device)->str:
    "Date, commit (`$CONVNOTES_COMMIT` where it is set, else git's), hardware and versions: what a timing depends on"
    commit = os.environ.get('CONVNOTES_COMMIT', '').strip()   # first: a copied tree's .git can be older than its files
    if not commit:
        try: commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True, cwd=Path(__file__).parent).stdout.strip()
        except OSError: commit = ''
    return (f"{datetime.date.today().isoformat()}, commit {commit or 'unknown'}: {device_name(device)}; {os.cpu_count()} CPU cores; "
            f"torch {torch.__version__}, fastai {fastai.__version__}, Python {platform.python_version()}")

def hooked_outputs(dls)->list:
    "One training batch's outputs of the layers `ActivationStats` hooks (those with parameters), on the batch's device"
    model = simple_cnn(10).to(dls.device)
    with hook_outputs([layer for layer in flatten_model(model) if has_params(layer)]) as hooks, torch.no_grad():
        model(dls.one_batch()[0])
    return list(hooks.stored)

class TimedStats(LeanActivationStats):
    "`LeanActivationStats`, adding up the seconds its hook takes: on a CPU, where an operation runs as it is called, its arithmetic's time in training"
    def before_fit(self): super().before_fit(); self.seconds = 0.
    def hook(self, m, i, o):
        t = time.perf_counter(); res = super().hook(m, i, o); self.seconds += time.perf_counter() - t
        return res

HOOK_REPEATS = 3   # `hook_seconds`: epochs with `TimedStats`, after the timed comparison

def hook_seconds(dls, repeats:int)->tuple:
    "Seconds a convnotes epoch with statistics spends inside their hooks, and their ratio to the rest of that epoch: medians of `repeats` more epochs"
    def epoch():
        stats = TimedStats(with_hist=True)   # the callback `fastai_epoch` trains with, kept here to read its time
        total = timed(lambda: fastai_epoch(dls, True, stats_cls=lambda **kwargs: stats))
        return stats.seconds, stats.seconds/(total - stats.seconds)   # the ratio within one epoch: the machine's drift cancels
    runs = [epoch() for _ in range(repeats)]
    return statistics.median(s for s, _ in runs), statistics.median(r for _, r in runs)

STAT_REPEATS, STAT_BATCHES = 20, 5   # `statistics_ms`: the best of 20 timings of 5 batches each

def statistics_ms(outs:list, device, repeats=STAT_REPEATS)->dict:
    "Milliseconds each statistic takes for all of one batch's hooked outputs, timed alone, outside training (the best of `repeats`)"
    def ms(stat):
        def all_layers():
            for o in outs: stat(o)
            sync(device)
        all_layers()   # warm-up
        return 1e3*min(timeit.repeat(all_layers, number=STAT_BATCHES, repeat=repeats))/STAT_BATCHES
    return {name: ms(stat) for name, stat in (STATISTICS | one_pass(device)).items()}

def device_rows(device, bss, repeats, book_repeats)->list:
    "The three pipelines, with and without statistics, at each batch size, on `device`"
    rows = []
    for bs in bss:
        dls = mnist_dls(bs=bs, device=device)
        book = mnist_datablock_dls(bs=bs); book.device = torch.device(device)
        for stats in (False, True):
            set_seed(42)
            fns = lean_and_floor(dls, bs, stats) | dict(book=lambda: fastai_epoch(book, stats, ActivationStats, Adam, Learner))  # the book: fastai's own
            if stats: fns |= dict(without=lambda: fastai_epoch(dls, False))   # convnotes without them, in the same rounds: what they add
            times = interleaved_times(fns, dict(floor=repeats, convnotes=repeats, book=book_repeats, without=repeats))
            r = dict(bs=bs, stats=stats, ratios=round_ratios(times['convnotes'], times['floor']), **{k: statistics.median(v) for k,v in times.items()})
            if stats: r['added'] = round_ratios(times['convnotes'], times['without'])
            if stats: r |= dict(statistics_ms=statistics_ms(hooked_outputs(dls), device), n_batches=len(dls.train),
                                in_hooks=hook_seconds(dls, HOOK_REPEATS) if torch.device(device).type == 'cpu' else None)
            rows.append(r)
            # the row's ratios too, so that a run cut short (a GPU call's time limit) leaves them in its log
            ratio, interval = ratio_text(r['ratios'])
            print(f"{device} bs {bs}, ActivationStats {stats}: book {r['book']:.2f}s, convnotes {r['convnotes']:.2f}s, floor {r['floor']:.2f}s; "
                  f"convnotes/floor {ratio} (95% interval {interval})"
                  + (f"; the statistics add {statistics.median(r['added'])-1:.1%}" if stats else ''), flush=True)
    return rows

def _ms(x)->str: return '–' if x is None else f"{x:.2f}"

def _interval(iv, fmt='{:.2f}')->str: return f"{fmt.format(iv[0])}–{fmt.format(iv[1])}" if iv else "– (too few rounds)"

def ratio_text(ratios:list)->tuple:
    "The rounds' median ratio and its 95% interval, as the table and the progress log both show them"
    return f"{statistics.median(ratios):.2f}", _interval(median_interval(ratios))

def device_section(device, rows, repeats, book_repeats)->str:
    kind = 'CUDA GPU' if torch.device(device).type == 'cuda' else 'CPU'
    lines = [f"## On a {kind}\n", f"Latest: {provenance(device)}.\n",
             "One epoch of `fit_one_cycle(1, 0.06)`, full MNIST, 10-class `simple_cnn`; median seconds "
             f"({repeats} interleaved rounds after a warm-up, every other round in reverse order; book pipeline: {book_repeats}).\n",
             "The convnotes/floor ratio is the median of the ratios within each round, and the range is theirs: on a "
             "shared machine one round's ratio moves by several percent, and the range shows how far it moved in this run. "
             "The 95% interval is where the median ratio of rounds like these lies, on this machine at this hour, with 95% "
             "confidence: two of the rounds' ratios, chosen by their rank, which assumes nothing about how they spread. A "
             "target inside it is neither met nor missed by this run.\n",
             "| bs | ActivationStats | 1. book (s) | 2. convnotes (s) | 3. floor (s) | 2/3 convnotes/floor | its 95% interval | its range over rounds | 1/2 book/convnotes |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['bs']} | {'with_hist' if r['stats'] else 'no'} | {r['book']:.2f} | {r['convnotes']:.2f} | {r['floor']:.2f} "
              f"| {' | '.join(ratio_text(r['ratios']))} | {r['ratios'][0]:.2f}–{r['ratios'][-1]:.2f} "
              f"| {r['book']/r['convnotes']:.1f} |" for r in rows]
    by_bs = {bs: [next(r for r in rows if r['bs']==bs and r['stats']==s) for s in (False, True)]   # (without, with) statistics
             for bs in sorted({r['bs'] for r in rows}, reverse=True)}
    for bs, (off, on) in by_bs.items():
        lines.append(f"\n`ActivationStats(with_hist=True)` adds {statistics.median(on['added'])-1:.1%} to a convnotes epoch at bs {bs}: the median "
                     f"of the rounds' ratios of a convnotes epoch with them to one without, each round's two a few seconds apart; its 95% interval "
                     + (_interval([x-1 for x in iv], '{:.1%}') if (iv := median_interval(on['added'])) else _interval(None))   # tenths: is 10% met?
                     + f", its range over rounds {on['added'][0]-1:.1%} to {on['added'][-1]-1:.1%}. Across the two rows' "
                     f"medians, measured apart, they add {on['convnotes']/off['convnotes']-1:.0%}, and the floor's hooks {on['floor']/off['floor']-1:.0%}.")
    lines += ["\nThe statistics' arithmetic by itself: each statistic of one batch's hooked outputs (every layer), timed alone, "
              f"outside training (the best of {STAT_REPEATS} runs of {STAT_BATCHES} batches), then multiplied by an epoch's training batches and "
              "compared with a convnotes epoch without statistics (its median above); and inside training, the seconds an epoch "
              f"spends in `LeanActivationStats`' hooks and their ratio to the rest of that epoch (medians of {HOOK_REPEATS} more epochs"
              + (", on a CPU only: a GPU runs the hooks' work later, while the host goes on" if kind != 'CPU' else '') + "):\n",
              "| bs | mean (ms) | std (ms) | near zero (ms) | histogram (ms) | all four in one pass of C (ms) | training batches "
              "| the four, per epoch (s) | share of an epoch | in one pass, per epoch (s) | share of an epoch "
              "| inside training: in the hooks, per epoch (s) | to the rest of the epoch |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for bs, (off, on) in by_bs.items():
        ms, n, in_hooks = on['statistics_ms'], on['n_batches'], on['in_hooks']
        per_epoch, fused = sum(ms[k] for k in STATISTICS)*n/1e3, ms['one pass']*n/1e3 if 'one pass' in ms else None
        lines.append(f"| {bs} | " + ' | '.join(f"{ms[k]:.2f}" for k in STATISTICS) + f" | {_ms(ms.get('one pass'))} | {n} | {per_epoch:.2f} "
                     f"| {per_epoch/off['convnotes']:.0%} | " + (f"{fused:.2f} | {fused/off['convnotes']:.0%} | " if fused is not None else "– | – | ")
                     + ("{:.2f} | {:.0%} |".format(*in_hooks) if in_hooks else "– | – |"))
    if kind == 'CPU':
        one = all('one pass' in on['statistics_ms'] for _, on in by_bs.values())   # what this run timed, so what its hooks ran
        lines.append("\nThe hooks inside training compute " + ("all four in one pass of C" if one else
                     "the four with torch (no C compiler built the one pass here)") + ", as `LeanActivationStats` does on this machine.")
    return '\n'.join(lines)

def concurrency_section(conc, repeats)->str:
    lines = ["## Two processes training at once (CPU)\n",
             "`make nbtest` runs two notebooks at once. By default torch gives each process a thread per core, and OpenMP "
             "threads *spin* while they wait for work, burning the cores the other process needs. Convnotes epochs at "
             f"bs 512 (median of {repeats} per process after a warm-up; two at once: mean of the two processes); "
             f"{provenance('cpu')}:\n",
             "| torch threads and waiting | one process alone (s) | each of two at once (s) | two at once / alone |", "|---|---|---|---|"]
    lines += [f"| {r['setting']} | {r['alone']:.2f} | {r['two']:.2f} | {r['two']/r['alone']:.1f} |" for r in conc]
    spin, passive, shared = conc
    alone = (f"Alone, passive waiting costs {passive['alone']/spin['alone']-1:.0%} here (sleeping threads take time to wake for "
             "each of the many small parallel regions)" if passive['alone'] > 1.05*spin['alone']
             else f"Alone, passive waiting costs nothing measurable here ({passive['alone']/spin['alone']-1:+.0%})")
    lines.append(f"\nTwo at once, an epoch takes {shared['two']:.2f} s with the cores shared out, as `make nbtest` shares them "
                 f"(`tools/nbtest.py`), and {passive['two']:.2f} s with torch's default threads and passive waiting "
                 f"({shared['two']/passive['two']:.2f}×). `make nbtest` also sets `OMP_WAIT_POLICY=PASSIVE`, for anyone who gives the notebooks more threads: it changes "
                 f"only how idle threads wait, not how work is split, so results are bit for bit the same (`tests/test_threads.py`). {alone}. "
                 "Running two notebooks at once on a laptop? Give each its share of the cores (`OMP_NUM_THREADS=2 jupyter lab` on four), "
                 "or at least start Jupyter with `OMP_WAIT_POLICY=PASSIVE jupyter lab`.")
    return '\n'.join(lines)

# Where an epoch's time goes: cProfile's time inside these functions (cumulative, so each includes what it calls;
# where several match, e.g. torch's `AdamW.step` calling `Adam.step`, the outermost, i.e. the longest)
def _one_of(*funcs):
    "A match for cProfile's (file, line, name) of any of `funcs`"
    codes = {(c.co_filename, c.co_firstlineno, c.co_name) for c in (f.__code__ for f in funcs)}
    return lambda f, line, fn: (f, line, fn) in codes

# fastai's scheduler and recorder, or convnotes' lean ones where this commit has them (an older one, profiled from
# a worktree, may not)
_sched = getattr(convnotes.experiments, 'LeanParamScheduler', ParamScheduler)
_recorder = getattr(convnotes.experiments, 'LeanRecorder', Recorder)
PARTS = [('backward pass', lambda f, line, fn: fn == "<method 'run_backward' of 'torch._C._EngineBase' objects>"),
         ('activation statistics (hooks)', lambda f, line, fn: fn == 'hook' and ('convnotes' in f or 'fastai' in f)),
         ('forward pass (without hooks)', lambda f, line, fn: fn == '_call_impl' and f.endswith('torch/nn/modules/module.py')),
         ('optimizer step', lambda f, line, fn: fn == 'step' and ('fastai/optimizer.py' in f or 'torch/optim/' in f)),
         ('making batches', lambda f, line, fn: fn == 'create_batches'),
         ("each epoch's order (`get_idxs`: fastai's, Python's `random.sample`; `TensorDL`'s, torch's `randperm`)",
          lambda f, line, fn: fn == 'get_idxs' and ('fastai/data/load.py' in f or 'convnotes/data.py' in f)),
         ("one-cycle schedule (`ParamScheduler.before_batch`)", _one_of(ParamScheduler.before_batch, _sched.before_batch)),
         ("recorder (`Recorder.after_batch`: smoothed loss, metrics, learning rate)", _one_of(Recorder.after_batch, _recorder.after_batch))]

def profile_section(label:str, device='cpu', bs=512)->str:
    "cProfile of one convnotes epoch with statistics on `device`, split into the parts of `PARTS`"
    dls = mnist_dls(bs=bs, device=device)
    fastai_epoch(dls, True)   # warm-up
    prof = cProfile.Profile(); prof.enable(); total = fastai_epoch(dls, True); prof.disable()
    stats = pstats.Stats(prof); st = stats.stats
    parts = {name: max([ct for (f, line, fn), (_, _, _, ct, _) in st.items() if match(f, line, fn)], default=0.) for name, match in PARTS}
    parts['forward pass (without hooks)'] -= parts['activation statistics (hooks)']   # hooks run inside the forward call
    measured = max(ct for (f, _, fn), (_, _, _, ct, _) in st.items() if fn == 'fit_one_cycle')   # LeanLearner's, around fastai's
    parts['everything else (fastai callbacks, loss, metrics, Python)'] = measured - sum(parts.values())
    lines = [f"### {label}\n", f"{provenance(device)}. One convnotes epoch, `with_hist=True`, under cProfile "
             f"(which slows Python-heavy parts most): {measured:.2f} s, {stats.total_calls/1e6:.2f} million Python function calls.\n",
             "| part | seconds | share |", "|---|---|---|"]
    lines += [f"| {k} | {v:.2f} | {v/measured:.0%} |" for k,v in parts.items()]
    return '\n'.join(lines)

# On a GPU, cProfile sees only the host: an operation returns once it is queued, and its time shows up wherever the host
# next waits. torch's profiler also sees the GPU: how long it was busy, the kernels each batch launched, and the copies
# to the host, each a wait for everything queued before it.
GPU_PIPELINES = ('fastai', 'convnotes', 'floor')   # `gpu_profile_section`: "fastai" is fastai's own `Learner`, `Adam` and
                                                    # `ActivationStats`, on the same device-held batches as convnotes
TOP_KERNELS = 6

def on_gpu(events)->list:
    "The profiler's events that ran on the GPU (kernels, copies, memsets), as torch's own table adds them up: not user annotations"
    return [e for e in events if e.device_type == DeviceType.CUDA and not getattr(e, 'is_user_annotation', False)]

def gpu_work(events, n_batches:int)->dict:
    "What one profiled epoch asked of the GPU: seconds busy, kernels per batch, copies each way, the dearest kernels"
    gpu = on_gpu(events)
    is_copy = lambda e, way='': 'memcpy' in e.key.lower() and way.lower() in e.key.lower()
    kernels = [e for e in gpu if not is_copy(e) and 'memset' not in e.key.lower()]
    top = sorted(kernels, key=lambda e: e.self_device_time_total, reverse=True)[:TOP_KERNELS]
    return dict(busy=sum(e.self_device_time_total for e in gpu)/1e6, kernels=sum(e.count for e in kernels)/n_batches,
                to_host=sum(e.count for e in gpu if is_copy(e, 'DtoH')), to_device=sum(e.count for e in gpu if is_copy(e, 'HtoD')),
                top=[(e.key, e.self_device_time_total/1e6, e.count) for e in top])

def profiled(run, device)->tuple:
    "The seconds `run` takes under torch's profiler, and its events by name: on a GPU, only the GPU's and the CUDA calls"
    # (not the host side of every operator too: some 900,000 events in a bs-64 epoch, a minute of the profiler's Python)
    activities = [ProfilerActivity.CUDA] if torch.device(device).type == 'cuda' else [ProfilerActivity.CPU]
    with torch.profiler.profile(activities=activities) as prof: seconds = run()
    return seconds, prof.key_averages()

def gpu_profile_rows(device, bs, sample=False)->list:
    "One profiled epoch of each of `GPU_PIPELINES`, without and with statistics, after a warm-up, and what it asked of the GPU"
    dls = mnist_dls(bs=bs, sample=sample, device=device)
    rows = []
    for stats in (False, True):
        runs = lean_and_floor(dls, bs, stats) | dict(fastai=lambda: fastai_epoch(dls, stats, ActivationStats, Adam, Learner))
        for name in GPU_PIPELINES:
            timed(runs[name])   # warm-up
            seconds, events = timed(lambda: profiled(runs[name], device))
            rows.append(dict(bs=bs, stats=stats, pipeline=name, seconds=seconds, **gpu_work(events, len(dls.train) + len(dls.valid))))
            print(f"profiled {device} bs {bs}, ActivationStats {stats}, {name}: {seconds:.2f}s, GPU busy {rows[-1]['busy']:.2f}s", flush=True)
    return rows

def _code(name:str, width=90)->str:
    "A kernel's name as Markdown code, cut to `width` characters"
    name = name if len(name) <= width else name[:width-1] + '…'
    return '`' + name.replace('`', "'").replace('|', '¦') + '`'

def gpu_profile_section(label:str, rows:list, device)->str:
    "The table of `gpu_profile_rows`, and the dearest kernels of convnotes' epochs, under a level-4 heading: within RESULTS.md's \"On a GPU\""
    lines = [f"#### {label}\n", f"{provenance(device)}. One epoch of each pipeline under torch's profiler, after a warm-up: "
             "\"fastai\" is fastai's own `Learner`, `Adam` and `ActivationStats` on the same device-held batches. GPU idle: the "
             "share of the epoch the GPU had nothing to do, waiting for the host's Python. The profiler slows the host, so "
             "compare the pipelines, not these seconds with the tables above. Kernels per batch: the epoch's kernels over its training and "
             "validation batches. Copies to the host (`.item()`, `.cpu()`) each wait for everything queued before them.\n",
             "| bs | ActivationStats | pipeline | epoch (s) | GPU busy (s) | GPU idle | kernels per batch | copies to the host | copies to the device |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['bs']} | {'with_hist' if r['stats'] else 'no'} | {r['pipeline']} | {r['seconds']:.2f} | {r['busy']:.2f} "
              f"| {max(0., 1 - r['busy']/r['seconds']):.0%} | {r['kernels']:.0f} | {r['to_host']} | {r['to_device']} |" for r in rows]
    for r in (r for r in rows if r['pipeline'] == 'convnotes'):
        lines += [f"\nconvnotes' dearest kernels at bs {r['bs']}, {'with' if r['stats'] else 'without'} statistics:\n",
                  "| kernel | GPU (s) | share of GPU busy | launches |", "|---|---|---|---|"]
        lines += [f"| {_code(k)} | {s:.3f} | {s/r['busy']:.0%} | {n} |" for k, s, n in r['top']]
    return '\n'.join(lines)

def zero_or_more(s:str)->int:
    "argparse type for a number of timed epochs in an optional test: 0 (skip the test) or more"
    n = int(s) if s.strip().isdigit() else -1
    if n < 0: raise argparse.ArgumentTypeError(f"timed epochs, 0 or more (0 skips the test), got {s!r}")
    return n

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--repeats', type=positive_int, default=30, help="timed runs per configuration, after one warm-up (default 30: on a shared 2-core machine 9 rounds left a 95%% interval "
                   "0.1-0.4 wide, too wide to tell a 5%% target met or missed; 30-80 narrowed it to 0.04-0.16)")
    p.add_argument('--book-repeats', type=positive_int, default=1, help="timed runs for the slow book pipeline (default 1)")
    p.add_argument('--bs', type=number_list(positive_int), default='512,64', help="batch sizes (default 512,64)")
    p.add_argument('--devices', default=None, help="comma-separated, e.g. cpu,cuda (default: cpu, and cuda when there is one; with --profile, cpu)")
    p.add_argument('--out', type=Path, default=None, help="also write each device's results into its section of this Markdown report")
    p.add_argument('--concurrency-repeats', type=zero_or_more, default=3, help="timed epochs per process in the two-at-once test (0: skip it)")
    p.add_argument('--host-repeats', type=zero_or_more, default=5, help="timed epochs of each pipeline in the host-time test on tiny CPU batches (0: skip it)")
    p.add_argument('--profile', metavar='LABEL', help="only profile one epoch and write it to the report's section 'profile-LABEL': with cProfile on the CPU (the default); "
                        "with torch's profiler, for each pipeline, on a GPU (`--devices cuda`), into section 'gpu-profile-LABEL'")
    p.add_argument('--child', nargs=2, type=int, metavar=('BS', 'N'), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child: return child_epochs(*args.child)
    if args.out and (args.out.is_dir() or not args.out.parent.is_dir()):   # found now, not when writing it after the run
        p.error(f"--out {args.out}: " + ("that is a folder; give a file, e.g. benchmarks/RESULTS.md" if args.out.is_dir()
                                          else f"there is no folder {args.out.parent}; create it first"))
    title = "What `make bench` measured last, per device. Re-run it on any machine: it replaces only its own device's results."
    devices = args.devices.split(',') if args.devices else ['cpu'] + (['cuda'] * (torch.cuda.is_available() and not args.profile))
    bad = [d for d in devices if d not in ('cpu', 'cuda')]
    if bad: p.error(f"--devices takes cpu and cuda, got {bad}")
    if 'cuda' in devices and not torch.cuda.is_available(): p.error("--devices cuda: torch sees no CUDA GPU on this machine")
    if args.profile:   # cProfile on a CPU, into section 'profile-LABEL'; torch's profiler on a GPU, into 'gpu-profile-LABEL'
        sections = {('profile-' if d == 'cpu' else 'gpu-profile-') + args.profile:
                    '\n\n'.join(profile_section(f"{args.profile}, bs {bs}", bs=bs) if d == 'cpu' else
                                gpu_profile_section(f"{args.profile}, on a CUDA GPU, bs {bs}", gpu_profile_rows(d, bs), d) for bs in args.bs)
                    for d in devices}
        print('\n\n'.join(sections.values()))
        if args.out: update_sections(args.out, sections, f"# Performance\n\n{title}")
        return

    t = time.perf_counter(); load_mnist(rebuild=True); t_decode = time.perf_counter() - t
    t = time.perf_counter(); load_mnist(); t_cached = time.perf_counter() - t
    sections = {}
    for d in devices:
        sections[d] = device_section(d, device_rows(d, args.bs, args.repeats, args.book_repeats),
                                     args.repeats, args.book_repeats)
        if d == 'cpu':
            sections[d] += (f"\n\n`load_mnist()`: first (decoding the PNGs) {t_decode:.1f}s, cached {t_cached:.3f}s. Peak resident "
                            f"memory of the benchmark process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/2**20:.2f} GiB.")
        print('\n' + sections[d], flush=True)
    if args.host_repeats and 'cpu' in devices:
        sections['host'] = host_section(*host_rows(args.host_repeats), repeats=args.host_repeats)
        print('\n' + sections['host'], flush=True)
    if args.concurrency_repeats:
        sections['concurrency'] = concurrency_section(concurrency_rows(512, args.concurrency_repeats), args.concurrency_repeats)
        print('\n' + sections['concurrency'])
    if args.out: update_sections(args.out, sections, f"# Performance\n\n{title}")

if __name__ == '__main__':
    try: main()
    except KeyboardInterrupt:   # Ctrl-C reaches the child processes too: only the parent says so
        if '--child' not in sys.argv: sys.stderr.write("\nbench: interrupted (it writes the report only at the end, in one step)\n")
        sys.exit(130)
