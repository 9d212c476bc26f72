"""VIPSeg export / import: real PNG/JPEG files on disk, byte-identical round trips, every malformed input refused."""

from __future__ import annotations

import json
import os
import struct
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from synthetic_vipseg import CAR, GROUND, PERSON, SKY, track_maps, write_dataset
from synthetic_vipseg import video as synthetic_video
from videos import make_video

from app.core.annotation import Annotation, Provenance
from app.core.errors import Cancelled
from app.core.progress import run_job
from app.core.video import VideoSource
from app.core.vipseg import (
    DatasetError,
    annotation_frames,
    export_predictions,
    export_vipseg,
    import_predictions,
    import_vipseg,
    import_vipseg_raw,
    read_ground_truth,
    read_predictions,
    write_videos,
)
from dvis_models.categories import vipseg_categories
from dvis_models.vipseg_format import (
    ColorAllocator,
    color_to_id,
    read_id_png,
    read_raw_png,
    resize_nearest,
    resized_size,
)
from tests.job_helpers import cancel_after, run_reporting

CATS = vipseg_categories()


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def synthetic_annotation(num_frames: int = 4, height: int = 24, width: int = 32) -> Annotation:
    maps, categories = track_maps(num_frames, height, width)
    annotation = Annotation(num_frames, height, width, CATS)
    for track_id, category in categories.items():
        annotation.add_track(category, provenance=Provenance.MODEL, track_id=track_id)
    for index, m in enumerate(maps):
        annotation.set_frame(index, m)
    return annotation


