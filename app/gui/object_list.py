"""The object list: one row per track (ID, colour, class, thing/stuff, frames, score, locked, shown).

A QAbstractTableModel over the annotation's track table that sorts its rows itself, a
QSortFilterProxyModel for search, and a QTableView. Selection and the locked / shown check boxes go
through the controller.
"""

from __future__ import annotations

from PySide6.QtCore import (
    QAbstractTableModel,
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QLineEdit, QTableView, QVBoxLayout, QWidget

from app.core.colors import track_color
from app.gui.controller import StudioController

COLUMNS = ("ID", "Class", "Kind", "Frames", "Score", "Locked", "Shown")
_ROOT = QModelIndex()  # the invisible root: a flat table has rows only under it


class TrackTableModel(QAbstractTableModel):
    """Rows are the annotation's tracks in the order of the sort column (ties in id order); values are read on
    demand.

    The model sorts itself with one key per track: a QSortFilterProxyModel's sort asks `data` twice per
    comparison, which took 100 ms for 300 tracks on every refresh.
    """

    def __init__(self, controller: StudioController):
        super().__init__()
        self._controller = controller
        self._ids: list[int] = []
        self._frames: dict[int, int] = {}
        self._sorted_by = (0, Qt.SortOrder.AscendingOrder)

    def refresh(self) -> None:
        self.beginResetModel()
        annotation = self._controller.annotation
        ids = list(annotation.tracks) if annotation is not None else []
        self._frames = {t: len(annotation.presence(t)) for t in ids}
        self._ids = self._ordered(ids)
        self.endResetModel()

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self._sorted_by = (column, order)
        self.layoutAboutToBeChanged.emit()
        before = self.persistentIndexList()  # the selection: it follows its tracks to their new rows
        moved = [self._ids[index.row()] for index in before]
        self._ids = self._ordered(self._ids)
        rows = {track_id: row for row, track_id in enumerate(self._ids)}
        self.changePersistentIndexList(before, [self.index(rows[t], i.column()) for t, i in zip(moved, before)])
        self.layoutChanged.emit()

    def _ordered(self, ids: list[int]) -> list[int]:
        if not ids:
            return []
        column, order = self._sorted_by
        tracks, name = self._controller.annotation.tracks, COLUMNS[column]
        return sorted(sorted(ids), key=lambda t: self._value(name, t, tracks[t]),
                      reverse=order == Qt.SortOrder.DescendingOrder)  # a stable sort: ties stay in id order

    def widest_rows(self, column: int) -> list[int]:
        """Rows whose value in `column` may be the widest text: one per distinct class, the largest id and frame
        count (digits), one row for the fixed-width columns. Measuring these instead of every row stays cheap."""
        if not self._ids:
            return []
        name = COLUMNS[column]
        if name == "Class":
            tracks = self._controller.annotation.tracks
            first_of: dict[int, int] = {}
            for row, track_id in enumerate(self._ids):
                first_of.setdefault(tracks[track_id].category_id, row)
            return list(first_of.values())
        if name == "Frames":
            return [max(range(len(self._ids)), key=lambda row: self._frames[self._ids[row]])]
        return [len(self._ids) - 1 if name == "ID" else 0]  # ids ascend; the other columns have one width

    def track_id(self, row: int) -> int:
        return self._ids[row]

    def row_of(self, track_id: int) -> int | None:
        try:
            return self._ids.index(track_id)
        except ValueError:
            return None

    def rowCount(self, parent=_ROOT) -> int:
        return 0 if parent.isValid() else len(self._ids)

    def columnCount(self, parent=_ROOT) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def flags(self, index):
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if COLUMNS[index.column()] in ("Locked", "Shown"):
            flags |= Qt.ItemFlag.ItemIsUserCheckable
        return flags

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        track_id = self._ids[index.row()]
        track = self._controller.annotation.tracks.get(track_id)
        if track is None:
            return None
        column = COLUMNS[index.column()]
        if column == "ID" and role == Qt.ItemDataRole.DecorationRole:
            return QColor(*track_color(track_id))
        if role == Qt.ItemDataRole.CheckStateRole and column in ("Locked", "Shown"):
            on = track.locked if column == "Locked" else track_id not in self._controller.display.hidden
            return Qt.CheckState.Checked if on else Qt.CheckState.Unchecked
        if role == Qt.ItemDataRole.DisplayRole and column not in ("Locked", "Shown"):
            value = self._value(column, track_id, track)
            return f"{value:.2f}" if column == "Score" else value
        return None

    def _value(self, column: str, track_id: int, track):
        categories = self._controller.categories
        if column == "ID":
            return track_id
        if column == "Class":
            return categories.name(track.category_id)
        if column == "Kind":
            return "thing" if track.isthing else "stuff"
        if column == "Frames":
            return self._frames.get(track_id, 0)
        if column == "Score":
            return float(track.score)
        if column == "Locked":
            return int(track.locked)
        return int(track_id not in self._controller.display.hidden)

    def setData(self, index, value, role=Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.CheckStateRole:
            return False
        track_id = self._ids[index.row()]
        checked = Qt.CheckState(value) == Qt.CheckState.Checked
        if COLUMNS[index.column()] == "Locked":
            self._controller.set_locked(track_id, checked)
        else:
            self._controller.set_hidden(track_id, not checked)
        self.dataChanged.emit(index, index)
        return True


class _SearchProxy(QSortFilterProxyModel):
    """Filters rows by the search text; sorting is left to the source model (`TrackTableModel.sort`)."""

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self.sourceModel().sort(column, order)


class ObjectList(QWidget):
    """Search box + sortable table of tracks, synchronised with the controller's selection."""

    def __init__(self, controller: StudioController, parent: QWidget | None = None):
        super().__init__(parent)
        self._controller = controller
        self.model = TrackTableModel(controller)
        self.proxy = _SearchProxy(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setFilterKeyColumn(-1)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.search = QLineEdit(placeholderText="Search id, class, thing/stuff…")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.proxy.setFilterFixedString)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)  # no per-row measuring
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.table.selectionModel().selectionChanged.connect(self._on_view_selection)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.search)
        layout.addWidget(self.table)
        self._syncing = False
        controller.selection_changed.connect(self._on_controller_selection)
        controller.display_changed.connect(self._repaint)

    def refresh(self) -> None:
        self._syncing = True
        self.model.refresh()
        self._syncing = False
        self._fit_columns()
        self._on_controller_selection()

    def _fit_columns(self) -> None:
        """Widen columns that would cut off a value (ids >= 10 appear later, long class names); never narrow one,
        so a width the user chose stays."""
        header = self.table.horizontalHeader()
        grid = 1 if self.table.showGrid() else 0
        for column in range(len(COLUMNS)):
            widths = [self.table.sizeHintForIndex(self.proxy.mapFromSource(self.model.index(row, column))).width()
                      for row in self.model.widest_rows(column)]
            needed = max(widths + [header.sectionSizeHint(column)]) + grid
            if header.sectionSize(column) < needed:
                header.resizeSection(column, needed)

    def _repaint(self) -> None:
        self.table.viewport().update()

    def _on_view_selection(self) -> None:
        if self._syncing:
            return
        rows = sorted({self.proxy.mapToSource(i).row() for i in self.table.selectionModel().selectedRows()})
        self._controller.select([self.model.track_id(r) for r in rows])

    def _on_controller_selection(self) -> None:
        selection = QItemSelection()
        for track_id in self._controller.selection:
            row = self.model.row_of(track_id)
            if row is not None:
                left = self.proxy.mapFromSource(self.model.index(row, 0))
                right = self.proxy.mapFromSource(self.model.index(row, len(COLUMNS) - 1))
                if left.isValid():
                    selection.select(left, right)
        self._syncing = True
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        self.table.selectionModel().select(selection, flags)
        if self._controller.selection and not selection.isEmpty():
            self.table.scrollTo(selection.indexes()[0])
        self._syncing = False
