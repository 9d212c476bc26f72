"""A DVIS Studio project folder: video reference, model info, annotation and edit history.

Layout (JSON + PNG + NPZ, never pickle)::

    project.json                 manifest, written LAST (atomically): everything else is reached from it
    project.prev.json            the previous save's manifest: opened instead when project.json is damaged
    project.lock                 {"pid", "hostname", "created"} while an instance has the project open
    categories.json              the category table of the annotation (written once)
    tables.g<N>.npz              slot -> key, slot areas, key -> track, mask generation per frame
    tracks.g<N>.json             track table
    masks/<frame 8 digits>.g<N>.png   slot map of a frame, N = the save generation that wrote it
    history.jsonl                edit log, append only; the manifest says how many bytes are valid

Why generations: a save writes new files under new names and only then replaces the manifest, so
a crash (even ``kill -9``) at any moment leaves the previous manifest pointing at complete files:
opening gives the last good state. Files that neither the current nor the previous manifest
references are garbage from an interrupted or superseded save and are deleted after the manifest
switch (and on open).

A damaged project opens with what is intact: a damaged manifest falls back to the previous one,
a lost or unreadable mask file marks its frame damaged (shown void, left out of exports, listed in
``Project.problems``), and a lost edit history only loses undo. ``app.core.project_check`` reports
and repairs the rest.

Other uses: ``Project.open(folder, read_only=True)`` reads without the lock (CLI exports beside the
GUI); ``Project.create(new_folder, video, annotation=project.annotation)`` is "save as" (copies every frame).
"""

from __future__ import annotations

import errno
import hashlib
import io
import itertools
import json
import os
import shutil
import socket
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app import __version__
from app.core.annotation import Annotation
from app.core.errors import AnnotationError, CategoryTableError, StudioError
from dvis_models import atomic
from dvis_models.categories import CategoryTable, vipseg_categories

MANIFEST = "project.json"
BACKUP_MANIFEST = "project.prev.json"
LOCK = "project.lock"
CATEGORIES = "categories.json"
HISTORY = "history.jsonl"
MASKS = "masks"
FORMAT = "dvis-studio-project"
FORMAT_VERSION = 1
FINGERPRINT_BYTES = 1 << 20
MIN_PNG_BYTES = 67  # signature, IHDR, one IDAT and IEND: anything shorter is not a whole PNG
STAGING_SUFFIX = ".saving-"  # "save as" writes into .<name>.saving-<pid> beside the destination, then renames it


class ProjectError(StudioError):
    """A project folder cannot be created, opened, locked or saved; the message names the file."""


class ProjectChangedError(ProjectError):
    """A read-only reader lost a file because another instance saved the project meanwhile: read it again."""


@dataclass
class SavePlan:
    """What one save writes, snapshotted by ``Project.prepare_save`` so the writing can run on another thread."""

    generation: int
    blobs: dict[int, bytes | None]  # frame -> PNG of its slot map (None: all void)
    mask_gen: np.ndarray  # per frame, the generation whose mask file holds it
    manifest: dict
    tables: dict[str, np.ndarray] | None  # copies of the annotation tables (None: unchanged since the last save)
    tracks: dict | None
    history: list[str]  # edit log lines to append
    doomed: list[Path]  # files only the backup names: once this save is written no manifest does


# ---------------------------------------------------------------------------------- video reference


def new_project_folder(parent: str | os.PathLike, video_path: str | os.PathLike) -> Path:
    """Where a first save suggests the project: "<video stem> project" in `parent`, numbered ("… project 2") past
    names already taken, so accepting the suggestion creates a new folder."""
    base = f"{Path(video_path).stem} project"
    names = (base if n == 1 else f"{base} {n}" for n in itertools.count(1))
    return next(folder for folder in (Path(parent) / name for name in names) if not folder.exists())


def video_fingerprint(path: Path) -> dict:
    """Size and SHA-256 of the first MiB: enough to recognise a moved video without reading all of it.

    For an image folder: total size of its files and a hash of their names plus the first file's first MiB.
    """
    path = Path(path)
    digest = hashlib.sha256()
    try:
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            size = sum(p.stat().st_size for p in files)
            for file in files:
                digest.update(file.name.encode("utf-8") + b"\0")
            first = files[0] if files else None
        else:
            size = path.stat().st_size
            first = path
        if first is not None:
            with open(first, "rb") as handle:
                digest.update(handle.read(FINGERPRINT_BYTES))
    except OSError as error:
        raise ProjectError(f"Cannot read the video {path}: {error.strerror or error}.") from None
    return {"size": size, "sha256_first_mib": digest.hexdigest()}


