"""The `dvis` command: the same core as the GUI, headless (infer, eval, export, train).

Heavy modules (torch, the model, PyAV) are imported inside the command that needs them, so
``dvis --help`` stays instant. Errors a user can cause print one clear line on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app import __version__
from app.core.errors import StudioError


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH such as 608x608, got {text!r}") from None
    return height, width


# ----- train ---------------------------------------------------------------------------------------------------

def _add_train(commands) -> None:
    parser = commands.add_parser(
        "train", help="train or fine-tune DVIS stages",
        description="Train one DVIS stage on a VIPSeg-format dataset (run it under torchrun for several GPUs or "
                    "nodes: one clip per process). Stages chain: segmenter -> tracker (--init the segmenter's "
                    "model_final.pth) -> refiner (--init the tracker's). Re-running with the same --out resumes.",
    )
    parser.add_argument("stage", choices=("segmenter", "tracker", "refiner"))
    parser.add_argument("--data", type=Path, required=True, help="VIPSeg-format dataset root")
    parser.add_argument("--out", type=Path, required=True, help="output folder (checkpoints, metrics, model_final.pth)")
    parser.add_argument("--split", default="train", help="dataset split (panoptic_gt_VIPSeg_<split>.json)")
    parser.add_argument("--preset", help="model architecture (default: --init's own, else bundled_small)")
    parser.add_argument("--init", type=Path, help="starting weights: previous stage's model_final.pth, an official "
                                                  "DVIS/MinVIS .pth, or Mask2Former .pkl (segmenter)")
    parser.add_argument("--iters", type=int, default=20000, help="number of iterations (default 20000)")
    parser.add_argument("--lr", type=float, default=1e-4, help="base learning rate (default 1e-4)")
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--backbone-lr-mult", type=float, default=0.1, help="backbone lr multiplier (default 0.1)")
    parser.add_argument("--clip-norm", type=float, default=0.01, help="full-model gradient L2 clip (default 0.01)")
    parser.add_argument("--schedule", choices=("multistep", "cosine"), default="multistep")
    parser.add_argument("--warmup", type=int, default=10, help="warm-up iterations (default 10)")
    parser.add_argument("--warmup-factor", type=float, default=1.0, help="lr factor at iteration 0 (default 1.0)")
    parser.add_argument("--milestones", type=_int_list, help="multistep decay iterations (default 70%% of --iters)")
    parser.add_argument("--frames", type=int, help="frames per clip (default: 1 segmenter, 5 tracker, 21 refiner)")
    parser.add_argument("--short-edges", type=_int_list, help="training short sides (default 480,512,...,800)")
    parser.add_argument("--max-size", type=int, help="training long-side cap (default 1333)")
    parser.add_argument("--crop", type=_size, help="random crop HxW after resizing (official refiner: 608x608)")
    parser.add_argument("--num-points", type=int, default=12544, help="points per mask for matching and losses")
    parser.add_argument("--match-switch", type=int, help="iteration at which tracker/refiner matching switches to "
                                                         "their own outputs (default: half of --iters)")
    parser.add_argument("--checkpoint-every", type=int, default=1000)
    parser.add_argument("--log-every", type=int, default=20)
    parser.add_argument("--seed", type=int, default=42, help="training seed")
    parser.add_argument("--data-seed", type=int, default=0, help="clip sampling / augmentation seed")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    parser.add_argument("--no-amp", action="store_true", help="train in float32 on CUDA")
    parser.add_argument("--fresh", action="store_true", help="refuse to resume an existing run in --out")
    parser.set_defaults(handler=_train)


def _train(args: argparse.Namespace) -> int:
    from dvis_models.data.transforms import OFFICIAL_MAX_SIZE, OFFICIAL_SHORT_EDGES
    from dvis_models.training import launch
    from dvis_models.training.stages import LossConfig
    from dvis_models.training.trainer import TrainConfig

    milestones = args.milestones if args.milestones is not None else (int(args.iters * 0.7),)
    config = TrainConfig(
        stage=args.stage, max_iter=args.iters, lr=args.lr, weight_decay=args.weight_decay,
        backbone_lr_multiplier=args.backbone_lr_mult, clip_norm=args.clip_norm, schedule=args.schedule,
        warmup_iters=args.warmup, warmup_factor=args.warmup_factor, milestones=milestones,
        match_switch_iter=args.match_switch, checkpoint_period=args.checkpoint_every, log_period=args.log_every,
        seed=args.seed, amp=not args.no_amp, loss=LossConfig(num_points=args.num_points),
    )
    options = launch.TrainOptions(
        stage=args.stage, data=args.data, out=args.out, split=args.split, preset=args.preset, init=args.init,
        frames=args.frames, short_edges=args.short_edges or OFFICIAL_SHORT_EDGES,
        max_size=args.max_size or OFFICIAL_MAX_SIZE, crop=args.crop, data_seed=args.data_seed, device=args.device,
        resume=not args.fresh, train=config,
    )
    launch.run(options, log=lambda line: print(line, flush=True))
    return 0


# ----- parser / main -------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dvis", description="DVIS Studio command line: video panoptic segmentation with DVIS.")
    parser.add_argument("--version", action="version", version=f"dvis-studio {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_train(commands)
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exception types whose message is meant for the user (StudioError, model and dataset errors)."""
    errors: list[type[BaseException]] = [StudioError]
    if "dvis_models" in sys.modules or "torch" in sys.modules:
        from dvis_models.data.vipseg_format import DatasetFormatError
        from dvis_models.errors import DVISError

        errors += [DVISError, DatasetFormatError]
    return tuple(errors)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if isinstance(error, _user_errors()):
            print(f"error: {error}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
