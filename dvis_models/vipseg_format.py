"""The VIPSeg format, for both packages: file names, id encodings, PNG/JPEG reading and encoding.

The layout (as DVIS reads ``VIPSeg_720P``)::

    <root>/images/<video>/<stem>.jpg
    <root>/panomasks/<video>/<stem>.png      raw 16-bit: 0 void, stuff = cat + 1, thing = (cat + 1) * 100 + k
    <root>/panomasksRGB/<video>/<stem>.png   RGB, segment id = R + 256 G + 256^2 B (panopticapi rgb2id), 0 void
    <root>/panoVIPSeg_categories.json
    <root>/panoptic_gt_VIPSeg_<split>.json

Plain numpy and OpenCV (no torch), so the app's import/export and the training reader share it; every
problem is a ``DatasetError`` naming the file.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from dvis_models.categories import CategoryTable
from dvis_models.errors import DatasetError

CATEGORIES_FILE = "panoVIPSeg_categories.json"
PRED_JSON = "pred.json"
IMAGES, PANOMASKS, PANOMASKS_RGB, PAN_PRED = "images", "panomasks", "panomasksRGB", "pan_pred"
STEM_RE = re.compile(r"^\d{8}$")
JSON_CHUNK = 8 << 20  # bytes read between progress reports of load_json


def gt_json_name(split: str | None) -> str:
    return "panoptic_gt_VIPSeg.json" if split is None else f"panoptic_gt_VIPSeg_{split}.json"


def check_name(name: object, what: str, source: object) -> str:
    """A single, plain path component: no separators, no '..', not absolute, not empty."""
    if (
        not isinstance(name, str)
        or not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or "\0" in name
        or Path(name).is_absolute()
        or re.match(r"^[A-Za-z]:", name)
    ):
        raise DatasetError(f"{source}: {what} {name!r} is not a plain file name (no folders, '..' or absolute paths "
                           "allowed).")
    return name


def png_stem(file_name: object, source: object) -> str:
    """The stem of a ``<stem>.png`` file name from the JSON, checked to be a plain name."""
    name = check_name(file_name, "file_name", source)
    if not name.endswith(".png"):
        raise DatasetError(f"{source}: file_name {name!r} must end with '.png'.")
    return name[: -len(".png")]


RAW_THING_MIN = 125  # raw panomask values >= 125 are things (category_raw * 100 + k), below are stuff
MAX_INSTANCES_PER_CATEGORY = 100  # k in (category_raw * 100 + k) must stay below 100
JITTER = 30  # panopticapi IdGenerator: thing colours are the category colour +- 30 per channel


def rgb_to_id(rgb: np.ndarray) -> np.ndarray:
    """COCO-panoptic ``id = R + 256 G + 256^2 B`` for an (H, W, 3) RGB uint8 image."""
    rgb = rgb.astype(np.int32)
    return rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]


def id_to_rgb(ids: np.ndarray) -> np.ndarray:
    """Inverse of ``rgb_to_id`` for ids < 2^24."""
    little_endian = np.ascontiguousarray(ids, dtype="<u4")
    return np.ascontiguousarray(little_endian.view(np.uint8).reshape(*ids.shape, 4)[..., :3])


def color_to_id(color: tuple[int, int, int]) -> int:
    return int(color[0]) + 256 * int(color[1]) + 65536 * int(color[2])


def raw_value(category_id: int, isthing: bool, instance: int) -> int:
    """Raw panomask value: stuff = category + 1; thing = (category + 1) * 100 + instance."""
    return (category_id + 1) * 100 + instance if isthing else category_id + 1


def raw_category(value: int) -> int:
    """Json category id of a raw panomask value (inverse of ``raw_value``; 0 is void and has none)."""
    return value // 100 - 1 if value >= RAW_THING_MIN else value - 1


class ColorAllocator:
    """panopticapi's ``IdGenerator`` (``panopticapi/utils.py``), with the random jitter drawn from a given generator.

    Stuff always gets its category colour (so one id per stuff category per video); a thing gets the
    category colour the first time, then a colour jittered by up to +-30 per channel that is not yet taken.
    Stuff colours and black are reserved from the start (car and Playground_slide share a colour in VIPSeg).
    ``for_video`` seeds the generator with the video id: same video id + same allocation order => same
    colours, so an exported dataset re-exports byte-identically.
    """

    def __init__(self, categories: CategoryTable, rng: np.random.Generator):
        self._categories = categories
        self._rng = rng
        self._taken: set[tuple[int, int, int]] = {(0, 0, 0)} | {tuple(c.color) for c in categories.stuff}

    @classmethod
    def for_video(cls, categories: CategoryTable, video_id: str) -> ColorAllocator:
        return cls(categories, np.random.default_rng(zlib.crc32(video_id.encode("utf-8"))))

    def color(self, category_id: int) -> tuple[int, int, int]:
        category = self._categories[category_id]
        base = tuple(int(v) for v in category.color)
        if not category.isthing:
            return base
        if base not in self._taken:
            self._taken.add(base)
            return base
        for _ in range(100_000):
            jitter = self._rng.integers(-JITTER, JITTER + 1, size=3)
            color = tuple(int(v) for v in np.clip(np.array(base) + jitter, 0, 255))
            if color not in self._taken:
                self._taken.add(color)
                return color
        raise DatasetError(f"Ran out of distinct colours for category {category.name!r}; the video has too many of its "
                           "instances.")


def load_json(path: Path, progress: Callable[[int, int], None] | None = None) -> object:
    """The parsed JSON file; every failure is a DatasetError naming it. ``progress(bytes read, size)`` while reading."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            chunks, done = [], 0
            while chunk := handle.read(JSON_CHUNK):
                chunks.append(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, size)
        return json.loads(b"".join(chunks))
    except FileNotFoundError:
        raise DatasetError(f"{path} does not exist; check the dataset folder and the split name.") from None
    except OSError as error:
        raise DatasetError(f"Cannot read {path}: {error.strerror}.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path} is not valid JSON ({error}).") from None
    except RecursionError:
        raise DatasetError(f"{path} nests lists or objects too deeply to be a VIPSeg JSON (damaged or not a dataset "
                           "file).") from None


