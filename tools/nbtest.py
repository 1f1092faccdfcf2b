"""Test every notebook as `nbdev-test` does, with the slowest started first, the CPU's cores shared out among them.

`nbdev-test` hands the notebooks to its workers in name order, so the slowest one, `10_comparison` (24 training
runs), starts about halfway through, and the suite ends waiting for it alone. Started first, it runs beside all
the others. Which notebooks are slow is written down, slowest first, in `pyproject.toml` (`[tool.convnotes]
slow_notebooks`), because a clean clone has no timings of its own to sort by. The others follow in name order.

Each notebook also gets its share of the cores, not all of them: torch gives every process a thread per core, so
two notebooks at once on two cores run four threads on two cores, each waiting at every parallel step for a
thread the other process holds (2-core CPU, one session: the suite in 338 s with two threads per notebook, 227 s
with one). An `OMP_NUM_THREADS` you set is kept. With `--n-workers 1` torch keeps its default, every core.

Usage, from the repository root: python tools/nbtest.py [--n-workers N] [NOTEBOOK ...]  (default: every notebook)
"""
import argparse, os, sys, time, tomllib
from pathlib import Path
from fastcore.parallel import parallel
from fastcore.xtras import working_directory
from nbdev.config import get_config
from nbdev.doclinks import nbglob
from nbdev.test import test_nb

def slow_notebooks(pyproject:Path)->list:
    "The names (without `.ipynb`) in `[tool.convnotes] slow_notebooks`, slowest first"
    return tomllib.loads(pyproject.read_text()).get('tool', {}).get('convnotes', {}).get('slow_notebooks', [])

def notebooks(nbs:Path, slow:list)->list:
    "The notebooks nbdev-test would test (nbdev's `nbglob`): `slow` first, in its order, then by name"
    rank = {name: i for i, name in enumerate(slow)}
    files = [f.absolute() for f in nbglob(nbs, as_path=True)]
    return sorted(files, key=lambda f: (rank.get(f.stem, len(rank)), f.name))

def usable_cpus()->int:
    "The CPUs this process may run on (a container or `taskset` may allow fewer than the machine has)"
    return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1

def torch_threads(
    n_workers:int,     # notebooks tested at once
    environ:dict,      # the environment the notebooks inherit
    cpus:int,          # CPUs to share out
)->str|None:           # `OMP_NUM_THREADS` for the notebooks; None: leave torch's default
    "Yours, if `OMP_NUM_THREADS` is set; else, with several notebooks at once, the CPUs shared out among them, at least one each"
    if environ.get('OMP_NUM_THREADS'): return environ['OMP_NUM_THREADS']
    return str(max(1, cpus // n_workers)) if n_workers > 1 else None

def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--n-workers', type=int, default=2, help='notebooks tested at once (default 2)')
    parser.add_argument('notebooks', nargs='*', type=Path, help='test only these (default: every notebook)')
    args = parser.parse_args()
    if args.n_workers < 1: parser.error(f"--n-workers must be at least 1, got {args.n_workers}")
    missing = [str(f) for f in args.notebooks if f.suffix != '.ipynb' or not f.is_file()]
    if missing: parser.error(f"not a notebook file: {', '.join(missing)}")
    cfg = get_config()
    files = notebooks(cfg.nbs_path, slow_notebooks(cfg.config_path/'pyproject.toml'))
    if args.notebooks:
        asked, known = {n.resolve(): n for n in args.notebooks}, {f.resolve() for f in files}
        other = [str(n) for a, n in asked.items() if a not in known]
        if other: parser.error(f"not one of the notebooks nbdev-test tests (those under {cfg.nbs_path.name}/ whose names "
                               f"do not start with _ or .): {', '.join(other)}")
        files = [f for f in files if f.resolve() in asked]
    threads = torch_threads(args.n_workers, os.environ, usable_cpus())
    if threads: os.environ['OMP_NUM_THREADS'] = threads   # read by torch as each worker imports it
    print(f"nbtest: {len(files)} notebooks, {args.n_workers} at once, torch on {threads or 'its default number of'} thread(s) each", flush=True)
    skip_flags = cfg.tst_flags.split() if isinstance(cfg.tst_flags, str) else list(cfg.tst_flags or [])
    start = time.time()
    try:
        with working_directory(cfg.nbs_path):
            results = parallel(test_nb, files, skip_flags=skip_flags, force_flags=[], n_workers=args.n_workers,
                               basepath=cfg.config_path, pause=0.01, do_print=True, cell_timeout=cfg.cell_timeout or None)
    except KeyboardInterrupt:
        sys.stderr.write('\nnbtest: interrupted\n'); sys.exit(130)
    for (_, secs), f in sorted(zip(results, files), key=lambda o: -o[0][1]): print(f"{f.name}: {int(secs)} secs")
    failed = [f.name for (passed, _), f in zip(results, files) if not passed]
    if failed: sys.stderr.write(f"\nnbtest: these notebooks failed: {', '.join(failed)}\n"); sys.exit(1)
    print(f"nbtest: every notebook passed in {time.time() - start:.0f}s")

if __name__ == '__main__': main()
