"""Datasets for guided (joint) upsampling of depth, disparity and optical flow.

Each dataset only lists samples (paths, the target's kind and scale); reading,
cropping and making the low-res input happen in the pipeline
(:mod:`convdense.datasets.transforms`). Upstream layouts are read as published;
nothing is downloaded.
"""
import functools
import glob
import os
import os.path as osp

import numpy as np
from mmengine.dataset import BaseDataset

from ..registry import DATASETS
from .readers import read_rgb, read_target


class JointUpsamplingDataset(BaseDataset):
    """Base: ``load_data_list`` returns dicts understood by ``LoadJointUpsamplingSample``.

    Args:
        region_frac: (top, left, bottom, right) as fractions of each image, to
            train, validate and test on separate regions of the same scenes.
        max_samples: keep only the first N samples (smoke tests, quick runs).
        factor: upsampling factor handed to ``MakeLowResolution`` through each
            sample, so a config changes the factor in one place per dataset.
    """
    target_kind = 'depth'

    def __init__(self, *args, factor=None, region_frac=None, max_samples=None, **kwargs):
        self.factor = factor
        self.region_frac = check_region_frac(region_frac)
        self.max_samples = max_samples
        super().__init__(*args, **kwargs)

    def load_data_list(self):
        samples = self.list_samples()
        if not samples:
            raise ValueError(f'{type(self).__name__}: no samples found under {self.data_root!r}')
        if self.max_samples is not None:
            samples = samples[:self.max_samples]
        for sample in samples:
            sample.setdefault('target_kind', self.target_kind)
            sample['region_frac'] = self.region_frac
            if self.factor is not None:
                sample['factor'] = self.factor
        return samples

    def list_samples(self):
        raise NotImplementedError


def check_region_frac(region_frac):
    """``None`` or a (top, left, bottom, right) tuple of fractions with top < bottom, left < right."""
    if region_frac is None:
        return None
    try:
        top, left, bottom, right = (float(v) for v in region_frac)
    except (TypeError, ValueError):
        raise ValueError(f'region_frac must be (top, left, bottom, right) fractions, got {region_frac!r}') from None
    if not (0 <= top < bottom <= 1 and 0 <= left < right <= 1):
        raise ValueError(f'region_frac {tuple(region_frac)} must satisfy 0 <= top < bottom <= 1 and '
                         f'0 <= left < right <= 1')
    return top, left, bottom, right


def _read_nyu_mat_sample(mat_path, index):
    """Image ``index`` of NYU's labeled ``.mat`` as ((480, 640, 3) RGB, (480, 640, 1) depth in m).

    The file is MATLAB v7.3 (HDF5), so h5py sees MATLAB's column-major arrays
    transposed: ``images`` is (N, 3, W, H) and ``depths`` is (N, W, H).
    """
    import h5py
    try:
        with h5py.File(mat_path, 'r') as mat:
            image = mat['images'][index].transpose(2, 1, 0)
            depth = mat['depths'][index].transpose(1, 0)
    except (OSError, KeyError) as exc:
        raise ValueError(f'{mat_path}: not a readable NYU labeled .mat ({exc})') from None
    depth = depth.astype(np.float32)[..., None]
    depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
    return image.astype(np.float32) / 255.0, depth