# ---------------------------------------------------------------------------------- lock


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (locks and crash-recovery folders of dead processes are stale)."""
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        ctypes.windll.kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        ctypes.windll.kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by another user
    return True


class ProjectLock:
    """``project.lock`` holding pid + hostname; a lock whose process is gone (same host) is taken over."""

    def __init__(self, folder: Path):
        self.path = folder / LOCK
        self.held = False

    def acquire(self) -> None:
        content = json.dumps({"pid": os.getpid(), "hostname": socket.gethostname(), "created": time.time()}).encode()
        for _ in range(3):
            if self._create(content):
                self.held = True
                return
            owner = self._read_owner()
            if owner is not None and not self._stale(owner):
                raise ProjectError(
                    f"The project {self.path.parent} is open in another DVIS Studio (process {owner['pid']} on "
                    f"{owner['hostname']}). Close it there. If that program is no longer running, delete {self.path}."
                )
            self._remove_stale(owner)
        raise ProjectError(f"Could not lock the project {self.path.parent}: {self.path} keeps reappearing. Is another "
                           "instance starting?")

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        owner = self._read_owner()
        if owner is not None and owner.get("pid") == os.getpid() and owner.get("hostname") == socket.gethostname():
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass

    def _create(self, content: bytes) -> bool:
        """Atomically create the lock with its content (link fails if it exists): never a half-written lock."""
        temp = self.path.with_name(f".{LOCK}.{os.getpid()}{atomic.TEMP_SUFFIX}")
        try:
            try:
                temp.write_bytes(content)
            except OSError as error:  # a ProjectError is not an OSError: it passes the handlers below
                raise self._cannot_create(error) from None
            os.link(temp, self.path)
            return True
        except FileExistsError:
            return False
        except OSError:  # no hard links on this file system (FAT, some network shares)
            return self._create_exclusive(content)
        finally:
            try:
                temp.unlink()
            except FileNotFoundError:
                pass

    def _create_exclusive(self, content: bytes) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        except OSError as error:
            raise self._cannot_create(error) from None
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as error:
            self.path.unlink(missing_ok=True)  # never leave an empty lock behind
            raise self._cannot_create(error) from None
        return True

    def _cannot_create(self, error: OSError) -> ProjectError:
        full = error.errno in (errno.ENOSPC, errno.EDQUOT)
        advice = "Free some disk space" if full else "Check that the folder is writable"
        return ProjectError(f"Cannot create the lock file {self.path}: {error.strerror or error}. {advice}, then open "
                            "the project again.")

    def _remove_stale(self, owner: dict | None) -> None:
        """Take away a dead instance's lock without ever deleting a live one a racing instance just made."""
        grabbed = self.path.with_name(f".{LOCK}.stale.{os.getpid()}")
        try:
            os.replace(self.path, grabbed)  # atomic: whatever lock is there now is ours to inspect
        except FileNotFoundError:
            return
        if self._read_owner(grabbed) != owner:  # another instance took it over in between: put its lock back
            try:
                os.link(grabbed, self.path)
            except FileExistsError:
                pass
            except OSError:  # no hard links here: a plain rename back is the best we can do
                os.replace(grabbed, self.path)
                return
        grabbed.unlink()

    def _read_owner(self, path: Path | None = None) -> dict | None:
        """The lock's owner, or None when the lock is gone or unreadable (not one of ours: we write it whole)."""
        try:
            owner = json.loads((path or self.path).read_text(encoding="utf-8"))
            return {"pid": int(owner["pid"]), "hostname": str(owner["hostname"])}
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @staticmethod
    def _stale(owner: dict) -> bool:
        if owner["hostname"] != socket.gethostname():
            return False  # cannot see processes of another machine: assume it is alive
        if owner["pid"] == os.getpid():
            return False  # this process has it open already
        return not process_alive(owner["pid"])


# ---------------------------------------------------------------------------------- project