def test_written_dataset_has_the_vipseg_layout_and_encodings(tmp_path):
    json_path = write_dataset(tmp_path)
    assert json_path == tmp_path / "panoptic_gt_VIPSeg_train.json"
    data = json.loads(json_path.read_text())
    assert [v["video_id"] for v in data["videos"]] == ["vid_a", "vid_b"]
    assert data["videos"][0]["images"][0] == {"id": "00000000", "width": 32, "height": 24, "file_name": "00000000.png"}
    assert data["categories"] == CATS.to_json() == json.loads((tmp_path / "panoVIPSeg_categories.json").read_text())
    frame = data["annotations"][0]["annotations"][1]
    assert frame["image_id"] == "00000001" and frame["file_name"] == "00000001.png"

    maps, categories = track_maps(4, 24, 32)
    rgb_ids = read_id_png(tmp_path / "panomasksRGB/vid_a/00000001.png")
    raw = read_raw_png(tmp_path / "panomasks/vid_a/00000001.png")
    assert cv2.imread(str(tmp_path / "panomasks/vid_a/00000001.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    # Every track is one panoptic id; JSON lists exactly the PNG's ids with true areas and bboxes.
    segments = {s["id"]: s for s in frame["segments_info"]}
    assert set(np.unique(rgb_ids)) - {0} == set(segments)
    for track, category in categories.items():
        mask = maps[1] == track
        (panoptic_id,) = np.unique(rgb_ids[mask])
        assert (rgb_ids == panoptic_id).sum() == mask.sum() == segments[panoptic_id]["area"]
        assert segments[panoptic_id]["category_id"] == category and segments[panoptic_id]["iscrowd"] == 0
        ys, xs = np.nonzero(mask)
        assert segments[panoptic_id]["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
    # Stuff: id = category colour, raw = category + 1. Things: raw = (category + 1) * 100 + k, k per video in
    # first-appearance order.
    assert set(np.unique(rgb_ids[maps[1] == 1])) == {color_to_id(CATS[SKY].color)}
    assert set(np.unique(raw[maps[1] == 1])) == {SKY + 1} and set(np.unique(raw[maps[1] == 2])) == {GROUND + 1}
    assert set(np.unique(raw[maps[1] == 3])) == {(PERSON + 1) * 100 + 0}
    assert set(np.unique(raw[maps[1] == 4])) == {(PERSON + 1) * 100 + 1}
    assert set(np.unique(raw[maps[1] == 5])) == {(CAR + 1) * 100 + 0}
    assert set(np.unique(raw[maps[1] == 0])) == {0}
    # Images: one JPEG per frame with the frame's size.
    assert cv2.imread(str(tmp_path / "images/vid_b/00000002.jpg")).shape == (20, 28, 3)


def test_thing_colours_follow_panopticapi_and_are_deterministic():
    first = ColorAllocator.for_video(CATS, "video_x")
    colors = [first.color(PERSON) for _ in range(5)]
    assert colors[0] == CATS[PERSON].color  # first instance: the category colour
    assert len(set(colors)) == 5 and all(max(abs(a - b) for a, b in zip(c, colors[0])) <= 30 for c in colors)
    assert [ColorAllocator.for_video(CATS, "video_x").color(PERSON) for _ in range(1)] == colors[:1]
    again = ColorAllocator.for_video(CATS, "video_x")
    assert [again.color(PERSON) for _ in range(5)] == colors
    # car shares its colour with the stuff class Playground_slide, which is reserved: cars never get it.
    assert ColorAllocator.for_video(CATS, "v").color(CAR) != CATS[CAR].color
    assert ColorAllocator.for_video(CATS, "v").color(SKY) == CATS[SKY].color


def test_720p_sizes_and_nearest_resize_match_vipseg_720p():
    assert resized_size(1920, 1080, 720) == (1280, 720)
    assert resized_size(640, 361, 720) == (int(720 * 640 / 361), 720)
    assert resized_size(640, 360, None) == (640, 360)
    labels = np.arange(16, dtype=np.int32).reshape(4, 4)
    assert resize_nearest(labels, 2, 2).tolist() == [[5, 7], [13, 15]]  # PIL NEAREST samples source pixel centres
    assert resize_nearest(labels, 8, 8)[::2, ::2].tolist() == labels.tolist()


def test_export_import_export_is_byte_identical(tmp_path):
    video_path = make_video(tmp_path / "clip.mp4", num_frames=4, size=(32, 24))
    annotation = synthetic_annotation()
    first, second = tmp_path / "first", tmp_path / "second"
    with VideoSource.open(video_path) as source:
        run_job(export_vipseg([("clip", annotation, source)], first, split="val"))
    (imported,) = run_job(import_vipseg(first))
    assert imported.video_id == "clip"
    assert imported.image_paths == [first / f"images/clip/{i:08d}.jpg" for i in range(4)]
    assert all(t.provenance == Provenance.IMPORTED for t in imported.annotation.tracks.values())
    # Same partition of pixels into tracks with the same categories.
    for index in range(4):
        a, b = annotation.track_map(index), imported.annotation.track_map(index)
        pairs = set(zip(a.ravel().tolist(), b.ravel().tolist()))
        assert len(pairs) == len({p[0] for p in pairs}) == len({p[1] for p in pairs})
        assert all(annotation.tracks[x].category_id == imported.annotation.tracks[y].category_id for x, y in pairs if x)
    with VideoSource.open(first / "images/clip") as source:
        run_job(export_vipseg([("clip", imported.annotation, source)], second, split="val"))
    assert files_of(first) == files_of(second)


def test_resized_export_round_trips_byte_identically(tmp_path):
    """The 720p path (bilinear images, nearest masks) at a test-sized target height of 12."""
    first, second = tmp_path / "first", tmp_path / "second"
    write_dataset(first, resolution=12)
    data = json.loads((first / "panoptic_gt_VIPSeg_train.json").read_text())
    assert data["videos"][0]["images"][0]["height"] == 12 and data["videos"][0]["images"][0]["width"] == 16
    assert cv2.imread(str(first / "images/vid_a/00000000.jpg")).shape == (12, 16, 3)
    imported = run_job(import_vipseg(first, split="train"))
    videos = []
    for video_id, annotation, image_paths in imported:
        videos.append((video_id, annotation, VideoSource.open(image_paths[0].parent)))
    run_job(export_vipseg(videos, second, split="train", resolution=12))
    for _, _, source in videos:
        source.close()
    assert files_of(first) == files_of(second)


def test_predictions_round_trip_and_match_ground_truth(tmp_path):
    annotation = synthetic_annotation()
    pred_root = tmp_path / "pred"
    path = run_job(export_predictions([("vid", annotation, None)], pred_root)).json_path
    assert path == pred_root / "pred.json"
    data = json.loads(path.read_text())
    assert set(data) == {"annotations"} and data["annotations"][0]["video_id"] == "vid"
    assert sorted(p.name for p in (pred_root / "pan_pred/vid").iterdir()) == [f"{i:08d}.png" for i in range(4)]
    assert not (pred_root / "images").exists()
    (imported,) = run_job(import_predictions(pred_root))
    assert imported.image_paths == []
    for index in range(4):
        areas = [sorted(a.area(index, t) for t in a.frame_track_ids(index)) for a in (imported.annotation, annotation)]
        assert areas[0] == areas[1]
    first = [f.segments for f in annotation_frames(annotation)]
    second = [f.segments for f in annotation_frames(imported.annotation)]
    assert [sorted(s.values()) for s in first] == [sorted(s.values()) for s in second]


def test_progress_and_cancel(tmp_path):
    def job(root):
        videos = [synthetic_video("vid_a", 4), synthetic_video("vid_b", 3, 20, 28)]
        return write_videos(videos, root, vipseg_categories())

    _, seen = run_reporting(job(tmp_path / "ok"))
    assert seen == [(i, 7) for i in range(1, 8)]
    with pytest.raises(Cancelled):
        cancel_after(job(tmp_path / "cancelled"), 2)
    assert len(list((tmp_path / "cancelled/panomasksRGB/vid_a").iterdir())) == 2  # the frames before the cancel
    assert not (tmp_path / "cancelled/panoptic_gt_VIPSeg_train.json").exists()
    _, seen = run_reporting(import_vipseg(tmp_path / "ok"))
    assert seen == [(i, 7) for i in range(1, 8)]
    with pytest.raises(Cancelled):
        cancel_after(import_vipseg(tmp_path / "ok"), 1)


def test_import_chosen_videos_only(tmp_path):
    """Opening one video of a dataset decodes only that video's PNGs (progress counts its frames only)."""
    write_dataset(tmp_path)
    (imported,), seen = run_reporting(import_vipseg(tmp_path, video_ids=["vid_b"]))
    assert imported.video_id == "vid_b" and imported.annotation.num_frames == 3 and {total for _, total in seen} == {3}
    assert [v.video_id for v in run_job(import_vipseg(tmp_path, video_ids=["vid_b", "vid_a"]))] == ["vid_b", "vid_a"]
    with pytest.raises(DatasetError, match="'vid_c'.*not listed"):
        run_job(import_vipseg(tmp_path, video_ids=["vid_c"]))


def test_too_many_instances_for_raw_panomasks(tmp_path):
    annotation = Annotation(1, 10, 12, CATS)
    track_map = np.zeros((10, 12), np.int32)
    for k in range(101):
        track_map.flat[k] = annotation.add_track(PERSON).id
    annotation.set_frame(0, track_map)
    with pytest.raises(DatasetError, match="more than 100 'person' tracks"):
        run_job(export_vipseg([("crowded", annotation, None)], tmp_path / "a"))
    run_job(export_vipseg([("crowded", annotation, None)], tmp_path / "b", raw_panomasks=False))
    assert len(run_job(import_vipseg(tmp_path / "b"))[0].annotation.tracks) == 101


# ---------------------------------------------------------------------------------------------- malformed input


def _gt(root: Path) -> dict:
    return json.loads((root / "panoptic_gt_VIPSeg_train.json").read_text())


def _save(root: Path, data: dict) -> None:
    (root / "panoptic_gt_VIPSeg_train.json").write_text(json.dumps(data))


def _frame(data: dict, video: int = 0, frame: int = 1) -> dict:
    return data["annotations"][video]["annotations"][frame]


def drop_segment(root):
    data = _gt(root)
    _frame(data)["segments_info"].pop()
    _save(root, data)
    return "panomasksRGB/vid_a/00000001.png"


def extra_segment(root):
    data = _gt(root)
    _frame(data)["segments_info"].append({"id": 123, "category_id": 0, "iscrowd": 0, "area": 1})
    _save(root, data)
    return "panomasksRGB/vid_a/00000001.png"


def size_mismatch(root):
    data = _gt(root)
    for image in data["videos"][0]["images"]:
        image["width"] = 30
    _save(root, data)
    return "panomasksRGB/vid_a/00000000.png"


def mixed_sizes(root):
    data = _gt(root)
    data["videos"][0]["images"][2]["width"] = 30
    _save(root, data)
    return "panoptic_gt_VIPSeg_train.json"


def missing_frame_entry(root):
    data = _gt(root)
    data["annotations"][0]["annotations"].pop(2)
    _save(root, data)
    return "panoptic_gt_VIPSeg_train.json"


def missing_png(root):
    (root / "panomasksRGB/vid_b/00000002.png").unlink()
    return "panomasksRGB/vid_b/00000002.png"


def unknown_category(root):
    data = _gt(root)
    _frame(data)["segments_info"][0]["category_id"] = 124
    _save(root, data)
    return "panoptic_gt_VIPSeg_train.json"


def two_categories(root):
    data = _gt(root)
    frame = _frame(data, frame=2)
    thing = next(s for s in frame["segments_info"] if s["category_id"] == PERSON)
    thing["category_id"] = CAR
    _save(root, data)
    return "panoptic_gt_VIPSeg_train.json"


def crowd_in_one_frame_only(root):
    data = _gt(root)
    _frame(data, frame=2)["segments_info"][0]["iscrowd"] = 1
    _save(root, data)
    return "one iscrowd for the whole video"


def iscrowd_not_0_or_1(root):
    data = _gt(root)
    _frame(data)["segments_info"][0]["iscrowd"] = 2
    _save(root, data)
    return "it must be 0 or 1"


def dotdot_file_name(root):
    data = _gt(root)
    data["videos"][0]["images"][0]["file_name"] = "../../secret.png"
    _save(root, data)
    return "panoptic_gt_VIPSeg_train.json"


def absolute_file_name(root):
    data = _gt(root)
    _frame(data, frame=0)["file_name"] = "/etc/passwd.png"
    _save(root, data)
    return "panoptic_gt_VIPSeg_train.json"


def dotdot_video_id(root):
    data = _gt(root)
    data["videos"][0]["video_id"] = data["annotations"][0]["video_id"] = ".."
    _save(root, data)
    return "panoptic_gt_VIPSeg_train.json"


def unreadable_png(root):
    (root / "panomasksRGB/vid_a/00000003.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return "panomasksRGB/vid_a/00000003.png"


def grey_png(root):
    cv2.imwrite(str(root / "panomasksRGB/vid_a/00000003.png"), np.zeros((24, 32), np.uint8))
    return "panomasksRGB/vid_a/00000003.png"


def broken_json(root):
    (root / "panoptic_gt_VIPSeg_train.json").write_text('{"videos": [')
    return "panoptic_gt_VIPSeg_train.json"


def segment_listed_twice(root):
    data = _gt(root)
    _frame(data)["segments_info"].append(dict(_frame(data)["segments_info"][0]))
    _save(root, data)
    return "panoptic_gt_VIPSeg_train.json"


def png_bomb(path: Path, width: int, height: int) -> None:
    """A valid 1-bit PNG declaring ``width`` x ``height`` pixels: a few hundred KB that decode to width*height bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = bytes(1 + (width + 7) // 8) * 1000
    compressor = zlib.compressobj(1)
    data = b"".join(compressor.compress(rows) for _ in range(height // 1000)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def decompression_bomb(root):
    png_bomb(root / "panomasksRGB/vid_a/00000001.png", 30000, 30000)
    return "panomasksRGB/vid_a/00000001.png declares 30000x30000 pixels but the video 'vid_a' is 32x24"


def deeply_nested_json(root):
    (root / "panoptic_gt_VIPSeg_train.json").write_text('{"videos": ' + "[" * 200_000 + "]" * 200_000 + "}")
    return "panoptic_gt_VIPSeg_train.json nests lists or objects too deeply"


def symlink_escape(root):
    outside = root.parent / "outside"
    (root / "panomasksRGB/vid_b").rename(outside)
    os.symlink(outside, root / "panomasksRGB/vid_b")
    return "points outside the dataset folder"


MALFORMED = [
    drop_segment, extra_segment, size_mismatch, mixed_sizes, missing_frame_entry, missing_png, unknown_category,
    two_categories, crowd_in_one_frame_only, iscrowd_not_0_or_1, dotdot_file_name, absolute_file_name, dotdot_video_id,
    unreadable_png, grey_png, broken_json, segment_listed_twice,
    symlink_escape, decompression_bomb, deeply_nested_json,
]


@pytest.mark.parametrize("corrupt", MALFORMED, ids=[f.__name__ for f in MALFORMED])
def test_malformed_dataset_raises_dataset_error_naming_the_file(tmp_path, corrupt):
    root = tmp_path / "dataset"
    write_dataset(root)
    run_job(import_vipseg(root))  # valid before the corruption
    expected = corrupt(root)
    start = time.perf_counter()
    with pytest.raises(DatasetError) as error:
        run_job(import_vipseg(root))
    assert expected in str(error.value)
    assert time.perf_counter() - start < 5  # refused up front: a bomb decoded would take ~1 GB and many seconds


def test_prediction_png_declaring_a_huge_frame_is_not_decoded(tmp_path):
    root = tmp_path / "pred"
    run_job(export_predictions([("vid", synthetic_annotation(), None)], root))
    png_bomb(root / "pan_pred/vid/00000000.png", 30000, 30000)  # the first frame: no size is known yet
    _, (video,) = read_predictions(root)
    with pytest.raises(DatasetError, match="declares 30000x30000 pixels, more than any video frame"):
        video.frame(0)


def test_png_and_jpeg_sizes_come_from_their_headers(tmp_path):
    from dvis_models.vipseg_format import jpeg_size, png_size

    image = np.random.default_rng(0).integers(0, 255, (23, 37, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), image)
    cv2.imwrite(str(tmp_path / "a.jpg"), image)
    cv2.imwrite(str(tmp_path / "p.jpg"), image, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert png_size(tmp_path / "a.png") == jpeg_size(tmp_path / "a.jpg") == jpeg_size(tmp_path / "p.jpg") == (37, 23)
    assert png_size(tmp_path / "a.jpg") is None and jpeg_size(tmp_path / "a.png") is None
    assert jpeg_size(tmp_path / "no.jpg") is None


def test_images_folder_that_disagrees_with_the_json_names_the_frames(tmp_path):
    from app.core.vipseg import check_frame_images, import_dataset_video

    root = tmp_path / "dataset"
    write_dataset(root)
    categories, videos = read_ground_truth(root)
    imported = run_job(import_dataset_video(categories, videos[0]))
    folder = root / "images/vid_a"

    def check() -> None:
        with VideoSource.open(folder) as source:
            check_frame_images(imported, source.stems)

    check()  # as written: one image per frame, same size
    (folder / "00000001.jpg").unlink()  # every later mask would be shown one frame early
    with pytest.raises(DatasetError, match="frame 00000001 has no image"):
        check()
    cv2.imwrite(str(folder / "00000001.jpg"), np.zeros((24, 32, 3), np.uint8))
    cv2.imwrite(str(folder / "00000002.jpg"), np.zeros((10, 12, 3), np.uint8))
    cv2.imwrite(str(folder / "00000003.jpg"), np.zeros((10, 12, 3), np.uint8))
    cv2.imwrite(str(folder / "00000009.jpg"), np.zeros((24, 32, 3), np.uint8))
    with pytest.raises(DatasetError) as error:
        check()
    assert "image 00000009 is not listed in the JSON" in str(error.value)
    assert "frames 00000002 (12x10), 00000003 (12x10) are not 32x24 like the masks" in str(error.value)


def test_stuff_with_crowd_and_plain_segments_cannot_become_one_track(tmp_path):
    from dvis_models import atomic
    from dvis_models.vipseg_format import id_to_rgb

    root = tmp_path / "dataset"
    write_dataset(root)
    data = _gt(root)
    png = root / "panomasksRGB/vid_a/00000000.png"
    ids = read_id_png(png)
    sky = next(s for s in _frame(data, frame=0)["segments_info"] if s["category_id"] == SKY)
    ids[0, ids[0] == sky["id"]] = 999  # a second sky segment (row 0), marked crowd
    png.write_bytes(atomic.png_bytes(id_to_rgb(ids)))
    _frame(data, frame=0)["segments_info"].append({"id": 999, "category_id": SKY, "iscrowd": 1, "area": 1})
    _save(root, data)
    with pytest.raises(DatasetError, match="both crowd and non-crowd segments"):
        run_job(import_vipseg(root))


def test_exports_into_one_folder_merge_into_its_json(tmp_path):
    from dvis_models.categories import CategoryTable

    root = tmp_path / "dataset"
    first = run_job(export_vipseg([("clip_a", synthetic_annotation(4), None)], root, split="train"))
    second = run_job(export_vipseg([("clip_b", synthetic_annotation(3, 20, 28), None)], root, split="train"))
    assert (first.videos, first.replaced) == (["clip_a"], [])
    assert (second.videos, second.replaced) == (["clip_a", "clip_b"], []) and "(2 videos)" in second.summary()
    _, videos = read_ground_truth(root, "train")
    assert [(v.video_id, v.num_frames) for v in videos] == [("clip_a", 4), ("clip_b", 3)]
    imported = run_job(import_vipseg(root, "train"))
    assert [len(i.annotation.tracks) for i in imported] == [5, 5]  # every frame's PNG is there

    # Exporting clip_a again (now 2 frames) replaces its entry in place and removes its stale mask PNGs.
    clip_b_files = {k: v for k, v in files_of(root).items() if "clip_b" in k}
    again = run_job(export_vipseg([("clip_a", synthetic_annotation(2), None)], root, split="train"))
    assert (again.videos, again.replaced) == (["clip_a", "clip_b"], ["clip_a"])
    assert "replaced the earlier version of 'clip_a'" in again.summary()
    _, videos = read_ground_truth(root, "train")
    assert [(v.video_id, v.num_frames) for v in videos] == [("clip_a", 2), ("clip_b", 3)]
    assert sorted(p.name for p in (root / "panomasksRGB/clip_a").iterdir()) == ["00000000.png", "00000001.png"]
    assert sorted(p.name for p in (root / "panomasks/clip_a").iterdir()) == ["00000000.png", "00000001.png"]
    assert {k: v for k, v in files_of(root).items() if "clip_b" in k} == clip_b_files

    # Another category table: refused before any file is touched.
    entries = CATS.to_json()
    entries[0] = dict(entries[0], name="renamed")
    other = Annotation(2, 24, 32, CategoryTable.from_json(entries))
    before = files_of(root)
    with pytest.raises(DatasetError, match="different category table"):
        run_job(export_vipseg([("clip_c", other, None)], root, split="train"))
    assert files_of(root) == before

    # Predictions merge the same way.
    run_job(export_predictions([("clip_a", synthetic_annotation(2), None)], tmp_path / "pred"))
    merged = run_job(export_predictions([("clip_b", synthetic_annotation(3, 20, 28), None)], tmp_path / "pred"))
    assert merged.videos == ["clip_a", "clip_b"]
    assert [a["video_id"] for a in json.loads(merged.json_path.read_text())["annotations"]] == ["clip_a", "clip_b"]


def test_export_refuses_paths_outside_the_root(tmp_path):
    annotation = synthetic_annotation(1)
    root = tmp_path / "root"
    for bad in ("../evil", "/tmp/evil", "..", "a/b"):
        with pytest.raises(DatasetError, match="not a plain file name"):
            run_job(export_vipseg([(bad, annotation, None)], root))
    with pytest.raises(DatasetError, match="not a plain file name"):
        run_job(export_vipseg([("ok", annotation, None)], root, split="../x"))
    assert list(tmp_path.iterdir()) in ([], [root])
    assert not root.exists() or not any(p.is_file() for p in root.rglob("*"))


def test_read_ground_truth_is_lazy_and_validates_each_frame(tmp_path):
    write_dataset(tmp_path)
    categories, videos = read_ground_truth(tmp_path, "train")
    assert categories.to_json() == CATS.to_json()
    assert ([(v.video_id, v.num_frames, v.width, v.height) for v in videos]
            == [("vid_a", 4, 32, 24), ("vid_b", 3, 28, 20)])
    frame = videos[0].frame(2)
    assert frame.ids.dtype == np.int32 and set(frame.segments) == set(np.unique(frame.ids)) - {0}


# ---------------------------------------------------------------------------------------------- raw release


def as_raw_release(root: Path) -> None:
    """Turn an exported dataset into the raw release layout: imgs/ + panomasks/ + train.txt, no JSON, no RGB."""
    (root / "images").rename(root / "imgs")
    for path in [*root.glob("*.json"), *(root / "panomasksRGB").rglob("*.png")]:
        path.unlink()
    (root / "train.txt").write_text("vid_b\nvid_a\n")


def test_raw_release_converts_to_the_same_dataset_as_a_direct_export(tmp_path):
    direct, raw, converted = tmp_path / "direct", tmp_path / "raw", tmp_path / "converted"
    write_dataset(direct)
    write_dataset(raw)
    as_raw_release(raw)
    with pytest.raises(DatasetError, match="import it as raw VIPSeg"):
        run_job(import_vipseg(raw))
    imported = {v.video_id: v for v in run_job(import_vipseg_raw(raw, split="train"))}
    assert list(imported) == ["vid_b", "vid_a"] and imported["vid_a"].image_paths[0] == raw / "imgs/vid_a/00000000.jpg"
    sources = [VideoSource.open(imported[v].image_paths[0].parent) for v in ("vid_a", "vid_b")]
    run_job(export_vipseg([(v, imported[v].annotation, s) for v, s in zip(("vid_a", "vid_b"), sources)], converted))
    for source in sources:
        source.close()
    assert files_of(converted) == files_of(direct)


@pytest.mark.parametrize("value, message",
                         [(12500, "unknown category 124"), (PERSON + 1, "is thing"), ((SKY + 1) * 100, "is stuff")])
def test_raw_release_with_impossible_values_is_refused(tmp_path, value, message):
    write_dataset(tmp_path)
    as_raw_release(tmp_path)
    path = tmp_path / "panomasks/vid_a/00000002.png"
    raw = read_raw_png(path)
    raw[0, 5] = value
    cv2.imwrite(str(path), raw.astype(np.uint16))
    with pytest.raises(DatasetError, match=message) as error:
        run_job(import_vipseg_raw(tmp_path))
    assert str(path) in str(error.value)


def test_every_frame_has_an_entry_even_when_empty(tmp_path):
    annotation = synthetic_annotation(3)
    annotation.set_frame(1, np.zeros((24, 32), np.int32))
    run_job(export_vipseg([("gaps", annotation, None)], tmp_path))
    frames = json.loads((tmp_path / "panoptic_gt_VIPSeg_train.json").read_text())["annotations"][0]["annotations"]
    assert [f["image_id"] for f in frames] == ["00000000", "00000001", "00000002"] and frames[1]["segments_info"] == []
    assert not read_id_png(tmp_path / "panomasksRGB/gaps/00000001.png").any()
    (imported,) = run_job(import_vipseg(tmp_path))
    assert imported.annotation.frame_track_ids(1) == set() and len(imported.annotation.frame_track_ids(2)) == 5