@DATASETS.register_module()
class NYUDepthV2Dataset(JointUpsamplingDataset):
    """NYU Depth v2, labeled subset (1449 RGB-D images, depth in metres).

    Two layouts are read:

    * the official ``nyu_depth_v2_labeled.mat`` (``images``, ``depths``) at
      ``data_root/mat_file``; the DJF/PAC split is by index: the first
      ``split_index`` (1000) images train, the remaining 449 test;
    * folders ``data_root/{train,test}/images/NAME.png`` (RGB) and
      ``data_root/{train,test}/depths/NAME.png`` (16-bit, ``depth_scale``
      units per metre, 0 = invalid), used when the ``.mat`` is absent.
    """
    target_kind = 'depth'

    def __init__(self, split='train', mat_file='nyu_depth_v2_labeled.mat', split_index=1000,
                 depth_scale=1000.0, **kwargs):
        if split not in ('train', 'test'):
            raise ValueError(f"NYUDepthV2Dataset split must be 'train' or 'test', got {split!r}")
        self.split = split
        self.mat_file = mat_file
        self.split_index = split_index
        self.depth_scale = depth_scale
        super().__init__(**kwargs)

    def list_samples(self):
        mat_path = osp.join(self.data_root, self.mat_file) if self.mat_file else None
        if mat_path and osp.isfile(mat_path):
            import h5py
            with h5py.File(mat_path, 'r') as mat:
                count = mat['depths'].shape[0]
            indices = range(0, min(self.split_index, count)) if self.split == 'train' \
                else range(self.split_index, count)
            return [dict(loader=functools.partial(_read_nyu_mat_sample, mat_path, i),
                         name=f'nyu_{i:04d}') for i in indices]
        images = sorted(glob.glob(osp.join(self.data_root, self.split, 'images', '*.png')))
        samples = []
        for image in images:
            name = osp.splitext(osp.basename(image))[0]
            depth = osp.join(self.data_root, self.split, 'depths', name + '.png')
            if not osp.isfile(depth):
                raise ValueError(f'{depth}: missing depth for {image}')
            samples.append(dict(guide_path=image, target_path=depth, target_scale=self.depth_scale,
                                name=name))
        return samples


@DATASETS.register_module()
class MiddleburyDataset(JointUpsamplingDataset):
    """Middlebury stereo scenes: left RGB view + ground-truth disparity (pixels).

    Each sub-folder of ``data_root`` is a scene in the 2005/2006 layout
    (``view1.png`` + ``disp1.png``, 8-bit, 0 = unknown, divided by
    ``disparity_scale``) or the 2014 layout (``im0.png`` + ``disp0.pfm``,
    ``inf`` = unknown). ``scenes`` restricts and orders the scenes.
    """
    target_kind = 'disparity'

    def __init__(self, scenes=None, disparity_scale=1.0, **kwargs):
        self.scenes = scenes
        self.disparity_scale = disparity_scale
        super().__init__(**kwargs)

    def list_samples(self):
        scenes = self.scenes or sorted(d for d in os.listdir(self.data_root)
                                       if osp.isdir(osp.join(self.data_root, d)))
        samples = []
        for scene in scenes:
            folder = osp.join(self.data_root, scene)
            for guide, target, scale in (('im0.png', 'disp0.pfm', 1.0),
                                         ('view1.png', 'disp1.png', self.disparity_scale)):
                if osp.isfile(osp.join(folder, guide)) and osp.isfile(osp.join(folder, target)):
                    samples.append(dict(guide_path=osp.join(folder, guide),
                                        target_path=osp.join(folder, target),
                                        target_scale=scale, name=osp.basename(folder)))
                    break
            else:
                raise ValueError(f'{folder}: no Middlebury pair (im0.png+disp0.pfm or view1.png+disp1.png)')
        return samples


def disparity_to_flow(disparity, mask_occluded=True):
    """A rectified stereo pair's left-view disparity ``(H, W)`` as the optical flow from
    the left view to the right one, ``(H, W, 2)``: ``u = -d``, ``v = 0``.

    Unknown disparity stays unknown (NaN); with ``mask_occluded``, so do the left-view
    pixels the right view cannot see (no correspondence, hence no flow to score).
    """
    from .procedural_rgbd import stereo_occlusion
    disparity = np.asarray(disparity, np.float32)
    unknown = ~np.isfinite(disparity)
    if mask_occluded:
        unknown |= stereo_occlusion(np.where(unknown, -np.inf, disparity))
    flow = np.stack([-disparity, np.zeros_like(disparity)], axis=2)
    flow[unknown] = np.nan
    return flow