class Project:
    """An open project. Create with :meth:`create`, open with :meth:`open`; :meth:`close` releases the lock."""

    def __init__(self, folder: Path, manifest: dict, annotation: Annotation, mask_gen: np.ndarray, lock: ProjectLock,
                 read_only: bool = False):
        self.folder = folder
        self.annotation = annotation
        self.read_only = read_only
        self.notes: list[str] = []  # what opening found damaged and worked around (see ``problems``)
        self._manifest = manifest
        self._mask_gen = mask_gen
        self._disk_manifest: dict | None = None  # the manifest as last read or written (None before the first save)
        self._backup: tuple[dict, np.ndarray] | None = None  # project.prev.json and its mask generations, when usable
        self._lock = lock
        self._saving = False  # between prepare_save and finish_save / abandon_save
        self._pending_history: list[str] = []
        self._meta_dirty = False
        self._video = None
        annotation.mask_store.set_loader(self._load_mask)

    # -------------------------------------------------------------- create / open / close

    @classmethod
    def create(cls, folder: str | os.PathLike, video_path: str | os.PathLike, *, annotation: Annotation | None = None,
               num_frames: int | None = None, height: int | None = None, width: int | None = None,
               fps: float | None = None, categories: CategoryTable | None = None, model: dict | None = None) -> Project:
        """Start a project for a video. Sizes default to the video's (opened with ``VideoSource``) or
        ``annotation``'s."""
        folder = Path(folder).absolute()
        video_path = Path(video_path).absolute()
        if (folder / MANIFEST).exists():
            raise ProjectError(f"{folder} is already a DVIS Studio project; open it instead.")
        if folder.exists() and not folder.is_dir():
            raise ProjectError(f"{folder} is a file. Choose a new or empty folder for the project.")
        if folder.exists() and any(folder.iterdir()):
            raise ProjectError(f"{folder} is not empty. Choose a new or empty folder for the project.")
        if annotation is None and None in (num_frames, height, width):
            from app.core.video import VideoSource  # only when the caller did not give the sizes

            with VideoSource.open(video_path) as video:
                num_frames, height, width, fps = video.num_frames, video.height, video.width, video.fps
        if annotation is None:
            annotation = Annotation(num_frames, height, width, categories or vipseg_categories())
        video = {"path": str(video_path), "relative_path": _relative(video_path, folder),
                 "num_frames": annotation.num_frames, "width": annotation.width, "height": annotation.height,
                 "fps": fps, **video_fingerprint(video_path)}
        manifest = {"format": FORMAT, "version": FORMAT_VERSION, "generation": 0, "video": video, "model": model,
                    "annotation": {"categories": CATEGORIES}, "history": {"file": HISTORY, "bytes": 0, "entries": 0}}
        # Everything is written into a hidden sibling folder that is renamed into place at the end: a failure
        # (a full disk) leaves nothing at the destination, so trying again works.
        staging = folder.with_name(f".{folder.name}{STAGING_SUFFIX}{os.getpid()}")
        _remove_dead_staging(folder)
        lock = ProjectLock(staging)
        previous_loader = annotation.mask_store.loader
        try:
            (staging / MASKS).mkdir(parents=True)
            atomic.write_json(staging / CATEGORIES, annotation.categories.to_json())
            (staging / HISTORY).touch()
            annotation.mask_store.hold_all()  # "save as": frames saved in another project must be written here too
            lock.acquire()
            project = cls(staging, manifest, annotation, np.zeros(annotation.num_frames, np.int32), lock)
            annotation.tables_dirty = True
            plan = project.prepare_save()
            try:
                project._write(plan)
                if folder.exists():
                    folder.rmdir()  # empty (checked above): the rename needs its place
                os.rename(staging, folder)
                atomic.fsync_dir(folder.parent)
            except OSError:
                project.abandon_save(plan)  # the frames and tables stay unsaved for the project they came from
                raise
        except (OSError, ProjectError) as error:
            lock.release()
            annotation.mask_store.set_loader(previous_loader)
            shutil.rmtree(staging, ignore_errors=True)
            reason = str(error) if isinstance(error, ProjectError) else _why(error)
            raise ProjectError(
                f"Could not save the project into {folder}: {reason}. Nothing was written there and the work being "
                "saved is unchanged (still open, not saved). Free disk space (or choose another folder), then save "
                "again."
            ) from None
        # Only now do the frames leave memory for the mask files: a "save as" on a worker thread creates the project
        # while the UI thread reads frames, which must never be looked for in the staging folder after its rename.
        project.folder, lock.path = folder, folder / LOCK
        project.finish_save(plan)
        return project

    @classmethod
    def open(cls, folder: str | os.PathLike, read_only: bool = False) -> Project:
        """Open a project, taking its lock. A missing video does not stop opening: see :meth:`check_video`.

        ``read_only`` (exports, evaluation from the CLI while the GUI has it open): no lock, no repair,
        ``save`` refused. It reads the last saved state; when the other instance saves meanwhile, opening
        reads the new state, and a mask read later that a save made vanish is a ProjectChangedError
        (read again), never taken for damage.

        Damage does not stop opening: see :attr:`problems` for what was found and worked around.
        """
        folder = Path(folder).absolute()
        if not (folder / MANIFEST).is_file() and not (folder / BACKUP_MANIFEST).is_file():
            raise ProjectError(f"{folder} is not a DVIS Studio project: {folder / MANIFEST} is missing.")
        lock = ProjectLock(folder)
        if not read_only:
            lock.acquire()
        try:
            for attempt in range(3):
                generation = _disk_generation(folder)
                try:
                    return cls._read(folder, lock, read_only)
                except ProjectError:
                    # A read-only reader beside a saving instance can lose files between reading the manifest and
                    # reading what it names: that is a concurrent save, not damage. Read the new state.
                    if not read_only or _disk_generation(folder) == generation or attempt == 2:
                        raise
            raise AssertionError("unreachable")
        except BaseException:
            lock.release()
            raise

    @classmethod
    def _read(cls, folder: Path, lock: ProjectLock, read_only: bool) -> Project:
        """Open from project.json, or from project.prev.json when project.json or its files are damaged."""
        failures: list[ProjectError] = []
        opened = None
        for name in (MANIFEST, BACKUP_MANIFEST):
            if not (folder / name).is_file():
                if name == MANIFEST:
                    failures.append(ProjectError(f"{folder / MANIFEST} is missing."))
                continue
            manifest = None
            try:
                manifest = _read_manifest(folder / name)
                annotation, mask_gen = _read_annotation(folder, manifest)
                opened = name
                break
            except ProjectError as error:
                if manifest is not None and name == MANIFEST and _disk_generation(folder) != manifest["generation"]:
                    raise  # saved meanwhile by another instance (a read-only reader's race), not damaged: read again
                failures.append(error)
        if opened is None:
            if len(failures) == 1:
                raise failures[0]
            raise ProjectError(f"{failures[0]} The previous save ({BACKUP_MANIFEST}) cannot be used either: "
                               f"{failures[1]}")
        project = cls(folder, manifest, annotation, mask_gen, lock, read_only=read_only)
        project._disk_manifest = json.loads(json.dumps(manifest))
        if failures:
            project.notes.append(
                f"{failures[0]} Opened the previous save instead ({BACKUP_MANIFEST}, generation {project.generation}); "
                "changes of the last save are lost.")
        else:
            project._backup = _read_backup(folder, len(mask_gen))
            if project._backup is None and (folder / BACKUP_MANIFEST).exists():
                project.notes.append(f"The previous save's manifest {folder / BACKUP_MANIFEST} is damaged; the next "
                                     "save replaces it (until then there is no fallback).")
        project._check_history()
        unreferenced = project._inspect_masks()
        if not read_only:
            named = project._named_tables()
            unreferenced += [p for pattern in ("tables.g*.npz", "tracks.g*.json") for p in folder.glob(pattern)
                             if p.name not in named]
            project._collect_garbage(unreferenced)
            for place in (folder, folder / MASKS):
                if place.is_dir():
                    atomic.remove_stale_temp_files(place)
        return project

    def close(self) -> None:
        """Release the lock (and the video). Unsaved changes are NOT saved: call :meth:`save` first if wanted."""
        self._close_video()
        self._lock.release()

    def __del__(self) -> None:
        """A project dropped without close() (e.g. after an error while opening its video) must not stay locked."""
        lock = getattr(self, "_lock", None)
        if lock is not None:
            lock.release()

    def _close_video(self) -> None:
        if getattr(self, "_video", None) is not None:
            self._video.close()
            self._video = None

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -------------------------------------------------------------- properties

    @property
    def video_ref(self) -> dict:
        """The video reference: path, relative_path, size, sha256_first_mib, num_frames, width, height, fps."""
        return dict(self._manifest["video"])

    @property
    def video(self):
        """The project's ``VideoSource``, opened on first use; ProjectError (with how to relink) if it moved."""
        return self._video if self._video is not None else self.open_video()

    def open_video(self, progress=None):
        """Open the project's video now (``progress(fraction)`` while its frame index builds, from this thread),
        checked against the annotation's size; ProjectError (with how to relink) if it moved."""
        from app.core.video import VideoSource  # opening a project does not need the decoder

        source = VideoSource.open(self.check_video(), progress=progress)
        annotation = self.annotation
        expected = (annotation.num_frames, annotation.height, annotation.width)
        if (source.num_frames, source.height, source.width) != expected:
            source.close()
            raise ProjectError(
                f"The video {source.path} has {source.num_frames} frames of {source.width}x{source.height}, but "
                f"this project annotates {annotation.num_frames} frames of {annotation.width}x{annotation.height}. "
                "Relink the project to its original video."
            )
        self._close_video()
        self._video = source
        return source

    @property
    def video_path(self) -> Path:
        """The video's path: as stored, or relative to the project when both moved together."""
        stored = Path(self._manifest["video"]["path"])
        if not stored.exists() and self._manifest["video"].get("relative_path"):
            relative = (self.folder / self._manifest["video"]["relative_path"]).resolve()
            if relative.exists():
                return relative
        return stored

    @property
    def model(self) -> dict | None:
        return self._manifest.get("model")

    @model.setter
    def model(self, info: dict | None) -> None:
        """Which model produced the annotation (preset, checkpoint path/hash...); saved with the next save."""
        json.dumps(info, allow_nan=False)  # refuse what cannot be saved now, not at save time
        self._manifest["model"] = info
        self._meta_dirty = True

    @property
    def generation(self) -> int:
        return int(self._manifest["generation"])

    @property
    def dirty(self) -> bool:
        """Whether a save has anything to write (frames, tables, logged edits, model or video info). This is the
        writer's view; whether the user's work is saved is the edit history's clean marker (``app.core.history``)."""
        return bool(self.annotation.mask_store.dirty or self.annotation.tables_dirty or self._pending_history
                    or self._meta_dirty)

    # -------------------------------------------------------------- video

    def check_video(self) -> Path:
        """The video path if the video is there; else a ProjectError saying how to relink it."""
        path = self.video_path
        if not path.exists():
            raise ProjectError(
                f"The video of this project is missing: {self._manifest['video']['path']} (moved or renamed?). "
                "Relink it (File > Relink video, or Project.relink_video(new_path)) to the file at its new location."
            )
        return path

    def relink_video(self, path: str | os.PathLike, force: bool = False) -> None:
        """Point the project at its video's new location; checks it is the same file (size + first-MiB hash)."""
        path = Path(path).absolute()
        if not path.exists():
            raise ProjectError(f"{path} does not exist; choose the moved video file.")
        fingerprint = video_fingerprint(path)
        expected = {k: self._manifest["video"][k] for k in ("size", "sha256_first_mib")}
        if fingerprint != expected and not force:
            raise ProjectError(
                f"{path} is not this project's video (size {fingerprint['size']} bytes, expected {expected['size']}; "
                "or its content differs). Choose the original file; to use a re-encoded copy anyway, relink with force."
            )
        self._close_video()
        self._manifest["video"].update(path=str(path), relative_path=_relative(path, self.folder), **fingerprint)
        self._meta_dirty = True
        self.save()

    # -------------------------------------------------------------- edits and history

    def record(self, edit, inverse, label: str = "") -> None:
        """Log an edit applied to the annotation (an ``EditHistory`` step, done, undone or redone) with its
        inverse; the log is written with the next save."""
        entry = {"time": time.time(), "label": label or edit.describe(), "edit": edit.to_json(),
                 "inverse": inverse.to_json()}
        self._pending_history.append(json.dumps(entry, allow_nan=False) + "\n")

    # -------------------------------------------------------------- saving

    def save(self) -> None:
        """Write changed frames, tables and history under a new generation, then switch the manifest to it."""
        plan = self.prepare_save()
        try:
            self.write_save(plan)
        except ProjectError:
            self.abandon_save(plan)
            raise
        self.finish_save(plan)

    def prepare_save(self) -> SavePlan:
        """First step of a save, on the thread that edits: snapshot what changed (no file is touched).

        Then :meth:`write_save` (any thread: all the file writing and fsyncs) and :meth:`finish_save` or, when
        writing failed, :meth:`abandon_save` (back on the editing thread). Edits may go on meanwhile; they are
        saved by the next save. One save at a time.
        """
        if self.read_only:
            raise ProjectError(f"The project {self.folder} was opened read-only; open it normally to save changes.")
        if not self._lock.held:
            raise ProjectError(f"The project {self.folder} was closed; open it again to save.")
        if self._saving:
            raise ProjectError(f"The project {self.folder} is being saved already; save again when that has finished.")
        annotation, store = self.annotation, self.annotation.mask_store
        generation = self.generation + 1
        blobs = {index: store.blob(index) for index in sorted(store.dirty)}
        mask_gen = self._mask_gen.copy()
        for index, data in blobs.items():
            mask_gen[index] = 0 if data is None else generation
        manifest = json.loads(json.dumps(self._manifest))
        tables = tracks = None
        if blobs or annotation.tables_dirty or "tables" not in manifest["annotation"]:
            manifest["annotation"]["tables"] = f"tables.g{generation}.npz"
            manifest["annotation"]["tracks"] = f"tracks.g{generation}.json"
            tables = {name: array.copy() for name, array in annotation.table_arrays().items()}
            tracks = annotation.tracks_json()
        manifest.update(generation=generation, app_version=__version__)
        manifest["annotation"].update(num_frames=annotation.num_frames, height=annotation.height,
                                      width=annotation.width)
        annotation.tables_dirty = False  # edits from now on set it again: they belong to the next save
        self._meta_dirty = False
        self._saving = True
        return SavePlan(generation, blobs, mask_gen, manifest, tables, tracks, list(self._pending_history),
                        self._doomed_by(manifest, mask_gen))

    def write_save(self, plan: SavePlan) -> None:
        """Write a prepared save (safe on a worker thread: touches files and ``plan`` only); ProjectError on failure.
        Then delete the files no manifest names any more (thousands after a re-run: not on the editing thread)."""
        try:
            self._write(plan)
        except OSError as error:
            raise ProjectError(
                f"Saving the project {self.folder} failed: {_why(error)}. "
                "Free disk space or check permissions, then save again; the last saved state on disk is intact."
            ) from None
        self._collect_garbage(plan.doomed)

    def _write(self, plan: SavePlan) -> None:
        """The writing itself; an OSError leaves every file the current manifest names untouched."""
        atomic.write_new_files([(self._mask_path(i, plan.generation), data) for i, data in plan.blobs.items()
                                if data is not None])
        if plan.tables is not None:
            annotation = plan.manifest["annotation"]
            atomic.write_bytes(self.folder / annotation["tables"],
                               _npz_bytes({**plan.tables, "mask_gen": plan.mask_gen}))
            atomic.write_json(self.folder / annotation["tracks"], plan.tracks)
        if plan.history:
            plan.manifest["history"] = self._append_history(plan.manifest["history"], plan.history)
        plan.manifest["saved_at"] = time.time()
        if self._disk_manifest is not None:
            # the fallback if project.json is damaged
            atomic.write_json(self.folder / BACKUP_MANIFEST, self._disk_manifest)
        atomic.write_json(self.folder / MANIFEST, plan.manifest)

    def finish_save(self, plan: SavePlan) -> None:
        """The written generation is now the project's state: forget what it saved."""
        if self._disk_manifest is not None:
            self._backup = (self._disk_manifest, self._mask_gen)
        # model / video changed since the snapshot stay in memory (and dirty) for the next save
        self._manifest = {**plan.manifest, "model": self._manifest.get("model"), "video": self._manifest["video"]}
        self._disk_manifest = plan.manifest
        self._mask_gen = plan.mask_gen
        del self._pending_history[: len(plan.history)]
        self.annotation.mask_store.mark_saved(plan.blobs)
        self._saving = False

    def abandon_save(self, plan: SavePlan) -> None:
        """Writing failed: what the plan held is unsaved again (files it wrote are named by no manifest)."""
        if plan.tables is not None:
            self.annotation.tables_dirty = True
        self._meta_dirty = True
        self._saving = False

    def adopt(self, annotation: Annotation) -> None:
        """Save ``annotation`` (of the same size) here from now on, in place of the project's own.

        How unsaved work gets its crash-recovery copy: the empty project is created off the editing
        thread, then takes over the live annotation; the next save writes all of it.
        """
        own = self.annotation
        if (annotation.num_frames, annotation.height, annotation.width) != (own.num_frames, own.height, own.width):
            raise ProjectError(f"The project {self.folder} is for {own.num_frames} frames of {own.width}x{own.height}, "
                               f"not {annotation.num_frames} frames of {annotation.width}x{annotation.height}.")
        annotation.mask_store.hold_all()  # frames read from elsewhere so far are written here
        annotation.mask_store.set_loader(self._load_mask)
        annotation.tables_dirty = True
        self.annotation = annotation

    # -------------------------------------------------------------- internals

    def _mask_path(self, index: int, generation: int) -> Path:
        return self.folder / MASKS / f"{index:08d}.g{generation}.png"

    def _load_mask(self, index: int) -> tuple[bytes, str] | None:
        generation = int(self._mask_gen[index])
        if generation == 0:
            return None
        path = self._mask_path(index, generation)
        try:
            return path.read_bytes(), str(path)
        except FileNotFoundError:
            if self.read_only and _disk_generation(self.folder) != self.generation:
                raise ProjectChangedError(
                    f"The project {self.folder} was saved by another DVIS Studio while it was being read (nothing is "
                    "damaged); try again.") from None
            self.annotation.damaged_frames.add(index)  # shown void and left out of exports; ``problems`` lists it
            return None
        except OSError as error:
            raise ProjectError(f"Cannot read the mask file {path}: {error.strerror or error}. Check the disk, then try "
                               "again.") from None

    def _append_history(self, history: dict, lines: list[str]) -> dict:
        data = "".join(lines).encode("utf-8")
        path = self.folder / HISTORY
        with open(path, "r+b" if path.exists() else "wb") as handle:
            handle.seek(int(history["bytes"]))
            handle.truncate()
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return {"file": HISTORY, "bytes": int(history["bytes"]) + len(data),
                "entries": int(history["entries"]) + len(lines)}

    def _check_history(self) -> None:
        """Make the edit history agree with the manifest: it is optional, so a lost or cut file only loses undo.

        Bytes past what the manifest vouches for (an append whose save did not finish) are cut off.
        """
        path = self.folder / HISTORY
        history = self._manifest["history"]
        valid = int(history["bytes"])
        try:
            size = path.stat().st_size
            if size < valid:
                data = path.read_bytes()
                data = data[: data.rfind(b"\n") + 1]  # whole entries only
                self.notes.append(f"The edit history {path} is shorter than saved; its last entries are lost (the "
                                  "annotation is not).")
                self._manifest["history"] = {**history, "bytes": len(data), "entries": data.count(b"\n")}
            if not self.read_only and size > int(self._manifest["history"]["bytes"]):
                with open(path, "r+b") as handle:
                    handle.truncate(int(self._manifest["history"]["bytes"]))
        except FileNotFoundError:
            if valid:
                self.notes.append(f"The edit history {path} is missing; the annotation is fine but its logged edits "
                                  "are lost.")
            self._manifest["history"] = {**history, "bytes": 0, "entries": 0}
            if not self.read_only:
                self._create_history(path)
        except OSError as error:
            raise ProjectError(f"Cannot read the edit history {path}: {error.strerror or error}.") from None

    @staticmethod
    def _create_history(path: Path) -> None:
        try:
            path.touch()
        except OSError:
            pass  # the next save creates it (a save that cannot write it fails clearly there)

    def _inspect_masks(self) -> list[Path]:
        """Mark frames whose mask file is missing or too short to be a PNG damaged; return files nobody names.

        Only lists the folder, so opening stays quick on long videos; a mask that is damaged inside is found
        when its frame is read, and ``app.core.project_check`` reads every frame.
        """
        present: dict[int, int] = {}  # frame -> size of its mask file
        unreferenced: list[Path] = []
        backup_gen = self._backup[1] if self._backup is not None else None
        try:
            entries = list(os.scandir(self.folder / MASKS))
        except FileNotFoundError:
            entries = []
        except OSError as error:
            raise ProjectError(f"Cannot list {self.folder / MASKS}: {error.strerror or error}.") from None
        for entry in entries:
            stem, _, generation = entry.name.removesuffix(".png").partition(".g")
            if (entry.name.endswith(".png") and stem.isdigit() and generation.isdigit()
                    and int(stem) < len(self._mask_gen)):
                index, generation = int(stem), int(generation)
                if generation == self._mask_gen[index]:
                    present[index] = entry.stat().st_size
                    continue
                if backup_gen is not None and generation == backup_gen[index]:
                    continue
            unreferenced.append(Path(entry.path))
        damaged = [int(i) for i in np.flatnonzero(self._mask_gen)
                   if int(i) not in present or present[int(i)] < MIN_PNG_BYTES]
        self.annotation.damaged_frames.update(damaged)
        return unreferenced

    @property
    def problems(self) -> list[str]:
        """What is damaged in this project, in words (empty when it is healthy as far as it has been read)."""
        problems = list(self.notes)
        damaged = sorted(self.annotation.damaged_frames)
        if damaged:
            listed = ", ".join(map(str, damaged[:10])) + (", ..." if len(damaged) > 10 else "")
            problems.append(
                f"{len(damaged)} frame(s) have a missing or unreadable mask (frames {listed}): they are shown empty "
                "and left out of exports. Restore the mask files from a backup, run the model on those frames again, "
                "or run `dvis project repair` to accept them as empty.")
        return problems

    def _named_tables(self) -> set[str]:
        """Table and track files the current manifest or its backup names."""
        manifests = [self._manifest] + ([self._backup[0]] if self._backup is not None else [])
        return {m["annotation"].get(n) for m in manifests for n in ("tables", "tracks")}

    def _doomed_by(self, manifest: dict, mask_gen: np.ndarray) -> list[Path]:
        """Files of the backup generation that a save of ``manifest`` / ``mask_gen`` leaves unnamed: that save makes
        the state on disk the backup, and these files belong to neither."""
        if self._backup is None or self._disk_manifest is None:
            return []
        old_manifest, old_gen = self._backup
        keep = {m["annotation"].get(n) for m in (manifest, self._disk_manifest) for n in ("tables", "tracks")}
        files = [self.folder / old_manifest["annotation"][n] for n in ("tables", "tracks")
                 if old_manifest["annotation"].get(n) and old_manifest["annotation"][n] not in keep]
        stale = (old_gen > 0) & (old_gen != mask_gen) & (old_gen != self._mask_gen)
        return files + [self._mask_path(int(i), int(old_gen[i])) for i in np.flatnonzero(stale)]

    def _collect_garbage(self, doomed: list[Path]) -> None:
        """Delete files no manifest references (failures are harmless: retried on open)."""
        for path in doomed:
            try:
                path.unlink()
            except OSError:
                pass

    def __repr__(self) -> str:
        return f"Project({str(self.folder)!r}, generation={self.generation})"


