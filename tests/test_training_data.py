"""The VIPSeg clip reader on real generated datasets: targets equal the PNG ids, augmentation is consistent."""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from dvis_models import vipseg_format as fmt
from dvis_models.categories import vipseg_categories
from dvis_models.data import AugmentationConfig, ClipTransform, VIPSegClipDataset, collate_clips
from dvis_models.data.synthetic import generate_dataset
from dvis_models.errors import DatasetError, UserError
from dvis_models.preprocess import resized_size

SIZE = (40, 56)
NO_AUG = None


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vipseg")
    generate_dataset(root, num_videos=2, num_frames=6, size=SIZE, seed=1, split="train")
    generate_dataset(root, num_videos=1, num_frames=3, size=SIZE, seed=1, split="short")
    generate_dataset(root, num_videos=1, num_frames=24, size=SIZE, seed=1, split="long")
    return root


def stored(root: Path, video_id: str, index: int) -> tuple[np.ndarray, np.ndarray]:
    stem = f"{index:08d}"
    image = cv2.imread(str(root / "images" / video_id / f"{stem}.jpg"))[..., ::-1]
    ids = fmt.rgb_to_id(cv2.imread(str(root / "panomasksRGB" / video_id / f"{stem}.png"))[..., ::-1])
    return image, ids


def categories_of(root: Path, split: str = "train") -> dict[int, int]:
    gt = json.loads((root / f"panoptic_gt_VIPSeg_{split}.json").read_text())
    return {s["id"]: s["category_id"] for v in gt["annotations"] for f in v["annotations"] for s in f["segments_info"]}


def test_targets_equal_png_ids_and_labels_follow_dvis_order(root):
    dataset = VIPSegClipDataset(root, "train", augmentation=NO_AUG)
    clip = dataset.load_clip(1, [0, 2, 5])
    assert clip.video_id == "syn_train_0001" and clip.frame_indices == [0, 2, 5]
    assert clip.images.shape == (3, 3, *SIZE) and clip.images.dtype == torch.float32
    assert clip.masks.dtype == torch.bool and clip.masks.shape == (len(clip.ids), 3, *SIZE)
    covered = torch.zeros((3, *SIZE), dtype=torch.int64)
    for t, index in enumerate([0, 2, 5]):
        image, ids = stored(root, "syn_train_0001", index)
        assert torch.equal(clip.images[t], torch.from_numpy(image.copy()).permute(2, 0, 1).float())
        assert set(np.unique(ids).tolist()) - {0} <= set(clip.ids.tolist())
        for n, segment_id in enumerate(clip.ids.tolist()):
            assert np.array_equal(clip.masks[n, t].numpy(), ids == segment_id)
    covered += clip.masks.sum(0)
    assert covered.max() == 1  # masks do not overlap
    table = vipseg_categories().to_json()
    things = sorted(c["id"] for c in table if c["isthing"])
    stuff = sorted(c["id"] for c in table if not c["isthing"])
    cats = categories_of(root)
    for segment_id, label in zip(clip.ids.tolist(), clip.labels.tolist()):
        cat = cats[segment_id]
        assert label == (things.index(cat) if cat in things else 58 + stuff.index(cat))


def test_label_mapping_comes_from_the_caller(root):
    cats = categories_of(root)
    used = sorted(set(cats.values()))
    custom = list(reversed(used)) + [123]
    dataset = VIPSegClipDataset(root, "train", label_to_category=custom, augmentation=NO_AUG)
    clip = dataset.load_clip(0, [0])
    assert [custom[label] for label in clip.labels.tolist()] == [cats[i] for i in clip.ids.tolist()]


def test_unmapped_categories_are_an_error_unless_ignored(root):
    cats = categories_of(root)
    dropped = cats[next(iter(cats))]
    partial = [c for c in sorted(set(cats.values())) if c != dropped]
    with pytest.raises(DatasetError, match=r"panoptic_gt_VIPSeg_train\.json.*no model label"):
        VIPSegClipDataset(root, "train", label_to_category=partial)
    dataset = VIPSegClipDataset(root, "train", label_to_category=partial, ignore_unmapped=True, augmentation=NO_AUG)
    for video in range(2):
        clip = dataset.load_clip(video, range(6))
        assert all(cats[i] != dropped for i in clip.ids.tolist())
        assert all(partial[label] == cats[i] for label, i in zip(clip.labels.tolist(), clip.ids.tolist()))


