"""The synthetic VIPSeg generator: deterministic bytes, a valid layout, and scenes that really move."""

import json
from itertools import combinations
from pathlib import Path

import cv2
import numpy as np
import pytest

from dvis_models import vipseg_format as fmt
from dvis_models.categories import vipseg_categories
from dvis_models.data.synthetic import SceneRenderer, generate_dataset, main, render_video, video_rng

SIZE = (48, 64)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("syn")
    generate_dataset(root, num_videos=3, num_frames=8, size=SIZE, seed=3, split="train")
    return root


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path, dataset):
    generate_dataset(tmp_path / "a", num_videos=3, num_frames=8, size=SIZE, seed=3, split="train")
    generate_dataset(tmp_path / "b", num_videos=3, num_frames=8, size=SIZE, seed=4, split="train")
    same, other = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert same == _files(dataset)
    assert same.keys() == other.keys()
    assert sum(same[k] != other[k] for k in same if k.endswith(".jpg")) > 20


def test_train_and_val_splits_share_a_root_without_clashing(tmp_path):
    generate_dataset(tmp_path, num_videos=1, num_frames=2, size=SIZE, seed=0, split="train")
    generate_dataset(tmp_path, num_videos=1, num_frames=2, size=SIZE, seed=0, split="val")
    train = json.loads((tmp_path / "panoptic_gt_VIPSeg_train.json").read_text())
    val = json.loads((tmp_path / "panoptic_gt_VIPSeg_val.json").read_text())
    assert [v["video_id"] for v in train["videos"]] == ["syn_train_0000"]
    assert [v["video_id"] for v in val["videos"]] == ["syn_val_0000"]

    def first(split: str) -> bytes:
        return (tmp_path / "images" / f"syn_{split}_0000" / "00000000.jpg").read_bytes()

    assert first("train") != first("val")


def test_layout_json_and_pngs_agree(dataset):
    categories = {c["id"]: c for c in json.loads((dataset / "panoVIPSeg_categories.json").read_text())}
    assert len(categories) == 124
    gt = json.loads((dataset / "panoptic_gt_VIPSeg_train.json").read_text())
    assert gt["categories"] == list(categories.values())
    assert [v["video_id"] for v in gt["videos"]] == [a["video_id"] for a in gt["annotations"]]
    for video, annotation in zip(gt["videos"], gt["annotations"]):
        vid = video["video_id"]
        assert [i["id"] for i in video["images"]] == [f"{t:08d}" for t in range(8)]
        assert all((i["height"], i["width"]) == SIZE and i["file_name"] == i["id"] + ".png" for i in video["images"])
        id_category: dict[int, int] = {}
        stuff_ids: dict[int, set[int]] = {}
        for frame in annotation["annotations"]:
            stem = frame["image_id"]
            assert frame["file_name"] == f"{stem}.png"
            image = cv2.imread(str(dataset / "images" / vid / f"{stem}.jpg"))
            assert image.shape == (*SIZE, 3)
            ids = fmt.rgb_to_id(cv2.imread(str(dataset / "panomasksRGB" / vid / f"{stem}.png"))[..., ::-1])
            raw = cv2.imread(str(dataset / "panomasks" / vid / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
            assert raw.dtype == np.uint16 and raw.shape == SIZE
            assert ((ids == 0) == (raw == 0)).all()
            infos = {s["id"]: s for s in frame["segments_info"]}
            assert set(np.unique(ids).tolist()) - {0} == set(infos)
            for segment_id, info in infos.items():
                region = ids == segment_id
                ys, xs = np.nonzero(region)
                assert info["iscrowd"] == 0 and info["area"] == region.sum()
                assert info["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
                values = np.unique(raw[region])
                assert len(values) == 1  # one raw value per segment, and it encodes the JSON category
                cat = info["category_id"]
                assert id_category.setdefault(segment_id, cat) == cat
                if categories[cat]["isthing"]:
                    assert values[0] // 100 == cat + 1 and values[0] >= 125
                else:
                    assert values[0] == cat + 1
                    assert segment_id == fmt.color_to_id(categories[cat]["color"])
                    stuff_ids.setdefault(cat, set()).add(segment_id)
        assert all(len(v) == 1 for v in stuff_ids.values())
        assert any(categories[c]["isthing"] for c in id_category.values())
        assert len(stuff_ids) >= 2


def test_objects_move_enter_leave_and_occlude():
    categories = vipseg_categories().to_json()
    videos = [render_video(f"v{i}", video_rng(11, "train", i), categories, SIZE, 16) for i in range(6)]
    isthing = {c["id"]: bool(c["isthing"]) for c in categories}
    moved = entered = left = occluded = lookalike = 0
    for video in videos:
        things = {s["id"]: s["category_id"] for frame in video.segments for s in frame if isthing[s["category_id"]]}
        for segment_id in things:
            present = [bool((ids == segment_id).any()) for ids in video.id_masks]
            entered += not present[0] and any(present)
            left += present[0] and not present[-1]
            centres = [np.argwhere(ids == segment_id).mean(0) for ids in video.id_masks if (ids == segment_id).any()]
            moved += len(centres) > 1 and np.abs(centres[-1] - centres[0]).max() > 3
            occluded += any(0 < frame_ids.get(segment_id, 0) and (ids == segment_id).sum() < frame_ids[segment_id]
                            for frame_ids, ids in zip(video.amodal_areas, video.id_masks))
        categories_seen = list(things.values())
        lookalike += any(categories_seen.count(c) >= 2 for c in categories_seen)
    assert moved >= 6 and entered >= 2 and left >= 2 and occluded >= 2 and lookalike >= 2


def test_look_alike_pairs_share_a_texture_and_cross_paths():
    categories = vipseg_categories().to_json()
    renderers = [SceneRenderer(video_rng(5, "train", i), categories, (96, 128), 16) for i in range(8)]
    pairs = [(a, b) for r in renderers for a, b in combinations(r.objects, 2) if a.texture is b.texture]
    assert len(pairs) >= 4
    renderer = next(r for r in renderers if any(a.texture is b.texture for a, b in combinations(r.objects, 2)))
    a, b = next((a, b) for a, b in combinations(renderer.objects, 2) if a.texture is b.texture)
    assert a.category_id == b.category_id and a.segment_id != b.segment_id
    order = []
    for t in range(16):
        ids = renderer.render(t)[2]
        if (ids == a.segment_id).any() and (ids == b.segment_id).any():
            order.append(np.nonzero(ids == a.segment_id)[1].mean() < np.nonzero(ids == b.segment_id)[1].mean())
    assert order[0] != order[-1]  # they swapped sides: only motion tells them apart


def test_cli_writes_a_split(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--videos", "1", "--frames", "3", "--size", "32x40", "--split", "val"]) == 0
    assert "wrote 1 videos" in capsys.readouterr().out
    assert len(list((tmp_path / "panomasksRGB" / "syn_val_0000").glob("*.png"))) == 3
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--size", "large"])


def test_category_table_without_the_scene_categories_is_rejected(tmp_path):
    table = [{"id": 0, "name": "a", "isthing": 0, "color": [1, 2, 3]},
             {"id": 1, "name": "b", "isthing": 1, "color": [3, 2, 1]}]
    with pytest.raises(ValueError, match="lacks the stuff/thing categories"):
        generate_dataset(tmp_path, num_videos=1, num_frames=1, size=SIZE, categories=table)
