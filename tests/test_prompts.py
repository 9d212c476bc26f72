"""Prompted masks on one frame: clicks and a box give the model's ranked proposals, or GrabCut when no
proposal fits (or there is no model); unusable prompts raise a PromptError that says what to do."""

import numpy as np
import pytest

from app.core.errors import PromptError
from app.core.propagation.prompts import Prompt, grabcut_mask, propose, rank_masks
from app.core.propagation.scores import jaccard
from dvis_models.categories import vipseg_categories
from dvis_models.data.synthetic import render_video, video_rng

H, W = 48, 64


def square_frame() -> tuple[np.ndarray, np.ndarray]:
    """A red 16x20 square on a smooth grey-green background."""
    rng = np.random.default_rng(3)
    frame = np.empty((H, W, 3), np.uint8)
    frame[:] = (90, 140, 90)
    frame = np.clip(frame + rng.normal(0, 6, frame.shape), 0, 255).astype(np.uint8)
    mask = np.zeros((H, W), bool)
    mask[16:32, 20:40] = True
    frame[mask] = (220, 40, 40)
    return frame, mask


@pytest.mark.parametrize("prompt, message", [
    (Prompt(positives=[(W, 5)]), "outside the frame"),
    (Prompt(positives=[(5, 5)], negatives=[(-1, 5)]), "outside the frame"),
    (Prompt(box=(10, 10, 10, 30)), "empty or outside"),
    (Prompt(box=(10, 10, 30, H + 1)), "empty or outside"),
    (Prompt(negatives=[(5, 5)]), "Click on the object"),
])
def test_bad_prompts_raise_a_clear_error(prompt, message):
    frame, _ = square_frame()
    with pytest.raises(PromptError, match=message):
        propose(frame, prompt)


def test_grabcut_from_one_click_or_a_box():
    frame, mask = square_frame()
    assert jaccard(propose(frame, Prompt(positives=[(30, 24)]))[0].mask, mask) > 0.85
    proposal = grabcut_mask(frame, Prompt(box=(17, 13, 43, 35)))
    assert proposal.source == "grabcut" and jaccard(proposal.mask, mask) > 0.85


def test_proposals_must_fit_the_clicks_and_are_ranked_by_score_and_box_fit():
    frame, mask = square_frame()
    whole = np.ones((H, W), bool)
    left = np.zeros((H, W), bool)
    left[:, :32] = True
    ranked = rank_masks(np.stack([whole, mask, mask.copy(), left]), [0.9, 0.6, 0.5, 0.99], [1, 2, 3, 4],
                        Prompt(positives=[(30, 24)], negatives=[(5, 5)]))
    assert [p.category_id for p in ranked] == [2]  # whole and left contain the negative click; 3 duplicates 2
    boxed = rank_masks(np.stack([whole, mask]), [0.9, 0.6], [1, 2], Prompt(box=(20, 16, 40, 32)))
    assert [p.category_id for p in boxed] == [2, 1]


def test_a_prompt_no_model_proposal_fits_falls_back_to_grabcut():
    torch = pytest.importorskip("torch")
    from app.core.propagation.prompts import model_proposals
    from app.core.propagation.segmenter import SegmenterCache
    from dvis_models import load_checkpoint
    from dvis_models.resources import BUNDLED_CHECKPOINT

    torch.set_num_threads(1)
    video = render_video("v", video_rng(0, "val", 0), vipseg_categories().to_json(), num_frames=1)
    model = load_checkpoint(BUNDLED_CHECKPOINT)
    output = SegmenterCache(model, video.frames.__getitem__).get(0)
    height, width = video.frames[0].shape[:2]
    # opposite corners in, the centre out: no single query mask is shaped like that
    prompt = Prompt(positives=[(0, 0), (width - 1, height - 1)], negatives=[(width // 2, height // 2)])
    assert model_proposals(output, model.config.label_to_category, prompt) == []
    proposals = propose(video.frames[0], prompt, output, model.config.label_to_category)
    assert [p.source for p in proposals] == ["grabcut"]
    assert proposals[0].mask[0, 0] and not proposals[0].mask[height // 2, width // 2]



def test_a_box_around_an_object_proposes_the_models_mask_and_class_for_it():
    torch = pytest.importorskip("torch")
    from app.core.propagation.segmenter import SegmenterCache
    from dvis_models import load_checkpoint
    from dvis_models.resources import BUNDLED_CHECKPOINT

    torch.set_num_threads(1)
    categories = vipseg_categories().to_json()
    video = render_video("v", video_rng(0, "val", 1), categories, num_frames=1)
    model = load_checkpoint(BUNDLED_CHECKPOINT)
    output = SegmenterCache(model, video.frames.__getitem__).get(0)
    things = {int(c["id"]) for c in categories if c["isthing"]}
    largest = max((s for s in video.segments[0] if s["category_id"] in things), key=lambda s: s["area"])
    x, y, w, h = largest["bbox"]
    best = propose(video.frames[0], Prompt(box=(x, y, x + w, y + h)), output, model.config.label_to_category)[0]
    assert best.source == "model" and best.category_id == largest["category_id"]
    assert jaccard(best.mask, video.id_masks[0] == largest["id"]) > 0.6  # the bundled model's query mask: 0.72


def test_grabcut_runs_on_the_prompts_region_of_a_large_frame():
    """GrabCut models only the box or the clicked discs plus a margin (its cost grows with pixels); the mask
    found there is pasted back at the right place, and a look-alike far from the prompt is left out."""
    from app.core.propagation.prompts import grabcut_region

    frame, mask = square_frame()
    rng = np.random.default_rng(5)
    big = np.clip(np.array([90, 140, 90]) + rng.normal(0, 6, (360, 640, 3)), 0, 255).astype(np.uint8)
    big_mask = np.zeros((360, 640), bool)
    big[200 : 200 + H, 300 : 300 + W] = frame
    big_mask[200 : 200 + H, 300 : 300 + W] = mask
    big[10:40, 10:40] = (220, 40, 40)  # the same red, far away
    click = Prompt(positives=[(330, 224)])
    x0, y0, x1, y1 = grabcut_region(click, 360, 640)
    assert (x1 - x0) * (y1 - y0) < 0.5 * 360 * 640 and x0 <= 330 < x1 and y0 <= 224 < y1
    assert jaccard(grabcut_mask(big, click).mask, big_mask) > 0.85
    box = Prompt(box=(317, 213, 343, 235))
    assert grabcut_region(box, 360, 640) == (291, 191, 369, 257)  # the box's size again on each side
    assert jaccard(grabcut_mask(big, box).mask, big_mask) > 0.85
    assert grabcut_region(Prompt(box=(0, 0, 30, 20)), 360, 640) == (0, 0, 60, 40)  # clipped to the frame