def resized_size(width: int, height: int, target_height: int | None) -> tuple[int, int]:
    """(width, height) after scaling to ``target_height`` as VIPSeg_720P does: width = int(h' * w / h)."""
    if target_height is None or target_height == height:
        return width, height
    return int(target_height * width / height), target_height


def resize_nearest(labels: np.ndarray, width: int, height: int) -> np.ndarray:
    """Nearest-neighbour resize of a label map (any integer dtype), sampling source pixel centres like PIL NEAREST."""
    src_h, src_w = labels.shape[:2]
    if (src_w, src_h) == (width, height):
        return labels
    rows = np.minimum(((np.arange(height) + 0.5) * src_h / height).astype(np.int64), src_h - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * src_w / width).astype(np.int64), src_w - 1)
    return labels[rows[:, None], cols[None, :]]


def resize_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resize of an RGB frame (VIPSeg_720P resizes images bilinearly)."""
    if image.shape[1] == width and image.shape[0] == height:
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


def jpeg_bytes(image: np.ndarray, quality: int = 95) -> bytes:
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise DatasetError(f"OpenCV could not encode a {image.shape} frame as JPEG.")
    return encoded.tobytes()


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_FRAME_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}  # SOFn


def png_size(path: Path) -> tuple[int, int] | None:
    """(width, height) a PNG declares in its IHDR header, read without decoding; None if it is not a PNG.

    Checked before decoding so a small file declaring a huge image (a decompression bomb) is refused cheaply.
    """
    try:
        with open(path, "rb") as handle:
            header = handle.read(24)
    except OSError:
        return None
    if len(header) < 24 or header[:8] != PNG_SIGNATURE or header[12:16] != b"IHDR":
        return None
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def jpeg_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header (SOFn marker), read without decoding; None if unreadable."""
    try:
        with open(path, "rb") as handle:
            if handle.read(2) != b"\xff\xd8":
                return None
            while True:
                marker = handle.read(2)
                if len(marker) < 2 or marker[0] != 0xFF:
                    return None
                code = marker[1]
                while code == 0xFF:  # fill bytes before a marker
                    next_byte = handle.read(1)
                    if not next_byte:
                        return None
                    code = next_byte[0]
                if code == 0x01 or 0xD0 <= code <= 0xD7:  # markers without a length
                    continue
                length = int.from_bytes(handle.read(2), "big")
                if length < 2:
                    return None
                if code in _JPEG_FRAME_MARKERS:
                    frame = handle.read(5)
                    if len(frame) != 5:
                        return None
                    return int.from_bytes(frame[3:5], "big"), int.from_bytes(frame[1:3], "big")
                handle.seek(length - 2, 1)
    except OSError:
        return None


def _decode(path: Path, flags: int = cv2.IMREAD_UNCHANGED, kind: str = "PNG") -> np.ndarray:
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise DatasetError(f"{path} is missing; every frame listed in the JSON needs its {kind}.") from None
    except OSError as error:
        raise DatasetError(f"Cannot read {path}: {error.strerror}.") from None
    image = cv2.imdecode(data, flags) if data.size else None
    if image is None:
        raise DatasetError(f"{path} is not a readable {kind} image (damaged or not an image); re-export or replace it.")
    return image


def read_rgb_image(path: Path) -> np.ndarray:
    """A frame image (JPEG or PNG) as (H, W, 3) uint8 RGB."""
    return cv2.cvtColor(_decode(path, cv2.IMREAD_COLOR, "image"), cv2.COLOR_BGR2RGB)


def read_id_png(path: Path) -> np.ndarray:
    """Panoptic ids (int32 (H, W), 0 void) from an 8-bit RGB panoptic PNG."""
    image = _decode(path)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (3, 4):
        raise DatasetError(f"{path} must be an 8-bit RGB PNG (id = R + 256 G + 256^2 B); it is {image.dtype} with "
                           f"shape {image.shape}.")
    return rgb_to_id(image[..., 2::-1])  # OpenCV gives BGR(A)


def read_raw_png(path: Path) -> np.ndarray:
    """Raw panomask values (int32 (H, W)) from a single-channel 8/16-bit PNG."""
    image = _decode(path)
    if image.ndim != 2 or image.dtype not in (np.uint8, np.uint16):
        raise DatasetError(f"{path} must be a single-channel 8- or 16-bit PNG of raw panomask values; it has shape "
                           f"{image.shape}.")
    return image.astype(np.int32)
