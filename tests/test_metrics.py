"""VPQ / STQ on hand-computed tiny cases (numbers worked out in the comments), files vs plain data, diagnostics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from synthetic_vipseg import CAR, PERSON, SKY, track_maps

from app.core.annotation import Annotation
from app.core.metrics import (
    DiagnosticsConfig,
    MetricsError,
    VideoPair,
    diagnose,
    evaluate,
    evaluate_folders,
    stability_diagnostics,
    stq,
    vpq,
)
from app.core.progress import run_job
from app.core.vipseg import PanopticFrame, annotation_frames, export_predictions, export_vipseg
from dvis_models.categories import vipseg_categories

CATS = vipseg_categories()
A, B, P, Q = 11, 22, 33, 44  # arbitrary segment ids (ground truth A, B; prediction P, Q)


def frame(ids, segments) -> PanopticFrame:
    return PanopticFrame(np.array(ids, dtype=np.int32), segments)


def halves(left: int, right: int) -> np.ndarray:
    """4x4 map: columns 0-1 = left id, columns 2-3 = right id."""
    m = np.zeros((4, 4), np.int32)
    m[:, :2], m[:, 2:] = left, right
    return m


def one_video(gt, pred, video_id="v"):
    return [VideoPair(video_id, gt, pred)]


# ------------------------------------------------------------------------------------------------------------ VPQ


def test_perfect_prediction_scores_one():
    maps, categories = track_maps(8, 12, 16)
    frames = [PanopticFrame(m, {t: categories[t] for t in np.unique(m) if t}) for m in maps]
    result = evaluate(one_video(frames, frames), CATS)
    assert [w.nframes for w in result.vpq.windows] == [1, 2, 4, 6, 8]
    assert (result.vpq.all, result.vpq.things, result.vpq.stuff) == (1.0, 1.0, 1.0)
    assert result.stq.stq == result.stq.aq == result.stq.sq == 1.0


def test_id_switch_costs_the_two_frame_window_exactly():
    # GT: person A on the left, person B on the right, in both frames of a 4x4 video.
    # Prediction: P left / Q right in frame 0, then swapped in frame 1.
    gt = [frame(halves(A, B), {A: PERSON, B: PERSON})] * 2
    pred = [frame(halves(P, Q), {P: PERSON, Q: PERSON}), frame(halves(Q, P), {P: PERSON, Q: PERSON})]
    result = vpq(one_video(gt, pred), CATS, windows=(1, 2))
    one, two = result.windows
    # 1-frame windows: each frame is perfect: 2 windows x 2 TPs with IoU 1 -> PQ 1.
    person = one.per_class[PERSON]
    assert (person.tp, person.fp, person.fn) == (4, 0, 0) and one.all.pq == 1.0
    # 2-frame window: tube A (16 px) meets P in frame 0 only: 8 px; union 16 + 16 - 8 = 24; IoU 1/3 <= 0.5.
    # Every pair is like that: 0 TP, 2 FN, 2 FP -> PQ 0 / (0 + 1 + 1) = 0.
    person = two.per_class[PERSON]
    assert (person.tp, person.fp, person.fn) == (0, 2, 2) and two.all.pq == 0.0
    assert result.all == result.things == 0.5 and math.isnan(result.stuff)  # no stuff class was evaluated


def test_windows_longer_than_the_video_are_empty_unless_asked():
    gt = [frame(halves(A, B), {A: PERSON, B: PERSON})] * 2
    official = vpq(one_video(gt, gt), CATS)
    assert [w.all.n for w in official.windows] == [1, 1, 0, 0, 0] and math.isnan(official.all)
    clipped = vpq(one_video(gt, gt), CATS, short_videos_as_one_window=True)
    assert [w.all.n for w in clipped.windows] == [1] * 5 and clipped.all == 1.0


def test_union_leaves_out_predicted_pixels_on_void():
    # GT: sky A in rows 0-1, rows 2-3 void. Prediction P: sky in rows 0-2 (4 px on void).
    # inter 8, union = 12 + 8 - 8 - 4 (pred on void) = 8 -> IoU 1.0 (it would be 8/12 without the void rule).
    gt = np.zeros((4, 4), np.int32)
    gt[:2] = A
    pred = np.zeros((4, 4), np.int32)
    pred[:3] = P
    result = vpq(one_video([frame(gt, {A: SKY})], [frame(pred, {P: SKY})]), CATS, windows=(1,))
    assert result.windows[0].per_class[SKY].iou == 1.0 and result.stuff == 1.0


def test_false_positive_mostly_on_void_is_not_counted():
    gt = np.zeros((4, 4), np.int32)
    gt[:2] = A  # sky, rows 2-3 void
    # (a) person Q entirely on void (row 3): ignored; person has no TP/FP/FN and is left out -> VPQ 1.
    pred = np.zeros((4, 4), np.int32)
    pred[:2], pred[3] = P, Q
    result = vpq(one_video([frame(gt, {A: SKY})], [frame(pred, {P: SKY, Q: PERSON})]), CATS, windows=(1,))
    assert result.all == 1.0 and result.windows[0].per_class[PERSON].fp == 0 and result.windows[0].all.n == 1
    # (b) Q: 2 px on sky + 2 px on void = exactly half on void, not more -> an FP.
    # Sky: P has 6 px, IoU 6 / (6 + 8 - 6) = 0.75 -> TP. Person PQ = 0 / (0 + 0.5) = 0; VPQ = (0.75 + 0) / 2.
    pred = np.zeros((4, 4), np.int32)
    pred[:2] = P
    pred[1, :2], pred[3, :2] = Q, Q
    result = vpq(one_video([frame(gt, {A: SKY})], [frame(pred, {P: SKY, Q: PERSON})]), CATS, windows=(1,))
    window = result.windows[0]
    assert window.per_class[PERSON].fp == 1 and window.per_class[SKY].iou == 0.75
    assert (result.all, result.things, result.stuff) == (0.375, 0.0, 0.75)


def test_tube_category_comes_from_the_first_frame_of_the_window():
    # Prediction P is "person" in frame 0 and "car" in frame 1, on the GT person's exact pixels.
    gt = [frame(halves(A, 0), {A: PERSON})] * 2
    pred = [frame(halves(P, 0), {P: PERSON}), frame(halves(P, 0), {P: CAR})]
    one, two = vpq(one_video(gt, pred), CATS, windows=(1, 2)).windows
    # 1-frame: frame 0 TP; frame 1 person FN + car FP -> person 1 / (1 + 0.5) = 2/3, car 0 -> mean 1/3.
    assert one.per_class[PERSON].pq == pytest.approx(2 / 3) and one.per_class[CAR].fp == 1
    assert one.all.pq == pytest.approx(1 / 3)
    # 2-frame: the tube is "person" (its first frame) -> TP with IoU 1; car has no stats.
    assert two.all.pq == 1.0 and two.all.n == 1


C, D, R = 55, 66, 77  # crowd ground-truth segments C, D; another prediction R


def crowd_case(crowd: frozenset) -> tuple[PanopticFrame, PanopticFrame]:
    """4x4, one frame. GT: person A on the left half, person C on the right half (crowd when in ``crowd``).
    Prediction: P = A exactly; person Q on rows 0-2 of the right half (6 px, all on C); car R on row 3 of it (2 px)."""
    pred = halves(P, Q)
    pred[3, 2:] = R
    return (frame(halves(A, C), {A: PERSON, C: PERSON})._replace(crowd=crowd),
            frame(pred, {P: PERSON, Q: PERSON, R: CAR}))


def test_crowd_ground_truth_is_not_matched_and_covers_predictions_of_its_category():
    # Official (eval_vpq_vspw.py / panopticapi): crowd C is skipped in matching and not an FN; Q is unmatched
    # but 6/6 of it lies on C (same category) -> not an FP; R lies on C too but is a car -> an FP.
    # person: TP 1 (A-P, IoU 1) -> PQ 1; car: FP 1 -> PQ 0. VPQ = things = (1 + 0) / 2 = 0.5.
    gt, pred = crowd_case(frozenset({C}))
    result = vpq(one_video([gt], [pred]), CATS, windows=(1,))
    person, car = result.windows[0].per_class[PERSON], result.windows[0].per_class[CAR]
    assert (person.tp, person.fp, person.fn, person.iou) == (1, 0, 0, 1.0) and (car.tp, car.fp, car.fn) == (0, 1, 0)
    assert (result.all, result.things) == (0.5, 0.5)
    # The same masks without iscrowd: Q matches C (IoU 6 / (6 + 8 - 6) = 0.75) -> person (1 + 0.75) / 2 = 0.875;
    # car still 0 -> VPQ 0.4375. Ignoring iscrowd scores this case 6.25 points lower.
    plain = vpq(one_video([crowd_case(frozenset())[0]], [pred]), CATS, windows=(1,))
    assert plain.windows[0].per_class[PERSON].tp == 2 and plain.all == 0.4375


def test_prediction_on_void_plus_crowd_is_ignored_only_above_half():
    # GT: person A left half; crowd person C rows 0-1 of the right half; rows 2-3 of the right half void.
    gt_ids = halves(A, C)
    gt_ids[2:, 2:] = 0
    gt = frame(gt_ids, {A: PERSON, C: PERSON})._replace(crowd=frozenset({C}))
    # Q = column 2: 2 px on C + 2 px on void -> (2 + 2) / 4 > 0.5 -> ignored (void or crowd alone is only 0.5).
    pred_ids = halves(P, 0)
    pred_ids[:, 2] = Q
    result = vpq(one_video([gt], [frame(pred_ids, {P: PERSON, Q: PERSON})]), CATS, windows=(1,))
    assert result.windows[0].per_class[PERSON].fp == 0 and result.all == 1.0
    # Q also takes 1 px of A (row 3, column 1): 4 of its 5 px on void or crowd -> still ignored.
    pred_ids[3, 1] = Q
    result = vpq(one_video([gt], [frame(pred_ids, {P: PERSON, Q: PERSON})]), CATS, windows=(1,))
    assert result.windows[0].per_class[PERSON].fp == 0
    # Q = 2 px on C + 2 px on A: exactly half -> an FP. P (A minus 2 px): IoU 6 / (6 + 8 - 6) = 0.75 -> TP.
    pred_ids = halves(P, 0)
    pred_ids[:2, 2], pred_ids[:2, 1] = Q, Q
    result = vpq(one_video([gt], [frame(pred_ids, {P: PERSON, Q: PERSON})]), CATS, windows=(1,))
    person = result.windows[0].per_class[PERSON]
    assert (person.tp, person.fp, person.fn) == (1, 1, 0) and result.all == pytest.approx(0.75 / 1.5)


def test_only_the_last_listed_crowd_segment_of_a_category_covers_predictions():
    # panopticapi keeps one crowd id per category (crowd_labels_dict[category] = id, the last one listed).
    # GT: A left half, crowd persons C (right half, rows 0-1) then D (rows 2-3). Q lies on C only.
    gt_ids = halves(A, C)
    gt_ids[2:, 2:] = D
    pred_ids = halves(P, 0)
    pred_ids[:2, 2:] = Q
    pred = frame(pred_ids, {P: PERSON, Q: PERSON})
    c_last = frame(gt_ids, {A: PERSON, D: PERSON, C: PERSON})._replace(crowd=frozenset({C, D}))
    d_last = frame(gt_ids, {A: PERSON, C: PERSON, D: PERSON})._replace(crowd=frozenset({C, D}))
    assert vpq(one_video([c_last], [pred]), CATS, windows=(1,)).windows[0].per_class[PERSON].fp == 0
    assert vpq(one_video([d_last], [pred]), CATS, windows=(1,)).windows[0].per_class[PERSON].fp == 1


def test_crowd_tracks_survive_export_and_import_and_score_like_plain_data(tmp_path):
    from app.core.vipseg import import_vipseg, read_ground_truth

    gt, pred = crowd_case(frozenset({C}))
    annotation = _annotation([np.where(gt.ids == A, 1, np.where(gt.ids == C, 2, 0))], {1: PERSON, 2: PERSON})
    annotation.put_tracks([annotation.tracks[2].replace(crowd=True)])
    assert list(annotation_frames(annotation))[0].crowd == {2}
    run_job(export_vipseg([("clip", annotation, None)], tmp_path / "gt", split="val"))
    _, (video,) = read_ground_truth(tmp_path / "gt", "val")
    assert len(video.frame(0).crowd) == 1
    (imported,) = run_job(import_vipseg(tmp_path / "gt", "val"))
    assert sorted(t.crowd for t in imported.annotation.tracks.values()) == [False, True]
    pred_ids = np.where(pred.ids == P, 1, np.where(pred.ids == Q, 2, np.where(pred.ids == R, 3, 0)))
    pred_annotation = _annotation([pred_ids], {1: PERSON, 2: PERSON, 3: CAR})
    run_job(export_predictions([("clip", pred_annotation, None)], tmp_path / "pred"))
    from_files = evaluate_folders(tmp_path / "gt", tmp_path / "pred", split="val", windows=(1,))
    from_annotation = evaluate(one_video(annotation_frames(imported.annotation), annotation_frames(pred_annotation)),
                               CATS, windows=(1,))
    assert from_files.vpq.all == from_annotation.vpq.all == 0.5


# ------------------------------------------------------------------------------------------------------------ STQ


def test_stq_id_switch_with_the_official_crowd_quirk_and_without():
    gt = [frame(halves(A, B), {A: PERSON, B: PERSON})] * 2
    pred = [frame(halves(P, Q), {P: PERSON, Q: PERSON}), frame(halves(Q, P), {P: PERSON, Q: PERSON})]
    # Official: A is the video's first id -> instance 0 -> DeepLab2 calls it crowd and drops it (and preds on it).
    # Left: tube B (16 px). Q on B in frame 0 (8 px, Q's non-crowd area 8), P on B in frame 1 (8, P's area 8).
    # AQ = 1/16 * (8 * 8/(16 + 8 - 8) + 8 * 8/16) = 0.5. SQ: all pixels person -> 1. STQ = sqrt(0.5).
    official = stq(one_video(gt, pred), CATS)
    assert official.aq == 0.5 and official.sq == 1.0 and official.stq == pytest.approx(math.sqrt(0.5))
    # Fixed: both tubes count; each meets P and Q 8 px each (pred areas 16): 1/16 * 2 * (8 * 8/24) = 1/3.
    fixed = stq(one_video(gt, pred), CATS, crowd_quirk=False)
    assert fixed.aq == pytest.approx(1 / 3) and fixed.stq == pytest.approx(math.sqrt(1 / 3))
    assert fixed.per_video[0].video_id == "v" and fixed.per_video[0].num_frames == 2


def test_stq_void_predictions_count_as_a_class_in_official_sq():
    gt = np.full((4, 4), A, np.int32)  # all sky
    pred = np.full((4, 4), P, np.int32)
    pred[3] = 0  # 4 px predicted void
    pair = one_video([frame(gt, {A: SKY})], [frame(pred, {P: SKY})])
    # Sky IoU = 12 / 16 = 0.75. Official: the void column (4 px, IoU 0) is counted too -> SQ 0.375.
    assert stq(pair, CATS).sq == 0.375
    pair = one_video([frame(gt, {A: SKY})], [frame(pred, {P: SKY})])
    assert stq(pair, CATS, void_column_quirk=False).sq == 0.75


# ------------------------------------------------------------------------------------------------ errors, folders


def test_inputs_that_cannot_be_compared_raise_metrics_error():
    gt = [frame(halves(A, B), {A: PERSON, B: PERSON})]
    with pytest.raises(MetricsError, match="different numbers of frames"):
        vpq(one_video(gt * 2, gt), CATS)
    with pytest.raises(MetricsError, match=r"ids \[22\] are in the mask but have no category"):
        vpq(one_video(gt, [frame(halves(A, B), {A: PERSON})]), CATS)
    with pytest.raises(MetricsError, match="is \\(4, 4\\) but prediction is \\(2, 4\\)"):
        stq(one_video(gt, [frame(np.zeros((2, 4)), {})]), CATS)


def _annotation(maps, categories) -> Annotation:
    annotation = Annotation(len(maps), *maps[0].shape, CATS)
    for track_id, category in categories.items():
        annotation.add_track(category, track_id=track_id)
    for index, m in enumerate(maps):
        annotation.set_frame(index, m)
    return annotation


def test_folder_evaluation_equals_plain_evaluation(tmp_path):
    maps, categories = track_maps(6, 12, 16)
    gt = _annotation(maps, categories)
    swapped = [m.copy() for m in maps]
    for t in range(3, 6):  # the two persons (3, 4) swap ids from frame 3 on
        swapped[t][maps[t] == 3], swapped[t][maps[t] == 4] = 4, 3
    pred = _annotation(swapped, categories)
    run_job(export_vipseg([("clip", gt, None)], tmp_path / "gt", split="val"))
    run_job(export_predictions([("clip", pred, None)], tmp_path / "pred"))
    from_files = evaluate_folders(tmp_path / "gt", tmp_path / "pred", split="val")
    plain = evaluate(one_video(annotation_frames(gt), annotation_frames(pred), "clip"), CATS)
    # Same numbers (IoU sums may add up in another order, hence approx).
    for ours, theirs in zip(from_files.vpq.windows, plain.vpq.windows):
        assert ours.per_class.keys() == theirs.per_class.keys()
        for category in ours.per_class:
            a, b = ours.per_class[category], theirs.per_class[category]
            assert (a.tp, a.fp, a.fn) == (b.tp, b.fp, b.fn) and a.iou == pytest.approx(b.iou)
    assert from_files.stq.stq == pytest.approx(plain.stq.stq) and from_files.stq.aq == pytest.approx(plain.stq.aq)
    assert from_files.vpq.windows[0].things.pq == 1.0 and from_files.vpq.windows[1].things.pq < 1.0
    assert 0 < from_files.stq.aq < 1 and from_files.stq.sq == 1.0


# ---------------------------------------------------------------------------------------------------- diagnostics

CONFIG = DiagnosticsConfig(min_area=1, max_gap=4)


def square_maps(num_frames: int, tracks: dict[int, list]) -> list[np.ndarray]:
    """Tracks as {id: [(y, x) top-left of a 4x4 square or None, per frame]} on a 16x24 canvas."""
    maps = []
    for t in range(num_frames):
        m = np.zeros((16, 24), np.int32)
        for track_id, positions in tracks.items():
            if positions[t] is not None:
                y, x = positions[t]
                m[y : y + 4, x : x + 4] = track_id
        maps.append(m)
    return maps


def kinds(diagnostics):
    return [(d.kind, d.track_id, d.frame, d.other_track_id) for d in diagnostics]


def test_clean_tracks_have_no_diagnostics():
    maps = square_maps(6, {1: [(2, t) for t in range(6)], 2: [(10, 18 - t) for t in range(6)]})
    assert diagnose(maps, config=CONFIG) == []


def test_swap_is_one_id_switch():
    left, right = [(2, 2)] * 6, [(2, 12)] * 6
    maps = square_maps(6, {1: left[:3] + right[3:], 2: right[:3] + left[3:]})
    (switch,) = diagnose(maps, config=CONFIG)
    assert kinds([switch]) == [("id_switch", 1, 3, 2)] and switch.severity == 1.0 and "swap" in switch.detail


def test_track_ending_where_another_starts_is_an_id_switch():
    maps = square_maps(6, {1: [(2, 2)] * 3 + [None] * 3, 5: [None] * 3 + [(2, 2)] * 3})
    assert kinds(diagnose(maps, config=CONFIG)) == [("id_switch", 5, 3, 1)]


def test_gaps_and_lost_reidentification_are_fragments():
    maps = square_maps(7, {1: [(2, 2), (2, 2), None, None, (2, 3), (2, 3), (2, 3)]})
    (gap,) = diagnose(maps, config=CONFIG)
    assert kinds([gap]) == [("fragment", 1, 4, None)] and "frames 2..3" in gap.detail
    maps = square_maps(7, {1: [(2, 2)] * 3 + [None] * 4, 7: [None] * 5 + [(2, 2)] * 2})
    found = diagnose(maps, config=CONFIG)
    assert ("fragment", 7, 5, 1) in kinds(found) and ("short_track", 7, 5, None) in kinds(found)
    # Beyond max_gap frames the new track is not linked to the old one.
    maps = square_maps(12, {1: [(2, 2)] * 3 + [None] * 9, 7: [None] * 9 + [(2, 2)] * 3})
    assert diagnose(maps, config=CONFIG) == []


def test_area_jump_class_flicker_and_short_track():
    maps = square_maps(5, {1: [(2, 2)] * 5, 2: [None, None, (10, 10), None, None]})
    maps[3][0:12, 0:12][maps[3][0:12, 0:12] == 0] = 1  # track 1 grows from 16 to 144 px in frame 3
    classes = {t: {1: PERSON} for t in range(5)}
    classes[2][1] = CAR
    found = kinds(diagnose(maps, frame_classes=classes, config=CONFIG))
    assert ("area_jump", 1, 3, None) in found and ("area_jump", 1, 4, None) in found
    assert ("class_flicker", 1, 2, None) in found and ("class_flicker", 1, 3, None) in found
    assert ("short_track", 2, 2, None) in found and len(found) == 5


def test_stability_diagnostics_reads_an_annotation():
    left, right = [(2, 2)] * 4, [(2, 12)] * 4
    maps = square_maps(4, {1: left[:2] + right[2:], 2: right[:2] + left[2:]})
    annotation = _annotation(maps, {1: PERSON, 2: PERSON})
    assert kinds(stability_diagnostics(annotation, config=CONFIG)) == [("id_switch", 1, 2, 2)]


def _brute_iou(a: np.ndarray, b: np.ndarray, a_ids: list[int], b_ids: list[int]) -> np.ndarray:
    iou = np.zeros((len(a_ids), len(b_ids)))
    for i, s in enumerate(a_ids):
        for j, t in enumerate(b_ids):
            union = np.count_nonzero((a == s) | (b == t))
            iou[i, j] = np.count_nonzero((a == s) & (b == t)) / union if union else 0.0
    return iou


def test_pair_iou_of_ids_absent_from_the_maps_is_zero():
    """Ids asked for may be missing from a map (a track lost by subsampling) or exceed its largest id."""
    from app.core.result_merger import pair_iou

    rng = np.random.default_rng(0)
    for _ in range(300):
        shape = tuple(rng.integers(1, 9, size=2))
        a = rng.choice([0, 3, 17, 40], size=shape)
        b = rng.choice([0, 2, 17, 99], size=shape)
        a_ids = sorted(rng.choice([1, 3, 17, 40, 55, 1000], size=rng.integers(0, 5), replace=False).tolist())
        b_ids = sorted(rng.choice([2, 17, 99, 120, 7], size=rng.integers(0, 5), replace=False).tolist())
        assert np.allclose(pair_iou(a, b, a_ids, b_ids), _brute_iou(a, b, a_ids, b_ids))


def _random_track_maps(rng, num_frames: int, height: int, width: int) -> list[np.ndarray]:
    """Tracks with random ids that appear, vanish, move, and shrink to a single (often off-grid) pixel."""
    ids = rng.choice(np.arange(1, 500), size=rng.integers(1, 7), replace=False)
    maps = []
    for _ in range(num_frames):
        m = np.zeros((height, width), np.int32)
        for track_id in ids:
            kind = rng.random()
            if kind < 0.2:
                continue  # absent in this frame
            y, x = rng.integers(0, height), rng.integers(0, width)
            if kind < 0.6:
                m[y, x] = track_id  # one pixel: lost by most subsamplings
            else:
                h, w = rng.integers(1, height + 1), rng.integers(1, width + 1)
                m[y : y + h, x : x + w] = track_id
        maps.append(m)
    return maps


def test_diagnostics_survive_tracks_lost_by_subsampling():
    """Presence comes from full resolution, masks are compared subsampled: a track can be in one and not
    the other (it used to raise IndexError in pair_iou when such a track had the largest id)."""
    rng = np.random.default_rng(1)
    for _ in range(150):
        height, width = int(rng.integers(1, 40)), int(rng.integers(1, 40))
        maps = _random_track_maps(rng, int(rng.integers(1, 8)), height, width)
        config = DiagnosticsConfig(min_area=1, max_gap=3, max_side=int(rng.integers(1, 45)))
        found = diagnose(maps, config=config)
        for d in found:
            assert d.track_id in np.unique(maps[d.frame]) or d.kind == "short_track"
            assert d.kind in ("id_switch", "fragment", "area_jump", "short_track")


def test_a_one_pixel_track_with_the_largest_id_is_diagnosed():
    """The case users hit on 720p clips: the newest (largest) id is a speck between the sampled pixels."""
    big = np.zeros((8, 8), np.int32)
    big[0:4, 0:4] = 1
    speck = big.copy()
    speck[5, 5] = 9  # stride 2 samples rows/cols 0, 2, 4, 6 only
    found = diagnose([big, speck, speck, big], config=DiagnosticsConfig(min_area=1, max_gap=3, max_side=4))
    assert ("short_track", 9, 1, None) in kinds(found)
