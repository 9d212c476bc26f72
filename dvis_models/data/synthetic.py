"""Procedural VIPSeg-format videos for training and testing the DVIS pipeline without the real dataset.

Each video is a scene (park, street, beach, lake, room, ...) of textured *stuff* bands (sky over mountain
over grass, wall over floor, sky over sea over sand, ...) with wavy boundaries and a slowly panning /
tilting camera, plus 3-6 moving *thing* objects of the VIPSeg thing categories that fit the scene (person,
car, dog, ball, bottle_or_cup, box, parasol_or_umbrella, flag, sculpture, ship_or_boat) with a shape and
texture per category. Objects have a depth: nearer ones are larger, lower in
the frame and drawn on top, so they occlude farther ones. They enter from and leave through the frame
edges, wander, bounce or approach the camera. Most videos hold a pair of look-alike objects (same
category, same colours and texture) crossing each other's path, so identity can only be kept by tracking
motion. Some videos hold an unlabelled distractor blob (void, id 0), like VIPSeg's "others".

Everything is deterministic from ``(seed, split, video index)``: same arguments, identical bytes.

Defaults: 96x128 (HxW) frames, 24 frames per video, JPEG quality 92. Video ids are ``syn_<split>_<NNNN>``,
frame stems ``00000000``, ``00000001``, ...; train and val videos differ (the split is part of the seed),
so both can share one root. Output layout and encodings: see :mod:`dvis_models.vipseg_format`.

CLI::

    python -m dvis_models.data.synthetic --out DIR --videos 8 --frames 24 --size 96x128 --seed 0 --split train
"""

from __future__ import annotations

import argparse
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from dvis_models import atomic
from dvis_models import vipseg_format as fmt
from dvis_models.arguments import frame_size
from dvis_models.categories import CategoryTable, vipseg_categories

DEFAULT_SIZE = (96, 128)
DEFAULT_FRAMES = 24
JPEG_QUALITY = 92
Color = tuple[int, int, int]


# ----- procedural patterns: (rng, h, w) -> float32 (h, w) in [0, 1] -------------------------------------------

