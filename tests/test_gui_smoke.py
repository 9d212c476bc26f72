import subprocess
import sys


def test_importing_the_gui_does_not_import_torch():
    code = "import sys, app.gui.main, app.gui.main_window; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_installed_pyside_keeps_references_to_true_on_emit():
    """PySide6 6.12.0 drops a reference to True on every Python-side emit; the GUI (and pyqtgraph) emit
    True constantly, so with that version the interpreter aborts after a while (pyproject excludes it)."""
    from PySide6.QtCore import QObject, Signal

    class Emitter(QObject):
        changed = Signal(bool)

    emitter = Emitter()
    emitter.changed.connect(lambda value: None)
    before = sys.getrefcount(True)
    for _ in range(100):
        emitter.changed.emit(True)
    assert sys.getrefcount(True) >= before


def test_version_flag():
    result = subprocess.run([sys.executable, "-m", "app.gui.main", "--version"], capture_output=True, text=True,
                            check=True)
    assert result.stdout.startswith("DVIS Studio")
