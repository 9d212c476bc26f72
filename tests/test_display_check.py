"""dvis-studio checks, before Qt starts, that the X11 (xcb) platform plugin has its system libraries and a display."""

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from app.gui.display_check import debian_package, display_problem, missing_libraries, xcb_plugin, xcb_will_be_used

ROOT = Path(__file__).resolve().parents[1]

# ldd's output for libqxcb.so on a fresh Debian 12 (shortened): two libraries missing, libxcb-cursor0 present.
FRESH_MACHINE_LDD = """\
\tlinux-vdso.so.1 (0x00007ffd5a3e9000)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007fefdcdd2000)
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007fefdcd2e000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxcb.so.1 => /lib/x86_64-linux-gnu/libxcb.so.1 (0x00007fefdc148000)
\tlibxcb-icccm.so.4 => not found
\t/lib64/ld-linux-x86-64.so.2 (0x00007fefdce4c000)
"""


@pytest.fixture
def fake_ldd(tmp_path, monkeypatch):
    """An ``ldd`` first on PATH that prints the given output (what a machine without the libraries shows)."""

    def install(output: str) -> None:
        (tmp_path / "ldd.out").write_text(output)
        script = tmp_path / "bin" / "ldd"
        script.parent.mkdir(exist_ok=True)
        script.write_text(f"#!/bin/sh\ncat '{tmp_path / 'ldd.out'}'\n")
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
        monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")

    return install


def test_missing_libraries_are_named_with_the_apt_command(fake_ldd):
    fake_ldd(FRESH_MACHINE_LDD)
    message = display_problem({"DISPLAY": ":0"}, plugin=xcb_plugin())
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1." in message
    assert "sudo apt-get install libxcb-icccm4 libxcb-keysyms1\n" in message
    assert "cursor" not in message and "QT_QPA_PLATFORM=offscreen" in message


def test_a_real_plugin_copy_without_its_qt_libraries_is_reported_by_the_real_ldd(tmp_path):
    if shutil.which("ldd") is None:
        pytest.skip("no ldd on this system")
    plugin = tmp_path / "libqxcb.so"
    shutil.copy(xcb_plugin(), plugin)  # its RUNPATH ($ORIGIN/../../lib) no longer leads to Qt's libraries
    assert "libQt6XcbQpa.so.6" in missing_libraries(plugin)
    assert "libQt6XcbQpa.so.6" in display_problem({"DISPLAY": ":0"}, plugin=plugin)


@pytest.mark.parametrize("environ, expected", [
    ({}, True),
    ({"QT_QPA_PLATFORM": "xcb"}, True),
    ({"QT_QPA_PLATFORM": "xcb:dpi=96"}, True),
    ({"QT_QPA_PLATFORM": "offscreen"}, False),
    ({"QT_QPA_PLATFORM": "wayland"}, False),
    ({"QT_QPA_PLATFORM": "wayland;xcb"}, False),
    ({"QT_QPA_PLATFORM": "vnc"}, False),
    ({"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0"}, False),
    ({"XDG_SESSION_TYPE": "x11", "DISPLAY": ":0"}, True),
])
def test_only_an_xcb_start_is_checked(fake_ldd, environ, expected):
    fake_ldd(FRESH_MACHINE_LDD)
    assert xcb_will_be_used(environ) is expected
    assert (display_problem(environ, plugin=xcb_plugin()) is not None) is expected


def test_other_systems_are_not_checked():
    assert not xcb_will_be_used({}, platform="darwin") and not xcb_will_be_used({}, platform="win32")


@pytest.fixture(scope="module")
def xvfb_display():
    """A real X server (Xvfb) for the duration of the module."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed")
    read, write = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-nolisten", "tcp", "-screen", "0", "320x240x24"],
                              pass_fds=(write,), stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as numbers:
        display = f":{numbers.readline().strip()}"
    yield display
    server.terminate()
    server.wait(10)


def test_no_display_or_an_unreachable_one_is_said_plainly(fake_ldd):
    fake_ldd("\tlibxcb.so.1 => /lib/x86_64-linux-gnu/libxcb.so.1 (0x1)\n")
    assert "no X11 display is set" in display_problem({}, plugin=xcb_plugin())
    assert "cannot connect to the X11 display ':4093'" in display_problem({"DISPLAY": ":4093"}, plugin=xcb_plugin())


def test_a_complete_machine_with_a_display_passes(xvfb_display):
    if missing_libraries(xcb_plugin()):
        pytest.skip(f"this machine lacks {missing_libraries(xcb_plugin())} (the check's own finding)")
    assert display_problem({"DISPLAY": xvfb_display}) is None


@pytest.mark.parametrize("soname, package", [
    ("libxcb-icccm.so.4", "libxcb-icccm4"), ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
    ("libxcb-cursor.so.0", "libxcb-cursor0"), ("libxcb-render-util.so.0", "libxcb-render-util0"),
    ("libX11-xcb.so.1", "libx11-xcb1"), ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
    ("libEGL.so.1", "libegl1"), ("libdbus-1.so.3", "libdbus-1-3"), ("libglib-2.0.so.0", "libglib2.0-0"),
    ("libfontconfig.so.1", "libfontconfig1"), ("libz.so.1", "zlib1g"),
])
def test_debian_package_names(soname, package):
    assert debian_package(soname) == package


def test_dvis_studio_exits_with_the_message_instead_of_aborting(fake_ldd):
    fake_ldd(FRESH_MACHINE_LDD)
    environ = {key: value for key, value in os.environ.items() if key not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    environ.update(DISPLAY=":97", PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-m", "app.gui.main"], capture_output=True, text=True, timeout=120,
                            env=environ, cwd=ROOT)
    assert result.returncode == 1, (result.returncode, result.stderr)  # not -6 (SIGABRT)
    assert "sudo apt-get install libxcb-icccm4 libxcb-keysyms1" in result.stderr