def read_stereo_flow(guide_path, target_path, scale=1.0, mask_occluded=True):
    """(left view, its stereo-as-flow :func:`disparity_to_flow`) of one stereo scene."""
    guide, disparity = load_pair(guide_path, target_path, 'disparity', scale)
    return guide, disparity_to_flow(disparity[..., 0], mask_occluded)


@DATASETS.register_module()
class MiddleburyStereoFlowDataset(MiddleburyDataset):
    """Middlebury stereo scenes (:class:`MiddleburyDataset` layouts) read as *real optical
    flow*: the left view is frame 1, the right view frame 2, and the ground-truth
    disparity gives the flow ``(-d, 0)`` with real motion boundaries (depth edges).
    Unknown disparity and, with ``mask_occluded``, stereo-occluded pixels are invalid
    (NaN), so the flow metrics skip them. For selecting and testing flow models."""
    target_kind = 'flow'

    def __init__(self, mask_occluded=True, **kwargs):
        self.mask_occluded = mask_occluded
        super().__init__(**kwargs)

    def list_samples(self):
        samples = []
        for sample in super().list_samples():
            samples.append(dict(loader=functools.partial(
                read_stereo_flow, sample['guide_path'], sample['target_path'], sample['target_scale'],
                self.mask_occluded), name=sample['name']))
        return samples


@DATASETS.register_module()
class SintelFlowDataset(JointUpsamplingDataset):
    """MPI-Sintel training set: ``training/<pass>/<scene>/frame_XXXX.png`` with
    ``training/flow/<scene>/frame_XXXX.flo`` (flow from frame XXXX to XXXX+1).

    The guide is the first frame of each pair. Split:
        ``split_file``: one line per frame, in sorted (scene, frame) order,
        ``1`` = train, ``2`` = validation (the FlowNet/PWC-Net convention; the
        PAC paper's split has 908 train / 133 validation frames);
        otherwise ``val_scenes``: whole scenes held out for validation.
    """
    target_kind = 'flow'

    def __init__(self, split='train', pass_name='clean', split_file=None, val_scenes=None, **kwargs):
        if split not in ('train', 'val', 'all'):
            raise ValueError(f"SintelFlowDataset split must be 'train', 'val' or 'all', got {split!r}")
        if split != 'all' and split_file is None and val_scenes is None:
            raise ValueError('SintelFlowDataset needs split_file or val_scenes to make a train/val split')
        self.split = split
        self.pass_name = pass_name
        self.split_file = split_file
        self.val_scenes = set(val_scenes or ())
        super().__init__(**kwargs)

    def list_samples(self):
        flows = sorted(glob.glob(osp.join(self.data_root, 'training', 'flow', '*', 'frame_*.flo')))
        samples = []
        for flow in flows:
            scene = osp.basename(osp.dirname(flow))
            frame = osp.splitext(osp.basename(flow))[0]
            guide = osp.join(self.data_root, 'training', self.pass_name, scene, frame + '.png')
            if not osp.isfile(guide):
                raise ValueError(f'{guide}: missing frame for {flow}')
            samples.append(dict(guide_path=guide, target_path=flow, name=f'{scene}/{frame}',
                                scene=scene))
        if self.split == 'all':
            return samples
        if self.split_file is not None:
            with open(self.split_file) as f:
                labels = [line.strip() for line in f if line.strip()]
            if len(labels) != len(samples):
                raise ValueError(f'{self.split_file}: {len(labels)} lines but {len(samples)} flow files')
            wanted = '1' if self.split == 'train' else '2'
            return [s for s, label in zip(samples, labels) if label == wanted]
        keep_val = self.split == 'val'
        return [s for s in samples if (s['scene'] in self.val_scenes) == keep_val]


def load_pair(guide_path, target_path, kind, scale=1.0):
    """Read one (guide, target) pair with the same readers the datasets use."""
    return read_rgb(guide_path), read_target(target_path, kind, scale)