def value_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Smooth noise: a coarse random grid upsampled bicubically."""
    grid = rng.random((max(2, int(h / cell) + 2), max(2, int(w / cell) + 2))).astype(np.float32)
    return np.clip(cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)


def stripes(rng: np.random.Generator, h: int, w: int, period: float, angle: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi)
    return 0.5 + 0.5 * np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period + phase)


def checker(h: int, w: int, cell: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return ((yy // cell + xx // cell) % 2).astype(np.float32)


def vertical_gradient(h: int, w: int) -> np.ndarray:
    return np.repeat(np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None], w, axis=1)


def spots(rng: np.random.Generator, h: int, w: int, count: int, radius: float) -> np.ndarray:
    canvas = np.zeros((h, w), np.float32)
    for _ in range(count):
        center = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.circle(canvas, center, max(1, int(radius * rng.uniform(0.6, 1.4))), 1.0, -1)
    return canvas


def bricks(h: int, w: int, brick_h: int, brick_w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    row = yy // brick_h
    shifted = xx + (row % 2) * (brick_w // 2)
    mortar = (yy % brick_h == 0) | (shifted % brick_w == 0)
    return mortar.astype(np.float32)


Pattern = Callable[[np.random.Generator, int, int], np.ndarray]


@dataclass(frozen=True)
class Style:
    """Two colours mixed by a pattern, plus fine grain noise."""

    color0: Color
    color1: Color
    pattern: Pattern
    grain: float = 6.0


def jitter_color(rng: np.random.Generator, color: Color, amount: int) -> np.ndarray:
    return np.clip(np.array(color, np.float32) + rng.uniform(-amount, amount, size=3), 0, 255)


def render_texture(rng: np.random.Generator, style: Style, h: int, w: int, color_jitter: int) -> np.ndarray:
    """(h, w, 3) float32 RGB texture of a style, colours jittered per instance."""
    c0 = jitter_color(rng, style.color0, color_jitter)
    c1 = jitter_color(rng, style.color1, color_jitter)
    mix = style.pattern(rng, h, w)[..., None]
    grain = (value_noise(rng, h, w, 2.0)[..., None] - 0.5) * 2 * style.grain
    return c0 * (1 - mix) + c1 * mix + grain


# ----- stuff ------------------------------------------------------------------------------------------------

STUFF_STYLES: dict[int, Style] = {
    28: Style((120, 165, 230), (200, 225, 250), lambda r, h, w: vertical_gradient(h, w), grain=2.0),  # sky
    29: Style((95, 90, 105), (150, 140, 150), lambda r, h, w: value_noise(r, h, w, 10.0)),  # mountain
    21: Style((150, 150, 160), (60, 70, 90), lambda r, h, w: bricks(h, w, 9, 7)),  # building (window grid)
    15: Style((50, 120, 40), (110, 170, 60), lambda r, h, w: value_noise(r, h, w, 4.0), grain=10.0),  # grass
    18: Style((80, 80, 85), (125, 125, 120), lambda r, h, w: value_noise(r, h, w, 2.0)),  # road
    16: Style((205, 185, 130), (235, 215, 165), lambda r, h, w: value_noise(r, h, w, 6.0)),  # sand
    39: Style((30, 80, 150), (80, 140, 200), lambda r, h, w: stripes(r, h, w, 7.0, np.pi / 2 + 0.15)),  # water
    35: Style((20, 60, 120), (60, 110, 170), lambda r, h, w: stripes(r, h, w, 11.0, np.pi / 2 - 0.1)),  # sea
    0: Style((190, 175, 150), (120, 90, 70), lambda r, h, w: bricks(h, w, 6, 14)),  # wall
    1: Style((225, 225, 215), (190, 190, 185), lambda r, h, w: vertical_gradient(h, w), grain=2.0),  # ceiling
    13: Style((150, 105, 65), (110, 70, 40), lambda r, h, w: stripes(r, h, w, 10.0, 0.0)),  # floor (planks)
}

# ----- things -----------------------------------------------------------------------------------------------

def _mask(h: int, w: int) -> np.ndarray:
    return np.zeros((h, w), np.uint8)


def _pts(points, h: int, w: int) -> np.ndarray:
    """Relative (x, y) points in [0, 1] -> int32 pixel polygon."""
    return np.array([[x * (w - 1), y * (h - 1)] for x, y in points], np.float32).round().astype(np.int32)


def shape_ellipse(h: int, w: int, phase: float) -> np.ndarray:
    return cv2.ellipse(_mask(h, w), (((w - 1) / 2, (h - 1) / 2), (w, h), 0.0), 1, -1)


def shape_rectangle(h: int, w: int, phase: float) -> np.ndarray:
    return cv2.rectangle(_mask(h, w), (0, 0), (w - 1, h - 1), 1, -1)


def shape_triangle(h: int, w: int, phase: float) -> np.ndarray:
    """A flag: pole plus a waving triangular cloth."""
    mask = cv2.rectangle(_mask(h, w), (0, 0), (max(1, w // 12), h - 1), 1, -1)
    tip = 0.55 + 0.05 * np.sin(phase)
    return cv2.fillPoly(mask, [_pts([(0.05, 0.0), (1.0, tip * 0.5), (0.05, tip)], h, w)], 1)


def shape_star(h: int, w: int, phase: float) -> np.ndarray:
    angles = np.pi / 2 + np.arange(10) * np.pi / 5
    radii = np.where(np.arange(10) % 2 == 0, 0.5, 0.22)
    points = [(0.5 + r * np.cos(a), 0.5 - r * np.sin(a)) for r, a in zip(radii, angles)]
    return cv2.fillPoly(_mask(h, w), [_pts(points, h, w)], 1)


def shape_bottle(h: int, w: int, phase: float) -> np.ndarray:
    mask = cv2.ellipse(_mask(h, w), (((w - 1) / 2, h * 0.62), (w, h * 0.76), 0.0), 1, -1)
    return cv2.rectangle(mask, (int(w * 0.3), 0), (int(w * 0.7), int(h * 0.4)), 1, -1)


def shape_person(h: int, w: int, phase: float) -> np.ndarray:
    mask = cv2.circle(_mask(h, w), (w // 2, int(h * 0.1)), max(1, int(min(w * 0.28, h * 0.1))), 1, -1)
    mask = cv2.fillPoly(mask, [_pts([(0.15, 0.2), (0.85, 0.2), (0.78, 0.62), (0.22, 0.62)], h, w)], 1)
    swing = 0.18 * np.sin(phase)
    for side in (-1, 1):
        foot = 0.5 + side * (0.12 + swing * side)
        mask = cv2.fillPoly(mask, [_pts([(0.5 + side * 0.05, 0.6), (0.5 + side * 0.28, 0.6),
                                         (foot + 0.1, 1.0), (foot - 0.1, 1.0)], h, w)], 1)
    return mask


def shape_car(h: int, w: int, phase: float) -> np.ndarray:
    mask = cv2.fillPoly(_mask(h, w), [_pts([(0.25, 0.05), (0.7, 0.05), (0.85, 0.4), (0.12, 0.4)], h, w)], 1)
    mask = cv2.rectangle(mask, (0, int(h * 0.38)), (w - 1, int(h * 0.82)), 1, -1)
    radius = max(1, int(h * 0.18))
    for x in (0.22, 0.78):
        mask = cv2.circle(mask, (int(w * x), int(h * 0.8)), radius, 1, -1)
    return mask


def shape_dog(h: int, w: int, phase: float) -> np.ndarray:
    mask = cv2.ellipse(_mask(h, w), (int(w * 0.45), int(h * 0.45)), (int(w * 0.35), int(h * 0.2)), 0, 0, 360, 1, -1)
    mask = cv2.circle(mask, (int(w * 0.85), int(h * 0.25)), max(1, int(h * 0.2)), 1, -1)
    swing = 0.06 * np.sin(phase)
    for x, s in ((0.2, 1), (0.3, -1), (0.6, 1), (0.7, -1)):
        mask = cv2.fillPoly(mask, [_pts([(x - 0.04, 0.5), (x + 0.04, 0.5), (x + 0.04 + s * swing, 1.0),
                                         (x - 0.04 + s * swing, 1.0)], h, w)], 1)
    return mask


def shape_umbrella(h: int, w: int, phase: float) -> np.ndarray:
    mask = cv2.ellipse(_mask(h, w), (w // 2, int(h * 0.45)), (w // 2, int(h * 0.42)), 0, 180, 360, 1, -1)
    return cv2.rectangle(mask, (w // 2 - max(1, w // 20), int(h * 0.4)), (w // 2 + max(1, w // 20), h - 1), 1, -1)


def shape_boat(h: int, w: int, phase: float) -> np.ndarray:
    mask = cv2.fillPoly(_mask(h, w), [_pts([(0.0, 0.6), (1.0, 0.6), (0.82, 1.0), (0.12, 1.0)], h, w)], 1)
    mask = cv2.rectangle(mask, (int(w * 0.45), 0), (int(w * 0.45) + max(1, w // 25), int(h * 0.62)), 1, -1)
    return cv2.fillPoly(mask, [_pts([(0.5, 0.02), (0.5, 0.55), (0.9 + 0.03 * np.sin(phase), 0.55)], h, w)], 1)


@dataclass(frozen=True)
class ThingKind:
    """How a thing category looks and moves: shape, style, height (fraction of frame at depth 1), w/h ratio."""

    shape: Callable[[int, int, float], np.ndarray]
    style: Style
    height: float
    aspect: float
    bounces: bool = False
    gait: float = 0.0  # leg / cloth animation speed (radians per frame)


THING_KINDS: dict[int, ThingKind] = {
    60: ThingKind(shape_person, Style((200, 40, 40), (240, 220, 60), lambda r, h, w: stripes(r, h, w, 5.0, np.pi / 2)),
                  0.55, 0.42, gait=0.7),  # person
    48: ThingKind(shape_car, Style((30, 60, 170), (170, 190, 230), lambda r, h, w: vertical_gradient(h, w) ** 2),
                  0.32, 2.1),  # car
    62: ThingKind(shape_dog, Style((140, 90, 40), (40, 25, 15), lambda r, h, w: spots(r, h, w, 6, 2.5)),
                  0.28, 1.5, gait=0.9),  # dog
    74: ThingKind(shape_ellipse, Style((245, 245, 245), (20, 20, 20), lambda r, h, w: checker(h, w, 4)),
                  0.13, 1.0, bounces=True),  # ball
    84: ThingKind(shape_bottle, Style((40, 160, 90), (200, 240, 210), lambda r, h, w: 1 - vertical_gradient(h, w)),
                  0.24, 0.45),  # bottle_or_cup
    76: ThingKind(shape_rectangle, Style((170, 125, 70), (220, 200, 150), lambda r, h, w: stripes(r, h, w, 9.0, 0.8)),
                  0.22, 1.15),  # box
    44: ThingKind(shape_umbrella, Style((230, 60, 140), (250, 250, 250), lambda r, h, w: stripes(r, h, w, 6.0, 0.0)),
                  0.42, 1.2),  # parasol_or_umbrella
    43: ThingKind(shape_triangle, Style((250, 200, 0), (200, 0, 30), lambda r, h, w: stripes(r, h, w, 8.0, np.pi / 2)),
                  0.33, 1.1, gait=0.5),  # flag
    41: ThingKind(shape_star, Style((160, 160, 170), (90, 90, 100), lambda r, h, w: value_noise(r, h, w, 3.0)),
                  0.34, 1.0),  # sculpture
    54: ThingKind(shape_boat, Style((150, 40, 30), (245, 240, 225),
                                    lambda r, h, w: (vertical_gradient(h, w) < 0.6).astype(np.float32)),
                  0.36, 1.3, gait=0.4),  # ship_or_boat
}


@dataclass(frozen=True)
class Layout:
    """A scene type: stuff bands from top to bottom with nominal heights (frame fractions), and its things."""

    bands: tuple[tuple[int, float], ...]
    things: tuple[int, ...]


_STREET = (60, 48, 62, 74, 76, 43)
_PARK = (60, 62, 74, 44, 43, 41)
_BEACH = (60, 62, 74, 44, 84)
_WATER = (54,)
_ROOM = (60, 62, 74, 84, 76)
LAYOUTS: tuple[Layout, ...] = (
    Layout(((28, 0.35), (29, 0.15), (15, 0.5)), _PARK),  # sky, mountain, grass
    Layout(((28, 0.4), (18, 0.6)), _STREET),  # sky, road
    Layout(((28, 0.3), (21, 0.25), (18, 0.45)), _STREET),  # sky, building, road
    Layout(((28, 0.35), (35, 0.25), (16, 0.4)), _BEACH),  # sky, sea, sand
    Layout(((28, 0.4), (39, 0.6)), _WATER),  # sky, water
    Layout(((29, 0.3), (39, 0.7)), _WATER),  # mountain, water (lake)
    Layout(((0, 0.5), (13, 0.5)), _ROOM),  # wall, floor
    Layout(((1, 0.15), (0, 0.4), (13, 0.45)), _ROOM),  # ceiling, wall, floor
)

# Every VIPSeg category the scenes can contain (e.g. to give a small model only these classes).
SCENE_CATEGORY_IDS = tuple(sorted(set(STUFF_STYLES) | set(THING_KINDS)))

VOID = -1  # category of the unlabelled distractor: its pixels are written as 0 (void)
VOID_KIND = ThingKind(shape_ellipse, Style((90, 70, 110), (140, 120, 90), lambda r, h, w: value_noise(r, h, w, 3.0)),
                      0.2, 0.8)


def kind_of(category_id: int) -> ThingKind:
    return VOID_KIND if category_id == VOID else THING_KINDS[category_id]


@dataclass
class SceneObject:
    """One moving object: its category, look (texture), depth and trajectory in world coordinates."""

    category_id: int  # VIPSeg id, or VOID
    texture: np.ndarray  # (h, w, 3) float32 at the largest size the object reaches
    start: int  # first frame of existence
    x0: float  # world x of the centre at ``start``
    vx: float  # pixels per frame
    z0: float  # depth in [0, 1] (1 = nearest)
    vz: float
    bounce: float  # bounce height in pixels (balls), 0 otherwise
    phase: float
    segment_id: int = 0  # RGB id, 0 for void
    raw: int = 0  # raw panomasks value, 0 for void

    @property
    def kind(self) -> ThingKind:
        return kind_of(self.category_id)

    def depth(self, t: int) -> float:
        return float(np.clip(self.z0 + self.vz * (t - self.start), 0.0, 1.0))


@dataclass
class SyntheticVideo:
    """A rendered video, in memory: what the writer stores, plus amodal areas for tests."""

    video_id: str
    frames: list[np.ndarray] = field(default_factory=list)  # (H, W, 3) uint8 RGB
    raw_masks: list[np.ndarray] = field(default_factory=list)  # (H, W) uint16 raw panomasks values
    id_masks: list[np.ndarray] = field(default_factory=list)  # (H, W) int64 RGB segment ids
    segments: list[list[dict]] = field(default_factory=list)  # per frame: {id, category_id, iscrowd, area, bbox}
    amodal_areas: list[dict[int, int]] = field(default_factory=list)  # per frame: thing id -> unoccluded area in frame


def _depth_scale(z: float) -> float:
    return 0.45 + 0.55 * z


class SceneRenderer:
    """Builds one random scene from a generator and renders its frames."""

    def __init__(self, rng: np.random.Generator, categories: list[dict], size: tuple[int, int], num_frames: int):
        self.rng = rng
        self.height, self.width = size
        self.num_frames = num_frames
        self.colors = fmt.ColorAllocator(CategoryTable.from_json(categories), rng)
        known = {int(c["id"]): bool(c["isthing"]) for c in categories}
        usable = [Layout(lay.bands, tuple(c for c in lay.things if known.get(c) is True)) for lay in LAYOUTS
                  if all(known.get(cat) is False for cat, _ in lay.bands)]
        self.layouts = [lay for lay in usable if lay.things]
        if not self.layouts:
            raise ValueError("The category table lacks the stuff/thing categories the synthetic scenes use "
                             f"(stuff {sorted(STUFF_STYLES)}, things {sorted(THING_KINDS)}).")
        self.instance_counts: dict[int, int] = {}
        self._build_camera()
        self._build_stuff()
        self.objects: list[SceneObject] = []
        self._build_objects()

    # --- scene construction ---
    def _build_camera(self) -> None:
        rng, h = self.rng, self.height
        self.pan_speed = float(rng.uniform(-1.5, 1.5))
        self.tilt = float(rng.uniform(0, 0.04 * h))
        self.tilt_freq = float(rng.uniform(0.05, 0.2))
        self.margin = int(abs(self.pan_speed) * self.num_frames) + 2
        self.world_width = self.width + 2 * self.margin

    def _pan(self, t: int) -> float:
        return self.margin + self.pan_speed * t

    def _build_stuff(self) -> None:
        rng, h = self.rng, self.height
        layout = self.layouts[int(rng.integers(len(self.layouts)))]
        self.thing_ids = layout.things
        self.bands = [cat for cat, _ in layout.bands]
        self.band_ids = [fmt.color_to_id(self.colors.color(cat)) for cat in self.bands]
        self.band_textures = [render_texture(rng, STUFF_STYLES[cat], h, self.world_width, 15) for cat in self.bands]
        fractions = np.array([f for _, f in layout.bands]) * rng.uniform(0.8, 1.2, size=len(layout.bands))
        edges = np.cumsum(fractions / fractions.sum())[:-1] * h
        xs = np.arange(self.world_width, dtype=np.float32)
        self.boundaries = []  # world-x profile of each band boundary (pixels from the top)
        for edge in edges:
            amplitude, period = rng.uniform(0.5, 0.06 * h), rng.uniform(0.4, 1.5) * self.width
            wave = amplitude * np.sin(2 * np.pi * xs / period + rng.uniform(0, 2 * np.pi))
            self.boundaries.append((edge + wave).astype(np.float32))
        self.ground_top = float(edges[-1])

    def _texture_for(self, category_id: int) -> np.ndarray:
        kind = kind_of(category_id)
        h = max(4, int(round(kind.height * self.height * 1.3)))
        w = max(4, int(round(h * kind.aspect)))
        return render_texture(self.rng, kind.style, h, w, 40)

    def _new_object(self, category_id: int, texture: np.ndarray | None = None, **motion) -> SceneObject:
        obj = SceneObject(category_id, texture if texture is not None else self._texture_for(category_id), **motion)
        if category_id != VOID:
            k = self.instance_counts.get(category_id, 0)
            self.instance_counts[category_id] = k + 1
            obj.raw = fmt.raw_value(category_id, True, k)
            obj.segment_id = fmt.color_to_id(self.colors.color(category_id))
        self.objects.append(obj)
        return obj

    def _random_motion(self, category_id: int) -> dict:
        """Crossing (enter one side, leave the other), wandering, or entering later."""
        rng, w, t_len = self.rng, self.width, self.num_frames
        style = rng.choice(["cross", "wander", "enter"], p=[0.45, 0.35, 0.2])
        z0 = float(rng.uniform(0.1, 1.0))
        kind = kind_of(category_id)
        half = kind.height * self.height * kind.aspect * _depth_scale(z0) / 2
        direction = 1.0 if rng.random() < 0.5 else -1.0
        if style == "wander":
            start, x0 = 0, float(rng.uniform(0.15, 0.85) * w)
            vx = direction * float(rng.uniform(0.2, 1.0))
        else:
            start = 0 if style == "cross" else int(rng.integers(1, max(2, t_len // 2)))
            x0 = w / 2 - direction * (w / 2 + half - 1)
            vx = direction * (w + 2 * half) / max(4.0, (t_len - start) * float(rng.uniform(0.6, 1.3)))
        vz = float(rng.uniform(-0.01, 0.015))
        bounce = float(rng.uniform(0.1, 0.3) * self.height) if kind.bounces else 0.0
        return dict(start=start, x0=x0 + self._pan(start), vx=vx, z0=z0, vz=vz, bounce=bounce,
                    phase=float(rng.uniform(0, 2 * np.pi)))

    def _build_objects(self) -> None:
        rng, w = self.rng, self.width
        count = int(rng.integers(3, 7))
        if rng.random() < 0.7:  # a look-alike pair crossing paths: same category, same texture, opposite motion
            category_id = int(rng.choice(self.thing_ids))
            texture = self._texture_for(category_id)
            z = float(rng.uniform(0.3, 0.8))
            speed = (w * 0.8) / max(4, self.num_frames)
            for direction, dz in ((1.0, 0.0), (-1.0, float(rng.uniform(0.08, 0.2)))):
                x0 = w / 2 - direction * w * 0.45 + self._pan(0)
                self._new_object(category_id, texture, start=0, x0=x0, vx=direction * speed, z0=z + dz, vz=0.0,
                                 bounce=0.0, phase=float(rng.uniform(0, 2 * np.pi)))
            count -= 2
        for _ in range(max(1, count)):
            category_id = int(rng.choice(self.thing_ids))
            self._new_object(category_id, **self._random_motion(category_id))
        if rng.random() < 0.3:
            self._new_object(VOID, **self._random_motion(VOID))

    # --- rendering ---
    def _place(self, obj: SceneObject, t: int) -> tuple[np.ndarray, np.ndarray, int, int] | None:
        """The object's mask, texture and top-left corner in frame ``t`` (None if it does not exist yet)."""
        if t < obj.start:
            return None
        dt, z = t - obj.start, obj.depth(t)
        kind = obj.kind
        h = max(3, int(round(kind.height * self.height * _depth_scale(z))))
        w = max(3, int(round(h * kind.aspect)))
        mask = kind.shape(h, w, obj.phase + kind.gait * dt).astype(bool)
        texture = cv2.resize(obj.texture, (w, h), interpolation=cv2.INTER_LINEAR)
        if obj.vx < 0:  # face the direction of motion
            mask, texture = mask[:, ::-1], texture[:, ::-1]
        bottom = self.ground_top + 0.12 * self.height + z * (0.95 * self.height - self.ground_top)
        bottom -= obj.bounce * abs(np.sin(0.5 * dt + obj.phase))
        centre_x = obj.x0 + obj.vx * dt - self._pan(t)
        return mask, texture, int(round(centre_x - w / 2)), int(round(bottom - h))

    def render(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict], dict[int, int]]:
        h, w, rng = self.height, self.width, self.rng
        left = int(round(self._pan(t)))
        ys = np.arange(h, dtype=np.float32)[:, None]
        offset = self.tilt * np.sin(self.tilt_freq * t)
        band = sum((ys >= b[None, left:left + w] + offset).astype(np.int64) for b in self.boundaries)
        image = np.zeros((h, w, 3), np.float32)
        ids = np.zeros((h, w), np.int64)
        raw = np.zeros((h, w), np.uint16)
        for index, category_id in enumerate(self.bands):
            region = band == index
            image[region] = self.band_textures[index][:, left:left + w][region]
            ids[region] = self.band_ids[index]
            raw[region] = fmt.raw_value(category_id, False, 0)
        amodal: dict[int, int] = {}
        for obj in sorted(self.objects, key=lambda o: o.depth(t)):  # far first: nearer objects occlude
            placed = self._place(obj, t)
            if placed is None:
                continue
            mask, texture, x, y = placed
            y0, y1, x0, x1 = max(0, y), min(h, y + mask.shape[0]), max(0, x), min(w, x + mask.shape[1])
            if y0 >= y1 or x0 >= x1:
                continue
            local = mask[y0 - y:y1 - y, x0 - x:x1 - x]
            if obj.segment_id:
                amodal[obj.segment_id] = int(local.sum())
            image[y0:y1, x0:x1][local] = texture[y0 - y:y1 - y, x0 - x:x1 - x][local]
            ids[y0:y1, x0:x1][local] = obj.segment_id
            raw[y0:y1, x0:x1][local] = obj.raw
        image *= 1.0 + 0.04 * np.sin(0.3 * t)  # mild lighting flicker
        image = cv2.GaussianBlur(image, (3, 3), 0.6) + rng.normal(0.0, 2.5, size=image.shape).astype(np.float32)
        frame = np.clip(image + 0.5, 0, 255).astype(np.uint8)
        return frame, raw, ids, self._segments(ids, raw), amodal

    def _segments(self, ids: np.ndarray, raw: np.ndarray) -> list[dict]:
        segments = []
        for segment_id in np.unique(ids):
            if segment_id == 0:
                continue
            ys, xs = np.nonzero(ids == segment_id)
            value = int(raw[ys[0], xs[0]])
            category_id = fmt.raw_category(value)
            segments.append({"id": int(segment_id), "category_id": category_id, "iscrowd": 0, "area": int(len(ys)),
                             "bbox": [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1),
                                      int(ys.max() - ys.min() + 1)]})
        return segments


