"""One epoch of `fit_one_cycle(1, 0.06)` on full MNIST with the 10-class `simple_cnn`, three ways:

1. book:      the fastai book's pipeline, `mnist_datablock_dls` (PNG decoded by PIL every epoch) + `Learner`
2. convnotes: `mnist_dls` (tensors decoded once) + `Learner`
3. floor:     a plain PyTorch loop over the same preloaded tensors: same model, optimizer (fastai's Adam
              defaults), one-cycle schedule, shuffled batch order and validation pass

each with and without activation statistics (`with_hist=True`): fastai's `ActivationStats` for the book,
convnotes' `LeanActivationStats` (the same numbers, without the discarded work) for convnotes, and forward hooks
computing the same statistics for the floor; at bs 512 and 64. Prints a Markdown table of medians after a warm-up, the ratios, cached and
uncached `load_mnist()` times, peak memory, and the machine. Then the cost of two processes training at once (what
`make nbtest` does) under OpenMP's default and passive wait policies. Timings are a benchmark, not a test.
"""
import argparse, gc, os, platform, resource, statistics, subprocess, sys, time, warnings
from pathlib import Path
warnings.filterwarnings('ignore')
import torch, torch.nn.functional as F
from fastai.vision.all import Learner, ActivationStats, accuracy, set_seed
from convnotes.data import load_mnist, mnist_dls, mnist_datablock_dls
from convnotes.models import simple_cnn
from convnotes.experiments import LeanActivationStats

LR, EPOCHS = 0.06, 1

def fastai_epoch(dls, stats, stats_cls=LeanActivationStats):
    learn = Learner(dls, simple_cnn(10), loss_func=F.cross_entropy, metrics=accuracy,
                    cbs=[stats_cls(with_hist=True)] if stats else [])
    with learn.no_bar(), learn.no_logging():
        t = time.perf_counter(); learn.fit_one_cycle(EPOCHS, LR); return time.perf_counter() - t

def _stats_hook(store):
    "The statistics `LeanActivationStats` records, for training batches only"
    def hook(m, i, o):
        if not m.training: return
        o = o.detach().float()
        store.append((o.mean().item(), o.std().item(), (o <= 0.05).sum().item()/o.numel(), o.histc(40, 0, 10)))
    return hook

