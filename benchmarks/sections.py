"""A Markdown report in named sections, each between `<!-- TAG:NAME -->` and `<!-- /TAG:NAME -->`: a run rewrites
the sections it measured and keeps the others (another device's, another profile's). `bench.py` (tag `bench`) and
`margins.py` (tag `margins`) write their reports with it."""
import re
from pathlib import Path
from convnotes.data import atomic_write

def new_section_at(text:str, name:str, tag:str='bench')->int:
    "Where a section the report lacks goes: after the last of its kind (`profile-b` after `profile-a`: the part of `name` before its first '-'), else at the end"
    kind = re.escape(name.split('-')[0])
    ends = list(re.finditer(rf"<!-- /{tag}:{kind}(-\S*)? -->", text))
    return ends[-1].end() if ends else len(text.rstrip('\n'))

def update_sections(
    path:Path,       # the report
    sections:dict,   # {name: its new body}
    head:str,        # what a new report starts with, where `path` does not exist yet
    tag:str='bench', # the markers' prefix
):
    "Replace each named section of the report at `path`, keeping the others; add new ones by `new_section_at`; write it atomically"
    text = path.read_text() if path.exists() else f"{head}\n"
    for name, body in sections.items():
        block = f"<!-- {tag}:{name} -->\n{body}\n<!-- /{tag}:{name} -->"
        pat = re.compile(rf"<!-- {tag}:{re.escape(name)} -->.*?<!-- /{tag}:{re.escape(name)} -->", re.S)
        if pat.search(text): text = pat.sub(lambda m: block, text)
        else:
            i = new_section_at(text, name, tag)
            text = text[:i] + f"\n\n{block}" + (text[i:] or '\n')
    with atomic_write(path, 'w') as f: f.write(text)
