"Every public function, class and new method convnotes exports is documented in the chapter it comes from: a `show_doc` cell there."
import ast, importlib, importlib.util, json, re, sys
from pathlib import Path
from conftest import ROOT

MARKER = re.compile(r'^# %% \.\./nbs/(\S+\.ipynb)', re.M)

def defining_notebooks(module:Path)->dict:
    "Each top-level `def` and `class` of an nbdev-exported `module`, mapped to the notebook its cell came from"
    found, parts = {}, MARKER.split(module.read_text())
    for nb, code in zip(parts[1::2], parts[2::2]):
        for name in re.findall(r'^(?:async def|def|class) (\w+)', code, re.M): found[name] = nb
    return found

def shown_by(src:str)->str|None:
    "The name a code cell documents: `show_doc(name)` as its last statement, whose value the notebook shows (an earlier one is lost)"
    try: body = ast.parse(src).body
    except SyntaxError: return None   # a cell with IPython magics
    call = body[-1].value if body and isinstance(body[-1], ast.Expr) else None
    if isinstance(call, ast.Call) and getattr(call.func, 'id', None) == 'show_doc' and call.args:
        return re.sub(r'\.(fget|func)$', '', ast.unparse(call.args[0]))   # a property: `show_doc(Cls.prop.fget, name=...)`; a cached one, `.func`

def show_doc_targets(nb:Path)->set:
    "What a notebook shows with `show_doc`: `show_doc(RunRecord.layer)` shows `RunRecord.layer`, and `layer` (a method `@patch` defines)"
    cells = json.loads(nb.read_text())['cells']
    shown = {name for c in cells if c['cell_type'] == 'code' and (name := shown_by(''.join(c['source'])))}
    return shown | {name.split('.')[-1] for name in shown}

def load_module(py:Path):
    "The module `py` is: convnotes' own as the package imports it, or any other file (the checker's test) imported from it"
    if py.parent == ROOT/'convnotes':
        mod = importlib.import_module(f"convnotes.{py.stem}")
        assert Path(mod.__file__).resolve() == py.resolve(), f"convnotes is imported from {mod.__file__}, not this checkout"
        return mod
    spec = importlib.util.spec_from_file_location(f"_checked_{py.stem}", py)
    mod = sys.modules[spec.name] = importlib.util.module_from_spec(spec)   # a dataclass looks its module up there
    spec.loader.exec_module(mod)
    return mod

def is_event(cls_name:str, name:str, mod)->bool:
    "Whether `name` is a fastai event (`after_batch`, ...) that class `cls_name` handles as a callback: fastai's `Callback` documents those"
    from fastai.callback.core import Callback, event
    return issubclass(getattr(mod, cls_name), Callback) and hasattr(event, name)

def new_methods(py:Path)->list:
    "'Cls.method' for each public method or property of a public class of `py` that no base class has: an override is its base's API, documented with it"
    mod, found = load_module(py), []
    for node in ast.parse(py.read_text()).body:
        if not isinstance(node, ast.ClassDef) or node.name.startswith('_'): continue
        bases = getattr(mod, node.name).__mro__[1:]
        found += [f"{node.name}.{f.name}" for f in node.body if isinstance(f, ast.FunctionDef) and not f.name.startswith('_')
                  and not any(hasattr(b, f.name) for b in bases) and not is_event(node.name, f.name, mod)]
    return found

def undocumented(root:Path)->list:
    "'module.name (notebook)' for each public top-level function or class, or new method, whose notebook never shows it with `show_doc`"
    docs = {nb.name: show_doc_targets(nb) for nb in (root/'nbs').glob('*.ipynb')}
    missing = []
    for py in (root/'convnotes').glob('*.py'):
        if py.name.startswith('_'): continue
        where = defining_notebooks(py)
        missing += [f"{py.stem}.{name} ({nb})" for name, nb in where.items() if not name.startswith('_') and name not in docs.get(nb, set())]
        missing += [f"{py.stem}.{name} ({where[name.split('.')[0]]})" for name in new_methods(py)
                    if name not in docs.get(where[name.split('.')[0]], set())]
    return sorted(missing)

def test_the_checker_finds_what_it_should(tmp_path):
    (tmp_path/'nbs').mkdir(); (tmp_path/'convnotes').mkdir()
    (tmp_path/'convnotes'/'m.py').write_text(
        "# %% ../nbs/00_m.ipynb #a1\ndef shown(): pass\ndef hidden(): pass\ndef _private(): pass\n"
        "class Shown:\n    def method(self): pass\n    def unshown(self): pass\n    def _private(self): pass\n"
        "    @property\n    def prop(self): pass\n    def __repr__(self): return ''\n"
        "class Sub(Shown):\n    def method(self): pass\n"   # an override: documented with `Shown.method`
        "# %% ../nbs/00_m.ipynb #a2\ndef patched(self:Shown): pass\n")
    cells = [dict(cell_type='code', source='show_doc(shown)'), dict(cell_type='code', source='show_doc(Shown)'),
             dict(cell_type='code', source='show_doc(Shown.method)'), dict(cell_type='code', source='show_doc(Sub)'),
             dict(cell_type='code', source="show_doc(Shown.prop.fget, name='Shown.prop')"),
             dict(cell_type='code', source='show_doc(hidden)\nshow_doc(Shown.patched)'),   # only the last one is shown
             dict(cell_type='markdown', source='show_doc(Shown.unshown)')]                 # a mention, not a show_doc
    (tmp_path/'nbs'/'00_m.ipynb').write_text(json.dumps(dict(cells=cells)))
    assert undocumented(tmp_path) == ['m.Shown.unshown (00_m.ipynb)', 'm.hidden (00_m.ipynb)']   # overrides and _names are exempt

def test_every_public_export_has_its_show_doc():
    missing = undocumented(ROOT)
    assert not missing, ("exported but never shown with show_doc in its notebook (add a `show_doc(name)` cell after the one that "
                         "defines it, `show_doc(Cls.method)` for a method, `show_doc(Cls.prop.fget, name='Cls.prop')` for a property (`.func` for a cached one), "
                         "with a worked example that is also its test, or make it private with a leading _):\n  " + "\n  ".join(missing))
