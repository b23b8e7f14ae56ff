"""Command-line pieces the benchmark scripts share: image sizes as ``HxW`` and the
final write of a results JSON with its Markdown table."""
import json
import os
import os.path as osp


def size_key(size):
    """``(800, 1216)`` -> ``'800x1216'`` (the results files' keys)."""
    return f'{size[0]}x{size[1]}'


def parse_size(text, minimum=1, reason=''):
    """``'800x1216'`` -> ``(800, 1216)``; a one-line exit for anything else or a
    side below ``minimum`` (``reason`` says why that minimum)."""
    try:
        height, width = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise SystemExit(f'size must look like 224x224, got {text!r}')
    if height < minimum or width < minimum:
        raise SystemExit(f'size must be at least {minimum}x{minimum}{reason}, got {text!r}')
    return height, width


def locked_merge(path, update):
    """Replace the JSON at ``path`` by ``update(its contents)`` (``{}`` when there is no
    file yet) under a file lock, atomically: jobs running side by side (one per core)
    may share a results file, and a reader never sees half a file. Returns the new
    contents."""
    import fcntl
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path + '.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = {}
        if osp.isfile(path):
            with open(path) as f:
                results = json.load(f)
        results = update(results)
        tmp = path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(results, f, indent=2)
        os.replace(tmp, path)
    return results


def write_results(results, path, table):
    """Write ``results`` to ``path`` as JSON, print ``table`` and the path."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(results, f, indent=2)
    print(table)
    print(f'written to {path}')
    return results


def table_requested(argv, default_path, markdown_table):
    """For ``SCRIPT --table [RESULTS.json]``: print ``markdown_table`` of that results
    file (default ``default_path``) and return True, so README tables are rendered from
    the file rather than retyped; False for any other command line."""
    if argv[:1] != ['--table']:
        return False
    path = argv[1] if len(argv) == 2 else str(default_path)
    if len(argv) > 2 or not osp.isfile(path):
        raise SystemExit(f'usage: --table [RESULTS.json] (an existing file), got {argv[1:]}')
    with open(path) as f:
        print(markdown_table(json.load(f)))
    return True
