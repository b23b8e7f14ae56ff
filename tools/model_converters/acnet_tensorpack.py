"""Convert the official dataset-aware ACNet-ResNet50 (tensorpack .npz) for convdense.ACNet.

    python tools/model_converters/acnet_tensorpack.py acnet_resnet50.npz acnet50.pth [--gates prob|logit]

The written backbone config sets ``strided_padding='tf_same'`` (TF "SAME" padding);
the pixel-aware release is refused. The name mapping and the gate averaging are
``convdense.models.converters.acnet_tensorpack``.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import converter_command  # noqa: E402  (puts the repository on sys.path)

from convdense.models.converters import acnet_tensorpack  # noqa: E402

OPTIONS = {'--gates': dict(choices=('prob', 'logit'), default='prob',
                           help='how per-position gates become per-layer scalars (prob)')}


def main(argv=None):
    return converter_command.main(acnet_tensorpack.convert, __doc__, argv, OPTIONS)


if __name__ == '__main__':
    sys.exit(main())
