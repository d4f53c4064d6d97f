"""The face-detection part of a bundle's run.py (everything below the marker is embedded).
edgezoo's evaluation imports ``detect`` / ``detect_ssd`` from here: windows, anchors, box
decoding and NMS are the code the runner uses."""

import numpy as np

from edgezoo.bundle.runner import InputError

# --- run.py ---
# Task: face detection, two kinds of model:
# - a window classifier (MTCNN's output network, 48x48 windows): the runner slides windows of
#   several sizes over the image, corrects each box with the model's regression, keeps faces
#   above a score and removes overlaps (non-maximum suppression);
# - a single-shot detector over fixed anchors (BlazeFace; the card's task option `anchors`):
#   the image is letterboxed to the model's square input, each anchor's box offsets and
#   score are decoded, and overlaps removed.
WINDOW = 48
SCALES = (0.9, 0.6, 0.4, 0.27)  # window side as a fraction of the image's shorter side
STRIDE = 1 / 3  # of the window side
MIN_SCORE = 0.9
NMS_IOU = 0.3


def windows(height, width):
    side0 = min(height, width)
    out = []
    for f in SCALES:
        s = max(WINDOW // 2, int(round(side0 * f)))
        step = max(1, int(round(s * STRIDE)))
        for top in range(0, max(1, height - s + 1), step):
            for left in range(0, max(1, width - s + 1), step):
                out.append((left, top, s))
    return out


def window_input(image, left, top, side):
    from PIL import Image

    crop = Image.fromarray(image[top : top + side, left : left + side]).resize((WINDOW, WINDOW), Image.BILINEAR)
    x = (np.asarray(crop, np.float32) - 127.5) * 0.0078125
    return x.transpose(2, 0, 1)[None]


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def nms(dets, threshold=NMS_IOU):
    kept = []
    for d in sorted(dets, key=lambda d: -d["score"]):
        if all(iou(d["box"], k["box"]) < threshold for k in kept):
            kept.append(d)
    return kept


def window_outputs(run_one, image):
    """The model's outputs for every window of the image: (windows, logits N x 2, boxes N x 4, landmarks N x 10)."""
    wins = windows(*image.shape[:2])
    outs = [[np.asarray(o).reshape(-1) for o in run_one([window_input(image, *w)])] for w in wins]
    return wins, np.array([o[0] for o in outs]), np.array([o[1] for o in outs]), np.array([o[2] for o in outs])


def detections(wins, logits, reg, marks):
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    scores = z[:, 1] / z.sum(axis=1)
    dets = []
    for (left, top, s), score, r, m in zip(wins, scores, reg, marks):
        if score < MIN_SCORE:
            continue
        box = [left + r[0] * s, top + r[1] * s, left + s + r[2] * s, top + s + r[3] * s]
        lm = [[float(left + m[i] * s), float(top + m[i + 5] * s)] for i in range(5)]
        dets.append({"box": [float(v) for v in box], "score": float(score), "landmarks": lm})
    return nms(dets)


def detect(run_one, image):
    """Faces in an HxWx3 uint8 image: [{box: [x1, y1, x2, y2], score, landmarks}]."""
    return detections(*window_outputs(run_one, image))


SSD_MIN_SCORE = 0.5


def ssd_anchors(size: int, strides=(8, 16, 16, 16)):
    """Anchor centres (x, y in 0..1) of MediaPipe's SSD anchor layout with fixed anchor size:
    two anchors per cell per layer, layers of equal stride sharing one grid."""
    out, i = [], 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        per_cell, grid = 2 * (j - i), -(-size // strides[i])
        for y in range(grid):
            for x in range(grid):
                out += [((x + 0.5) / grid, (y + 0.5) / grid)] * per_cell
        i = j
    return np.array(out, np.float32)


def ssd_input(image, size: int):
    """Letterbox an HxWx3 uint8 image to size x size (black bars), values in -1..1, NHWC;
    returns the tensor and (side, left, top) to map boxes back to the image."""
    from PIL import Image

    h, w = image.shape[:2]
    side = max(h, w)
    canvas = np.zeros((side, side, 3), np.uint8)
    left, top = (side - w) // 2, (side - h) // 2
    canvas[top : top + h, left : left + w] = image
    x = np.asarray(Image.fromarray(canvas).resize((size, size), Image.BILINEAR), np.float32) / 127.5 - 1.0
    return x[None], (side, left, top)


def ssd_outputs(run_one, image, size: int):
    """(box regressors A x 16, scores A x 1) of the model on the letterboxed image."""
    x, geom = ssd_input(image, size)
    outs = [np.asarray(o) for o in run_one([x])]
    reg = next(o for o in outs if o.shape[-1] > 1).reshape(-1, outs[0].shape[-1] if outs[0].shape[-1] > 1 else outs[1].shape[-1])
    cls = next(o for o in outs if o.shape[-1] == 1).reshape(-1, 1)
    return reg, cls, geom


def ssd_detections(reg, cls, geom, size: int, anchors=None):
    anchors = ssd_anchors(size) if anchors is None else anchors
    side, left, top = geom
    scores = 1.0 / (1.0 + np.exp(-np.clip(cls[:, 0].astype(np.float64), -100.0, 100.0)))
    dets = []
    for k in np.nonzero(scores >= SSD_MIN_SCORE)[0]:
        ax, ay = anchors[k]
        r = reg[k] / size
        xc, yc, w, h = r[0] + ax, r[1] + ay, r[2], r[3]
        box = [(xc - w / 2) * side - left, (yc - h / 2) * side - top, (xc + w / 2) * side - left, (yc + h / 2) * side - top]
        marks = [[float((r[4 + 2 * i] + ax) * side - left), float((r[5 + 2 * i] + ay) * side - top)] for i in range((len(r) - 4) // 2)]
        dets.append({"box": [float(v) for v in box], "score": float(scores[k]), "landmarks": marks})
    return nms(dets)


def detect_ssd(run_one, image, size: int):
    reg, cls, geom = ssd_outputs(run_one, image, size)
    return ssd_detections(reg, cls, geom, size)


def add_arguments(parser):
    pass


def read_input(path, manifest):
    from PIL import Image

    if not path.is_file():
        raise InputError(f"no such input file: {path}")
    try:
        image = np.asarray(Image.open(path).convert("RGB"))
    except Exception as exc:  # PIL raises several types for unreadable files
        raise InputError(f"{path} is not a readable image: {exc}") from None
    if min(image.shape[:2]) < WINDOW // 2:
        raise InputError(f"{path} is {image.shape[1]}x{image.shape[0]} pixels; faces need at least {WINDOW // 2} pixels")
    return [image]


def infer(session, feeds, manifest):
    if manifest.get("task_options", {}).get("anchors"):  # a single-shot detector (BlazeFace)
        return detect_ssd(session.run, feeds[0], int(manifest["inputs"][0]["shape"][1]))
    return detect(session.run, feeds[0])


def present(outputs, manifest, args):
    return {"faces": [{"box": [round(v, 1) for v in d["box"]], "score": round(d["score"], 4),
                       "landmarks": [[round(x, 1), round(y, 1)] for x, y in d["landmarks"]]} for d in outputs]}


def render(result):
    if not result["faces"]:
        return "no face found"
    return "\n".join(f"face {d['score']:.3f}  box x1={d['box'][0]:.0f} y1={d['box'][1]:.0f} x2={d['box'][2]:.0f} y2={d['box'][3]:.0f}"
                     for d in result["faces"])
