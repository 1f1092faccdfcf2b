"""Test every notebook as `nbdev-test` does, with the slowest started first.

`nbdev-test` hands the notebooks to its workers in name order, so the slowest one, `10_comparison` (24 training
runs), starts about halfway through, and the suite ends waiting for it alone. Started first, it runs beside all
the others. Which notebooks are slow is written down, slowest first, in `pyproject.toml` (`[tool.convnotes]
slow_notebooks`), because a clean clone has no timings of its own to sort by. The others follow in name order.

Usage, from the repository root: python tools/nbtest.py [--n-workers N] [NOTEBOOK ...]  (default: every notebook)
"""
import argparse, sys, time, tomllib
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
    if args.notebooks: files = [f for f in files if f in {n.absolute() for n in args.notebooks}]
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