def video_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(split.encode("utf-8")), index])


def render_video(video_id: str, rng: np.random.Generator, categories: list[dict],
                 size: tuple[int, int] = DEFAULT_SIZE, num_frames: int = DEFAULT_FRAMES) -> SyntheticVideo:
    """Render one random scene (in memory)."""
    renderer = SceneRenderer(rng, categories, size, num_frames)
    video = SyntheticVideo(video_id)
    for t in range(num_frames):
        frame, raw, ids, segments, amodal = renderer.render(t)
        video.frames.append(frame)
        video.raw_masks.append(raw)
        video.id_masks.append(ids)
        video.segments.append(segments)
        video.amodal_areas.append(amodal)
    return video


def frame_stem(index: int) -> str:
    return f"{index:08d}"


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_bytes(path, data)


def write_video(root: Path, video: SyntheticVideo) -> tuple[dict, dict]:
    """Write a video's frames and masks; returns its ``videos`` and ``annotations`` JSON entries."""
    height, width = video.frames[0].shape[:2]
    images, annotations = [], []
    for t, (frame, raw, ids, segments) in enumerate(zip(video.frames, video.raw_masks, video.id_masks, video.segments)):
        stem = frame_stem(t)
        _write(root / fmt.IMAGES / video.video_id / f"{stem}.jpg", fmt.jpeg_bytes(frame, JPEG_QUALITY))
        _write(root / fmt.PANOMASKS / video.video_id / f"{stem}.png", atomic.png_bytes(raw, rgb=False))
        _write(root / fmt.PANOMASKS_RGB / video.video_id / f"{stem}.png", atomic.png_bytes(fmt.id_to_rgb(ids)))
        images.append({"id": stem, "width": width, "height": height, "file_name": f"{stem}.png"})
        annotations.append({"image_id": stem, "file_name": f"{stem}.png", "segments_info": segments})
    return ({"video_id": video.video_id, "images": images},
            {"video_id": video.video_id, "annotations": annotations})