def test_a_clip_without_mapped_segments_has_zero_targets(root):
    dataset = VIPSegClipDataset(root, "train", label_to_category=[123], ignore_unmapped=True, augmentation=NO_AUG)
    clip = dataset.load_clip(0, [0, 1])
    assert clip.masks.shape == (0, 2, *SIZE) and clip.labels.shape == (0,) and clip.ids.shape == (0,)
    assert clip.images.shape == (2, 3, *SIZE)


def test_flip_is_applied_to_images_and_masks_alike(root):
    dataset = VIPSegClipDataset(root, "train", augmentation=NO_AUG)
    plain = dataset.load_clip(0, [1, 2])
    flipped = dataset.load_clip(0, [1, 2], ClipTransform(SIZE, None, flip=True))
    assert torch.equal(flipped.images, plain.images.flip(-1))
    assert torch.equal(flipped.ids, plain.ids) and torch.equal(flipped.masks, plain.masks.flip(-1))
    assert not torch.equal(flipped.images, plain.images)


def test_random_augmentation_resizes_crops_and_flips_consistently(root):
    config = AugmentationConfig(short_edges=(32, 48, 64), max_size=80, crop=(36, 36), flip_prob=0.5)
    dataset = VIPSegClipDataset(root, "train", num_frames=3, augmentation=config, seed=7, length=12)
    flips, sizes = set(), set()
    for index in range(len(dataset)):
        clip = dataset[index]
        transform = clip.transform
        flips.add(transform.flip)
        sizes.add(transform.size)
        assert transform.size in {resized_size(*SIZE, short, 80) for short in config.short_edges}
        assert clip.images.shape[-2:] == (min(36, transform.size[0]), min(36, transform.size[1]))
        # the clip equals the stored frames pushed through the same transform, masks included
        reference = VIPSegClipDataset(root, "train", augmentation=NO_AUG).load_clip(index % 2, clip.frame_indices)
        assert torch.equal(clip.images, transform.apply_images(reference.images))
        ids = torch.from_numpy(np.stack([stored(root, clip.video_id, i)[1] for i in clip.frame_indices]))
        ids = transform.apply_ids(ids)
        for n, segment_id in enumerate(clip.ids.tolist()):
            assert torch.equal(clip.masks[n], ids == segment_id)
            assert clip.masks[n].any()  # segments cropped away are dropped
        assert set(torch.unique(ids).tolist()) - {0} == set(clip.ids.tolist())
    assert flips == {True, False} and len(sizes) > 1


def test_nearest_resize_keeps_ids_exact(root):
    dataset = VIPSegClipDataset(root, "train", augmentation=NO_AUG)
    plain = dataset.load_clip(0, [0])
    up = dataset.load_clip(0, [0], ClipTransform((80, 112), None, flip=False))
    assert torch.equal(up.masks, plain.masks.repeat_interleave(2, -2).repeat_interleave(2, -1))
    assert up.images.shape == (1, 3, 80, 112) and 0 <= up.images.min() and up.images.max() <= 255


def test_samples_are_deterministic_given_seed_and_index(root):
    config = AugmentationConfig(short_edges=(32, 40, 48), max_size=80)
    a = VIPSegClipDataset(root, "train", num_frames=2, augmentation=config, seed=3, length=6)
    b = VIPSegClipDataset(root, "train", num_frames=2, augmentation=config, seed=3, length=6)
    c = VIPSegClipDataset(root, "train", num_frames=2, augmentation=config, seed=4, length=6)
    for index in (0, 5):
        x, y = a[index], b[index]
        assert x.frame_indices == y.frame_indices and x.transform == y.transform
        assert torch.equal(x.images, y.images) and torch.equal(x.masks, y.masks) and torch.equal(x.labels, y.labels)
    assert any(a[i].frame_indices != c[i].frame_indices or a[i].transform != c[i].transform for i in range(6))
    with pytest.raises(IndexError):
        a[6]


