import subprocess
import sys


def test_importing_the_gui_does_not_import_torch():
    code = "import sys, app.gui.main; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
