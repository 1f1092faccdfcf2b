"How the one-pass statistics' C is built: cached, atomically, and never an error where there is no compiler that builds it"
import os, shutil, stat, tempfile
from unittest.mock import patch
import pytest, torch
from convnotes.experiments import ONE_PASS_C, c_library, c_cache, _c_compiler, one_pass_kernel, one_pass_stats, from_one_pass

needs_cc = pytest.mark.skipif(_c_compiler() is None, reason="no C compiler on this machine")   # CI installs gcc: never skipped there

def test_ci_has_a_compiler():
    "CI's machine has gcc, so the tests below run there: a missing compiler must not pass by skipping them"
    if os.environ.get('CI'): assert _c_compiler() is not None and one_pass_kernel() is not None

@needs_cc
def test_it_is_built_once_and_cached(tmp_path):
    with patch.dict(os.environ, {'XDG_CACHE_HOME': str(tmp_path)}):
        assert c_cache() == tmp_path/'convnotes'
        assert c_library(ONE_PASS_C, 'one_pass') is not None
        built = list(c_cache().iterdir())
        assert [p.suffix for p in built] == ['.so']   # the library, and no leftover temporary folder
        mtime = built[0].stat().st_mtime_ns
        assert c_library(ONE_PASS_C, 'one_pass') is not None and built[0].stat().st_mtime_ns == mtime   # not rebuilt

@needs_cc
def test_an_unwritable_cache_builds_elsewhere(tmp_path):
    blocked = tmp_path/'file'; blocked.write_text('not a folder')   # $XDG_CACHE_HOME/convnotes cannot be made
    temp = tmp_path/'temp'; temp.mkdir()
    with patch.dict(os.environ, {'XDG_CACHE_HOME': str(blocked)}), patch.object(tempfile, 'tempdir', str(temp)):
        lib = c_library('int seven(void) { return 7; }', 'seven')
    assert lib.seven() == 7                 # built in a fresh folder, loaded,
    assert list(temp.iterdir()) == []       # and the folder removed: nothing left behind, run after run

def test_no_compiler_or_a_failing_one_gives_none(tmp_path):
    with patch.dict(os.environ, {'XDG_CACHE_HOME': str(tmp_path), 'CC': 'no-such-compiler'}):
        assert _c_compiler() is None and c_library(ONE_PASS_C, 'one_pass') is None
    with patch.dict(os.environ, {'XDG_CACHE_HOME': str(tmp_path), 'CC': shutil.which('false')}):
        assert c_library(ONE_PASS_C, 'one_pass') is None and not list((tmp_path/'convnotes').glob('*.so'))
    if _c_compiler():   # a source that does not compile: None, not an error
        with patch.dict(os.environ, {'XDG_CACHE_HOME': str(tmp_path)}): assert c_library('this is not C', 'broken') is None

@needs_cc
def test_compiler_flags_in_cc_are_kept(tmp_path):
    with patch.dict(os.environ, {'XDG_CACHE_HOME': str(tmp_path), 'CC': f"{_c_compiler()[0]} -DCONVNOTES_TEST=1"}):
        assert c_library('#ifndef CONVNOTES_TEST\n#error no flag\n#endif\nint f(void) { return 7; }', 'flagged').f() == 7

@needs_cc
def test_large_and_empty_layers():
    "More values than a block, a count not a multiple of anything, and none at all"
    for n in [2048*3 + 5, 1]:
        o = torch.randn(n)*4
        d = one_pass_stats(o); from_one_pass([d])
        assert torch.equal(d['hist'], o.histc(40, 0, 10)) and d['near_zero'] == (o <= 0.05).sum().item()/n
        assert abs(d['mean'] - o.double().mean().item()) < 1e-6
        assert (n == 1 and d['std'] != d['std']) or abs(d['std'] - o.double().std().item()) < 1e-6   # one value: NaN, as torch

@needs_cc
def test_a_tensor_it_cannot_read_gets_a_clear_error():
    "The C reads float32 values in the host's memory: anything else is refused, never read as garbage"
    for o in [torch.randn(10, dtype=torch.float64), torch.randn(10, device='meta'), torch.randn(10).half()]:
        with pytest.raises(TypeError, match=r'needs a float32 tensor on the CPU.*o\.float\(\)\.cpu\(\)'): one_pass_stats(o)

@needs_cc
def test_infinities_and_nan_give_what_torch_gives():
    for bad in [float('inf'), float('-inf'), float('nan')]:
        o = torch.randn(5000); o[3000] = bad   # in the second of three blocks
        d = one_pass_stats(o); from_one_pass([d])
        mean, std = o.mean().item(), o.std().item()
        assert (d['mean'] == mean or (d['mean'] != d['mean'] and mean != mean)) and d['std'] != d['std'] and std != std, (bad, d['mean'], mean)
        assert torch.equal(d['hist'], o.histc(40, 0, 10)) and d['near_zero'] == (o <= 0.05).sum().item()/o.numel()

@needs_cc
def test_without_the_histogram_the_rest_is_the_same():
    "hist=False (`LeanActivationStats(with_hist=False)`) skips the bins: the sums and the near-zero count are the very same bits"
    o = torch.randn(2048*5 + 3)*3
    full, lean = one_pass_stats(o), one_pass_stats(o, hist=False)
    assert torch.equal(full['one_pass'], lean['one_pass']) and full['counts'][40] == lean['counts'][40]
    assert lean['counts'][:40].eq(0).all() and full['counts'][:40].sum() > 0
