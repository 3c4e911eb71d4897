"""Automatic judge of generated scenes: which colour is the foreground, which shape is it, which background.

The same algorithm, step for step, is testdata/src/main/java/dev/kiln/testdata/ImageJudge.java:
 1. background = per-channel lower median of the 2-pixel border frame;
 2. distance of every pixel to the background (RGB Euclidean); if the largest is < 40 there is no foreground;
 3. foreground = distance > max(40, 0.5 * largest distance); keep the largest 4-connected component
    (first found in raster order on ties); fewer than 12 pixels means no foreground;
 4. colour = palette colour nearest to the mean RGB of the component's "core" (pixels whose distance is at
    least the component's lower-median distance), so anti-aliased edges do not pull the colour to the background;
 5. shape = the template with the highest IoU against the component inside its bounding box, where each
    template is the canonical shape of scenes.py stretched to that bounding box (so size and aspect drop out);
 6. background name = palette background nearest to the background colour.
"""

import math

import numpy as np

import scenes

MIN_DISTANCE = 40.0
MIN_AREA = 12
BORDER = 2


def _canonical_inside(shape, xs, ys):
    return scenes.shape_mask(shape, 0.0, 0.0, 1.0, xs, ys)


def canonical_bounds(shape):
    if shape == "circle":
        return -1.0, 1.0, -1.0, 1.0
    if shape == "square":
        half = scenes.SQUARE_HALF
        return -half, half, -half, half
    polygon = scenes.triangle_polygon(0, 0, 1.0) if shape == "triangle" else scenes.star_polygon(0, 0, 1.0)
    xs = [p[0] for p in polygon]
    ys = [p[1] for p in polygon]
    return min(xs), max(xs), min(ys), max(ys)


def lower_median(values):
    ordered = np.sort(values)
    return ordered[(len(ordered) - 1) // 2]


def largest_component(mask):
    """Largest 4-connected component of a bool mask (first in raster order on ties), as a bool mask."""
    height, width = mask.shape
    labels = np.zeros((height, width), dtype=np.int32)
    best_label, best_size, current = 0, 0, 0
    for start_y in range(height):
        for start_x in range(width):
            if not mask[start_y, start_x] or labels[start_y, start_x]:
                continue
            current += 1
            labels[start_y, start_x] = current
            stack = [(start_y, start_x)]
            size = 0
            while stack:
                y, x = stack.pop()
                size += 1
                for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                    if 0 <= ny < height and 0 <= nx < width and mask[ny, nx] and not labels[ny, nx]:
                        labels[ny, nx] = current
                        stack.append((ny, nx))
            if size > best_size:
                best_label, best_size = current, size
    return labels == best_label if best_size else np.zeros_like(mask)


def nearest(rgb, palette):
    best_name, best_distance = None, math.inf
    for name, value in palette.items():
        distance = math.sqrt(sum((float(a) - float(b)) ** 2 for a, b in zip(rgb, value)))
        if distance < best_distance:
            best_name, best_distance = name, distance
    return best_name


def judge(image):
    """image: uint8 [H, W, 3]. Returns a dict: colour, shape, background (names or None), area, ious."""
    pixels = np.asarray(image).astype(np.float64)
    height, width, _ = pixels.shape
    border = np.zeros((height, width), dtype=bool)
    border[:BORDER, :] = border[-BORDER:, :] = border[:, :BORDER] = border[:, -BORDER:] = True
    background = np.array([lower_median(pixels[:, :, channel][border]) for channel in range(3)])
    distance = np.sqrt(((pixels - background[None, None, :]) ** 2).sum(axis=2))
    verdict = {"colour": None, "shape": None, "background": nearest(background, scenes.BACKGROUNDS),
               "area": 0, "ious": {}}
    largest = distance.max()
    if largest < MIN_DISTANCE:
        return verdict
    component = largest_component(distance > max(MIN_DISTANCE, 0.5 * largest))
    area = int(component.sum())
    verdict["area"] = area
    if area < MIN_AREA:
        return verdict
    component_distance = distance[component]
    core = component & (distance >= lower_median(component_distance))
    verdict["colour"] = nearest(pixels[core].mean(axis=0), scenes.COLOURS)

    ys, xs = np.nonzero(component)
    x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
    box_width, box_height = x1 - x0 + 1, y1 - y0 + 1
    grid_y, grid_x = np.mgrid[y0:y1 + 1, x0:x1 + 1]
    u = (grid_x + 0.5 - x0) / box_width
    v = (grid_y + 0.5 - y0) / box_height
    observed = component[y0:y1 + 1, x0:x1 + 1]
    best_shape, best_iou = None, -1.0
    for shape in scenes.SHAPES:
        bx0, bx1, by0, by1 = canonical_bounds(shape)
        template = _canonical_inside(shape, bx0 + u * (bx1 - bx0), by0 + v * (by1 - by0))
        union = np.logical_or(template, observed).sum()
        iou = float(np.logical_and(template, observed).sum()) / float(union)
        verdict["ious"][shape] = iou
        if iou > best_iou:
            best_shape, best_iou = shape, iou
    verdict["shape"] = best_shape
    return verdict
