"""The VIPSeg on-disk format, at the level the training code needs: paths, id encodings, PNG/JPEG I/O.

Layout (as DVIS reads ``VIPSeg_720P``; see /work/shared/reference/vipseg_format.md)::

    <root>/images/<video>/<stem>.jpg
    <root>/panomasks/<video>/<stem>.png      raw 16-bit: 0 void, stuff = cat + 1, thing = (cat + 1) * 100 + k
    <root>/panomasksRGB/<video>/<stem>.png   RGB, segment id = R + 256 G + 256^2 B (panopticapi rgb2id), 0 void
    <root>/panoVIPSeg_categories.json
    <root>/panoptic_gt_VIPSeg_<split>.json

The training reader only needs ``images/``, ``panomasksRGB/`` and the split JSON (like DVIS); the writer
here exists for the synthetic generator. Image decoding/encoding uses OpenCV (``cv2``, a project
dependency), which reads and writes 16-bit PNGs exactly and is fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from dvis_models import atomic
from dvis_models.errors import DVISError
from dvis_models.presets import vipseg_categories

CATEGORIES_FILE_NAME = "panoVIPSeg_categories.json"


class DatasetFormatError(DVISError, ValueError):
    """A VIPSeg-format dataset is missing files or its JSON / PNGs are malformed; the message names the file."""


def check_plain_name(name: object, what: str, source: Path) -> str:
    """A name from a JSON file used as one path component: no folders, no '..', not empty."""
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise DatasetFormatError(f"{source}: {what} {name!r} is not a plain file name (no folders or '..').")
    return name


def split_json_name(split: str) -> str:
    return f"panoptic_gt_VIPSeg_{split}.json"


def image_path(root: Path, video_id: str, stem: str) -> Path:
    return Path(root) / "images" / video_id / f"{stem}.jpg"


def raw_mask_path(root: Path, video_id: str, stem: str) -> Path:
    return Path(root) / "panomasks" / video_id / f"{stem}.png"


def rgb_mask_path(root: Path, video_id: str, stem: str) -> Path:
    return Path(root) / "panomasksRGB" / video_id / f"{stem}.png"


def load_categories(path: Path | None = None) -> list[dict]:
    """Category entries ``{id, name, isthing, color}`` from a JSON list (default: the 124 VIPSeg categories)."""
    if path is None:
        return vipseg_categories()
    entries = read_json(path)
    if not isinstance(entries, list) or not all(isinstance(e, dict) and {"id", "isthing", "color"} <= e.keys() for e in entries):
        raise DatasetFormatError(f"{path}: expected a JSON list of categories with id, name, isthing and color.")
    return entries


# ----- id encodings -----------------------------------------------------------------------------------------

def rgb2id(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) int64 segment ids, id = R + 256 G + 256^2 B."""
    rgb = rgb.astype(np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]


def id2rgb(ids: np.ndarray) -> np.ndarray:
    """(H, W) ids -> (H, W, 3) uint8 RGB, the inverse of :func:`rgb2id` for ids < 2^24."""
    ids = np.asarray(ids, dtype=np.int64)
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536 % 256], axis=-1).astype(np.uint8)


def color_to_id(color) -> int:
    r, g, b = (int(v) for v in color)
    return r + 256 * g + 65536 * b


def raw_value(category_id: int, isthing: bool, instance: int = 0) -> int:
    """The raw ``panomasks`` value of a segment: stuff = cat + 1, thing = (cat + 1) * 100 + instance."""
    return (category_id + 1) * 100 + instance if isthing else category_id + 1


class SegmentIdAssigner:
    """Gives each segment of one video a unique RGB id the way panopticapi's ``IdGenerator`` does.

    Stuff gets its category colour (so a stuff id is fixed per category); a thing gets its category colour
    the first time if free, else a colour jittered by up to +-30 per channel that is not yet taken. All stuff
    colours are reserved up front (car and Playground_slide share a colour in VIPSeg). Unlike panopticapi the
    jitter comes from the given generator, so ids are reproducible.
    """

    def __init__(self, categories: list[dict], rng: np.random.Generator):
        self._categories = {int(c["id"]): c for c in categories}
        self._rng = rng
        self._taken = {0} | {color_to_id(c["color"]) for c in categories if not c["isthing"]}

    def stuff_id(self, category_id: int) -> int:
        return color_to_id(self._categories[category_id]["color"])

    def thing_id(self, category_id: int) -> int:
        base = np.array(self._categories[category_id]["color"], dtype=np.int64)
        candidate = color_to_id(base)
        for _ in range(100_000):
            if candidate not in self._taken:
                self._taken.add(candidate)
                return candidate
            candidate = color_to_id(np.clip(base + self._rng.integers(-30, 31, size=3), 0, 255))
        raise ValueError(f"no free colour left for another instance of category {category_id}")


# ----- file I/O -----------------------------------------------------------------------------------------------

def read_json(path: Path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise DatasetFormatError(f"{path} does not exist; check the dataset root and split name.") from None
    except OSError as error:
        raise DatasetFormatError(f"Cannot read {path}: {error.strerror}.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DatasetFormatError(f"{path} is not valid JSON ({error}); re-export the dataset.") from None
    except RecursionError:
        raise DatasetFormatError(f"{path} nests lists or objects too deeply to be a VIPSeg JSON; re-export the dataset.") from None


def read_rgb_image(path: Path) -> np.ndarray:
    """A JPEG/PNG frame as (H, W, 3) uint8 RGB."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetFormatError(f"Cannot read the image {path} (missing or not an image file).")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_segment_ids(path: Path) -> np.ndarray:
    """A ``panomasksRGB`` PNG as (H, W) int64 segment ids."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DatasetFormatError(f"Cannot read the panoptic mask {path} (missing or not a PNG file).")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (3, 4):
        raise DatasetFormatError(
            f"{path} must be an 8-bit RGB PNG (id = R + 256 G + 256^2 B); got dtype {image.dtype}, shape {image.shape}."
        )
    return rgb2id(cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2RGB))


def _encode(extension: str, image: np.ndarray, params: list[int] | None = None) -> bytes:
    ok, buffer = cv2.imencode(extension, image, params or [])
    if not ok:
        raise OSError(f"OpenCV could not encode a {extension} image of shape {image.shape}")
    return buffer.tobytes()


def write_json(path: Path, payload) -> None:
    atomic.write_bytes(path, json.dumps(payload, separators=(",", ":")).encode("utf-8"))


def write_jpeg(path: Path, rgb: np.ndarray, quality: int = 92) -> None:
    atomic.write_bytes(path, _encode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]))


def write_raw_mask(path: Path, raw: np.ndarray) -> None:
    """A raw ``panomasks`` map as a single-channel 16-bit PNG."""
    atomic.write_bytes(path, _encode(".png", np.asarray(raw, dtype=np.uint16)))


def write_rgb_mask(path: Path, ids: np.ndarray) -> None:
    """A segment id map as a ``panomasksRGB`` PNG."""
    atomic.write_bytes(path, _encode(".png", cv2.cvtColor(id2rgb(ids), cv2.COLOR_RGB2BGR)))
