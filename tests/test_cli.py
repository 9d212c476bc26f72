import subprocess
import sys

from app import __version__
from app.cli import build_parser


def test_version_from_installed_command():
    result = subprocess.run([sys.executable, "-m", "app.cli", "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == f"dvis-studio {__version__}"


def test_help_lists_subcommands(capsys):
    help_text = build_parser().format_help()
    for command in ("infer", "eval", "export", "train"):
        assert command in help_text


def test_help_does_not_load_torch():
    code = ("import sys; from app.cli import build_parser; build_parser().format_help(); "
            "assert 'torch' not in sys.modules, 'dvis --help must stay instant'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_help_lists_eval_bundled(capsys):
    assert "eval-bundled" in build_parser().format_help()


def test_train_options_reach_the_trainer(monkeypatch, tmp_path):
    from app.cli import main
    from dvis_models.training import launch

    seen = []
    monkeypatch.setattr(launch, "run", lambda options, log: seen.append(options))
    code = main(["train", "refiner", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--init", "m.pth",
                 "--iters", "100", "--milestones", "50,80", "--crop", "64x48", "--frames", "9", "--lr", "3e-4",
                 "--short-edges", "96,128", "--schedule", "cosine", "--fresh"])
    assert code == 0
    options = seen[0]
    assert options.stage == "refiner" and options.frames == 9 and options.crop == (64, 48)
    assert options.short_edges == (96, 128) and not options.resume
    assert options.train.milestones == (50, 80) and options.train.lr == 3e-4 and options.train.schedule == "cosine"
    assert options.train.clip_norm == 0.01 and options.train.weight_decay == 0.05  # the official recipe by default


def test_train_default_milestone_is_seventy_percent(monkeypatch, tmp_path):
    from app.cli import main
    from dvis_models.training import launch

    seen = []
    monkeypatch.setattr(launch, "run", lambda options, log: seen.append(options))
    main(["train", "segmenter", "--data", str(tmp_path), "--out", str(tmp_path), "--iters", "20000"])
    assert seen[0].train.milestones == (14000,)  # as the DVIS VIPSeg configs: x0.1 at 14000 of 20000


def test_malformed_option_values_are_refused(capsys):
    import pytest

    from app.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["train", "segmenter", "--data", "d", "--out", "o", "--crop", "64"])
    assert exit_.value.code == 2
    assert "HEIGHTxWIDTH" in capsys.readouterr().err