# ---------------------------------------------------------------------------------- reading


def _relative(path: Path, folder: Path) -> str | None:
    try:
        return os.path.relpath(path, folder)
    except ValueError:  # another drive on Windows
        return None


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def _read_manifest(path: Path) -> dict:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ProjectError(f"Cannot read {path}: {error.strerror or error}.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ProjectError(f"{path} is damaged (not valid JSON: {error}). Restore it from a backup.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ProjectError(f"{path} is not a DVIS Studio project file.")
    version = manifest.get("version", 0)
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise ProjectError(f"{path} was written by a newer DVIS Studio (format {manifest['version']}); update DVIS "
                           "Studio to open it.")
    problem = _schema_problem(manifest, MANIFEST_SCHEMA)
    if problem is not None:
        raise ProjectError(f"{path} is damaged: entry {problem}. Restore it from a backup.")
    return manifest


#: What a manifest must hold: ``int`` entries are whole numbers >= 0, ``FILE_NAME`` a plain name inside the project.
FILE_NAME = "file name"
MANIFEST_SCHEMA = {
    "version": int, "generation": int,
    "video": {"path": str, "size": int, "sha256_first_mib": str, "num_frames": int, "width": int, "height": int},
    "annotation": {"categories": FILE_NAME, "tables": FILE_NAME, "tracks": FILE_NAME,
                   "num_frames": int, "height": int, "width": int},
    "history": {"bytes": int, "entries": int},
}


def _schema_problem(value: object, schema: object, name: str = "") -> str | None:
    """Why ``value`` does not fit ``schema`` (e.g. "'video.size' is not a whole number"), or None when it fits."""
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            return f"'{name}' is not an object" if name else "the file is not a JSON object"
        for key, part in schema.items():
            path = f"{name}.{key}" if name else key
            if key not in value:
                return f"'{path}' is missing"
            problem = _schema_problem(value[key], part, path)
            if problem is not None:
                return problem
        return None
    if schema is int and (type(value) is not int or value < 0):
        return f"'{name}' is not a whole number ({value!r})"
    if schema is str and not isinstance(value, str):
        return f"'{name}' is not a text ({value!r})"
    if schema is FILE_NAME and (not isinstance(value, str) or not value or Path(value).name != value
                                or value.startswith(".")):
        return f"'{name}' is not a file name in the project folder ({value!r})"
    return None


def _read_annotation(folder: Path, manifest: dict) -> tuple[Annotation, np.ndarray]:
    meta = manifest["annotation"]
    categories_path = folder / meta["categories"]
    try:
        categories = CategoryTable.load(categories_path)
    except CategoryTableError as error:
        raise ProjectError(f"The project's category table is damaged: {error}") from None
    tables_path, tracks_path = folder / meta["tables"], folder / meta["tracks"]
    try:
        with np.load(tables_path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in ("seg", "area", "owner", "mask_gen")}
    except FileNotFoundError:
        raise ProjectError(f"{tables_path} is missing; the project folder is incomplete. Restore it from a "
                           "backup.") from None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as error:
        raise ProjectError(f"{tables_path} is damaged ({error}). Restore the project folder from a backup.") from None
    try:
        tracks = json.loads(tracks_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProjectError(f"{tracks_path} is missing; the project folder is incomplete. Restore it from a "
                           "backup.") from None
    except (OSError, ValueError) as error:
        raise ProjectError(f"{tracks_path} is damaged ({error}). Restore the project folder from a backup.") from None
    mask_gen = arrays.pop("mask_gen").astype(np.int32)
    num_frames, height, width = int(meta["num_frames"]), int(meta["height"]), int(meta["width"])
    if mask_gen.shape != (num_frames,):
        raise ProjectError(f"{tables_path} is damaged: it lists {mask_gen.shape} mask entries for {num_frames} frames.")
    try:
        annotation = Annotation.restore(num_frames, height, width, categories, tracks, arrays, loader=None)
    except (ValueError, KeyError, TypeError, AnnotationError) as error:
        raise ProjectError(f"{tables_path} / {tracks_path} are damaged or disagree ({error}). Restore them from a "
                           "backup.") from None
    if mask_gen.size and int(mask_gen.min()) < 0:
        raise ProjectError(f"{tables_path} is damaged: negative mask generations. Restore it from a backup.")
    return annotation, mask_gen


def _read_backup(folder: Path, num_frames: int) -> tuple[dict, np.ndarray] | None:
    """The previous save's manifest and mask generations, or None when there is none or it is unusable."""
    path = folder / BACKUP_MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = _read_manifest(path)
        with np.load(folder / manifest["annotation"]["tables"], allow_pickle=False) as npz:
            mask_gen = npz["mask_gen"].astype(np.int32)
    except (ProjectError, OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None
    return (manifest, mask_gen) if mask_gen.shape == (num_frames,) else None


def _disk_generation(folder: Path) -> int | None:
    """The generation project.json names now (None when unreadable): tells a concurrent save from damage."""
    try:
        generation = json.loads((folder / MANIFEST).read_text(encoding="utf-8")).get("generation")
    except (OSError, ValueError, AttributeError):
        return None
    return generation if isinstance(generation, int) else None


def _why(error: OSError) -> str:
    """An OSError in words with the file it concerns."""
    return f"{error.strerror or error} ({getattr(error, 'filename', '') or 'a project file'})"


def _remove_dead_staging(folder: Path) -> None:
    """Remove hidden "save as" folders for ``folder`` left by a process that died while writing them."""
    for staging in folder.parent.glob(f".{folder.name}{STAGING_SUFFIX}*"):
        pid = staging.name.rpartition(STAGING_SUFFIX)[2]
        if pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
            shutil.rmtree(staging, ignore_errors=True)
