"""Convert an official Res2Net / Res2NeXt (or timm res2net*) checkpoint for convdense.Res2Net.

    python tools/model_converters/res2net.py res2net50_26w_4s-06e79181.pth res2net50_26w_4s.pth
    python tools/model_converters/res2net.py res2net50_v1b_26w_4s-3cf99910.pth res2net50_v1b_26w_4s.pth

Plain or v1b (deep stem); the key mapping is ``convdense.models.converters.res2net``.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import converter_command  # noqa: E402  (puts the repository on sys.path)

from convdense.models.converters import res2net  # noqa: E402


def main(argv=None):
    return converter_command.main(res2net.convert, __doc__, argv)


if __name__ == '__main__':
    sys.exit(main())
