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
    QApplication,
    QCheckBox,
    QComboBox,
    QDialog,
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
    QStyle,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from app import __version__
from app.core import edits, jobs
from app.core.frame_range import parse_frame_range
from app.core.inference import RunRequest
from app.core.progress import Progress
from app.core.project import new_project_folder
from app.core.proxy import ProxyStore
from app.core.session import Session
from app.core.vipseg.merge import WrittenDataset
from app.gui.autosave import Autosaver, offer_recovery
from app.gui.controller import StudioController, UserActionError
from app.gui.diagnostics import Diagnostics
from app.gui.dialogs import CategoryDialog, ExportDialog, ResultsDialog, RunDialog, ShortcutsDialog
from app.gui.errors import report_exception
from app.gui.finetune_dialog import open_finetune_dialog
from app.gui.object_list import ObjectList
from app.gui.opening import VIDEO_FILTER, Opener, choose_vipseg_video
from app.gui.playback import Player
from app.gui.prompt_tool import GESTURES as PROMPT_GESTURES
from app.gui.prompt_tool import PromptTool
from app.gui.propagate_dialog import Propagator
from app.gui.recent import RecentFiles
from app.gui.runs import Runs
from app.gui.scrub_status import ScrubStatus
from app.gui.stability import StabilityPanel
from app.gui.tasks import Tasks
from app.gui.timeline import TimelineWidget
from app.gui.ui_steps import Steps
from app.gui.video_view import GESTURES, MAX_BRUSH_RADIUS, WHEEL_STEP, VideoView

# Bump when toolbars or docks change: Qt then ignores a saved layout that does not know them (one saved before
# the Paint toolbar existed squeezed that toolbar onto the main row, out of sight).
LAYOUT_VERSION = 2
AUTOSAVE_NOTE_MS = 4000  # how long "Autosaved …" covers the status line
MAX_LISTED_FRAMES = 8  # frames named in a message; the rest is "…"
MODE_NAMES = {"fill": "Filled Masks", "contour": "Contours", "fill_contour": "Filled Masks + Contours",
              "fade": "Fade Background", "cutout": "Cut-Out"}