def test_refiner_stage_reverses_about_half_of_the_clips(root):
    dataset = VIPSegClipDataset.for_stage(root, "refiner", split="long", augmentation=NO_AUG, length=16)
    assert dataset.num_frames == 21 and dataset.reverse_prob == 0.5
    forward = backward = 0
    for index in range(16):
        indices = dataset[index].frame_indices
        steps = set(np.diff(indices).tolist())
        assert len(indices) == 21 and steps in ({1}, {-1})
        forward += steps == {1}
        backward += steps == {-1}
    assert forward >= 3 and backward >= 3
    clip = dataset.load_clip(0, list(range(20, -1, -1)))
    ahead = dataset.load_clip(0, list(range(21)))
    assert torch.equal(clip.images, ahead.images.flip(0)) and torch.equal(clip.masks, ahead.masks.flip(1)[
        [ahead.ids.tolist().index(i) for i in clip.ids.tolist()]])
    assert VIPSegClipDataset.for_stage(root, "refiner", split="long").augmentation.crop == (608, 608)
    tracker = VIPSegClipDataset.for_stage(root, "tracker", split="long", augmentation=NO_AUG, length=4)
    assert tracker.num_frames == 5 and all(np.diff(tracker[i].frame_indices).tolist() == [1] * 4 for i in range(4))
    segmenter = VIPSegClipDataset.for_stage(root, "segmenter", split="long", augmentation=NO_AUG)
    assert segmenter[0].images.shape[0] == 1 and segmenter[0].masks.shape[1] == 1


def test_short_videos_are_padded_with_repeated_frames(root):
    dataset = VIPSegClipDataset(root, "short", num_frames=5, augmentation=NO_AUG, length=4)
    for index in range(4):
        clip = dataset[index]
        assert len(clip.frame_indices) == 5 and sorted(clip.frame_indices) == clip.frame_indices
        assert set(clip.frame_indices) == {0, 1, 2}
        for t in range(1, 5):
            if clip.frame_indices[t] == clip.frame_indices[t - 1]:
                assert torch.equal(clip.images[t], clip.images[t - 1])
                assert torch.equal(clip.masks[:, t], clip.masks[:, t - 1])


def test_dataloader_with_collate_gives_lists_of_clips(root):
    config = AugmentationConfig(short_edges=(32, 48), max_size=80)
    dataset = VIPSegClipDataset(root, "train", num_frames=2, augmentation=config, length=4)
    batches = list(DataLoader(dataset, batch_size=2, collate_fn=collate_clips))
    assert len(batches) == 2 and all(len(b) == 2 for b in batches)
    assert torch.equal(batches[1][0].images, dataset[2].images)


# ----- malformed data -----------------------------------------------------------------------------------------

@pytest.fixture
def copy(root, tmp_path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(root, target)
    return target


def _edit_json(root: Path, edit) -> None:
    path = root / "panoptic_gt_VIPSeg_train.json"
    payload = json.loads(path.read_text())
    edit(payload)
    path.write_text(json.dumps(payload))


def test_png_id_missing_from_json_names_the_png(copy):
    _edit_json(copy, lambda p: p["annotations"][0]["annotations"][2]["segments_info"].pop())
    dataset = VIPSegClipDataset(copy, "train", augmentation=NO_AUG)
    with pytest.raises(DatasetError, match=r"syn_train_0000/00000002\.png.*disagree") as error:
        dataset.load_clip(0, [2])
    assert isinstance(error.value, UserError)  # shown to the user as-is by the CLI and the GUI
    dataset.load_clip(0, [1])  # other frames are fine


def test_json_id_missing_from_png_is_reported(copy):
    extra = {"id": 1, "category_id": 0, "iscrowd": 0, "area": 1}
    _edit_json(copy, lambda p: p["annotations"][0]["annotations"][0]["segments_info"].append(extra))
    with pytest.raises(DatasetError, match=r"only in JSON: \[1\]"):
        VIPSegClipDataset(copy, "train", augmentation=NO_AUG).load_clip(0, [0])


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda p: p.pop("annotations"), "'annotations' list"),
        (lambda p: p["annotations"][0]["annotations"][0]["segments_info"][0].update(category_id=500),
         "category_id 500"),
        (lambda p: p["annotations"][0]["annotations"][1]["segments_info"][0].update(
            category_id=p["annotations"][0]["annotations"][1]["segments_info"][0]["category_id"] ^ 1),
         "one category for the whole video"),
        (lambda p: p["annotations"][0].update(video_id="../escape"), "not a plain file name"),
        (lambda p: p["annotations"][0]["annotations"][0].update(file_name="00000000.jpg"), "must end with '.png'"),
        (lambda p: p["annotations"][0]["annotations"].clear(), "has no frames"),
    ],
)
def test_malformed_json_is_rejected_with_the_file_name(copy, edit, message):
    _edit_json(copy, edit)
    with pytest.raises(DatasetError, match="panoptic_gt_VIPSeg_train.json") as error:
        VIPSegClipDataset(copy, "train")
    assert message in str(error.value)