def generate_dataset(root: Path, num_videos: int = 8, num_frames: int = DEFAULT_FRAMES,
                     size: tuple[int, int] = DEFAULT_SIZE, seed: int = 0, split: str = "train",
                     categories: list[dict] | None = None) -> Path:
    """Write ``num_videos`` synthetic videos as a VIPSeg split under ``root``; returns the split JSON path."""
    if num_videos < 1 or num_frames < 1 or min(size) < 16:
        raise ValueError("Need at least 1 video of 1 frame, and frames of at least 16x16 pixels.")
    root = Path(root)
    categories = categories if categories is not None else vipseg_categories().to_json()
    videos, annotations = [], []
    for index in range(num_videos):
        video = render_video(f"syn_{split}_{index:04d}", video_rng(seed, split, index), categories, size, num_frames)
        video_entry, annotation_entry = write_video(root, video)
        videos.append(video_entry)
        annotations.append(annotation_entry)
    atomic.write_json(root / fmt.CATEGORIES_FILE, categories)
    json_path = root / fmt.gt_json_name(split)
    atomic.write_json(json_path, {"videos": videos, "annotations": annotations, "categories": categories})
    return json_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a synthetic VIPSeg-format video dataset.")
    parser.add_argument("--out", type=Path, required=True, help="dataset root (created if missing)")
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--frames", type=int, default=DEFAULT_FRAMES)
    parser.add_argument("--size", type=frame_size, default=DEFAULT_SIZE, help="HxW, default 96x128")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", default="train", help="split name: train, val, ...")
    parser.add_argument("--categories", type=Path, default=None, help="category JSON (default: the VIPSeg table)")
    args = parser.parse_args(argv)
    categories = CategoryTable.load(args.categories).to_json() if args.categories else None
    path = generate_dataset(args.out, args.videos, args.frames, args.size, args.seed, args.split, categories)
    print(f"wrote {args.videos} videos x {args.frames} frames to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
