"""Small dialogs: run settings (and their model chooser), category picker, shortcuts list, export choice, evaluation
results."""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import ModelLibraryError
from app.core.inference import CHUNK_SIZE_HELP, RunRequest
from app.core.jobs import EXPORTS, FILE_EXPORTS, ExportRequest
from app.core.model_source import BUNDLED, MODEL_PREFIX, PRESET_PREFIX, PRESETS
from app.core.models import ModelLibrary

if TYPE_CHECKING:  # the type only; the GUI reaches dvis_models through app.core at run time
    from dvis_models.categories import CategoryTable

RESOLUTIONS = (("Model default", None), ("360p (fast)", 360), ("480p", 480), ("720p", 720), ("1080p", 1080))


def ok_cancel_buttons(dialog: QDialog) -> QDialogButtonBox:
    """OK accepts `dialog`, Cancel rejects it."""
    box = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
    box.accepted.connect(dialog.accept)
    box.rejected.connect(dialog.reject)
    return box


class ModelChooser(QWidget):
    """A model source (``app.core.model_source``): the bundled model, an installed one, a checkpoint file (typed or
    browsed) or, with ``presets``, an architecture's untrained weights. ``first``: (text, source) offered first and
    chosen by default, e.g. a project's own model. ``library``: the model library folder (default: the user's)."""

    CHECKPOINT = "checkpoint"  # the combo's data for "Checkpoint file…": the file is the line edit's text

    def __init__(self, parent: QWidget | None = None, presets: bool = True,
                 first: tuple[str, str | None] | None = None, library: Path | None = None):
        super().__init__(parent)
        self.combo = QComboBox()
        if first is not None:
            self.combo.addItem(*first)
        self.combo.addItem("Bundled model (CPU-friendly)", BUNDLED)
        try:
            for installed in ModelLibrary(library).list():
                self.combo.addItem(f"{installed.name} ({installed.preset}, installed)", MODEL_PREFIX + installed.name)
        except ModelLibraryError as error:  # a damaged library must not block using other models
            self.combo.setToolTip(str(error))
        self.combo.addItem("Checkpoint file…", self.CHECKPOINT)
        for preset in PRESETS if presets else ():
            self.combo.addItem(f"Preset {preset} (untrained weights, for testing)", PRESET_PREFIX + preset)
        self.checkpoint = QLineEdit(placeholderText="official DVIS .pth or our checkpoint")
        self.combo.currentIndexChanged.connect(
            lambda: self.checkpoint.setEnabled(self.combo.currentData() == self.CHECKPOINT))
        self.checkpoint.setEnabled(False)
        self.browse = QPushButton("Browse…")
        self.browse.clicked.connect(self._browse)
        checkpoint_row = QHBoxLayout()
        checkpoint_row.addWidget(self.checkpoint)
        checkpoint_row.addWidget(self.browse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.combo)
        layout.addLayout(checkpoint_row)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a checkpoint", "",
                                              "Checkpoints (*.pth *.pt *.pkl);;All files (*)")
        if path:
            self.checkpoint.setText(path)
            self.combo.setCurrentIndex(self.combo.findData(self.CHECKPOINT))

    def source(self) -> str | None:
        """The chosen model source (None: the ``first`` entry's None)."""
        source = self.combo.currentData()
        return self.checkpoint.text().strip() if source == self.CHECKPOINT else source


