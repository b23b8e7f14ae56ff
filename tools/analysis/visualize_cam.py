"""Class activation maps of mmdet detectors, mmseg segmentors and classifiers.

    python tools/analysis/visualize_cam.py CONFIG [CHECKPOINT] --img PATH|DIR
        [--method gradcam|gradcam++|xgradcam|hirescam|layercam|eigencam|...]
        [--target-layers backbone.layer1 ... backbone.layer4] [--target-category C]
        [--compare CONFIG2 CKPT2 [CONFIG3 CKPT3 ...]] [--names NAME ...]
        --out-dir DIR [--cfg-options key=value ...]

Each image goes through each model's own test pipeline and data preprocessor;
the maps (pytorch-grad-cam) are mapped back onto the original image. Writes to
``--out-dir``: ``<model>/<image>_<layer>.png`` overlays, ``<model>/<image>.npy``
(the raw maps, ``(layers, H, W)`` float32 in [0, 1], in the summary's layer
order), ``grid.png`` (rows: images, columns: models, at each model's deepest
target layer) and ``summary.json``. ``none`` as a checkpoint means a fresh model.
Targets: a detector explains its top-scoring box (or, with ``--target-category``,
all detections of that category), a segmentor a class's logits over the region
it predicts, a classifier a class logit.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from convdense import launch  # noqa: E402

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def parse_args(argv=None):
    from convdense.visualization.cam import METHODS
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='model config (mmdet, mmseg or classifier)')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint; omit for a fresh model')
    parser.add_argument('--img', required=True, help='an image file or a folder of them')
    parser.add_argument('--method', default='gradcam', choices=list(METHODS))
    parser.add_argument('--target-layers', nargs='+',
                        help="module paths (default: the backbone's stages)")
    parser.add_argument('--target-category',
                        help='class index or name (default: the top box/class/region)')
    parser.add_argument('--compare', nargs='+', default=[], metavar='CONFIG CKPT',
                        help="more models side by side, as CONFIG CHECKPOINT pairs ('none': fresh)")
    parser.add_argument('--names', nargs='+', help='column names for the models')
    parser.add_argument('--out-dir', required=True)
    parser.add_argument('--cfg-options', nargs='+', action=launch.DictAction,
                        help='override entries of every config, key=value')
    return parser.parse_args(argv)


def list_images(path):
    if osp.isdir(path):
        images = sorted(osp.join(path, name) for name in os.listdir(path)
                        if name.lower().endswith(IMAGE_EXTENSIONS))
        if not images:
            raise launch.ConfigError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) in {path}')
        return images
    if not osp.isfile(path):
        raise launch.ConfigError(f'--img: no such file or folder: {path}')
    return [path]


def model_specs(args):
    """``[(name, config, checkpoint or None)]`` for the main and ``--compare`` models."""
    if len(args.compare) % 2:
        raise launch.ConfigError('--compare takes CONFIG CHECKPOINT pairs '
                                 f"('none' for a fresh model), got {len(args.compare)} values")
    pairs = [(args.config, args.checkpoint)] + [
        (args.compare[i], None if args.compare[i + 1].lower() == 'none' else args.compare[i + 1])
        for i in range(0, len(args.compare), 2)]
    names = args.names or [osp.splitext(osp.basename(config))[0] for config, _ in pairs]
    if len(names) != len(pairs):
        raise launch.ConfigError(f'--names gives {len(names)} names for {len(pairs)} models')
    seen = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f'{name}_{seen[name]}')
    return [(name, config, checkpoint) for name, (config, checkpoint) in zip(unique, pairs)]


def overlay(image_rgb, cam):
    """``image_rgb`` (H, W, 3) uint8 with ``cam`` as grad-cam's jet overlay."""
    from pytorch_grad_cam.utils.image import show_cam_on_image
    return show_cam_on_image(image_rgb.astype(np.float32) / 255, cam, use_rgb=True)


def write_grid(path, images, names, overlays, titles):
    """Rows: images; columns: the image, then each model's overlay."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows, columns = len(images), len(names) + 1
    height, width = images[0][1].shape[:2]
    fig, axes = plt.subplots(rows, columns, squeeze=False,
                             figsize=(2.4 * columns, 2.4 * rows * height / width + 0.4))
    for row, (image_name, image) in enumerate(images):
        axes[row, 0].imshow(image)
        axes[row, 0].set_title(image_name, fontsize=8)
        for column, name in enumerate(names, 1):
            axes[row, column].imshow(overlays[name][row])
            axes[row, column].set_title(f'{name}\n{titles[name][row]}', fontsize=7)
    for ax in axes.ravel():
        ax.axis('off')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def target_title(info):
    if info.get('category') is None:
        return 'nothing detected'
    text = f"class {info.get('category_name', info['category'])}"
    if 'score' in info:
        text += f" ({info['score']:.2f})"
    return text


def main(argv=None):
    args = parse_args(argv)
    import mmcv

    from convdense.visualization import cam as cams
    images = list_images(args.img)
    specs = model_specs(args)
    os.makedirs(args.out_dir, exist_ok=True)
    originals = [(osp.splitext(osp.basename(p))[0], mmcv.imread(p, channel_order='rgb'))
                 for p in images]
    summary = dict(method=args.method, target_category=args.target_category,
                   images=images, models=[])
    grid_overlays, grid_titles = {}, {}
    for name, config, checkpoint in specs:
        try:
            model, cfg = cams.load_model(config, checkpoint, args.cfg_options)
            layers = args.target_layers or cams.default_target_layers(model)
            pipeline = cams.test_pipeline(cfg)
        except cams.CAMError as exc:
            raise launch.ConfigError(f'{name}: {exc}') from exc
        model_dir = osp.join(args.out_dir, name)
        os.makedirs(model_dir, exist_ok=True)
        record = dict(name=name, config=config, checkpoint=checkpoint,
                      kind=cams.model_kind(model), layers=list(layers), images=[])
        grid_overlays[name], grid_titles[name] = [], []
        for path, (stem, original) in zip(images, originals):
            start = time.perf_counter()
            try:
                inputs, samples = cams.prepare_image(model, pipeline, path)
                result = cams.compute_cams(model, inputs, samples, layers, args.method,
                                           args.target_category)
            except cams.CAMError as exc:
                raise launch.ConfigError(f'{name}: {exc}') from exc
            seconds = time.perf_counter() - start
            ordered = [result['maps'][layer] for layer in layers]
            np.save(osp.join(model_dir, f'{stem}.npy'), np.stack(ordered))
            for layer, cam in zip(layers, ordered):
                mmcv.imwrite(overlay(original, cam)[..., ::-1],  # mmcv writes BGR
                             osp.join(model_dir, f'{stem}_{layer}.png'))
            grid_overlays[name].append(overlay(original, ordered[-1]))
            grid_titles[name].append(target_title(result['target']))
            record['images'].append(dict(image=path, seconds=round(seconds, 3),
                                         maps=osp.join(name, f'{stem}.npy'), **result['target']))
        summary['models'].append(record)
    grid = osp.join(args.out_dir, 'grid.png')
    write_grid(grid, originals, [name for name, _, _ in specs], grid_overlays, grid_titles)
    summary['grid'] = 'grid.png'
    with open(osp.join(args.out_dir, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    return summary


if __name__ == '__main__':
    launch.run_cli(main)
