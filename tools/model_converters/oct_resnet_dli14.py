"""Convert d-li14/octconv.pytorch's ImageNet Oct-ResNet-50 (alpha = 0.5) for convdense.OctResNet.

    python tools/model_converters/oct_resnet_dli14.py oct_resnet50_cosine.pth oct_resnet50_a0.5.pth

The written backbone config sets ``strided_downsample='avgpool'``, with which the
converted model computes the release's function; the key mapping is
``convdense.models.converters.oct_resnet_dli14``.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import converter_command  # noqa: E402  (puts the repository on sys.path)

from convdense.models.converters import oct_resnet_dli14  # noqa: E402


def main(argv=None):
    return converter_command.main(oct_resnet_dli14.convert, __doc__, argv)


if __name__ == '__main__':
    sys.exit(main())
