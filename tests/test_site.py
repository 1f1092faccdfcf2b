"""The docs site, built offline and checked in a real browser (Debian's chromium, driven by Selenium through
Debian's chromedriver: nothing is downloaded at run time)."""
import functools, http.server, json, os, shutil, subprocess, sys, threading, time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlparse
from urllib.request import urlopen
import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT/'tools'))
import docs

CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')
CHROMEDRIVER = shutil.which('chromedriver')
ARTIFACTS = ROOT/'test-artifacts'
if not (CHROMIUM and CHROMEDRIVER):
    if os.environ.get('CI'): raise RuntimeError("CI needs Debian's chromium and chromium-driver: .ci/run installs them")
    pytest.skip("browser tests need Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)", allow_module_level=True)

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

# ---- the conversion, unit by unit ----

def test_directives_become_tags_and_leave_the_source():
    opts, src = docs.split_directives("#| echo: false\n#| output: asis\nshow_doc(f)")
    assert opts == {'echo': 'false', 'output': 'asis'} and src == 'show_doc(f)'

def test_callouts_become_admonitions():
    assert docs.callouts_to_admonitions("::: {.callout-note}\nsay\n:::") == ":::{note}\nsay\n:::"

def test_notebook_conversion():
    nb = {'cells': [
        {'cell_type': 'raw', 'metadata': {}, 'source': '---\ntitle: T\ndescription: D\noutput-file: t.html\n---\n'},
        {'cell_type': 'code', 'has_sd': True, 'metadata': {'execution': {'total': 0.1}}, 'outputs': [
            {'output_type': 'execute_result', 'metadata': {}, 'execution_count': 1,
             'data': {'text/markdown': '---\n\n### f\n[f](https://site.io/x/t.html#f)'}}],
         'execution_count': 1, 'source': '#| include: false\nshow_doc(f)'}],
        'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}
    out, fm = docs.myst_notebook(nb, 'https://site.io/x')
    head, code = out['cells']
    assert fm['output-file'] == 't.html' and head['source'] == '# T\n\n{.lead}\nD'
    assert 'has_sd' not in code and code['metadata'] == {'tags': ['remove-cell']} and code['source'] == 'show_doc(f)'
    assert code['outputs'][0]['data']['text/markdown'] == '\n### f\n[f](t.html#f)'
    import nbformat
    nbformat.validate(nbformat.from_dict(out))   # what nbformat rejected before (has_sd, timing metadata) is gone

def imports_and_code(nb:Path)->list:
    "Ids of `nb`'s cells that nbdev's docs build warns of, 'Found cells containing imports and other code': it runs every cell that imports"
    import warnings
    from nbdev.process import NBProcessor
    from nbdev.processors import _do_eval   # nbdev's own rule for which cells the docs build runs
    found = []
    for cell in NBProcessor(nb).nb.cells:   # which parses each cell's directives, as the docs build does
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter('always'); _do_eval(cell)
        if any('imports and other code' in str(w.message) for w in seen): found.append(cell.get('id'))
    return found

def test_no_cell_mixes_imports_with_other_code(tmp_path):
    "nbdev would run such a cell's code while building the site (it warns, 'Found cells containing imports and other code')"
    bad = {nb.name: ids for nb in sorted((ROOT/'nbs').glob('*.ipynb')) if (ids := imports_and_code(nb))}
    assert not bad, f"move these cells' imports into an import cell of their own: {bad}"
    mixed = tmp_path/'mixed.ipynb'   # and the check finds one
    mixed.write_text(json.dumps({'cells': [{'cell_type': 'code', 'id': 'm', 'metadata': {}, 'outputs': [], 'execution_count': None,
                                            'source': 'from math import pi\nx = pi'}], 'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}))
    assert imports_and_code(mixed) == ['m']

def test_folded_code_and_explorers_convert():
    widget = {'output_type': 'execute_result', 'metadata': {}, 'execution_count': 1,
              'data': {docs.WIDGET_MIME: {'model_id': 'x'}, 'image/png': 'iVBO', 'text/plain': 'an explorer'}}
    nb = {'cells': [{'cell_type': 'code', 'metadata': {}, 'execution_count': 1, 'source': '#| code-fold: true\nsolved(1)', 'outputs': []},
                    {'cell_type': 'code', 'metadata': {}, 'execution_count': 1, 'source': 'explore()', 'outputs': [widget]}],
          'metadata': {'widgets': {'state': {}}}, 'nbformat': 4, 'nbformat_minor': 5}
    out, _ = docs.myst_notebook(nb)
    fold, explore = out['cells']
    assert fold['metadata'] == {'tags': ['hide-input']} and fold['source'] == 'solved(1)'
    assert sorted(explore['outputs'][0]['data']) == ['image/png', 'text/plain']   # the widget view is gone, its picture stays
    assert 'widgets' not in out['metadata']

# ---- the built site, in a browser ----

@pytest.fixture(scope='module')
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp('site')/'_docs'
    t = time.perf_counter()
    pages = docs.build_site(out)
    print(f"site built in {time.perf_counter()-t:.1f}s")
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args): pass
    handler = functools.partial(Quiet, directory=str(out))
    # a thread per connection: the browser opens connections ahead of need and leaves some idle, and a server that
    # answers one connection at a time waits on such an idle one while the page's real requests queue behind it
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", pages
    httpd.shutdown()

@pytest.fixture(scope='module')
def browser(tmp_path_factory):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ('--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
              '--disable-sync', '--no-first-run', '--disable-quic', '--window-size=1280,1600',
              f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(a)
    opts.set_capability('goog:loggingPrefs', {'performance': 'ALL'})
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    drv.set_page_load_timeout(300)   # a page that never loads fails the test, rather than hanging the run
    yield drv
    drv.quit()

class _Links(HTMLParser):
    def __init__(self): super().__init__(); self.hrefs, self.ids = [], set()
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if 'id' in a: self.ids.add(a['id'])
        if tag == 'a' and a.get('href'): self.hrefs.append(a['href'])

def _parse(html): p = _Links(); p.feed(html); return p

def _requests(drv):
    "URLs the browser requested since the last call"
    urls = []
    for entry in drv.get_log('performance'):
        msg = json.loads(entry['message'])['message']
        if msg['method'] == 'Network.requestWillBeSent': urls.append(msg['params']['request']['url'])
    return urls

def test_every_page_loads_with_its_title_images_and_no_outside_request(site, browser):
    base, pages = site
    titles = {}
    for name in pages:
        url = urljoin(base, f"{name}.html")
        assert urlopen(url).status == 200
        browser.get(url)
        titles[name] = browser.title
        h1 = browser.find_element(By.TAG_NAME, 'h1').text
        assert h1 and h1.rstrip('#¶ ') in browser.title, (name, h1, browser.title)
        imgs = browser.find_elements(By.TAG_NAME, 'img')
        broken = [i.get_attribute('src')[:80] for i in imgs if not browser.execute_script('return arguments[0].complete && arguments[0].naturalWidth > 0', i)]
        assert not broken, (name, broken)
        outside = [u for u in _requests(browser) if urlparse(u).scheme in ('http', 'https', 'ws', 'wss') and not u.startswith(base)]
        assert not outside, (name, outside)
    assert titles['index'].startswith('convnotes')
    assert 'Receptive fields' in titles['receptive'] and 'Batch normalization' in titles['batchnorm']

def test_chapters_have_figures_and_api_entries(site, browser):
    base, _ = site
    browser.get(urljoin(base, 'kernels.html'))
    assert len(browser.find_elements(By.CSS_SELECTOR, 'img')) >= 5               # the chapter's saved figures
    browser.get(urljoin(base, 'receptive.html'))
    assert len(browser.find_elements(By.CSS_SELECTOR, 'img')) >= 1
    assert browser.find_elements(By.ID, 'receptive_field')                       # its show_doc entry
    assert browser.find_elements(By.CSS_SELECTOR, 'mjx-container')               # the math rendered (MathJax, served locally)

def test_kernel_animations_play(site, browser):
    "The arithmetic chapter's four kernel animations load in the browser as animated PNGs (an acTL chunk: many frames)"
    base, _ = site
    browser.get(urljoin(base, 'arithmetic.html'))
    animated = [i for i in browser.find_elements(By.CSS_SELECTOR, 'img') if b'acTL' in urlopen(i.get_attribute('src')).read()[:100]]
    assert len(animated) == 4
    assert all(browser.execute_script('return arguments[0].complete && arguments[0].naturalWidth > 0', i) for i in animated)

def test_every_internal_link_resolves(site):
    base, pages = site
    seen, bad = {}, []
    def page(url):
        if url not in seen: seen[url] = _parse(urlopen(url).read().decode())
        return seen[url]
    for name in pages:
        url = urljoin(base, f"{name}.html")
        for href in page(url).hrefs:
            target = urljoin(url, href)
            if not target.startswith(base): continue
            path, frag = target.split('#', 1) if '#' in target else (target, '')
            try: p = page(path) if path.endswith('.html') or path.endswith('/') else (urlopen(path), None)[1]
            except Exception as e: bad.append((name, href, str(e))); continue
            if frag and p is not None and frag not in p.ids: bad.append((name, href, 'no such anchor'))
    assert not bad, bad[:10]

def test_every_page_source_is_a_valid_notebook(site):
    "What Sphinx reads is valid nbformat, warnings included: a cell without an id is a warning now, an error later"
    import nbformat, warnings
    _, pages = site
    sources = sorted(docs.SITE_SRC.glob('*.ipynb'))
    assert {p.stem for p in sources} == {n for n in pages if n not in ('performance', 'margins')}   # those two are Markdown
    for p in sources:
        with warnings.catch_warnings():
            warnings.simplefilter('error')
            nbformat.validate(nbformat.reads(p.read_text(), as_version=4))

def test_solutions_are_folded_until_clicked(site, browser):
    from convnotes.exercises import EXERCISES
    base, _ = site
    browser.get(urljoin(base, 'solutions.html'))
    folds = browser.find_elements(By.CSS_SELECTOR, 'details.hide')
    assert len(folds) == len(EXERCISES), len(folds)                           # one folded solution per exercise
    assert not any(f.get_attribute('open') for f in folds)
    code = folds[0].find_element(By.CSS_SELECTOR, '.cell_input')
    assert not code.is_displayed()
    browser.execute_script('arguments[0].scrollIntoView()', folds[0])
    folds[0].find_element(By.TAG_NAME, 'summary').click()
    WebDriverWait(browser, 5).until(lambda d: code.is_displayed())
    assert folds[0].get_attribute('open') is not None and 'solved(' in code.text
    assert 'right!' in browser.find_element(By.TAG_NAME, 'article').text          # the check outputs stay visible

def test_explorers_are_static_figures(site, browser):
    "An explorer's cell shows its starting figure: no widget, and not the text fallback"
    base, _ = site
    for name, n_explorers in (('kernels', 1), ('arithmetic', 1), ('explorers', 2)):
        browser.get(urljoin(base, f"{name}.html"))
        widgets = browser.find_elements(By.CSS_SELECTOR, '.jupyter-widgets, .widget-area, script[type^="application/vnd.jupyter.widget"]')
        assert not widgets, (name, len(widgets))
        cells = [c for c in browser.find_elements(By.CSS_SELECTOR, '.cell')
                 if c.find_elements(By.CSS_SELECTOR, '.cell_input') and c.find_element(By.CSS_SELECTOR, '.cell_input').text.strip().endswith(('explore_kernel(im3)', 'explore_conv_sizes()'))]
        assert len(cells) == n_explorers, (name, len(cells))
        for c in cells:
            out = c.find_element(By.CSS_SELECTOR, '.cell_output')
            assert out.find_elements(By.TAG_NAME, 'img') and 'interactive explorer' not in out.text, name

def test_search_finds_an_exported_function(site, browser):
    base, _ = site
    browser.get(urljoin(base, 'search.html?q=receptive_field'))
    WebDriverWait(browser, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, '#search-results li'))
    hrefs = [a.get_attribute('href') for a in browser.find_elements(By.CSS_SELECTOR, '#search-results li a')]
    assert any('receptive.html' in h for h in hrefs), hrefs

def test_screenshots(site, browser):
    "Saved for a person to look at: the home page and one chapter"
    base, _ = site
    ARTIFACTS.mkdir(exist_ok=True)
    for name in ('index', 'collapse', 'solutions', 'arithmetic'):
        browser.get(urljoin(base, f"{name}.html"))
        assert browser.save_screenshot(str(ARTIFACTS/f"{name}.png"))
        assert (ARTIFACTS/f"{name}.png").stat().st_size > 10_000
