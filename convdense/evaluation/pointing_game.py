"""The pointing game of Zhang et al., "Top-down neural attention by excitation
backprop" (ECCV 2016), for class activation maps: a map is a hit when its peak lies
in the category's region (its instance masks or boxes, grown by a tolerance); the
chance rate is the region's area fraction. Used by
``tools/analysis/cam_pointing_game.py`` and the digit-scene benchmark.

Maps and regions are ``(H, W)`` arrays at input resolution; a constant map has no
peak and is never a hit (counted apart by :func:`summarise`).
"""
import numpy as np


def grow(mask, tolerance):
    """``mask`` dilated by a disk of radius ``tolerance`` pixels."""
    if tolerance <= 0:
        return mask.astype(bool)
    import cv2
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * tolerance + 1, 2 * tolerance + 1))
    return cv2.dilate(mask.astype(np.uint8), disk) > 0


def peak(cam):
    """``(row, column)`` of the map's maximum (the first, in raster order, on a
    tie), or None for a constant map, which points nowhere."""
    cam = np.asarray(cam)
    if not np.isfinite(cam).all():
        raise ValueError('CAM contains NaN or inf values')
    if cam.max() - cam.min() <= 1e-6 * max(1.0, abs(float(cam.max()))):
        return None
    return np.unravel_index(int(np.argmax(cam)), cam.shape)


def pointing_hit(cam, mask, tolerance=0):
    """True when ``cam``'s peak lies in ``mask`` grown by ``tolerance`` px;
    False for a miss or a constant map."""
    if cam.shape != mask.shape:
        raise ValueError(f'CAM of shape {cam.shape} and mask of shape {mask.shape} differ')
    location = peak(cam)
    return location is not None and bool(grow(mask, tolerance)[location])


def chance_rate(masks, tolerance=0):
    """Expected score of uniformly random peaks: the mean area fraction of the
    (grown) masks, one per (image, category) pair."""
    if not masks:
        raise ValueError('no (image, category) pairs to compute a chance rate over')
    return float(np.mean([grow(mask, tolerance).mean() for mask in masks]))


def box_mask(bbox, height, width):
    """The pixels whose centres lie in a COCO ``[x, y, w, h]`` box."""
    x, y, w, h = bbox
    rows = (np.arange(height) + 0.5 >= y) & (np.arange(height) + 0.5 <= y + h)
    columns = (np.arange(width) + 0.5 >= x) & (np.arange(width) + 0.5 <= x + w)
    return rows[:, None] & columns[None, :]


def category_masks(coco, image_id, class_index, region='mask'):
    """``{model class index: union of the category's instance masks}`` (or of
    their boxes, ``region='box'``) for one image.

    ``class_index`` maps COCO category ids to the model's class indices; crowd
    annotations and instances with an empty mask are left out.
    """
    info = coco.loadImgs([image_id])[0]
    masks = {}
    for ann in coco.loadAnns(coco.getAnnIds(imgIds=[image_id], iscrowd=False)):
        mask = coco.annToMask(ann).astype(bool)
        if not mask.any():
            continue
        if region == 'box':
            mask = box_mask(ann['bbox'], info['height'], info['width'])
        index = class_index[ann['category_id']]
        masks[index] = masks[index] | mask if index in masks else mask
    return masks


def coco_to_model_classes(coco, classes):
    """COCO category id -> index of the same-named class of the model."""
    if not classes:
        raise ValueError('the model records no class names, so COCO categories cannot be '
                         "matched to its outputs (set the test dataset's metainfo.classes)")
    mapping = {}
    for category in coco.loadCats(coco.getCatIds()):
        if category['name'] in classes:
            mapping[category['id']] = list(classes).index(category['name'])
    used = {ann['category_id'] for ann in coco.dataset.get('annotations', [])}
    missing = sorted(coco.cats[c]['name'] for c in used if c not in mapping)
    if missing:
        raise ValueError(f"annotated categories {', '.join(missing)} are not among the model's "
                         f"classes ({', '.join(map(str, classes))})")
    return mapping


def summarise(hits, flat):
    """Accuracy record from a list of hit booleans and the count of constant maps:
    every pair is a hit, a miss (a peak outside the region) or a constant map (no
    peak; counted apart, and not a hit, in ``accuracy``)."""
    return dict(pairs=len(hits), hits=int(sum(hits)), misses=len(hits) - int(sum(hits)) - flat,
                accuracy=round(float(np.mean(hits)), 4) if hits else None, constant_maps=flat)