class RunDialog(QDialog):
    """Model (bundled / installed / checkpoint file / preset), online or offline (with the online unit), resolution,
    frame range and whether edited tracks are kept. `start`: the first frame offered (where a cancelled run stopped)."""

    def __init__(self, video_path: Path, num_frames: int, current_frame: int = 0, parent: QWidget | None = None,
                 start: int = 0):
        super().__init__(parent)
        self.setWindowTitle("Run DVIS")
        self._video_path = video_path
        self.chooser = ModelChooser()
        self.model, self.checkpoint = self.chooser.combo, self.chooser.checkpoint
        self.mode = QComboBox()
        self.mode.addItem("Online (referring tracker, streams frames)", False)
        self.mode.addItem("Offline (temporal refiner, more stable)", True)
        self.chunk_size = QSpinBox(minimum=1, maximum=100_000, value=RunRequest.chunk_size, suffix=" frames")
        self.chunk_size.setToolTip(f"<p>{html.escape(CHUNK_SIZE_HELP)}</p>")  # rich text: Qt wraps it
        self.mode.currentIndexChanged.connect(lambda: self.chunk_size.setEnabled(not self.mode.currentData()))
        self.fast = QCheckBox("Fast CPU mode (a few % faster; masks differ slightly from the official model's)")
        self.resolution = QComboBox()
        for text, value in RESOLUTIONS:
            self.resolution.addItem(text, value)
        self.start = QSpinBox(minimum=0, maximum=max(0, num_frames - 1), value=start)
        self.stop = QSpinBox(minimum=1, maximum=max(1, num_frames), value=num_frames)
        self.start.setToolTip(f"current frame: {current_frame}")
        range_row = QHBoxLayout()
        range_row.addWidget(self.start)
        range_row.addWidget(QLabel("to (exclusive)"))
        range_row.addWidget(self.stop)
        form = QFormLayout(self)
        form.addRow("Model", self.chooser)
        form.addRow("Mode", self.mode)
        form.addRow("Online unit", self.chunk_size)
        form.addRow("Resolution", self.resolution)
        form.addRow("Speed", self.fast)
        form.addRow("Frames", range_row)
        self.keep_edited = QCheckBox("Keep tracks I edited (uncheck to let the model replace them)", checked=True)
        self.keep_edited.setToolTip("Edited tracks are kept like locked ones: the model does not change their masks.")
        form.addRow("Edited tracks", self.keep_edited)
        form.addRow(QLabel("Locked tracks are kept; new tracks that overlap kept tracks take their id.\n"
                           "The whole run is one step of Edit → Undo."))
        form.addRow(ok_cancel_buttons(self))

    def request(self) -> RunRequest:
        return RunRequest(
            video_path=self._video_path,
            model=self.chooser.source(),
            offline=bool(self.mode.currentData()),
            chunk_size=self.chunk_size.value(),
            short_edge=self.resolution.currentData(),
            start=self.start.value(),
            stop=max(self.stop.value(), self.start.value() + 1),
            keep_edited=self.keep_edited.isChecked(),
            fast=self.fast.isChecked(),
        )


class CategoryDialog(QDialog):
    """Searchable list of the categories, for relabelling a track."""

    def __init__(self, categories: CategoryTable, current: int | None = None, parent: QWidget | None = None,
                 from_frame: int | None = None):
        super().__init__(parent)
        self.setWindowTitle("Relabel class")
        self.from_frame = QCheckBox(f"Only from frame {from_frame} on (that part becomes a new track)")
        self.from_frame.setVisible(from_frame is not None)
        self.search = QLineEdit(placeholderText="Type to search the categories…")
        self.list = QListWidget()
        for category in categories:
            kind = "thing" if category.isthing else "stuff"
            item = QListWidgetItem(f"{category.id:3d}  {category.name}  ({kind})")
            item.setData(Qt.ItemDataRole.UserRole, category.id)
            self.list.addItem(item)
            if category.id == current:
                self.list.setCurrentItem(item)
        self.search.textChanged.connect(self._filter)
        self.list.itemDoubleClicked.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(self.search)
        layout.addWidget(self.list)
        layout.addWidget(self.from_frame)
        layout.addWidget(ok_cancel_buttons(self))
        self.resize(380, 500)

    def _filter(self, text: str) -> None:
        """Show categories containing `text`; the current one is the first whose name starts with it."""
        text = text.strip().lower()
        shown = []
        for row in range(self.list.count()):
            item = self.list.item(row)
            item.setHidden(text not in item.text().lower())
            if not item.isHidden():
                shown.append(item)
        names = [item.text().split()[1].lower() for item in shown]
        best = next((item for item, name in zip(shown, names) if name.startswith(text)), shown[0] if shown else None)
        if best is not None:
            self.list.setCurrentItem(best)

    def category_id(self) -> int | None:
        item = self.list.currentItem()
        return None if item is None or item.isHidden() else int(item.data(Qt.ItemDataRole.UserRole))


