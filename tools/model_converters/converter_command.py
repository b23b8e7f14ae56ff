"""The command line every converter script shares: ``SRC DST [options]``.

Reads ``SRC``, converts it with a ``convdense.models.converters`` function, checks
that the result loads into the backbone it names, writes ``DST`` and prints what
to put in a config. A source that does not convert is reported on one line
(``error: SRC: ...``, exit status 2).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from convdense.models.converters import (read_checkpoint, save_converted,  # noqa: E402
                                         summary, verify_loads)


def main(convert, description, argv=None, options=None) -> int:
    """Run ``convert(source_state, **options)`` -> ``(state, dropped keys, backbone
    config)`` on the command line ``argv``.

    ``options`` maps each extra flag to its ``argparse`` arguments; the parsed
    values are passed to ``convert`` by keyword (``--gates`` as ``gates``).
    ``description``'s first line is the help text.
    """
    parser = argparse.ArgumentParser(description=description.strip().split('\n')[0])
    parser.add_argument('src', help='released checkpoint')
    parser.add_argument('dst', help='output .pth for init_cfg=dict(type="Pretrained", ...)')
    dests = [parser.add_argument(flag, **spec).dest for flag, spec in (options or {}).items()]
    args = parser.parse_args(argv)
    try:
        state, dropped, backbone_cfg = convert(read_checkpoint(args.src),
                                               **{dest: getattr(args, dest) for dest in dests})
        verify_loads(backbone_cfg, state)
    except (ValueError, KeyError, OSError, RuntimeError) as error:
        print(f'error: {args.src}: {error}', file=sys.stderr)
        return 2
    save_converted(state, args.dst, backbone_cfg, args.src)
    print(summary(backbone_cfg, state, dropped, args.dst))
    return 0