def test_missing_files_and_bad_json_are_reported(copy):
    (copy / "images" / "syn_train_0001" / "00000003.jpg").unlink()
    with pytest.raises(DatasetError, match=r"00000003\.jpg is missing"):
        VIPSegClipDataset(copy, "train")
    (copy / "panoptic_gt_VIPSeg_train.json").write_text("{not json")
    with pytest.raises(DatasetError, match="not valid JSON"):
        VIPSegClipDataset(copy, "train")
    (copy / "panoptic_gt_VIPSeg_train.json").write_text('{"videos": ' + "[" * 200_000 + "]" * 200_000 + "}")
    with pytest.raises(DatasetError, match="nests lists or objects too deeply"):
        VIPSegClipDataset(copy, "train")
    with pytest.raises(DatasetError, match="does not exist; check the dataset folder"):
        VIPSegClipDataset(copy, "nosuchsplit")


def test_non_rgb_mask_png_is_rejected(copy):
    mask = copy / "panomasksRGB" / "syn_train_0000" / "00000000.png"
    cv2.imwrite(str(mask), np.zeros(SIZE, np.uint16))
    with pytest.raises(DatasetError, match="must be an 8-bit RGB PNG"):
        VIPSegClipDataset(copy, "train", augmentation=NO_AUG).load_clip(0, [0])


# ----- the app's exporter -> the training reader ---------------------------------------------------------------

def test_reads_a_dataset_exported_by_the_app(tmp_path):
    """The rule: training reads exactly what app/core/vipseg exports (Annotation + VideoSource -> VIPSeg)."""
    from app.core.annotation import Annotation
    from app.core.progress import run_job
    from app.core.video import VideoSource
    from app.core.vipseg import export_vipseg
    from dvis_models.data.synthetic import render_video, video_rng

    video = render_video("v", video_rng(2, "train", 0), vipseg_categories().to_json(), SIZE, 4)
    folder = tmp_path / "frames"
    folder.mkdir()
    for t, frame in enumerate(video.frames):
        (folder / f"{t:08d}.jpg").write_bytes(fmt.jpeg_bytes(frame))
    table = vipseg_categories()
    annotation = Annotation(len(video.frames), *SIZE, table)
    category_of = {s["id"]: s["category_id"] for frame in video.segments for s in frame}
    track_of = {segment_id: annotation.add_track(category).id for segment_id, category in category_of.items()}
    for t, ids in enumerate(video.id_masks):
        annotation.set_frame(t, np.vectorize(lambda i: track_of.get(int(i), 0), otypes=[np.int32])(ids))
    with VideoSource.open(folder) as source:
        run_job(export_vipseg([("exported", annotation, source)], tmp_path / "ds", split="train"))

    dataset = VIPSegClipDataset(tmp_path / "ds", "train", augmentation=NO_AUG)
    clip = dataset.load_clip(0, range(4))
    assert clip.video_id == "exported" and len(clip.ids) == len(category_of)
    for t in range(len(video.frames)):
        source_jpeg = cv2.imread(str(folder / f"{t:08d}.jpg"))[..., ::-1].copy()
        assert torch.equal(clip.images[t], torch.from_numpy(source_jpeg).permute(2, 0, 1).float())
    label_to_category = dataset.label_to_category
    for n in range(len(clip.ids)):
        # each target is exactly one original segment over all frames, with its category's label
        first = next(t for t in range(4) if clip.masks[n, t].any())
        ys, xs = np.nonzero(clip.masks[n, first].numpy())
        original = int(video.id_masks[first][ys[0], xs[0]])
        assert np.array_equal(clip.masks[n].numpy(), np.stack(video.id_masks) == original)
        assert label_to_category[int(clip.labels[n])] == category_of[original]
