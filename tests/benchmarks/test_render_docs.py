"""``benchmarks/render_docs.py``: the committed docs are what the results files render
to, and a stale or unknown block fails naming itself."""
import shutil

import pytest

from tests.helpers.e2e import REPO, load_script


@pytest.fixture(scope='module')
def render():
    return load_script('benchmarks/render_docs.py')


def test_committed_docs_match_the_results_files(render, capsys):
    assert render.main(['--check']) == 0, capsys.readouterr().out


def test_every_block_is_used_and_every_used_block_is_known(render):
    used = set()
    for path in render.documents():
        with open(path) as f:
            used |= {m['name'] for m in render.BLOCK.finditer(f.read())}
    assert used == set(render.BLOCKS)


def _root_with(tmp_path, text):
    (tmp_path / 'docs').mkdir()
    (tmp_path / 'docs' / 'page.md').write_text(text)
    return str(tmp_path)


def test_check_fails_naming_the_stale_block_and_a_render_fixes_it(render, tmp_path, capsys):
    root = _root_with(tmp_path, 'intro\n<!-- BEGIN generated: pac -->\n| hand-typed | 1.00 |\n'
                                '<!-- END generated: pac -->\nafter\n')
    assert render.main(['--check', '--root', root]) == 1
    assert capsys.readouterr().out.strip() == ("stale generated block 'pac' in docs/page.md: "
                                               'run python benchmarks/render_docs.py')
    assert render.main(['--root', root]) == 0
    text = (tmp_path / 'docs' / 'page.md').read_text()
    assert text.startswith('intro\n<!-- BEGIN generated: pac -->\nMachine: CPU ') and text.endswith(
        '<!-- END generated: pac -->\nafter\n')
    assert 'hand-typed' not in text and '| conv k=5 256x256 | 1 |' in text
    assert render.main(['--check', '--root', root]) == 0


def test_unknown_block_is_a_one_line_error(render, tmp_path):
    root = _root_with(tmp_path, '<!-- BEGIN generated: nope -->\n<!-- END generated: nope -->\n')
    with pytest.raises(SystemExit, match="docs/page.md: unknown generated block 'nope'"):
        render.main(['--check', '--root', root])


def test_verdicts_are_judged_from_the_numbers(render, tmp_path, monkeypatch):
    """A results file whose stored verdict disagrees with its numbers renders the
    verdict the numbers give (bench_memory's limit, bench_backbones' goals)."""
    import json
    results = tmp_path / 'results'
    shutil.copytree(f'{REPO}/benchmarks/results', results)
    memory = json.loads((results / 'memory.json').read_text())
    memory['models']['pac'].update(flat=False, slope_kib_per_iter=-11.0)
    memory['models']['maskrcnn'].update(flat=True, slope_kib_per_iter=86.0)
    (results / 'memory.json').write_text(json.dumps(memory))
    backbones = json.loads((results / 'backbones.json').read_text())
    row = backbones['onnxruntime']['threads']['1']['224x224']['models']['oct-resnet50_a0.5']
    row['ratio'] = 9.99                # far above its goal, while the stored verdict says pass
    row['goals'][0]['passed'] = True
    limit = row['goals'][0]['limit']
    (results / 'backbones.json').write_text(json.dumps(backbones))
    monkeypatch.setattr(render, 'RESULTS', str(results))
    table = render.BLOCKS['memory'][0]()
    assert '| maskrcnn | 200 (first 40 dropped) | 86.0 (<= 32) | **no** |' in table
    assert '| pac | 200 (first 40 dropped) | -11.0 (<= 32) | yes |' in table
    oct_row = next(line for line in render.BLOCKS['backbones'][0]().splitlines()
                   if line.startswith('| oct-resnet50_a0.5 |') and '9.99x' in line)
    assert f'flop <= {limit:.3f}: FAIL' in oct_row
