"tools/with-mnist: fastai's MNIST archive extracted once into FASTAI_HOME, even by runs started side by side"
import os, shutil, subprocess, tarfile
from conftest import ROOT

def fake_archive(tmp_path):
    "A stand-in for fastai's archive: the same top folder, one file"
    src = tmp_path/'src'/'mnist_png'/'training'/'7'
    src.mkdir(parents=True)
    (src/'1.png').write_bytes(b'not really a png')
    archive = tmp_path/'mnist_png.tgz'
    with tarfile.open(archive, 'w:gz') as t: t.add(tmp_path/'src'/'mnist_png', arcname='mnist_png')
    return archive

def slow_tar(tmp_path):
    "A folder holding a `tar` that waits two seconds, then runs the real one: two runs are sure to overlap"
    bin_ = tmp_path/'bin'
    bin_.mkdir()
    (bin_/'tar').write_text(f'#!/bin/sh\nsleep 2\nexec {shutil.which("tar")} "$@"\n')
    (bin_/'tar').chmod(0o755)
    return bin_

def with_mnist(env, *cmd): return subprocess.Popen([str(ROOT/'tools'/'with-mnist'), *cmd], env=env, text=True,
                                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)

def test_runs_side_by_side_extract_one_copy(tmp_path):
    home = tmp_path/'home'
    env = {**os.environ, 'FASTAI_HOME': str(home), 'CONVNOTES_MNIST_TGZ': str(fake_archive(tmp_path)),
           'PATH': f"{slow_tar(tmp_path)}:{os.environ['PATH']}"}
    runs = [with_mnist(env, 'ls', str(home/'data'/'mnist_png')) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in runs]
    assert [p.returncode for p in runs] == [0, 0], outs
    assert [o.split() for o,_ in outs] == [['training'], ['training']]
    # no copy inside the other (what `mv` onto an existing folder did), no half-extracted folder left behind
    assert sorted(os.listdir(home/'data')) == ['mnist_png']
    assert sorted(os.listdir(home/'data'/'mnist_png')) == ['training']
    assert sum('extracted it first' in e for _,e in outs) == 1, outs

def test_command_exit_status_passes_through(tmp_path):
    env = {**os.environ, 'FASTAI_HOME': str(tmp_path/'home'), 'CONVNOTES_MNIST_TGZ': str(fake_archive(tmp_path))}
    p = with_mnist(env, 'sh', '-c', 'exit 3')
    p.communicate(timeout=60)
    assert p.returncode == 3
    assert (tmp_path/'home'/'data'/'mnist_png'/'training'/'7'/'1.png').read_bytes() == b'not really a png'
