"""Model → Models…: the installed models and the catalogue; add a file, download (progress, cancel), remove.

Adding (which loads the checkpoint to check it) and downloading run in a `Worker`, so the window stays
responsive; the library itself is `app.core.models.ModelLibrary`.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import ModelLibraryError, UserError
from app.core.models import ModelLibrary, catalogue_entries
from app.core.progress import Progress, Rate, threaded
from app.gui.errors import report_exception
from app.gui.worker import Worker

KIB = 1024  # the progress bar counts KiB: its int range overflows past 2 GiB


def _table(headers: list[str], rows: list[list[str]]) -> QTableWidget:
    table = QTableWidget(len(rows), len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().hide()
    for row, values in enumerate(rows):
        for column, value in enumerate(values):
            table.setItem(row, column, QTableWidgetItem(value))
    table.resizeColumnsToContents()
    return table


def _selected_name(table: QTableWidget) -> str | None:
    rows = table.selectionModel().selectedRows()
    return table.item(rows[0].row(), 0).text() if rows else None


class ModelsDialog(QDialog):
    def __init__(self, library: ModelLibrary | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.library = library or ModelLibrary()
        self.runner = Worker(self)
        self.runner.progress.connect(self._on_progress)
        self.runner.returned.connect(self._on_finished)
        self.runner.errored.connect(self._on_failed)
        self.runner.aborted.connect(self._on_aborted)
        self._rate = Rate()  # MB/s of the running download (from its first report: a resume's offset)
        self._cancelled_text = ""
        self.installed = _table(["Name", "Architecture", "Family", "Size", "Source"], [])
        entries = catalogue_entries()
        self.catalogue = _table(
            ["Name", "Family", "Backbone", "Mode", "VPQ", "Get it"],
            [[e.name, e.family, e.backbone, e.mode, f"{e.vpq:.1f}",
              ("download" if e.direct_url else "browser, then Add…") + ("" if e.supported else " (not supported yet)")]
             for e in entries])
        self.add_button = QPushButton("Add…")
        self.download_button = QPushButton("Download")
        self.remove_button = QPushButton("Remove")
        self.cancel_button = QPushButton("Cancel", enabled=False)
        self.add_button.clicked.connect(self._add)
        self.download_button.clicked.connect(self.download_selected)
        self.remove_button.clicked.connect(self.remove_selected)
        self.cancel_button.clicked.connect(self.runner.quit)
        self.progress = QProgressBar(visible=False)
        self.status = QLabel(wordWrap=True)
        self.status.setOpenExternalLinks(True)
        buttons = QHBoxLayout()
        for button in (self.add_button, self.download_button, self.remove_button, self.cancel_button):
            buttons.addWidget(button)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"Installed (in {self.library.folder})"))
        layout.addWidget(self.installed)
        layout.addWidget(QLabel("Catalogue: official VIPSeg checkpoints"))
        layout.addWidget(self.catalogue)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(close)
        self.resize(760, 560)
        self.refresh()

    def refresh(self) -> None:
        try:
            models = self.library.list()
        except ModelLibraryError as error:
            models = []
            self.status.setText(str(error))
        self.installed.setRowCount(len(models))
        for row, model in enumerate(models):
            for column, value in enumerate((model.name, f"{model.preset} ({model.mode})", model.family,
                                            f"{model.size / 1e6:.1f} MB", model.source)):
                self.installed.setItem(row, column, QTableWidgetItem(value))
        self.installed.resizeColumnsToContents()

    # ------------------------------------------------------------------ actions
    def _add(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Add a checkpoint", "", "Checkpoints (*.pth *.pt);;All files (*)")
        if not path:
            return
        selected = _selected_name(self.catalogue)  # the catalogue row the user downloaded it for, if any
        name, ok = QInputDialog.getText(self, "Add a checkpoint", "Install as:", text=selected or Path(path).stem)
        if ok and name.strip():
            self.add_file(path, name.strip())

    def add_file(self, path: str, name: str | None = None) -> None:
        """Check and install `path` in the worker (loading a large checkpoint takes seconds)."""
        self._start(f"Checking {path}…", threaded(lambda report, cancelled: self.library.add(path, name)))

    def download_selected(self) -> None:
        name = _selected_name(self.catalogue)
        if name is None:
            self.status.setText("Select a model in the catalogue first.")
            return
        entry = next(e for e in catalogue_entries() if e.name == name)
        if not entry.supported:
            self.status.setText(entry.unsupported_message())
            return
        if not entry.direct_url:
            self.status.setText(entry.where_to_get(f"then press Add… and install the file as {entry.name}."))
            return

        def download(report, cancelled):
            return self.library.download_entry(entry, progress=lambda p: report(Progress(p.done, p.total)),
                                               cancel=cancelled)

        self._start(f"Downloading {name}…", threaded(download),
                    cancelled=f"Download of {name} cancelled; downloading it again resumes it.")

    def remove_selected(self) -> None:
        name = _selected_name(self.installed)
        if name is None:
            self.status.setText("Select an installed model first.")
            return
        answer = QMessageBox.question(self, "Remove model", f"Delete the installed model {name} and its file?")
        if answer == QMessageBox.StandardButton.Yes:
            try:
                self.library.remove(name)
            except ModelLibraryError as error:
                self.status.setText(str(error))
            else:
                self.status.setText(f"Removed {name}.")
            self.refresh()

    # ------------------------------------------------------------------ worker
    def _start(self, text: str, job, cancelled: str = "Cancelled.") -> None:
        if self.runner.running:
            self.status.setText("Wait for the current job to finish, or cancel it.")
            return
        self._rate = Rate()
        self._cancelled_text = cancelled
        self.status.setText(text)
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self._set_busy(True)
        self.runner.start(job)

    def _set_busy(self, busy: bool) -> None:
        for button in (self.add_button, self.download_button, self.remove_button):
            button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)

    def _on_progress(self, progress: Progress) -> None:
        self._rate.update(progress)
        done, total = progress.done, progress.total
        if total:
            self.progress.setRange(0, total // KIB)
            self.progress.setValue(done // KIB)
        self.status.setText(f"{done / 1e6:.1f}" + (f" of {total / 1e6:.1f}" if total else "")
                            + f" MB, {(self._rate.per_second or 0) / 1e6:.1f} MB/s")

    def _finish(self, text: str) -> None:
        self.progress.setVisible(False)
        self._set_busy(False)
        self.status.setText(text)
        self.refresh()

    def _on_finished(self, model) -> None:
        self._finish(f"Installed {model.name} ({model.preset}, {model.mode}); choose it in Model → Run DVIS.")

    def _on_aborted(self) -> None:
        self._finish(self._cancelled_text)

    def _on_failed(self, error: object) -> None:
        """A user error (offline, bad file, checksum) is a message in the dialog; anything else a dialog."""
        if isinstance(error, UserError):
            self._finish(str(error))
        else:
            self._finish("")
            report_exception(self, "Models", error)

    def done(self, result: int) -> None:
        self.runner.stop()  # closing cancels a running download (its part is kept for resuming)
        super().done(result)
