"""Before Qt starts on Linux/X11: say which system libraries the xcb platform plugin lacks, and whether a display opens.

Without them (or without a display it can open) Qt aborts the whole process (SIGABRT) with a hint that names
only libxcb-cursor0, even when the missing libraries are others (e.g. libxcb-icccm4 and libxcb-keysyms1 on a
fresh Debian/Ubuntu).
``ldd`` on the plugin lists every library it needs, its Qt xcb library's included.
"""

from __future__ import annotations

import ctypes
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from PySide6.QtCore import QLibraryInfo

# Debian/Ubuntu packages whose name does not follow from the library's soname (see ``debian_package``).
PACKAGE_EXCEPTIONS = {
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libGLdispatch.so.0": "libglvnd0",
    "libz.so.1": "zlib1g",
    "libbrotlidec.so.1": "libbrotli1",
    "libbrotlicommon.so.1": "libbrotli1",
}


def xcb_will_be_used(environ: Mapping[str, str], platform: str = sys.platform) -> bool:
    """True when Qt will start its X11 (xcb) platform plugin: Linux, and no other platform asked for."""
    if not platform.startswith("linux"):
        return False
    requested = environ.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    if requested:
        return requested == "xcb"
    return not (environ.get("XDG_SESSION_TYPE") == "wayland" and environ.get("WAYLAND_DISPLAY"))


def xcb_plugin() -> Path:
    """The xcb platform plugin of the installed Qt (PySide6's own copy)."""
    return Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)) / "platforms" / "libqxcb.so"


def missing_libraries(plugin: Path) -> list[str]:
    """Sonames ``ldd`` reports as "not found" for ``plugin``, in its order; [] when ldd cannot run."""
    try:
        result = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []  # no ldd (not glibc): Qt reports for itself
    missing = []
    for line in result.stdout.splitlines():
        name, _, where = line.strip().partition(" => ")
        if where.strip() == "not found" and name not in missing:
            missing.append(name)
    return missing


def debian_package(soname: str) -> str:
    """The Debian/Ubuntu package of a library: ``libxcb-icccm.so.4`` -> ``libxcb-icccm4`` (Debian's naming rule)."""
    if soname in PACKAGE_EXCEPTIONS:
        return PACKAGE_EXCEPTIONS[soname]
    match = re.fullmatch(r"(.+)\.so\.(\d+)(?:\..*)?", soname)
    if match is None:
        return soname
    name, version = match.group(1).lower(), match.group(2)
    return f"{name}-{version}" if name[-1].isdigit() else f"{name}{version}"


def display_problem(environ: Mapping[str, str], plugin: Path | None = None) -> str | None:
    """What keeps Qt from opening a window here, in words with the fix; None when nothing does (or it is not xcb)."""
    if not xcb_will_be_used(environ):
        return None
    plugin = plugin or xcb_plugin()
    missing = missing_libraries(plugin) if plugin.exists() else []
    if missing:
        packages = list(dict.fromkeys(debian_package(name) for name in missing))
        return (f"DVIS Studio cannot open its window: Qt's X11 (xcb) platform plugin needs system libraries that "
                f"are not installed: {', '.join(missing)}.\n"
                f"Install them (Debian/Ubuntu):  sudo apt-get install {' '.join(packages)}\n"
                "(Headless use, e.g. tests: set QT_QPA_PLATFORM=offscreen.)")
    display = environ.get("DISPLAY", "")
    if not display:
        return ("DVIS Studio needs a display, and no X11 display is set (DISPLAY is empty). Start it in a desktop "
                "session (or over `ssh -X`); for headless use, e.g. tests, set QT_QPA_PLATFORM=offscreen.")
    if not can_connect(display):
        return (f"DVIS Studio cannot connect to the X11 display {display!r}: is the X server running, and may this "
                "user use it (XAUTHORITY)? For headless use, e.g. tests, set QT_QPA_PLATFORM=offscreen.")
    return None


def can_connect(display: str) -> bool:
    """Whether an X11 connection to ``display`` opens (through libxcb, as Qt's plugin would); True if unknowable."""
    try:
        xcb = ctypes.CDLL("libxcb.so.1")
    except OSError:
        return True  # without libxcb the plugin's own check above has already spoken
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    connection = xcb.xcb_connect(display.encode(), None)  # never NULL: an error connection on failure
    failed = xcb.xcb_connection_has_error(connection)
    xcb.xcb_disconnect(connection)
    return failed == 0
