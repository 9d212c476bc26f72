"""The Models dialog (real widgets, offscreen): lists, downloads with progress and cancel, removes; the Run
dialog offers installed models by name."""

from __future__ import annotations

import hashlib
import json

from model_server import no_proxy, serve  # noqa: F401 - no_proxy: autouse fixture
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox
from videos import make_video

from app.core.models import ModelLibrary, catalogue_entries
from app.core.models import download as download_module
from app.gui.dialogs import RunDialog
from app.gui.models_dialog import ModelsDialog
from dvis_models.resources import BUNDLED_CHECKPOINT

PAYLOAD = BUNDLED_CHECKPOINT.read_bytes()


def select(table, name: str, qtbot) -> None:
    row = next(r for r in range(table.rowCount()) if table.item(r, 0).text() == name)
    rect = table.visualItemRect(table.item(row, 0))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_dialog_lists_the_catalogue_and_installed_models_and_removes(qtbot, tmp_path, monkeypatch):
    library = ModelLibrary(tmp_path / "lib")
    library.add(BUNDLED_CHECKPOINT, name="small")
    dialog = ModelsDialog(library)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.catalogue.rowCount() == len(catalogue_entries())
    assert dialog.installed.rowCount() == 1 and dialog.installed.item(0, 1).text() == "bundled_small (offline)"
    select(dialog.catalogue, "dvis-vipseg-swinl-online", qtbot)
    qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)
    assert "pan.baidu.com" in dialog.status.text() and "Add…" in dialog.status.text()
    select(dialog.catalogue, "dvis++-vipseg-vitl-offline", qtbot)
    qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)
    assert "cannot load it yet" in dialog.status.text()
    monkeypatch.setattr(QMessageBox, "question", lambda *args: QMessageBox.StandardButton.Yes)
    select(dialog.installed, "small", qtbot)
    qtbot.mouseClick(dialog.remove_button, Qt.MouseButton.LeftButton)
    assert dialog.installed.rowCount() == 0 and library.list() == []


def _local_catalogue(tmp_path, monkeypatch, url: str) -> None:
    import importlib

    module = importlib.import_module("app.core.models.catalogue")
    shipped = json.loads(module.CATALOGUE_FILE.read_text())
    item = {**shipped["models"][0], "name": "tiny-online", "direct_url": url,
            "sha256": hashlib.sha256(PAYLOAD).hexdigest(), "preset": "bundled_small"}
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps({**shipped, "models": [item]}))
    monkeypatch.setattr(module, "CATALOGUE_FILE", path)


def test_download_with_progress_cancel_and_resume(qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(download_module, "CHUNK", 64 * 1024)  # many progress reports, time to cancel
    library = ModelLibrary(tmp_path / "lib")
    with serve(PAYLOAD, delay=0.01) as server:  # about 1.6 s for the whole file
        _local_catalogue(tmp_path, monkeypatch, server.url)
        dialog = ModelsDialog(library)
        qtbot.addWidget(dialog)
        dialog.show()
        select(dialog.catalogue, "tiny-online", qtbot)
        qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)
        assert dialog.cancel_button.isEnabled() and not dialog.download_button.isEnabled()
        qtbot.waitUntil(lambda: dialog.progress.value() > 0, timeout=10_000)
        qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not dialog.runner.running, timeout=10_000)
        assert "cancelled" in dialog.status.text() and dialog.installed.rowCount() == 0
        qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not dialog.runner.running, timeout=20_000)
    assert server.requests[-1][1] is not None and server.requests[-1][1].startswith("bytes=")
    assert "Installed tiny-online" in dialog.status.text()
    assert dialog.installed.rowCount() == 1 and library.path("tiny-online").read_bytes() == PAYLOAD


def test_add_asks_for_a_name_and_installs_in_the_worker(qtbot, tmp_path, monkeypatch):
    library = ModelLibrary(tmp_path / "lib")
    dialog = ModelsDialog(library)
    qtbot.addWidget(dialog)
    asked = []
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args: (str(BUNDLED_CHECKPOINT), ""))
    monkeypatch.setattr(QInputDialog, "getText", lambda *args, text="": (asked.append(text) or "mine", True))
    qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.runner.running, timeout=20_000)
    assert asked == ["dvis_bundled_small"]  # the file's name, as nothing is selected in the catalogue
    assert dialog.installed.item(0, 0).text() == "mine" and "Installed mine" in dialog.status.text()
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args: (__file__, ""))
    monkeypatch.setattr(QInputDialog, "getText", lambda *args, text="": ("junk", True))
    qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.runner.running, timeout=20_000)
    assert "cannot be added" in dialog.status.text() and dialog.installed.rowCount() == 1


def test_run_dialog_offers_installed_models(qtbot, tmp_path):
    video_path = make_video(tmp_path / "clip.mp4", num_frames=12)
    ModelLibrary().add(BUNDLED_CHECKPOINT, name="small")  # the default library (the test's data folder)
    dialog = RunDialog(video_path, 12)
    qtbot.addWidget(dialog)
    dialog.model.setCurrentIndex(dialog.model.findData("model:small"))
    assert "small (bundled_small, installed)" == dialog.model.currentText()
    assert dialog.request().model == "model:small"


def test_an_installed_model_loads_by_name(tmp_path):
    from app.core.inference import load_model

    ModelLibrary().add(BUNDLED_CHECKPOINT, name="small")
    assert load_model("model:small").config.name == "bundled_small"
