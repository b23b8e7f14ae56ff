"""Inflate a ResNet checkpoint into a HetConv-ResNet (no HetConv weights were ever released).

    python tools/model_converters/resnet_to_hetconv.py resnet50-0676ba61.pth hetconv_r50_p4.pth --part 4

``--part 1`` reproduces the ResNet exactly; the kernel split is
``convdense.models.converters.resnet_to_hetconv``.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import converter_command  # noqa: E402  (puts the repository on sys.path)

from convdense.models.converters import resnet_to_hetconv  # noqa: E402

OPTIONS = {'--part': dict(type=int, default=4,
                          help='HetConv part P (4, the paper\'s main model; 1 = the ResNet)')}


def main(argv=None):
    return converter_command.main(resnet_to_hetconv.convert, __doc__, argv, OPTIONS)


if __name__ == '__main__':
    sys.exit(main())