class MainWindow(QMainWindow):
    """DVIS Studio's window."""

    def __init__(self, settings: QSettings | None = None, cache_dir: Path | None = None):
        super().__init__()
        self.setWindowTitle(f"DVIS Studio {__version__}")
        screen = self.screen().availableGeometry()  # the default size fits a small screen too
        self.resize(min(1500, int(screen.width() * 0.92)), min(920, int(screen.height() * 0.9)))
        self.setAcceptDrops(True)
        self.settings = settings or QSettings("DVIS Studio", "DVIS Studio")
        self.recent = RecentFiles(self.settings)
        self.session = Session()  # the open document, its history, runs and busy state
        self.controller = StudioController(self.session, self)
        # DVIS runs; their decoding also fills the open video's scrubbing proxy
        self.runs = Runs(self.session, self, self._run_action, shared=lambda: self.controller.scrubber)
        self.runner = self.runs.worker
        self.background = Tasks(self.session, self)  # exports, evaluation, propagation (edits wait for them)
        self.tasks = self.background.worker
        self.diagnostics = Diagnostics(self.session, self)  # edits go on; stale results are recomputed
        self.diagnosis = self.diagnostics.worker
        cache = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.CacheLocation)
        self.cache_dir = cache_dir or Path(cache)
        self.actions: dict[str, QAction] = {}
        self.controller.proxy_store = ProxyStore(self.cache_dir / "proxies")  # instant scrubbing after one pass
        self.opener = Opener(self.session, self, confirm=self._may_replace)  # opens on its own worker
        self.player = Player(self.controller, self)

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
        self.prompt = PromptTool(self.view, self.controller, self.session.model_in_use, self._choose_category,
                                 self.status_label.setText)
        self.propagator = Propagator(self.controller, start_task=self.background.start, tasks=self.tasks,
                                     open_dialog=self._open_window_modal,
                                     run_action=self._run_action, model_source=self.session.model_in_use,
                                     status=self.status_label.setText, parent=self)

        self._panels = Steps(parent=self)  # panel refreshes, in steps that let the event loop run between them
        self._refresh_timer = QTimer(self, singleShot=True, interval=150)
        self._refresh_timer.timeout.connect(lambda: self._panels.run(self._panel_steps()))
        # after each burst of edits, off the UI thread; unsaved work into a crash-recovery copy
        self.autosaver = Autosaver(self.controller, can_save=lambda: not self.tasks.running, parent=self)
        self.autosaver.saved.connect(self._on_autosaved)
        self.autosaver.failed.connect(self.status_label.setText)
        self.autosaver.stored.connect(self._on_saved)
        self.autosaver.store_failed.connect(self._on_save_failed)

        c = self.controller
        c.loaded.connect(self._on_loaded)
        c.frame_changed.connect(self._on_frame_changed)
        c.annotation_changed.connect(self._on_annotation_changed)
        c.display_changed.connect(self.view.redraw)
        c.display_changed.connect(self._sync_display_controls)
        c.selection_changed.connect(self._update_actions)
        c.selection_changed.connect(self.view.redraw)
        c.history_changed.connect(self._on_history_changed)
        c.busy_changed.connect(self._update_actions)
        self.view.space_tapped.connect(self.actions["play"].trigger)
        self.view.hovered.connect(lambda x, y: self.hover_label.setText(self.controller.describe_pixel(x, y)))
        self.view.paint_stroke.connect(
            lambda tool, points, radius: self._run_action("Paint", lambda: self._paint(tool, points, radius)))
        self.runner.progress.connect(self._on_run_progress)
        self.runner.started.connect(self._on_running_changed)
        self.runner.finished.connect(self._on_running_changed)
        self.runs.status.connect(self.status_label.setText)
        self.runs.ended.connect(lambda: self._run_action("Diagnostics", self.diagnostics.run))
        self.tasks.started.connect(self._on_task_started)
        self.tasks.progress.connect(self._on_task_progress)
        self.background.status.connect(self.status_label.setText)
        self.background.ended.connect(self._on_task_ended)
        self.diagnosis.started.connect(self._update_actions)
        self.diagnosis.finished.connect(self._update_actions)
        self.diagnostics.updated.connect(self._on_diagnosed)
        self.diagnostics.status.connect(self.status_label.setText)
        self.opener.worker.started.connect(self._on_task_started)
        self.opener.picture.connect(self.view.show_picture)
        self.opener.progress.connect(self._on_task_progress)
        self.opener.status.connect(self.status_label.setText)
        self.opener.shown.connect(self._on_opened)
        self.opener.ended.connect(self._on_open_ended)
        self.player.playing_changed.connect(self._show_play_state)
        self._update_actions()
        self.restoreGeometry(self.settings.value("window/geometry", b""))
        self.restoreState(self.settings.value("window/state", b""), LAYOUT_VERSION)  # an older layout is ignored

    # ================================================================== layout
    def _show_play_state(self, state: str) -> None:
        """The style's play / pause icons: common fonts (DejaVu Sans) have no glyph for U+23F8, the pause sign."""
        icon = QStyle.StandardPixmap.SP_MediaPause if state == "playing" else QStyle.StandardPixmap.SP_MediaPlay
        self.play_button.setIcon(self.style().standardIcon(icon))

    def _build_central(self) -> None:
        self.play_button = QPushButton()
        self._show_play_state("paused")
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
        self.counts_label = QLabel()  # tracks and stability markers of the current state
        self.scrub_status = ScrubStatus()  # "Preparing scrubbing 43 %" while the proxy pass runs
        self.controller.proxy_progress.connect(self.scrub_status.show_progress)
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(self.hover_label)
        self.statusBar().addPermanentWidget(self.counts_label)
        self.statusBar().addPermanentWidget(self.scrub_status)
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
            action.triggered.connect(lambda *_: self._trigger(text.replace("&", "").rstrip("…"), slot))
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

        a("undo", "&Undo", c.undo, "Ctrl+Z")
        a("redo", "&Redo", c.redo, ["Ctrl+Shift+Z", "Ctrl+Y"])
        a("merge", "&Merge Selected Tracks", self.merge_selected, "M",
          tip="Merge the selected tracks into the first one")
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
                                ("fill", "Fill Region", "G"), ("colour_fill", "Fill Similar Colour", "Shift+G"),
                                ("polygon", "Polygon", "P"), ("prompt", "Prompted Mask (click / box)", "A")):
            action = a(f"tool_{name}", text, lambda name=name: self.view.set_tool(name), key, checkable=True)
            tools.addAction(action)
        self.actions["tool_select"].setChecked(True)
        self.actions["tool_prompt"].toggled.connect(lambda on: on or self.prompt.clear())
        a("propagate", "Pro&pagate Track…", lambda: self.propagator.ask(), "Shift+P",
          tip="Propagate the selected track's mask on this frame through the video")
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
        a("zoom_in", "Zoom &In", lambda: self.view.zoom(WHEEL_STEP), ["Ctrl++", "Ctrl+="])
        a("zoom_out", "Zoom &Out", lambda: self.view.zoom(1 / WHEEL_STEP), "Ctrl+-")
        a("fit", "&Fit to Window", self.view.fit, "F")
        a("fit_timeline", "Fit &Timeline", self.timeline.fit, "Shift+F")

        a("play", "&Play / Pause", self.player.toggle, "Space")
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
        a("models", "&Models…", self.models_dialog, tip="Installed models, the official checkpoints, add and download")
        a("pause", "&Pause Inference", self.toggle_pause, "Ctrl+P", checkable=True)
        a("cancel", "&Cancel Open / Inference / Export", self.cancel_work, "Ctrl+.")
        a("diagnose", "Stability &Diagnostics", self.diagnostics.run, "Ctrl+D")
        a("evaluate", "&Evaluate against Ground Truth…", self.evaluate_dialog)
        a("finetune", "&Fine-tune on this Project…", self.finetune_dialog,
          tip="Train the project's model on the frames you corrected, then re-run with it")
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
        self._add(self.edit_menu, "undo redo | merge split swap delete delete_range relabel lock new_track propagate | "
                                  "tool_select tool_brush tool_eraser tool_fill tool_colour_fill tool_polygon "
                                  "tool_prompt "
                                  "brush_smaller brush_larger | select_none")
        view_menu = bar.addMenu("&View")
        self._add(view_menu, "mode_fill mode_contour mode_fill_contour mode_fade mode_cutout | labels hide show_all | "
                             "zoom_in zoom_out fit fit_timeline")
        view_menu.addSeparator()
        for dock in (self.objects_dock, self.stability_dock, self.timeline_dock):
            view_menu.addAction(dock.toggleViewAction())
        self._add(bar.addMenu("&Playback"), "play | next prev next10 prev10 next_edge prev_edge first last goto")
        self._add(bar.addMenu("&Model"), "run pause cancel | models")
        self._add(bar.addMenu("&Analyze"), "diagnose evaluate | finetune")
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
        for name in ("undo", "redo"):
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
        self.labels_box.toggled.connect(lambda on: self.controller.set_display(labels=on))
        bar.addWidget(self.labels_box)
        self._build_paint_toolbar()

    def _build_paint_toolbar(self) -> None:
        """The tools with their settings, on a row of their own (the main row has no room left)."""
        self.addToolBarBreak()
        bar = QToolBar("Paint", self)
        bar.setObjectName("paint toolbar")
        self.addToolBar(bar)
        for name in ("tool_select", "tool_brush", "tool_eraser", "tool_fill", "tool_colour_fill", "tool_polygon",
                     "tool_prompt"):
            bar.addAction(self.actions[name])
        bar.addSeparator()
        self.brush_spin = QSpinBox(minimum=1, maximum=MAX_BRUSH_RADIUS, value=self.view.brush_radius, suffix=" px")
        self.brush_spin.setToolTip("Brush and eraser radius in image pixels ([ / ], Ctrl+wheel over the frame)")
        self.brush_spin.valueChanged.connect(self.view.set_brush_radius)
        self.view.brush_radius_changed.connect(self.brush_spin.setValue)
        bar.addWidget(QLabel(" Brush radius "))
        bar.addWidget(self.brush_spin)
        self.tolerance_spin = QSpinBox(minimum=0, maximum=255, value=32)
        self.tolerance_spin.setToolTip(
            "Fill Similar Colour: how far (colour levels per channel) a pixel may be from the clicked one")
        bar.addWidget(QLabel(" Colour tolerance "))
        bar.addWidget(self.tolerance_spin)

    # ============================================================ the boundary
    def _trigger(self, title: str, slot: Callable[[], object]) -> None:
        """A menu item, toolbar button or shortcut: run it, then take the keyboard focus back if a dialog it
        showed left no window active (without a window manager, or with some, focus stays nowhere until a
        click, so the next shortcut, e.g. Ctrl+Z, would be lost)."""
        self._run_action(title, slot)
        self._take_focus_back()

    def _take_focus_back(self) -> None:
        if self.isVisible() and QApplication.activeWindow() is None:
            self.activateWindow()

    def _run_action(self, title: str, action: Callable[[], object]) -> object:
        """Run a user action; any error becomes a dialog and the app keeps going."""
        try:
            return action()
        except Exception as error:  # noqa: BLE001 - this is the action boundary
            report_exception(self, title, error)
            return None

    # ================================================================ opening
    def open_path(self, path: str | Path, kind: str | None = None) -> None:
        """Open whatever `path` is: project folder, VIPSeg dataset, image folder or video file (see `Opener`)."""
        self.opener.open(path, kind)

    def _may_replace(self) -> bool:
        """The new document has loaded: ask about unsaved edits, then stop the work on the open one."""
        self.autosaver.flush()  # a save being written ends first: then "modified" says what it did not save
        if self.session.modified and not self.confirm_discard():
            return False
        self._stop_work()
        return True

    def _on_opened(self, path: Path) -> None:
        """A document opened from `path` is shown: it is a recent file; a damaged project says what is damaged."""
        self.recent.add(path)
        problems = self.controller.project.problems if self.controller.project is not None else []
        if problems:
            damaged = len(self.controller.annotation.damaged_frames)
            self.status_label.setText(f"Opened with problems: {damaged} damaged frame(s) shown empty" if damaged
                                      else "Opened with problems (see the message)")
            QMessageBox.warning(self, "Project opened with problems", "\n\n".join(problems))

    def _on_open_ended(self) -> None:
        """A background open ended: the view shows the open document (not the first frame of one not opened)."""
        self._show_progress_if_busy()
        self.view.redraw()
        self._update_actions()

    def offer_recovery(self) -> bool:
        """Start-up: offer what a crashed session left; True when it was recovered (then open nothing else)."""
        return bool(self._run_action("Recover", lambda: offer_recovery(self)))

    def open_initial(self, path: str | None) -> None:
        """Start-up: open `path`, or the demo clip and run the bundled model on it."""
        if path:
            self._run_action("Open", lambda: self.open_path(path))
        else:
            self._run_action("Demo", self.open_demo)

    def open_demo(self) -> None:
        clip = jobs.demo_clip(self.cache_dir)
        self.session.open_video(clip)
        self.runs.start(RunRequest(clip), demo=True)  # a missing bundled model is a status line, not a dialog

    def open_video_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open video", self.recent.last_dir(), VIDEO_FILTER)
        if path:
            self.open_path(path)

    def open_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open image folder", self.recent.last_dir())
        if path:
            self.open_path(path, kind="video")

    def open_vipseg_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open VIPSeg dataset root", self.recent.last_dir())
        if path:
            self.open_path(path, kind="vipseg")

    def open_project_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open project folder", self.recent.last_dir())
        if path:
            self.open_path(path)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for path in self.recent.paths():
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda *_, p=path: self._run_action("Open recent", lambda: self.open_path(p)))
        if self.recent_menu.isEmpty():
            self.recent_menu.addAction("(none)").setEnabled(False)

    @staticmethod
    def _accept_as_copy(event) -> bool:
        """Take a dragged file as a copy, never a move: a file manager deletes what the target says it moved (its
        Shift+drag proposes Move). A drag that offers no copy is refused."""
        if not event.mimeData().hasUrls() or not event.possibleActions() & Qt.DropAction.CopyAction:
            return False
        event.setDropAction(Qt.DropAction.CopyAction)
        event.accept()
        return True

    def dragEnterEvent(self, event) -> None:
        self._accept_as_copy(event)

    def dragMoveEvent(self, event) -> None:
        self._accept_as_copy(event)

    def dropEvent(self, event) -> None:
        urls = [u for u in event.mimeData().urls() if u.isLocalFile()]
        if urls and self._accept_as_copy(event):
            self._run_action("Open", lambda: self.open_path(urls[0].toLocalFile()))

    # ================================================================== saving
    def save(self) -> None:
        """Save into the open project (a first save asks where, as Save As): written on the autosaver's thread,
        after any save being written; edits go on meanwhile and stay unsaved until the next save."""
        if self.controller.video is None:
            return
        if self.controller.project is None:
            self.save_as()
            return
        self.status_label.setText("Saving…")
        self.autosaver.save()

    def save_as(self) -> None:
        """Save into a new project, on the autosaver's thread (edits wait until it is written). The user types the
        project's name in a save dialog (Enter alone takes the suggested one); that folder is created, or must be
        empty if it exists."""
        if self.controller.video is None:
            return
        suggested = new_project_folder(self.recent.last_dir(), self.controller.video.path)
        folder, _ = QFileDialog.getSaveFileName(self, "Save project as (type its name; a folder is created)",
                                                str(suggested), options=QFileDialog.Option.DontConfirmOverwrite)
        if folder:
            self.status_label.setText("Saving…")
            self.autosaver.save(Path(folder))

    def _on_saved(self, folder: Path) -> None:
        self.recent.add(folder)
        self.status_label.setText(f"Saved {folder}")
        self._update_title()

    def _on_save_failed(self, error: BaseException) -> None:
        self.status_label.setText("Saving failed; the edits are still unsaved.")
        report_exception(self, "Save Project", error)

    def autosave(self) -> None:
        """Save now what the autosave timer would, and wait for it."""
        self.autosaver.save_now()

    def _on_autosaved(self, text: str) -> None:
        """A passing note: it covers the status line for a moment, then what the last job said shows again."""
        self._update_title()
        self.statusBar().showMessage(text, AUTOSAVE_NOTE_MS)

    def export_dialog(self) -> None:
        c = self.controller
        if c.video is None:
            return
        dialog = ExportDialog(c.num_frames, c.selection, self.recent.last_dir(), self)
        if dialog.exec():
            request = dialog.request()
            if not str(request.target) or str(request.target) == ".":
                raise UserActionError("Choose where to export (the Destination field).")
            self.start_export(request)

    def start_export(self, request: jobs.ExportRequest) -> None:
        """Export in a worker thread; the status bar says where it went."""
        job = jobs.export(self.controller.annotation, Path(self.controller.video.path), request)

        def done(result) -> None:  # editor exports return an ExportResult; VIPSeg a WrittenDataset
            where = result.summary() if isinstance(result, WrittenDataset) else request.target
            self.status_label.setText(f"Exported to {where}")

        dataset = request.kind in ("vipseg", "predictions")
        self.background.start("An export", f"Exporting to {request.target}…", job, done,
                         cancelled=f"Export cancelled; the files in {request.target} so far are complete"
                                   f"{', the JSON was not updated' if dataset else ''}.")

    # ===================================================== background jobs
    def _on_task_started(self) -> None:
        """An open or a task started: the progress bar runs until its first report."""
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self._update_actions()

    def _on_task_progress(self, progress: Progress) -> None:
        self.progress.setRange(0, max(progress.total or 0, 1))
        self.progress.setValue(progress.done)

    def _on_task_ended(self) -> None:
        self._update_actions()
        self._show_progress_if_busy()

    # ============================================================= inference
    def run_dialog(self) -> None:
        c = self.controller
        if c.video is None:
            raise UserActionError("Open a video first (File → Open Video), then run DVIS on it.")
        dialog = RunDialog(Path(c.video.path), c.num_frames, c.frame_index, self, start=self.session.resume_at or 0)
        if dialog.exec():
            self.start_inference(dialog.request())

    def models_dialog(self) -> None:
        from app.gui.models_dialog import ModelsDialog

        ModelsDialog(parent=self).exec()

    def start_inference(self, request: RunRequest) -> None:
        self.runs.start(request)

    def cancel_work(self) -> None:
        """Cancel an open in progress, else the running inference (finished frames stay), background export /
        evaluation, or diagnostics."""
        if self.opener.running:
            self.opener.cancel()
        elif self.runner.running:
            self.runner.quit()
        elif self.tasks.running:
            self.tasks.quit()
        elif self.diagnosis.running:
            self.diagnosis.quit()

    def toggle_pause(self) -> None:
        paused = self.actions["pause"].isChecked()
        self.actions["pause"].setText("&Resume Inference" if paused else "&Pause Inference")
        self.runs.set_paused(paused)
        if self.runner.running:
            self.progress.setFormat("Paused %v/%m" if paused else "%p%")

    def _on_run_progress(self, progress: Progress) -> None:
        self.progress.setFormat("Paused %v/%m" if self.runner.is_paused else "%p%")
        self.progress.setVisible(True)
        self.progress.setRange(0, progress.total or 0)
        self.progress.setValue(progress.done)

    def _on_running_changed(self) -> None:
        if not self.runner.running:
            self.actions["pause"].setChecked(False)
            self.actions["pause"].setText("&Pause Inference")
            self._show_progress_if_busy()
        self._update_actions()

    def _on_diagnosed(self) -> None:
        self._panels.run(self._panel_steps())
        if self.session.resume_at is not None:
            self.status_label.setText(f"Run DVIS (Ctrl+R) continues from frame {self.session.resume_at}.")

    def evaluate_dialog(self) -> None:
        if self.controller.annotation is None:
            return
        root = QFileDialog.getExistingDirectory(self, "Ground truth: VIPSeg dataset root", self.recent.last_dir())
        if not root:
            return
        root = Path(root)

        def chosen(dataset) -> None:
            categories, videos = dataset
            video = choose_vipseg_video(self, root, "Ground-truth video to compare with", videos)
            if video is None:
                self.status_label.setText("Ready.")
            else:
                self.start_evaluation(categories, video)

        self.background.start("Reading the ground truth", f"Reading {root}…", jobs.read_vipseg(root), chosen)

    def finetune_dialog(self) -> None:
        open_finetune_dialog(self)

    def start_evaluation(self, categories, video) -> None:
        """Score the annotation against `video` of a ground truth read by `jobs.read_vipseg`."""
        job = jobs.evaluate_annotation(self.controller.annotation, categories, video)
        self.background.start("Evaluation", "Evaluating…", job, self._show_scores, cancelled="Evaluation cancelled.")

    def _show_scores(self, scores: dict) -> None:
        rows = [(name, f"{value:.4f}" if isinstance(value, float) else str(value)) for name, value in scores.items()]
        self.status_label.setText("  ".join(f"{n} {v}" for n, v in rows[:3]))
        self._open_window_modal(ResultsDialog("Evaluation", rows, self))

    # ================================================================== edits
    def merge_selected(self) -> None:
        """Merge the selected tracks; if they are present in the same frames, ask first (one id would own two
        objects)."""
        c = self.controller
        shared = edits.shared_frames(c.annotation, c.selection) if c.annotation is not None else []
        if shared and not self._confirm_overlapping_merge(c.selection, shared):
            return
        c.merge_selected()

    def _confirm_overlapping_merge(self, track_ids: list[int], shared: list[int]) -> bool:
        names = ", ".join(map(str, track_ids[:-1])) + f" and {track_ids[-1]}"
        listed = ", ".join(map(str, shared[:MAX_LISTED_FRAMES])) + (", …" if len(shared) > MAX_LISTED_FRAMES else "")
        both = "both" if len(track_ids) == 2 else "two or more of them"
        box = QMessageBox(QMessageBox.Icon.Warning, "Merge tracks present in the same frames",
                          f"Tracks {names} are {both} present in {len(shared)} frame{'s' if len(shared) > 1 else ''} "
                          f"({listed}). Merged, one id would own two separate objects in "
                          f"{'each of those frames' if len(shared) > 1 else 'that frame'}.\n\nMerge anyway?",
                          QMessageBox.StandardButton.Cancel, self)
        merge = box.addButton("Merge Anyway", QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is merge

    def relabel_dialog(self) -> None:
        c = self.controller
        if c.selected is None:
            raise UserActionError("Select a track first (click its mask or its row in the object list).")
        category = c.annotation.tracks[c.selected].category_id
        dialog = CategoryDialog(c.categories, category, self, from_frame=c.frame_index)
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

    def _choose_category(self, then: Callable[[int], None]) -> None:
        """Ask for a class without blocking, then call `then(category id)` (a prompted mask with no class)."""
        dialog = CategoryDialog(self.controller.categories, None, self)
        dialog.setWindowTitle("Class of the new track")
        chosen = dialog.category_id
        dialog.accepted.connect(lambda: chosen() is None or self._run_action("Prompted mask", lambda: then(chosen())))
        self._open_window_modal(dialog)

    def _brush_size(self, delta: int) -> None:
        self.view.set_brush_radius(self.view.brush_radius + delta)
        self.status_label.setText(f"Brush radius {self.view.brush_radius} px")

    def _paint(self, tool: str, points: list[tuple[int, int]], radius: int) -> None:
        if tool == "colour_fill":
            self.controller.colour_fill(*points[0], self.tolerance_spin.value())
        else:
            self.controller.paint(tool, points, radius)

    def _view_context_menu(self, pos) -> None:
        c = self.controller
        if c.video is None:
            return
        x, y = self.view.image_point(pos)
        if c.annotation.track_at(c.frame_index, x, y) not in c.selection:
            c.select_at(x, y)
        menu = QMenu(self)
        self._add(menu, "merge split swap delete delete_range relabel lock hide | new_track propagate")
        menu.popup(self.view.viewport().mapToGlobal(pos))

    def show_shortcuts(self) -> None:
        self._open_window_modal(ShortcutsDialog(list(self.actions.values()), self, GESTURES + PROMPT_GESTURES))

    def _open_window_modal(self, dialog: QDialog) -> None:
        """Show a dialog without blocking; when it closes, the window gets the keyboard back."""
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(self._take_focus_back)
        dialog.open()

    # ============================================================ refreshing
    def _on_loaded(self) -> None:
        c = self.controller
        self.view.reset_fit()
        for widget in (self.slider, self.frame_spin):
            widget.blockSignals(True)
            widget.setRange(0, max(0, c.num_frames - 1))
            widget.blockSignals(False)
        self.hover_label.clear()  # it described a pixel of the document that was open before
        self._panels.run(self._panel_steps(fit=True))  # a long document's panels take a while to fill
        self._update_title()
        self._update_actions()
        hint = "" if c.annotation.tracks else " — Model → Run DVIS (Ctrl+R) to segment and track it"
        self.status_label.setText(f"{Path(c.video.path).name}: {c.num_frames} frames, "
                                  f"{c.video.width}x{c.video.height}, {c.video.fps:.2f} fps{hint}")

    def _on_frame_changed(self, index: int) -> None:
        for widget in (self.slider, self.frame_spin):
            widget.blockSignals(True)
            widget.setValue(index)
            widget.blockSignals(False)
        self.frame_label.setText(f"/ {self.controller.num_frames - 1}")
        self._run_action("Show frame", self.view.redraw)

    def _on_annotation_changed(self, frames, tracks) -> None:
        self.diagnosis.quit()  # a result for the old state would be recomputed anyway: stop it early
        if frames is None or self.controller.frame_index in frames:
            self.view.redraw()
        if not self._refresh_timer.isActive():  # panels refresh at most every 150 ms (500 ms while frames stream in)
            self._refresh_timer.start(500 if self.runner.running else 150)
        self._update_title()

    def _panel_steps(self, fit: bool = False) -> list[Callable[[], object]]:
        """After opening, edits, undo / redo, new frames or diagnostics: the steps that make the panels and counts
        show the current state (`fit`: and the whole timeline) and recompute the diagnostics of an edited
        annotation (in their worker; inference recomputes them at its end)."""
        fitted = [self.timeline.fit] if fit else []
        stability = self.stability.refresh_steps() if self.stability_dock.isVisible() or not self.runner.running else []
        return [self.timeline.refresh, *fitted, self.objects.refresh, *stability, self._diagnose_and_count]

    def _diagnose_and_count(self) -> None:
        if self.session.diagnostics_stale and not self.runner.running:
            self._run_action("Diagnostics", self.diagnostics.run)
        self._update_counts()

    def _show_progress_if_busy(self) -> None:
        """The progress bar is shared: it stays while any worker it reports on runs."""
        self.progress.setVisible(self.runner.running or self.tasks.running or self.opener.running)

    def _update_counts(self) -> None:
        c = self.controller
        if c.annotation is None:
            return
        current = not self.session.diagnostics_stale and not self.diagnosis.running
        markers = f"{len(c.diagnostics)} stability markers" if current else "stability markers: updating…"
        self.counts_label.setText(f"{len(c.annotation.tracks)} tracks · {markers}")

    def _sync_display_controls(self) -> None:
        """Toolbar and menu show the display settings however they were changed (key, menu or toolbar)."""
        display = self.controller.display
        for widget in (self.mode_combo, self.labels_box, self.opacity):
            widget.blockSignals(True)
        self.mode_combo.setCurrentIndex(self.mode_combo.findData(display.mode))
        self.labels_box.setChecked(display.labels)
        self.opacity.setValue(round(display.opacity * 100))
        for widget in (self.mode_combo, self.labels_box, self.opacity):
            widget.blockSignals(False)
        self.actions[f"mode_{display.mode}"].setChecked(True)
        self.actions["labels"].setChecked(display.labels)

    def _on_history_changed(self) -> None:
        """Undo / redo became (im)possible, their texts or "modified" changed."""
        history = self.session.history
        self.actions["undo"].setStatusTip(f"Undo {history.undo_text}")
        self.actions["redo"].setStatusTip(f"Redo {history.redo_text}")
        self._update_title()
        self._update_actions()

    def _update_title(self) -> None:
        c = self.controller
        name = Path(c.video.path).name if c.video is not None else ""
        dirty = " *" if self.session.modified else ""
        self.setWindowTitle(f"{name}{dirty} — DVIS Studio {__version__}" if name else f"DVIS Studio {__version__}")

    def _update_actions(self) -> None:
        c = self.controller
        has_video = c.video is not None
        count = len(c.selection)
        history = self.session.history
        idle = self.session.busy is None  # no edits while a worker reads or writes the annotation
        enabled = {
            "save": has_video and idle, "save_as": has_video and idle, "export": has_video and idle,
            "run": has_video and idle, "pause": self.runner.running,
            "cancel": self.opener.running or self.runner.running or self.tasks.running or self.diagnosis.running,
            "finetune": has_video and idle,
            "merge": idle and count >= 2, "swap": idle and count == 2, "split": idle and count == 1,
            "delete": idle and count >= 1, "delete_range": idle and count == 1, "relabel": idle and count == 1,
            "lock": idle and count >= 1, "hide": count >= 1, "propagate": idle and count == 1,
            "new_track": idle and has_video, "diagnose": has_video,
            "evaluate": has_video and idle, "undo": idle and history.can_undo, "redo": idle and history.can_redo,
        }
        for name, on in enabled.items():
            self.actions[name].setEnabled(on)

    # ================================================================== close
    def _stop_work(self) -> None:
        """Stop inference and background jobs and wait for them (before replacing the document or closing)."""
        for runner in (self.runner, self.tasks, self.diagnosis):
            runner.stop()
        self.opener.stop()
        self.autosaver.flush()
        self.session.abandon_work()
        self._on_running_changed()

    def closeEvent(self, event) -> None:
        self.autosaver.flush()  # a save being written ends first: then "modified" says what it did not save
        if self.session.modified and not self.confirm_discard():
            event.ignore()
            return
        self._stop_work()
        self.prompt.shutdown()
        self.controller.stop_background()
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState(LAYOUT_VERSION))
        self.autosaver.finish_session()  # a clean exit leaves nothing to recover
        event.accept()

    def confirm_discard(self) -> bool:
        """Ask before closing with unsaved edits (save, discard or stay)."""
        answer = QMessageBox.question(
            self, "Unsaved edits", "Save your edits before closing?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Save:
            self._run_action("Save", self.save)
            self.autosaver.flush()
            return not self.session.modified
        return answer == QMessageBox.StandardButton.Discard