class ResultsDialog(QDialog):
    """A read-only two-column table (evaluation results, shortcuts)."""

    def __init__(self, title: str, rows: list[tuple[str, str]], parent: QWidget | None = None,
                 headers: tuple[str, str] = ("Metric", "Value")):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.table = QTableWidget(len(rows), 2)
        self.table.setHorizontalHeaderLabels(list(headers))
        for row, (name, value) in enumerate(rows):
            self.table.setItem(row, 0, QTableWidgetItem(name))
            self.table.setItem(row, 1, QTableWidgetItem(value))
        self.table.resizeColumnsToContents()
        self.table.verticalHeader().hide()
        # the table asks for the width of its columns, so the dialog opens wide enough to show every value whole
        self.table.setSizeAdjustPolicy(QTableWidget.SizeAdjustPolicy.AdjustToContents)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        box.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(box)


class ShortcutsDialog(ResultsDialog):
    """Every action that has a keyboard shortcut, generated from the actions themselves, then the
    view's mouse and key `gestures` ((what, how) pairs) that are not actions."""

    def __init__(self, actions: list[QAction], parent: QWidget | None = None, gestures: list[tuple[str, str]] = ()):
        rows = [(a.text().replace("&", ""), ", ".join(s.toString() for s in a.shortcuts()))
                for a in actions if a.shortcuts()]
        rows += gestures
        super().__init__("Keyboard shortcuts", rows, parent, headers=("Action", "Shortcut"))
        self.resize(max(460, self.sizeHint().width()), 560)


class ExportDialog(QDialog):
    """Format, tracks (all / selected), frame range, VIPSeg resolution and destination of an export."""

    def __init__(self, num_frames: int, selected: list[int], start_dir: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export")
        self._start_dir = start_dir
        self.kind = QComboBox()
        for kind, text in EXPORTS.items():
            self.kind.addItem(text, kind)
        self.tracks = QComboBox()
        self.tracks.addItem("All tracks", None)
        if selected:
            self.tracks.addItem(f"Selected tracks ({', '.join(map(str, selected))})", tuple(selected))
            self.tracks.setCurrentIndex(1)
        self.start = QSpinBox(minimum=0, maximum=max(0, num_frames - 1), value=0)
        self.stop = QSpinBox(minimum=1, maximum=max(1, num_frames), value=num_frames)
        range_row = QHBoxLayout()
        range_row.addWidget(self.start)
        range_row.addWidget(QLabel("to (exclusive)"))
        range_row.addWidget(self.stop)
        self.resolution = QComboBox()
        self.resolution.addItem("Source size", None)
        self.resolution.addItem("720p (VIPSeg_720P)", 720)
        self.target = QLineEdit()
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        target_row = QHBoxLayout()
        target_row.addWidget(self.target)
        target_row.addWidget(browse)
        form = QFormLayout(self)
        form.addRow("Format", self.kind)
        form.addRow("Tracks", self.tracks)
        form.addRow("Frames", range_row)
        form.addRow("VIPSeg size", self.resolution)
        form.addRow("Destination", target_row)
        form.addRow(ok_cancel_buttons(self))
        self.kind.currentIndexChanged.connect(self._update)
        self._update()

    def _update(self) -> None:
        kind = self.kind.currentData()
        dataset = kind in ("vipseg", "predictions")
        for widget in (self.tracks, self.start, self.stop):
            widget.setEnabled(not dataset)  # a dataset holds every track of every frame
        self.resolution.setEnabled(kind == "vipseg")

    def _browse(self) -> None:
        if self.kind.currentData() in FILE_EXPORTS:
            path, _ = QFileDialog.getSaveFileName(self, "Export video", self._start_dir, "MP4 video (*.mp4)")
        else:
            path = QFileDialog.getExistingDirectory(self, "Export into folder", self._start_dir)
        if path:
            self.target.setText(path)

    def request(self) -> ExportRequest:
        kind = self.kind.currentData()
        dataset = kind in ("vipseg", "predictions")
        return ExportRequest(
            kind=kind,
            target=Path(self.target.text().strip()),
            tracks=None if dataset else self.tracks.currentData(),
            start=0 if dataset else self.start.value(),
            stop=None if dataset else max(self.stop.value(), self.start.value() + 1),
            resolution=self.resolution.currentData() if kind == "vipseg" else None,
        )
