"Every public function and class convnotes exports is documented in the chapter it comes from: a `show_doc` cell there."
import ast, json, re
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
    if isinstance(call, ast.Call) and getattr(call.func, 'id', None) == 'show_doc' and call.args: return ast.unparse(call.args[0])

def show_doc_targets(nb:Path)->set:
    "The names a notebook shows with `show_doc`: `show_doc(Exercise.verdict)` shows `verdict`, a method `@patch` defines"
    cells = json.loads(nb.read_text())['cells']
    return {name.split('.')[-1] for c in cells if c['cell_type'] == 'code' and (name := shown_by(''.join(c['source'])))}

def undocumented(root:Path)->list:
    "'module.name (notebook)' for each public top-level function or class whose notebook never shows it with `show_doc`"
    docs = {nb.name: show_doc_targets(nb) for nb in (root/'nbs').glob('*.ipynb')}
    return sorted(f"{py.stem}.{name} ({nb})" for py in (root/'convnotes').glob('*.py') if not py.name.startswith('_')
                  for name, nb in defining_notebooks(py).items() if not name.startswith('_') and name not in docs.get(nb, set()))

def test_the_checker_finds_what_it_should(tmp_path):
    (tmp_path/'nbs').mkdir(); (tmp_path/'convnotes').mkdir()
    (tmp_path/'convnotes'/'m.py').write_text("# %% ../nbs/00_m.ipynb #a1\ndef shown(): pass\ndef hidden(): pass\ndef _private(): pass\n"
                                            "class Shown:\n    def method(self): pass\n# %% ../nbs/00_m.ipynb #a2\n@patch\ndef patched(self:Shown): pass\n")
    cells = [dict(cell_type='code', source='show_doc(shown)'), dict(cell_type='code', source='show_doc(Shown)'),
             dict(cell_type='code', source='show_doc(hidden)\nshow_doc(Shown.patched)'),   # only the last one is shown
             dict(cell_type='markdown', source='show_doc(hidden)')]                        # a mention, not a show_doc
    (tmp_path/'nbs'/'00_m.ipynb').write_text(json.dumps(dict(cells=cells)))
    assert undocumented(tmp_path) == ['m.hidden (00_m.ipynb)']   # methods and _names are exempt

def test_every_public_export_has_its_show_doc():
    missing = undocumented(ROOT)
    assert not missing, ("exported but never shown with show_doc in its notebook (add a `show_doc(name)` cell after the one that "
                         "defines it, with a worked example that is also its test, or make it private with a leading _):\n  " + "\n  ".join(missing))
