"""The main window: menus, toolbar, docks and the glue between views, controller and workers.

Every user action goes through `_run_action`, the single boundary where errors become dialogs
(`app.gui.errors.report_exception`), so no action can crash the app or half-apply an edit.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from app import __version__
from app.core.frame_range import parse_frame_range
from app.core.vipseg.merge import WrittenDataset
from app.gui import documents
from app.gui.controller import StudioController, UserActionError
from app.gui.dialogs import CategoryDialog, ExportDialog, ResultsDialog, RunDialog, ShortcutsDialog
from app.gui.errors import report_exception
from app.gui.inference import CANCELLED, InferenceRunner, RunRequest
from app.gui.object_list import ObjectList
from app.gui.stability import StabilityPanel
from app.gui.tasks import TaskRunner
from app.gui.timeline import TimelineWidget
from app.gui.video_view import VideoView

RECENT_KEY = "recent_files"
MAX_RECENT = 10
AUTOSAVE_MS = 60_000
MODE_NAMES = {"fill": "Fill", "contour": "Contour", "fill_contour": "Fill + contour", "fade": "Fade background",
              "cutout": "Cut-out"}
VIDEO_FILTER = "Videos (*.mp4 *.mkv *.avi *.mov *.webm *.m4v);;All files (*)"


class MainWindow(QMainWindow):
    """DVIS Studio's window."""

    def __init__(self, settings: QSettings | None = None, cache_dir: Path | None = None):
        super().__init__()
        self.setWindowTitle(f"DVIS Studio {__version__}")
        self.resize(1500, 920)
        self.setAcceptDrops(True)
        self.settings = settings or QSettings("DVIS Studio", "DVIS Studio")
        self.controller = StudioController(self)
        self.runner = InferenceRunner(self)
        self.tasks = TaskRunner(self)  # exports and evaluation (edits wait for them)
        self.diagnosis = TaskRunner(self)  # stability diagnostics (edits go on; stale results are recomputed)
        self._annotation_version = self._diagnosed_version = 0
        self.merger = None  # app.core.rerun.ResultMerger of the running inference
        self._demo_run = False
        self._last_request: RunRequest | None = None
        self.last_scores: dict[str, float] = {}
        self.cache_dir = cache_dir or Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.CacheLocation))
        self.actions: dict[str, QAction] = {}

        self.view = VideoView(self.controller)
        self.timeline = TimelineWidget(self.controller)
        self.objects = ObjectList(self.controller)
        self.stability = StabilityPanel(self.controller)
        self._build_central()
        self._build_docks()
        self._build_status_bar()
        self._build_actions()
        self._build_menus()
        self._build_toolbar()

        self._refresh_timer = QTimer(self, singleShot=True, interval=150)
        self._refresh_timer.timeout.connect(self._refresh_panels)
        self._play_timer = QTimer(self)
        self._play_timer.timeout.connect(self._play_tick)
        self._autosave_timer = QTimer(self, interval=AUTOSAVE_MS)
        self._autosave_timer.timeout.connect(self.autosave)
        self._autosave_timer.start()

        c = self.controller
        c.loaded.connect(self._on_loaded)
        c.frame_changed.connect(self._on_frame_changed)
        c.annotation_changed.connect(self._on_annotation_changed)
        c.display_changed.connect(self.view.redraw)
        c.selection_changed.connect(self._update_actions)
        c.selection_changed.connect(self.view.redraw)
        self.view.hovered.connect(lambda x, y: self.hover_label.setText(self.controller.describe_pixel(x, y)))
        self.view.paint_stroke.connect(lambda tool, points, radius: self._run_action(
            "Paint", lambda: self.controller.paint(tool, points, radius)))
        self.runner.frame_ready.connect(self._on_frame_result)
        self.runner.progress_text.connect(self._on_progress)
        self.runner.running_changed.connect(self._on_running_changed)
        self.runner.finished.connect(self._on_inference_finished)
        self.runner.failed.connect(self._on_inference_failed)
        self.tasks.progress.connect(self._on_task_progress)
        self.tasks.failed.connect(self._on_task_failed)
        self._task_done: Callable[[object], None] | None = None
        self.tasks.finished.connect(self._on_task_finished)
        self.diagnosis.finished.connect(self._on_diagnosed)
        self.diagnosis.failed.connect(self._on_diagnosis_failed)
        self._update_actions()
        self.restoreGeometry(self.settings.value("window/geometry", b""))
        self.restoreState(self.settings.value("window/state", b""))

    # ================================================================== layout
    def _build_central(self) -> None:
        self.play_button = QPushButton("▶")
        self.play_button.setFixedWidth(36)
        self.play_button.setToolTip("Play / pause (Space)")
        self.play_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Space is the play shortcut, not a button press
        self.play_button.clicked.connect(lambda: self.actions["play"].trigger())
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.valueChanged.connect(self.controller.seek)
        self.frame_spin = QSpinBox()
        self.frame_spin.valueChanged.connect(self.controller.seek)
        self.frame_label = QLabel("no video")
        transport = QHBoxLayout()
        transport.addWidget(self.play_button)
        transport.addWidget(self.slider, 1)
        transport.addWidget(self.frame_spin)
        transport.addWidget(self.frame_label)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.view, 1)
        layout.addLayout(transport)
        self.setCentralWidget(central)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._view_context_menu)

    def _build_docks(self) -> None:
        self.objects_dock = self._dock("Objects", self.objects, Qt.DockWidgetArea.RightDockWidgetArea)
        self.stability_dock = self._dock("Stability", self.stability, Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.objects_dock, self.stability_dock)
        self.objects_dock.raise_()
        self.timeline_dock = self._dock("Timeline", self.timeline, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.resizeDocks([self.objects_dock], [500], Qt.Orientation.Horizontal)
        self.resizeDocks([self.timeline_dock], [260], Qt.Orientation.Vertical)

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_status_bar(self) -> None:
        self.status_label = QLabel("Open a video, an image folder, a VIPSeg dataset or a project (or drop one here).")
        self.progress = QProgressBar(maximumWidth=260, visible=False)
        self.hover_label = QLabel()
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(self.hover_label)
        self.statusBar().addPermanentWidget(self.progress)

    def _action(self, name: str, text: str, slot: Callable[[], object] | None, shortcut=None, checkable=False,
                tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            shortcuts = shortcut if isinstance(shortcut, list) else [shortcut]
            action.setShortcuts([QKeySequence(s) for s in shortcuts])
        action.setCheckable(checkable)
        if tip:
            action.setStatusTip(tip)
        if slot is not None:
            action.triggered.connect(lambda *_: self._run_action(text.replace("&", "").rstrip("…"), slot))
        self.addAction(action)  # shortcuts work even while the menu bar is hidden
        self.actions[name] = action
        return action

    def _build_actions(self) -> None:
        c, a = self.controller, self._action
        a("open_video", "&Open Video…", self.open_video_dialog, QKeySequence.StandardKey.Open)
        a("open_folder", "Open &Image Folder…", self.open_folder_dialog)
        a("open_vipseg", "Open &VIPSeg Dataset…", self.open_vipseg_dialog)
        a("open_project", "Open &Project…", self.open_project_dialog, "Ctrl+Shift+O")
        a("save", "&Save Project", self.save, QKeySequence.StandardKey.Save)
        a("save_as", "Save Project &As…", self.save_as, "Ctrl+Shift+S")
        a("export", "&Export…", self.export_dialog, "Ctrl+E")
        a("quit", "&Quit", self.close, QKeySequence.StandardKey.Quit)

        undo = a("undo", "&Undo", c.undo, "Ctrl+Z")
        redo = a("redo", "&Redo", c.redo, ["Ctrl+Shift+Z", "Ctrl+Y"])
        c.undo_stack.undoTextChanged.connect(lambda text: undo.setStatusTip(f"Undo {text}"))
        c.undo_stack.redoTextChanged.connect(lambda text: redo.setStatusTip(f"Redo {text}"))
        c.undo_stack.indexChanged.connect(self._update_actions)
        a("merge", "&Merge Selected Tracks", c.merge_selected, "M", tip="Merge the selected tracks into the first one")
        a("split", "S&plit Track at Current Frame", c.split_selected, "S")
        a("swap", "S&wap Two Tracks from Current Frame", c.swap_selected, "W")
        a("delete", "&Delete Track", c.delete_selected, QKeySequence.StandardKey.Delete)
        a("delete_range", "Delete Track in &Range…", self.delete_range_dialog, "Shift+Del")
        a("relabel", "Re&label Class…", self.relabel_dialog, "C")
        a("lock", "&Lock / Unlock Track", c.toggle_locked, "L")
        a("new_track", "&New Track…", self.new_track_dialog, "N")
        a("select_none", "Clear Selection", lambda: c.select(None), "Esc")
        tools = QActionGroup(self)
        for name, text, key in (("select", "Select / Pan", "V"), ("brush", "Brush", "B"), ("eraser", "Eraser", "E"),
                                ("fill", "Fill", "G")):
            action = a(f"tool_{name}", text, lambda name=name: self.view.set_tool(name), key, checkable=True)
            tools.addAction(action)
        self.actions["tool_select"].setChecked(True)
        a("brush_smaller", "Smaller Brush", lambda: self._brush_size(-2), "[")
        a("brush_larger", "Larger Brush", lambda: self._brush_size(+2), "]")

        modes = QActionGroup(self)
        for index, (mode, text) in enumerate(MODE_NAMES.items(), start=1):
            action = a(f"mode_{mode}", text, lambda mode=mode: c.set_display(mode=mode), f"{index}", checkable=True)
            modes.addAction(action)
        self.actions["mode_fill"].setChecked(True)
        a("labels", "Class + ID &Labels", lambda: c.set_display(labels=self.actions["labels"].isChecked()), "T",
          checkable=True).setChecked(True)
        a("hide", "&Hide / Show Selected", c.toggle_hidden_selected, "H")
        a("show_all", "Show &All Tracks", lambda: c.set_display(hidden=set()), "Shift+H")
        a("zoom_in", "Zoom &In", lambda: self.view.zoom(1.25), QKeySequence.StandardKey.ZoomIn)
        a("zoom_out", "Zoom &Out", lambda: self.view.zoom(0.8), QKeySequence.StandardKey.ZoomOut)
        a("fit", "&Fit to Window", self.view.fit, "F")
        a("fit_timeline", "Fit &Timeline", self.timeline.fit, "Shift+F")

        a("play", "&Play / Pause", self.toggle_play, "Space")
        a("next", "Next Frame", lambda: c.step(1), "Right")
        a("prev", "Previous Frame", lambda: c.step(-1), "Left")
        a("next10", "Forward 10 Frames", lambda: c.step(10), "Shift+Right")
        a("prev10", "Back 10 Frames", lambda: c.step(-10), "Shift+Left")
        a("next_edge", "Next Span Edge of Selected Track", lambda: c.jump_edge(+1), "Alt+Right")
        a("prev_edge", "Previous Span Edge of Selected Track", lambda: c.jump_edge(-1), "Alt+Left")
        a("first", "First Frame", lambda: c.seek(0), "Home")
        a("last", "Last Frame", lambda: c.seek(c.num_frames - 1), "End")
        a("goto", "&Go to Frame…", lambda: (self.frame_spin.setFocus(), self.frame_spin.selectAll()), "Ctrl+G")

        a("run", "&Run DVIS…", self.run_dialog, "Ctrl+R")
        a("pause", "&Pause Inference", self.toggle_pause, "Ctrl+P", checkable=True)
        a("cancel", "&Cancel Inference / Export", self.cancel_work, "Ctrl+.")
        a("diagnose", "Stability &Diagnostics", self.run_diagnostics, "Ctrl+D")
        a("evaluate", "&Evaluate against Ground Truth…", self.evaluate_dialog)
        a("shortcuts", "&Keyboard Shortcuts", self.show_shortcuts, "F1")
        a("about", "&About", lambda: QMessageBox.about(self, "DVIS Studio", f"DVIS Studio {__version__}"))

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        for name in ("open_video", "open_folder", "open_vipseg", "open_project"):
            file_menu.addAction(self.actions[name])
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu.addSeparator()
        for name in ("save", "save_as", "export"):
            file_menu.addAction(self.actions[name])
        file_menu.addSeparator()
        file_menu.addAction(self.actions["quit"])
        self.edit_menu = bar.addMenu("&Edit")
        self._add(self.edit_menu, "undo redo | merge split swap delete delete_range relabel lock new_track | "
                                  "tool_select tool_brush tool_eraser tool_fill brush_smaller brush_larger | select_none")
        view_menu = bar.addMenu("&View")
        self._add(view_menu, "mode_fill mode_contour mode_fill_contour mode_fade mode_cutout | labels hide show_all | "
                             "zoom_in zoom_out fit fit_timeline")
        view_menu.addSeparator()
        for dock in (self.objects_dock, self.stability_dock, self.timeline_dock):
            view_menu.addAction(dock.toggleViewAction())
        self._add(bar.addMenu("&Playback"), "play | next prev next10 prev10 next_edge prev_edge first last goto")
        self._add(bar.addMenu("&Model"), "run pause cancel")
        self._add(bar.addMenu("&Analyze"), "diagnose evaluate")
        self._add(bar.addMenu("&Help"), "shortcuts about")
        for name in ("merge", "split", "swap", "delete", "relabel", "lock", "hide"):
            self.objects.table.addAction(self.actions[name])

    def _add(self, menu: QMenu, names: str) -> None:
        for name in names.split():
            if name == "|":
                menu.addSeparator()
            else:
                menu.addAction(self.actions[name])

    def _build_toolbar(self) -> None:
        bar = QToolBar("Main", self)
        bar.setObjectName("main toolbar")
        self.addToolBar(bar)
        for name in ("open_video", "save", "run", "pause", "cancel"):
            bar.addAction(self.actions[name])
        bar.addSeparator()
        for name in ("undo", "redo", "tool_select", "tool_brush", "tool_eraser", "tool_fill"):
            bar.addAction(self.actions[name])
        bar.addSeparator()
        self.mode_combo = QComboBox()
        for mode, text in MODE_NAMES.items():
            self.mode_combo.addItem(text, mode)
        self.mode_combo.currentIndexChanged.connect(
            lambda: self.actions[f"mode_{self.mode_combo.currentData()}"].trigger())
        bar.addWidget(QLabel(" Masks "))
        bar.addWidget(self.mode_combo)
        self.opacity = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100, value=50, maximumWidth=120)
        self.opacity.setToolTip("Mask opacity")
        self.opacity.valueChanged.connect(lambda v: self.controller.set_display(opacity=v / 100))
        bar.addWidget(QLabel(" Opacity "))
        bar.addWidget(self.opacity)
        self.labels_box = QCheckBox("Labels", checked=True)
        self.labels_box.toggled.connect(lambda on: self.actions["labels"].setChecked(on) or
                                        self.controller.set_display(labels=on))
        bar.addWidget(self.labels_box)

    # ============================================================ the boundary
    def _run_action(self, title: str, action: Callable[[], object]) -> object:
        """Run a user action; any error becomes a dialog and the app keeps going."""
        try:
            return action()
        except Exception as error:  # noqa: BLE001 - this is the action boundary
            report_exception(self, title, error)
            return None

    # ================================================================ opening
    def open_path(self, path: str | Path, kind: str | None = None) -> None:
        """Open whatever `path` is (`kind`: as `documents.kind_of` says, unless the menu item chose it): project
        folder, VIPSeg dataset, image folder or video file. Unsaved edits are asked about, running work stopped."""
        path = Path(path)
        kind = kind or documents.kind_of(path)
        if self.controller.modified and not self.confirm_discard():
            return
        self._stop_work()
        if kind == "project":
            self.controller.open_project(path, locate_video=self._locate_moved_video)
        elif kind == "vipseg":
            self._open_vipseg(path)
        else:
            self.controller.open_video(path)
        self._add_recent(path)

    def open_initial(self, path: str | None) -> None:
        """Start-up: open `path`, or the demo clip and run the bundled model on it."""
        if path:
            self._run_action("Open", lambda: self.open_path(path))
        else:
            self._run_action("Demo", self.open_demo)

    def open_demo(self) -> None:
        clip = documents.demo_clip(self.cache_dir)
        self.controller.open_video(clip)
        self._demo_run = True  # a missing bundled model is a status message here, not an error dialog
        self.start_inference(RunRequest(clip))

    def _locate_moved_video(self, missing: Path) -> Path | None:
        """Ask where a project's video went (it was moved or renamed)."""
        QMessageBox.information(self, "Video moved", f"The project's video {missing} is missing. Please locate it.")
        path, _ = QFileDialog.getOpenFileName(self, f"Locate {missing.name}", str(missing.parent), VIDEO_FILTER)
        return Path(path) if path else None

    def _pick_vipseg_video(self, root: Path, title: str, then: Callable[[object, object], None]) -> None:
        """Read the dataset's JSON once in the background, ask which video, then call `then(categories, video)`."""

        def chosen(dataset) -> None:
            categories, videos = dataset
            names = [video.video_id for video in videos]
            name = names[0]
            if len(names) > 1:
                name, ok = QInputDialog.getItem(self, title, f"{len(names)} videos in {root.name}:", names, 0, False)
                if not ok:
                    self.status_label.setText("Ready.")
                    return
            then(categories, videos[names.index(name)])

        self._start_task(f"Reading {root}…", documents.read_vipseg_job(root), chosen)

    def _open_vipseg(self, root: Path) -> None:
        def import_video(categories, video) -> None:
            def opened(document) -> None:
                self.controller.open_imported(*document)
                self.status_label.setText(f"Opened {video.video_id} from {root}")

            self._start_task(f"Importing {video.video_id}…", documents.import_vipseg_job(categories, video), opened)

        self._pick_vipseg_video(root, "Open VIPSeg video", import_video)

    def open_video_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open video", self._last_dir(), VIDEO_FILTER)
        if path:
            self.open_path(path)

    def open_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open image folder", self._last_dir())
        if path:
            self.open_path(path, kind="video")

    def open_vipseg_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open VIPSeg dataset root", self._last_dir())
        if path:
            self.open_path(path, kind="vipseg")

    def open_project_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open project folder", self._last_dir())
        if path:
            self.open_path(path)

    def _last_dir(self) -> str:
        recent = self.recent_files()
        return str(Path(recent[0]).parent) if recent else str(Path.home())

    def recent_files(self) -> list[str]:
        value = self.settings.value(RECENT_KEY, [])
        return [value] if isinstance(value, str) else list(value or [])

    def _add_recent(self, path: Path) -> None:
        entry = str(path.resolve())
        recent = [entry] + [p for p in self.recent_files() if p != entry]
        self.settings.setValue(RECENT_KEY, recent[:MAX_RECENT])

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for path in self.recent_files():
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda *_, p=path: self._run_action("Open recent", lambda: self.open_path(p)))
        if self.recent_menu.isEmpty():
            self.recent_menu.addAction("(none)").setEnabled(False)

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        urls = [u for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            event.acceptProposedAction()
            self._run_action("Open", lambda: self.open_path(urls[0].toLocalFile()))

    # ================================================================== saving
    def save(self) -> None:
        if self.controller.video is None:
            return
        if self.controller.project is None:
            self.save_as()
            return
        self.controller.save_project()
        self._update_title()
        self.status_label.setText(f"Saved {self.controller.project.folder}")

    def save_as(self) -> None:
        if self.controller.video is None:
            return
        folder = QFileDialog.getExistingDirectory(self, "Choose an empty folder for the project", self._last_dir())
        if folder:
            saved = self.controller.save_project(folder)
            self._update_title()
            self._add_recent(saved)
            self.status_label.setText(f"Saved {saved}")

    def autosave(self) -> None:
        """Autosave timer: save changes into the project (crash-safe), except while an export reads the annotation."""
        if self.tasks.running:
            return  # the next tick saves
        if self._run_action("Autosave", self.controller.autosave):
            self._update_title()
            self.status_label.setText(f"Autosaved {self.controller.project.folder}")

    def export_dialog(self) -> None:
        c = self.controller
        if c.video is None:
            return
        dialog = ExportDialog(c.num_frames, c.selection, self._last_dir(), self)
        if dialog.exec():
            request = dialog.request()
            if not str(request.target) or str(request.target) == ".":
                raise UserActionError("Choose where to export (the Destination field).")
            self.start_export(request)

    def start_export(self, request: documents.ExportRequest) -> None:
        """Export in a worker thread; the status bar says where it went."""
        job = documents.export_job(self.controller, request)

        def done(result) -> None:  # editor exports return an ExportResult, cancelled or not; VIPSeg a WrittenDataset
            cancelled = getattr(result, "cancelled", False)
            where = result.summary() if isinstance(result, WrittenDataset) else request.target
            self.status_label.setText(f"Export cancelled; the files in {request.target} so far are complete." if cancelled
                                      else f"Exported to {where}")

        self._start_task(f"Exporting to {request.target}…", job, done)

    # ===================================================== background jobs
    def _start_task(self, text: str, job, done: Callable[[object], None]) -> None:
        if self.tasks.running:
            raise UserActionError("Another export or evaluation is still running; wait for it to finish.")
        self._task_done = done
        self.controller.busy = "An export or evaluation is running"
        self.status_label.setText(text)
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.tasks.start(job)
        self._update_actions()

    def _on_task_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _on_task_finished(self, result: object) -> None:
        self.controller.busy = None
        self._update_actions()
        self.progress.setVisible(self.runner.running)
        done, self._task_done = self._task_done, None
        if done is not None:
            self._run_action("Finishing", lambda: done(result))

    def _on_task_failed(self, error: object) -> None:
        self.controller.busy = None
        self._update_actions()
        self.progress.setVisible(self.runner.running)
        self._task_done = None
        from app.core.vipseg import ExportCancelled  # a VIPSeg export stops by raising it: not a failure

        if isinstance(error, ExportCancelled):
            self.status_label.setText(f"Cancelled. {error}")
            return
        self.status_label.setText("Failed.")
        report_exception(self, "Background job failed", error)

    # ============================================================= inference
    def run_dialog(self) -> None:
        c = self.controller
        if c.video is None:
            raise UserActionError("Open a video first (File → Open Video), then run DVIS on it.")
        dialog = RunDialog(Path(c.video.path), c.num_frames, c.frame_index, self)
        if dialog.exec():
            self.start_inference(dialog.request())

    def start_inference(self, request: RunRequest) -> None:
        if self.runner.running:
            raise UserActionError("DVIS is already running; cancel it first to start another run.")
        from app.core.rerun import ResultMerger

        self.merger = ResultMerger(self.controller.annotation)
        self.controller.undo_stack.clear()  # model output is not an undoable edit; older undo steps would not fit it
        self._last_request = request
        self.controller.busy = "DVIS is running"
        self.runner.start(request)

    def cancel_work(self) -> None:
        """Cancel the running inference (finished frames stay) or background export / evaluation."""
        if self.runner.running:
            self.runner.cancel()
        elif self.tasks.running:
            self.tasks.cancel()

    def toggle_pause(self) -> None:
        self.runner.pause(self.actions["pause"].isChecked())

    def _on_frame_result(self, result, offset: int) -> None:
        self._run_action("Inference result", lambda: self.merger.add(result, offset))

    def _on_progress(self, text: str, done: int, total: int) -> None:
        self.status_label.setText(text)
        self.progress.setVisible(True)
        self.progress.setRange(0, max(total, 0))
        self.progress.setValue(done)

    def _on_running_changed(self) -> None:
        if not self.runner.running:
            self.controller.busy = None
            self.actions["pause"].setChecked(False)
            self.progress.setVisible(self.tasks.running)
        self._update_actions()

    def _on_inference_finished(self, outcome: str) -> None:
        self._run_action("Inference result", self.merger.finish)
        self.merger = None
        self._demo_run = False
        if self.controller.project is not None:
            request = self._last_request
            self.controller.project.model = {"model": str(request.model), "offline": request.offline,
                                             "short_edge": request.short_edge, "frames": [request.start, request.stop],
                                             "fast": request.fast}
        self.status_label.setText("Cancelled; the finished frames are kept." if outcome == CANCELLED else "Inference finished.")
        self._run_action("Diagnostics", self.run_diagnostics)

    def _on_inference_failed(self, error: object) -> None:
        self.merger = None
        demo, self._demo_run = self._demo_run, False
        if demo:
            self.status_label.setText(f"Demo clip loaded; the bundled model could not run ({error}). Use Model → Run DVIS.")
        else:
            self.status_label.setText("Inference failed.")
            report_exception(self, "Inference failed", error)

    def run_diagnostics(self) -> None:
        """Stability diagnostics in their own worker (a long video takes seconds) without blocking edits:
        a result computed while the annotation changed is stale, so it is recomputed instead of shown."""
        if self.controller.annotation is None or self.diagnosis.running:
            return
        self._diagnosed_version = self._annotation_version
        self.diagnosis.start(documents.diagnostics_job(self.controller.annotation))

    def _on_diagnosed(self, diagnostics: list) -> None:
        if self._diagnosed_version != self._annotation_version:
            self.run_diagnostics()
            return
        c = self.controller
        c.diagnostics = diagnostics
        self._refresh_panels()
        self.status_label.setText(f"{len(c.annotation.tracks)} tracks, {len(diagnostics)} stability markers "
                                  "(timeline and Stability panel).")

    def _on_diagnosis_failed(self, error: object) -> None:
        if self._diagnosed_version != self._annotation_version:
            self.run_diagnostics()  # the annotation changed under the reader: try again on the new state
        else:
            report_exception(self, "Stability diagnostics failed", error)

    def evaluate_dialog(self) -> None:
        if self.controller.annotation is None:
            return
        root = QFileDialog.getExistingDirectory(self, "Ground truth: VIPSeg dataset root", self._last_dir())
        if not root:
            return
        self._pick_vipseg_video(Path(root), "Ground-truth video to compare with", self.start_evaluation)

    def start_evaluation(self, categories, video) -> None:
        """Score the annotation against `video` of a ground truth read by `documents.read_vipseg_job`."""
        job = documents.evaluation_job(self.controller.annotation, categories, video)
        self._start_task("Evaluating…", job, self._show_scores)

    def _show_scores(self, scores: dict | None) -> None:
        if scores is None:
            self.status_label.setText("Evaluation cancelled.")
            return
        self.last_scores = scores
        rows = [(name, f"{value:.4f}" if isinstance(value, float) else str(value)) for name, value in scores.items()]
        self.status_label.setText("  ".join(f"{n} {v}" for n, v in rows[:3]))
        ResultsDialog("Evaluation", rows, self).open()

    # ================================================================== edits
    def relabel_dialog(self) -> None:
        c = self.controller
        if c.selected is None:
            raise UserActionError("Select a track first (click its mask or its row in the object list).")
        dialog = CategoryDialog(c.categories, c.annotation.tracks[c.selected].category_id, self, from_frame=c.frame_index)
        if dialog.exec() and dialog.category_id() is not None:
            c.relabel_selected(dialog.category_id(), dialog.from_frame.isChecked())

    def new_track_dialog(self) -> None:
        if self.controller.annotation is None:
            return
        dialog = CategoryDialog(self.controller.categories, None, self)
        dialog.setWindowTitle("New track: choose its class")
        if dialog.exec() and dialog.category_id() is not None:
            self.controller.new_track(dialog.category_id())
            self.view.set_tool("brush")
            self.actions["tool_brush"].setChecked(True)

    def delete_range_dialog(self) -> None:
        c = self.controller
        if c.selected is None:
            raise UserActionError("Select a track first, then delete it in a frame range.")
        last = c.num_frames - 1
        text, ok = QInputDialog.getText(self, "Delete in range", f"Frames to delete from track {c.selected} "
                                        f"(first-last, inclusive, 0-{last}):", text=f"{c.frame_index}-{last}")
        if ok:
            frames = parse_frame_range(text, c.num_frames)
            c.delete_selected(frames.start, frames.stop)

    def _brush_size(self, delta: int) -> None:
        self.view.brush_radius = max(1, self.view.brush_radius + delta)
        self.status_label.setText(f"Brush radius {self.view.brush_radius} px")

    def _view_context_menu(self, pos) -> None:
        c = self.controller
        if c.video is None:
            return
        x, y = self.view.image_point(pos)
        if c.annotation.track_at(c.frame_index, x, y) not in c.selection:
            c.select_at(x, y)
        menu = QMenu(self)
        self._add(menu, "merge split swap delete delete_range relabel lock hide | new_track")
        menu.popup(self.view.viewport().mapToGlobal(pos))

    def show_shortcuts(self) -> None:
        ShortcutsDialog(list(self.actions.values()), self).open()

    # ================================================================ playback
    def toggle_play(self) -> None:
        if self._play_timer.isActive():
            self._play_timer.stop()
            self.play_button.setText("▶")
        elif self.controller.video is not None:
            fps = self.controller.video.fps or 25.0
            self._play_timer.start(max(10, int(1000 / fps)))
            self.play_button.setText("⏸")

    def _play_tick(self) -> None:
        c = self.controller
        if c.frame_index >= c.num_frames - 1:
            self.toggle_play()
        else:
            c.step(1)

    # ============================================================ refreshing
    def _on_loaded(self) -> None:
        self._annotation_version += 1  # diagnostics of the previous document are stale
        c = self.controller
        self.view.reset_fit()
        for widget in (self.slider, self.frame_spin):
            widget.blockSignals(True)
            widget.setRange(0, max(0, c.num_frames - 1))
            widget.blockSignals(False)
        self._refresh_panels()
        self.timeline.fit()
        self._update_title()
        self._update_actions()
        hint = "" if c.annotation.tracks else " — Model → Run DVIS (Ctrl+R) to segment and track it"
        self.status_label.setText(f"{Path(c.video.path).name}: {c.num_frames} frames, {c.video.width}x{c.video.height}, "
                                  f"{c.video.fps:.2f} fps{hint}")

    def _on_frame_changed(self, index: int) -> None:
        for widget in (self.slider, self.frame_spin):
            widget.blockSignals(True)
            widget.setValue(index)
            widget.blockSignals(False)
        self.frame_label.setText(f"/ {self.controller.num_frames - 1}")
        self._run_action("Show frame", self.view.redraw)

    def _on_annotation_changed(self, frames, tracks) -> None:
        self._annotation_version += 1
        if frames is None or self.controller.frame_index in frames:
            self.view.redraw()
        if not self._refresh_timer.isActive():  # panels refresh at most every 150 ms (500 ms while frames stream in)
            self._refresh_timer.start(500 if self.runner.running else 150)
        self._update_title()

    def _refresh_panels(self) -> None:
        self.timeline.refresh()
        self.objects.refresh()
        if self.stability_dock.isVisible() or not self.runner.running:
            self.stability.refresh()

    def _update_title(self) -> None:
        c = self.controller
        name = Path(c.video.path).name if c.video is not None else ""
        dirty = " *" if c.modified else ""
        self.setWindowTitle(f"{name}{dirty} — DVIS Studio {__version__}" if name else f"DVIS Studio {__version__}")

    def _update_actions(self) -> None:
        c = self.controller
        has_video = c.video is not None
        count = len(c.selection)
        idle = c.busy is None  # no edits while a worker reads or writes the annotation
        enabled = {
            "save": has_video and idle, "save_as": has_video and idle, "export": has_video and idle,
            "run": has_video and idle, "pause": self.runner.running, "cancel": self.runner.running or self.tasks.running,
            "merge": idle and count >= 2, "swap": idle and count == 2, "split": idle and count == 1,
            "delete": idle and count >= 1, "delete_range": idle and count == 1, "relabel": idle and count == 1,
            "lock": idle and count >= 1, "hide": count >= 1, "new_track": idle and has_video, "diagnose": has_video,
            "evaluate": has_video and idle, "undo": idle and c.undo_stack.canUndo(), "redo": idle and c.undo_stack.canRedo(),
        }
        for name, on in enabled.items():
            self.actions[name].setEnabled(on)

    # ================================================================== close
    def _stop_work(self) -> None:
        """Stop inference and background jobs and wait for them (before replacing the document or closing)."""
        for runner in (self.runner, self.tasks, self.diagnosis):
            runner.stop()
        self.merger = None
        self.controller.busy = None
        self.progress.setVisible(False)
        self._update_actions()

    def closeEvent(self, event) -> None:
        c = self.controller
        if c.modified and not self.confirm_discard():
            event.ignore()
            return
        self._stop_work()
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        event.accept()

    def confirm_discard(self) -> bool:
        """Ask before closing with unsaved edits (save, discard or stay)."""
        answer = QMessageBox.question(
            self, "Unsaved edits", "Save your edits before closing?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Save:
            self._run_action("Save", self.save)
            return not self.controller.modified
        return answer == QMessageBox.StandardButton.Discard