def floor_epoch(x, y, xv, yv, bs, stats):
    "A plain PyTorch epoch matching fastai's fit_one_cycle defaults (Adam: betas (0.9, 0.99), eps 1e-5, wd 0.01 decoupled)"
    model = simple_cnn(10)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.01)
    n_batches = (len(x) + bs - 1)//bs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=n_batches*EPOCHS, pct_start=0.25,
                                                div_factor=25, final_div_factor=1e5, base_momentum=0.85, max_momentum=0.95)
    store, hooks = [], []
    if stats: hooks = [m.register_forward_hook(_stats_hook(store)) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    t = time.perf_counter()
    for _ in range(EPOCHS):
        model.train()
        for idx in torch.randperm(len(x)).split(bs):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward(); opt.step(); opt.zero_grad(); sched.step()
        model.eval()
        with torch.no_grad():
            correct = sum((model(xb).argmax(1) == yb).sum().item() for xb,yb in zip(xv.split(bs), yv.split(bs)))
    elapsed = time.perf_counter() - t
    for h in hooks: h.remove()
    return elapsed

def timed(f):
    gc.collect()  # earlier runs' Learners (reference cycles) are freed now, not in the middle of this one
    return f()

def median_times(fns:dict, repeats:dict)->dict:
    "Median time of each function, run in interleaved rounds (so drift in the machine's speed hits all alike), after a warm-up"
    times = {k: [] for k in fns}
    for k,f in fns.items(): timed(f)
    for r in range(max(repeats.values())):
        for k,f in fns.items():
            if r < repeats[k]: times[k].append(timed(f))
    return {k: statistics.median(v) for k,v in times.items()}

def child_epochs(bs:int, n:int):
    "Run by `bench.py --child BS N` in a fresh process: a warm-up convnotes epoch, then the median of `n` timed ones"
    dls = mnist_dls(bs=bs)
    fastai_epoch(dls, False)
    print(statistics.median(fastai_epoch(dls, False) for _ in range(n)))

def epochs_in_processes(n_procs:int, bs:int, n:int, policy:str|None)->list:
    "Median epoch time of each of `n_procs` processes training at once, with `OMP_WAIT_POLICY=policy` (None: OpenMP's default)"
    env = {k:v for k,v in os.environ.items() if k != 'OMP_WAIT_POLICY'} | ({'OMP_WAIT_POLICY': policy} if policy else {})
    procs = [subprocess.Popen([sys.executable, __file__, '--child', str(bs), str(n)], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(n_procs)]
    outs = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs): raise RuntimeError(f"a child training process failed (exit codes {[p.returncode for p in procs]}); see its error above")
    return [float(o.split()[-1]) for o in outs]

def concurrency_rows(bs:int, n:int)->list:
    "Epoch times alone and two at once, under the default (spinning) and the passive OpenMP wait policy"
    rows = []
    for policy in (None, 'PASSIVE'):
        alone, two = epochs_in_processes(1, bs, n, policy), epochs_in_processes(2, bs, n, policy)
        rows.append(dict(policy=policy or 'default (spin)', alone=alone[0], two=statistics.mean(two)))
        print(f"OMP_WAIT_POLICY {policy}: alone {alone[0]:.2f}s, two at once {two}", flush=True)
    return rows

def machine():
    cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), platform.processor()) \
          if os.path.exists('/proc/cpuinfo') else platform.processor()
    return f"{cpu}; {os.cpu_count()} cores; torch {torch.__version__} with {torch.get_num_threads()} threads; Python {platform.python_version()}"

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--repeats', type=int, default=5, help="timed runs per configuration, after one warm-up (default 5)")
    p.add_argument('--book-repeats', type=int, default=1, help="timed runs for the slow book pipeline (default 1)")
    p.add_argument('--bs', default='512,64', help="batch sizes (default 512,64)")
    p.add_argument('--out', type=Path, default=None, help="also write the report (Markdown) to this file")
    p.add_argument('--concurrency-repeats', type=int, default=3, help="timed epochs per process in the two-at-once test (0: skip it)")
    p.add_argument('--child', nargs=2, type=int, metavar=('BS', 'N'), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child: return child_epochs(*args.child)

    t = time.perf_counter(); load_mnist(rebuild=True); t_decode = time.perf_counter() - t
    t = time.perf_counter(); load_mnist(); t_cached = time.perf_counter() - t

    rows = []
    for bs in map(int, args.bs.split(',')):
        dls = mnist_dls(bs=bs)
        (x, y), (xv, yv) = (dl.dataset.tensors for dl in (dls.train, dls.valid))
        book = mnist_datablock_dls(bs=bs)
        for stats in (False, True):
            set_seed(42)
            fns = dict(floor=lambda: floor_epoch(x, y, xv, yv, bs, stats), convnotes=lambda: fastai_epoch(dls, stats),
                       book=lambda: fastai_epoch(book, stats, ActivationStats))  # the book uses fastai's own
            r = dict(bs=bs, stats=stats, **median_times(fns, dict(floor=args.repeats, convnotes=args.repeats, book=args.book_repeats)))
            rows.append(r)
            print(f"bs {bs}, ActivationStats {stats}: book {r['book']:.2f}s, convnotes {r['convnotes']:.2f}s, floor {r['floor']:.2f}s", flush=True)

    lines = [f"# Performance\n\nMachine: {machine()}\n",
             "One epoch of `fit_one_cycle(1, 0.06)`, full MNIST, 10-class `simple_cnn`; median seconds "
             f"({args.repeats} interleaved runs after a warm-up; book pipeline: {args.book_repeats}). Re-run with `make bench`.\n",
             "| bs | ActivationStats | 1. book (s) | 2. convnotes (s) | 3. floor (s) | 2/3 convnotes/floor | 1/2 book/convnotes |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['bs']} | {'with_hist' if r['stats'] else 'no'} | {r['book']:.2f} | {r['convnotes']:.2f} | {r['floor']:.2f} "
              f"| {r['convnotes']/r['floor']:.2f} | {r['book']/r['convnotes']:.1f} |" for r in rows]
    for bs in sorted({r['bs'] for r in rows}, reverse=True):
        off, on = (next(r for r in rows if r['bs']==bs and r['stats']==s) for s in (False, True))
        lines.append(f"\n`ActivationStats(with_hist=True)` adds {on['convnotes']/off['convnotes']-1:.0%} to a convnotes epoch at bs {bs}.")
    lines.append(f"\n`load_mnist()`: first (decoding the PNGs) {t_decode:.1f}s, cached {t_cached:.3f}s. "
                 f"Peak resident memory of the benchmark process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/2**20:.2f} GiB.")
    if args.concurrency_repeats:
        conc = concurrency_rows(512, args.concurrency_repeats)
        lines += ["\n## Two processes training at once\n",
                  "`make nbtest` runs two notebooks at once (`nbdev-test --n-workers 2`), each with torch's two threads. By default "
                  "OpenMP threads *spin* while they wait for work, burning the cores the other process needs. Convnotes epochs at "
                  f"bs 512 (median of {args.concurrency_repeats} per process after a warm-up; two at once: mean of the two processes):\n",
                  "| `OMP_WAIT_POLICY` | one process alone (s) | each of two at once (s) | two at once / alone |", "|---|---|---|---|"]
        lines += [f"| {r['policy']} | {r['alone']:.2f} | {r['two']:.2f} | {r['two']/r['alone']:.1f} |" for r in conc]
        spin, passive = conc
        alone = (f"Alone, passive waiting costs {passive['alone']/spin['alone']-1:.0%} here (sleeping threads take time to wake for "
                 "each of the many small parallel regions), so only `make nbtest` sets it" if passive['alone'] > 1.05*spin['alone']
                 else f"Alone, passive waiting costs nothing measurable here ({passive['alone']/spin['alone']-1:+.0%})")
        lines.append("\nSo `make nbtest` sets `OMP_WAIT_POLICY=PASSIVE`. It changes only how idle threads wait, not how work is split: "
                     f"results are bit for bit the same (`tests/test_threads.py`). {alone}. Running two notebooks at once on a "
                     "laptop? Start Jupyter with `OMP_WAIT_POLICY=PASSIVE jupyter lab`.")
    text = '\n'.join(lines) + '\n'
    print('\n' + text)
    if args.out:
        tmp = args.out.with_name(args.out.name + '.tmp')
        tmp.write_text(text); os.replace(tmp, args.out)

if __name__ == '__main__': main()
