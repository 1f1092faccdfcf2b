"convnotes is a real package: a wheel that installs and runs without the checkout beside it."
import os, subprocess, sys, sysconfig, venv
from pathlib import Path
from conftest import ROOT

def run(*cmd, **kw): return subprocess.run(cmd, capture_output=True, text=True, check=True, **kw)

def test_wheel_installs_and_runs_without_checkout(tmp_path):
    dist = tmp_path/'dist'
    run(sys.executable, '-m', 'build', '--wheel', '--no-isolation', '--outdir', str(dist), str(ROOT))
    wheel, = dist.glob('convnotes-*.whl')
    env_dir = tmp_path/'venv'
    venv.create(env_dir, with_pip=True)
    py = env_dir/'bin'/'python'
    # the wheel alone goes in the new venv; its dependencies (fastai, torch, ...) are reused from this one, and from
    # PYTHONPATH where they are installed there (as on the offline GPU machine), but never the checkout itself
    site = run(str(py), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])').stdout.strip()
    deps = [sysconfig.get_paths()['purelib']] + [d for d in os.environ.get('PYTHONPATH', '').split(os.pathsep) if d and Path(d).resolve() != ROOT]
    Path(site, 'deps.pth').write_text(''.join(d + '\n' for d in deps))
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    run(str(py), '-m', 'pip', 'install', '--no-deps', '--no-index', str(wheel), env=env)
    elsewhere = tmp_path/'elsewhere'; elsewhere.mkdir()
    out = run(str(py), '-c', 'import convnotes.data, convnotes; print(convnotes.__file__)', cwd=elsewhere, env=env).stdout
    assert Path(out.strip()).is_relative_to(env_dir), out
    help_ = run(str(env_dir/'bin'/'convnotes'), '--help', cwd=elsewhere, env=env).stdout
    assert 'usage: convnotes' in help_ and 'data' in help_
    assert list(elsewhere.iterdir()) == []  # nothing written to the working directory
