"""Pointing game for class activation maps: does a category's CAM peak on that category?

    python tools/analysis/cam_pointing_game.py --ann-file ANN.json --img-dir DIR \\
        --model NAME CONFIG CHECKPOINT [--model NAME2 CONFIG2 none ...] \\
        [--methods gradcam layercam ...] [--target-layers backbone.layer4 ...] \\
        [--tolerance PX] [--max-images N] [--out benchmarks/results/cam_pointing_game.json]

For every image of a COCO-format annotation file and every category visible in
it, the model's CAM for that category (``--target-category``, as in
``visualize_cam.py``) is computed per method and target layer; it is a hit when
its peak lies in the union of that category's instance masks (grown by
``--tolerance`` pixels). This is the pointing game of Zhang et al., "Top-down
neural attention by excitation backprop" (ECCV 2016), per (image, category)
pair: a category map has one peak, so it cannot point at two instances at once.

Chance rate: a peak drawn uniformly over the image hits with the probability of
the mask's area fraction; the mean over the same pairs is the score of a map
with no information. A map that is constant (nothing to explain, e.g. a detector
with no detection of the category) has no peak and counts as a miss; such maps
are counted separately. Models are named with ``--model NAME CONFIG CKPT``;
``none`` as checkpoint scores a fresh model of that config, initialised after
``--seed`` (default 0; every model is built after re-seeding), so a fresh
model's score is reproducible.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.join(ROOT, 'benchmarks'))

from convdense import launch  # noqa: E402
from machine_info import machine  # noqa: E402  (CPU model, vector ISA, cores, threads, load)


def parse_args(argv=None):
    from convdense.visualization.cam import METHODS
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--ann-file', required=True, help='COCO instances json')
    parser.add_argument('--img-dir', required=True, help="folder of the json's file_name s")
    parser.add_argument('--model', nargs=3, action='append', required=True,
                        metavar=('NAME', 'CONFIG', 'CHECKPOINT'),
                        help="a model to score ('none' as checkpoint: fresh)")
    parser.add_argument('--methods', nargs='+', default=['gradcam'], choices=list(METHODS))
    parser.add_argument('--target-layers', nargs='+',
                        help="module paths (default: each model's backbone stages)")
    parser.add_argument('--region', choices=('mask', 'box'), default='mask',
                        help="what a peak must hit: the instances' masks or their boxes")
    parser.add_argument('--tolerance', type=int, default=0,
                        help='pixels a peak may lie outside the mask (Zhang et al.: 15)')
    parser.add_argument('--max-images', type=int, help='score only the first N images')
    parser.add_argument('--seed', type=int, default=0,
                        help="random seed set before each model is built (a fresh model's init)")
    parser.add_argument('--out', default='benchmarks/results/cam_pointing_game.json')
    parser.add_argument('--cfg-options', nargs='+', action=launch.DictAction,
                        help='override entries of every config, key=value')
    return parser.parse_args(argv)


# --------------------------------------------------------------------------- scoring
# The metric lives in the package (convdense.evaluation.pointing_game); its names are
# re-exported here for this script's users.
from convdense.evaluation.pointing_game import (  # noqa: E402,F401
    box_mask, category_masks, chance_rate, coco_to_model_classes, grow, peak, pointing_hit, summarise)


# --------------------------------------------------------------------------- running

def score_model(name, config, checkpoint, coco, image_ids, img_dir, methods, layers,
                tolerance, cfg_options=None, progress=print, region='mask', seed=0):
    """Pointing-game records (one per method and layer, plus ``mean``) for one model,
    built after seeding every generator with ``seed`` (a fresh model is then the
    same model on every run)."""
    from mmengine.runner import set_random_seed

    from convdense.visualization import cam as cams
    set_random_seed(seed)
    model, cfg = cams.load_model(config, checkpoint, cfg_options)
    layers = layers or cams.default_target_layers(model)
    pipeline = cams.test_pipeline(cfg)
    class_index = coco_to_model_classes(coco, cams.describe_categories(model))
    keys = [(method, layer) for method in methods for layer in [*layers, 'mean']]
    hits = {key: [] for key in keys}
    flat = {key: 0 for key in keys}
    start = time.perf_counter()
    for number, image_id in enumerate(image_ids, 1):
        info = coco.loadImgs([image_id])[0]
        inputs, samples = cams.prepare_image(model, pipeline, osp.join(img_dir, info['file_name']))
        masks = category_masks(coco, image_id, class_index, region)
        for category, mask in sorted(masks.items()):
            for method in methods:
                result = cams.compute_cams(model, inputs, samples, layers, method, category)
                for layer in [*layers, 'mean']:
                    cam = result['mean'] if layer == 'mean' else result['maps'][layer]
                    flat[method, layer] += peak(cam) is None
                    hits[method, layer].append(pointing_hit(cam, mask, tolerance))
        progress(f'{name}: {number}/{len(image_ids)} images')
    seconds = time.perf_counter() - start
    return [dict(model=name, config=config, checkpoint=checkpoint, method=method, layer=layer,
                 seconds=round(seconds, 1), **summarise(hits[method, layer], flat[method, layer]))
            for method, layer in keys]


def format_table(report):
    """Markdown: one row per model and method, the accuracy per layer and the chance rate."""
    rows, layers = {}, []
    for entry in report['results']:
        layer = entry['layer'].replace('backbone.', '')
        layers += [layer] if layer not in layers else []
        rows.setdefault((entry['model'], entry['method']), {})[layer] = entry['accuracy']
    lines = ['| model | method | ' + ' | '.join(layers) + ' |', '|---|---|' + '---:|' * len(layers)]
    for (model, method), accuracy in rows.items():
        lines.append(f'| {model} | {method} | '
                     + ' | '.join(f'{accuracy[layer]:.3f}' if layer in accuracy else '–' for layer in layers)
                     + ' |')
    lines.append(f"\n{report['pairs']} instance/category pairs on {report['images']} images, region "
                 f"{report['region']}, tolerance {report['tolerance_px']} px; chance rate "
                 f"{report['chance_rate']:.3f}")
    return '\n'.join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ['--table']:  # print the table of a results file written earlier
        if len(argv) != 2 or not osp.isfile(argv[1]):
            raise launch.ConfigError('usage: cam_pointing_game.py --table RESULTS.json (an existing file)')
        with open(argv[1]) as f:
            print(format_table(json.load(f)))
        return None
    args = parse_args(argv)
    from pycocotools.coco import COCO
    if not osp.isfile(args.ann_file):
        raise launch.ConfigError(f'--ann-file not found: {args.ann_file}')
    coco = COCO(args.ann_file)
    image_ids = sorted(coco.getImgIds())[:args.max_images]
    first_model = args.model[0]
    from convdense.visualization import cam as cams
    try:
        model, _ = cams.load_model(first_model[1], None, args.cfg_options)
        class_index = coco_to_model_classes(coco, cams.describe_categories(model))
        del model
        masks = [mask for image_id in image_ids
                 for mask in category_masks(coco, image_id, class_index, args.region).values()]
        chance = chance_rate(masks, args.tolerance)
        results = []
        for name, config, checkpoint in args.model:
            checkpoint = None if checkpoint.lower() == 'none' else checkpoint
            results += score_model(name, config, checkpoint, coco, image_ids, args.img_dir,
                                   args.methods, args.target_layers, args.tolerance,
                                   args.cfg_options, region=args.region, seed=args.seed)
    except (ValueError, FileNotFoundError) as exc:
        if isinstance(exc, launch.ConfigError):
            raise
        raise launch.ConfigError(str(exc)) from exc
    report = dict(
        command='python tools/analysis/cam_pointing_game.py ' + ' '.join(argv),
        ann_file=args.ann_file, images=len(image_ids), pairs=len(masks),
        region=args.region, tolerance_px=args.tolerance, seed=args.seed, chance_rate=round(chance, 4),
        results=results,
        machine=machine(),
        date=time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=2)
    print(format_table(report))
    return report


if __name__ == '__main__':
    launch.run_cli(main)
