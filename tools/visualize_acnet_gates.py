"""Plot an ACNet backbone's gates (self alpha, local beta, global gamma) for an image,
as in ACNet Fig. 3.

    python tools/visualize_acnet_gates.py IMAGE --out gates.png
    python tools/visualize_acnet_gates.py IMAGE --checkpoint work_dirs/x/iter_4.pth \\
        --mode dataset --out gates.png

Pixel mode: one row per stage (its last block), columns image / alpha / beta /
gamma maps. Dataset mode: the gate triple of every block as stacked bars. The
checkpoint may be a backbone's or a whole detector's / segmentor's (keys under
``backbone.`` are used); without one the gates are those of a fresh model.
"""
import argparse
import os.path as osp
import sys

import numpy as np
import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('image', help='image file (any PIL format)')
    parser.add_argument('--out', default='acnet_gates.png', help='PNG to write')
    parser.add_argument('--mode', choices=('pixel', 'dataset'), default='pixel')
    parser.add_argument('--depth', type=int, default=50)
    parser.add_argument('--checkpoint', help='state dict of the backbone or of a whole model')
    parser.add_argument('--size', type=int, default=512, help='longer image side fed to the net')
    return parser.parse_args(argv)


def load_image(path, longer_side):
    """``(1, 3, H, W)`` normalised tensor and the resized ``(H, W, 3)`` uint8 image."""
    from PIL import Image
    image = Image.open(path).convert('RGB')
    scale = longer_side / max(image.size)
    image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    pixels = np.asarray(image)
    tensor = (torch.from_numpy(pixels).float() - torch.tensor(IMAGENET_MEAN)) / torch.tensor(
        IMAGENET_STD)
    return tensor.permute(2, 0, 1)[None], pixels


def build_acnet(mode, depth, checkpoint=None):
    from convdense.registry import build_model
    model = build_model(dict(type='ACNet', depth=depth, mode=mode))
    if checkpoint:
        state = torch.load(checkpoint, map_location='cpu', weights_only=False)
        state = state.get('state_dict', state)
        if any(key.startswith('backbone.') for key in state):
            state = {key[len('backbone.'):]: value for key, value in state.items()
                     if key.startswith('backbone.')}
        missing, _ = model.load_state_dict(state, strict=False)
        if missing:
            raise KeyError(f'{checkpoint}: no ACNet {mode} weights for {missing[0]} '
                           f'(and {len(missing) - 1} more keys)')
    model.eval()
    return model


def plot_gates(gates, pixels, mode, out):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = ('alpha (self)', 'beta (local)', 'gamma (global)')
    if mode == 'pixel':
        last_blocks = {}
        for block, value in gates.items():
            last_blocks[block.split('.')[0]] = (block, value)
        fig, axes = plt.subplots(len(last_blocks), 4, figsize=(12, 3 * len(last_blocks)),
                                 squeeze=False)
        for row, (block, value) in zip(axes, last_blocks.values()):
            row[0].imshow(pixels)
            row[0].set_title(block)
            for col, name in enumerate(names):
                shown = row[col + 1].imshow(value[0, col].numpy(), vmin=0, vmax=1, cmap='viridis')
                row[col + 1].set_title(name)
            fig.colorbar(shown, ax=row[-1], fraction=0.046)
            for ax in row:
                ax.axis('off')
    else:
        blocks = list(gates)
        values = torch.stack([gates[b] for b in blocks]).numpy()
        fig, ax = plt.subplots(figsize=(max(6, len(blocks) * 0.5), 4))
        bottom = np.zeros(len(blocks))
        for index, name in enumerate(names):
            ax.bar(blocks, values[:, index], bottom=bottom, label=name)
            bottom += values[:, index]
        ax.set_ylim(0, 1)
        ax.set_ylabel('gate')
        ax.tick_params(axis='x', rotation=90)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.image):
        raise FileNotFoundError(f'image not found: {args.image}')
    image, pixels = load_image(args.image, args.size)
    model = build_acnet(args.mode, args.depth, args.checkpoint)
    with torch.no_grad():
        model(image)
    out = plot_gates(model.last_gates(), pixels, args.mode, args.out)
    print(f'gates of {len(model.last_gates())} blocks written to {out}')
    return out


if __name__ == '__main__':
    main()
