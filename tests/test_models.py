"""The model library: catalogue, add / remove, downloads from a local HTTP server, the `dvis models` commands."""

from __future__ import annotations

import errno
import hashlib
import json
import socket
from dataclasses import replace
from pathlib import Path

import pytest
from model_server import no_proxy, serve  # noqa: F401 - no_proxy: autouse fixture
from videos import make_video

from app.cli import main
from app.core.errors import Cancelled, ModelLibraryError
from app.core.models import ModelLibrary, catalogue_entries, find_entry
from app.core.models import catalogue as catalogue_module
from app.core.models import library as library_module
from app.core.models.download import part_path
from dvis_models.resources import BUNDLED_CHECKPOINT

PAYLOAD = BUNDLED_CHECKPOINT.read_bytes()  # a real checkpoint (bundled_small, ~10 MB)
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


def local_entry(url: str, sha256: str | None = DIGEST, name: str = "tiny-online"):
    """A supported catalogue entry whose direct link is the local server."""
    base = find_entry("dvis-vipseg-swinl-online")
    return replace(base, name=name, direct_url=url, sha256=sha256, pages=("https://example.org/page",),
                   preset="bundled_small")


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


# ----------------------------------------------------------------------------------------------- catalogue

def test_catalogue_lists_the_official_vipseg_checkpoints():
    entries = {e.name: e for e in catalogue_entries()}
    assert entries["dvis-vipseg-swinl-offline"].vpq == 57.6 and entries["dvis-vipseg-swinl-offline"].supported
    assert entries["dvis++-vipseg-r50-online"].vpq == 41.9 and entries["dvis++-vipseg-r50-online"].supported
    assert [entries[f"dvis++-vipseg-r50-{m}"].preset for m in ("online", "offline")] == [
        "dvispp_r50_vipseg_online", "dvispp_r50_vipseg_offline"]
    assert not entries["dvis++-vipseg-vitl-online"].supported
    assert entries["dvis++-vipseg-vitl-offline"].vpq == 58.0
    assert {e.family for e in entries.values()} == {"DVIS", "DVIS++", "DVIS-DAQ"}
    for entry in entries.values():
        assert entry.pages and entry.model_zoo.startswith("https://github.com/zhang-tao-whu/")
        assert entry.sha256 is None or len(entry.sha256) == 64


def test_download_of_an_entry_without_a_link_says_where_to_get_it(tmp_path):
    with pytest.raises(ModelLibraryError, match=r"(?s)in a browser.*pan\.baidu\.com.*dvis models add FILE"):
        ModelLibrary(tmp_path / "lib").download("dvis-vipseg-swinl-offline")


def test_unsupported_architectures_are_refused_clearly(tmp_path):
    library = ModelLibrary(tmp_path / "lib")
    with pytest.raises(ModelLibraryError, match="DVIS\\+\\+ checkpoint.*cannot load it yet"):
        library.download("dvis++-vipseg-vitl-online")
    with pytest.raises(ModelLibraryError, match="cannot load it yet"):
        library.add(BUNDLED_CHECKPOINT, name="dvis++-vipseg-vitl-online")
    assert library.list() == []


# ----------------------------------------------------------------------------------------------- add / remove

def test_add_records_the_model_and_remove_deletes_it(tmp_path):
    library = ModelLibrary(tmp_path / "lib")
    record = library.add(BUNDLED_CHECKPOINT, name="small")
    assert (record.preset, record.mode, record.family) == ("bundled_small", "offline", "DVIS")
    assert record.sha256 == DIGEST and record.size == len(PAYLOAD)
    assert library.path("small").read_bytes() == PAYLOAD
    index = json.loads((tmp_path / "lib" / "library.json").read_text())
    assert [m["name"] for m in index["models"]] == ["small"]
    assert ModelLibrary(tmp_path / "lib").list() == [record]  # read back from disk
    library.remove("small")
    assert library.list() == [] and not (tmp_path / "lib" / "small.pth").exists()
    with pytest.raises(ModelLibraryError, match="No installed model is named 'small'"):
        library.remove("small")


def test_a_catalogue_name_needs_the_file_of_that_architecture(tmp_path):
    library = ModelLibrary(tmp_path / "lib")
    with pytest.raises(ModelLibraryError,
                       match="holds a bundled_small model, but dvis-vipseg-swinl-offline is .*Swin-L"):
        library.add(BUNDLED_CHECKPOINT, name="dvis-vipseg-swinl-offline")
    assert library.list() == []


def test_a_name_clash_is_refused_and_another_name_works(tmp_path):
    library = ModelLibrary(tmp_path / "lib")
    library.add(BUNDLED_CHECKPOINT, name="small")
    with pytest.raises(ModelLibraryError, match="already installed.*--name"):
        library.add(BUNDLED_CHECKPOINT, name="small")
    library.add(BUNDLED_CHECKPOINT, name="small-2")
    assert [m.name for m in library.list()] == ["small", "small-2"]


def test_a_file_that_is_not_a_checkpoint_is_refused_and_the_library_is_intact(tmp_path):
    library = ModelLibrary(tmp_path / "lib")
    library.add(BUNDLED_CHECKPOINT, name="small")
    before = files(tmp_path / "lib")
    junk = tmp_path / "notes.pth"
    junk.write_bytes(b"these are not weights")
    with pytest.raises(ModelLibraryError, match="notes.pth cannot be added: .*a text file, not a checkpoint"):
        library.add(junk)
    junk.write_bytes(bytes(range(256)) * 4)  # binary, not a zip or pickle: torch's own reader refuses it
    with pytest.raises(ModelLibraryError, match="notes.pth cannot be added: .*not a readable PyTorch checkpoint"):
        library.add(junk)
    assert files(tmp_path / "lib") == before


def test_a_full_disk_leaves_the_library_intact(tmp_path, monkeypatch):
    library = ModelLibrary(tmp_path / "lib")
    library.add(BUNDLED_CHECKPOINT, name="small")
    before = files(tmp_path / "lib")

    def no_link(*args):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    def disk_full(source, destination):
        Path(destination).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(library_module.os, "link", no_link)
    monkeypatch.setattr(library_module.shutil, "copyfile", disk_full)
    with pytest.raises(ModelLibraryError, match="No space left on device. Free some disk space.*unchanged"):
        library.add(BUNDLED_CHECKPOINT, name="other")
    assert files(tmp_path / "lib") == before


# ----------------------------------------------------------------------------------------------- download

def test_download_installs_a_verified_file(tmp_path):
    library = ModelLibrary(tmp_path / "lib")
    reports = []
    with serve(PAYLOAD) as server:
        record = library.download_entry(local_entry(server.url), progress=reports.append)
    assert record.sha256 == DIGEST and record.source == server.url and record.catalogue == "tiny-online"
    assert library.path("tiny-online").read_bytes() == PAYLOAD
    assert reports[-1].done == reports[-1].total == len(PAYLOAD) and reports[-1].speed > 0
    assert [name for name in files(tmp_path / "lib")] == ["library.json", "tiny-online.pth"]


def test_a_dropped_connection_resumes_with_a_range_request(tmp_path):
    library = ModelLibrary(tmp_path / "lib")
    half = len(PAYLOAD) // 2
    with serve(PAYLOAD, drop_after=half) as server:
        entry = local_entry(server.url)
        with pytest.raises(ModelLibraryError, match=f"after {half} of {len(PAYLOAD)} bytes.*again to resume"):
            library.download_entry(entry)
        assert library.list() == []
        assert part_path(tmp_path / "lib" / ".tiny-online.download").stat().st_size == half
        record = library.download_entry(entry)
    assert server.requests[-1][1] == f"bytes={half}-"
    assert record.sha256 == DIGEST and library.path("tiny-online").read_bytes() == PAYLOAD


def test_a_server_that_ignores_range_gets_a_fresh_download(tmp_path):
    library = ModelLibrary(tmp_path / "lib")
    with serve(PAYLOAD, drop_after=1000, honour_range=False) as server:
        with pytest.raises(ModelLibraryError):
            library.download_entry(local_entry(server.url))
        library.download_entry(local_entry(server.url))
    assert library.path("tiny-online").read_bytes() == PAYLOAD


def test_a_wrong_checksum_deletes_the_download_and_leaves_the_library_unchanged(tmp_path):
    library = ModelLibrary(tmp_path / "lib")
    library.add(BUNDLED_CHECKPOINT, name="small")
    before = files(tmp_path / "lib")
    with serve(PAYLOAD) as server:
        with pytest.raises(ModelLibraryError, match="damaged or not the expected one.*deleted"):
            library.download_entry(local_entry(server.url, sha256="0" * 64))
    assert files(tmp_path / "lib") == before


def test_cancel_keeps_the_part_and_the_next_download_resumes(tmp_path):
    library = ModelLibrary(tmp_path / "lib")
    seen = []
    with serve(PAYLOAD) as server:
        entry = local_entry(server.url)
        with pytest.raises(Cancelled, match="cancelled"):
            library.download_entry(entry, progress=seen.append, cancel=lambda: bool(seen))
        part = part_path(tmp_path / "lib" / ".tiny-online.download")
        assert 0 < part.stat().st_size < len(PAYLOAD) and library.list() == []
        library.download_entry(entry)
    assert server.requests[-1][1] == f"bytes={seen[0].done}-"
    assert library.path("tiny-online").read_bytes() == PAYLOAD


def test_offline_gives_a_clear_message(tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    entry = local_entry(f"http://127.0.0.1:{port}/model.pth")
    with pytest.raises(ModelLibraryError, match=r"(?s)Cannot reach 127\.0\.0\.1 .*check your connection or proxy.*"
                                                r"in a browser from https://example.org/page.*dvis models add"):
        ModelLibrary(tmp_path / "lib").download_entry(entry)


def test_the_proxy_comes_from_the_environment(tmp_path, monkeypatch):
    with serve(PAYLOAD) as proxy:
        monkeypatch.setenv("http_proxy", proxy.url.rsplit("/", 1)[0])
        entry = local_entry("http://models.example.invalid/dvis.pth")
        ModelLibrary(tmp_path / "lib").download_entry(entry)
    assert proxy.requests[0][0] == "http://models.example.invalid/dvis.pth"  # the proxy was asked for the URL


# ----------------------------------------------------------------------------------------------- CLI

def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_add_list_info_infer_remove(tmp_path, capsys):
    code, out, _ = run(capsys, "models", "add", BUNDLED_CHECKPOINT, "--name", "mine")
    assert code == 0 and "added mine: bundled_small (offline)" in out
    code, out, _ = run(capsys, "models", "add", BUNDLED_CHECKPOINT, "--name", "mine")
    assert code == 1
    code, out, _ = run(capsys, "models", "list")
    assert "mine" in out and "dvis-vipseg-swinl-online" in out and "VPQ 41.9" in out
    code, out, _ = run(capsys, "models", "info", "mine")
    assert code == 0 and f"sha256: {DIGEST}" in out
    video = make_video(tmp_path / "clip.mp4", num_frames=4, size=(160, 128))
    code, out, _ = run(capsys, "infer", video, "--out", tmp_path / "out", "--online", "--model", "mine")
    assert code == 0 and "model bundled_small (online)" in out
    assert len(list((tmp_path / "out" / "panomasks" / "clip").glob("*.png"))) == 4
    code, out, _ = run(capsys, "models", "remove", "mine")
    assert code == 0 and "removed mine" in out
    code, _, err = run(capsys, "infer", video, "--out", tmp_path / "out2", "--model", "mine")
    assert code == 1 and "No installed model is named 'mine'" in err


def test_cli_download_from_a_catalogue_entry(tmp_path, capsys, monkeypatch):
    with serve(PAYLOAD) as server:
        catalogue_file = tmp_path / "catalogue.json"
        shipped = json.loads(catalogue_module.CATALOGUE_FILE.read_text())
        item = {**shipped["models"][0], "name": "tiny-online", "direct_url": server.url, "sha256": DIGEST,
                "preset": "bundled_small"}
        catalogue_file.write_text(json.dumps({**shipped, "models": [item]}))
        monkeypatch.setattr(catalogue_module, "CATALOGUE_FILE", catalogue_file)
        code, out, _ = run(capsys, "models", "download", "tiny-online")
    assert code == 0 and "MB/s" in out and "installed tiny-online (bundled_small)" in out
    code, out, _ = run(capsys, "models", "info", "tiny-online")
    assert "installed:" in out and "catalogue:" in out


def test_cli_download_without_a_link_and_unknown_names(capsys):
    code, _, err = run(capsys, "models", "download", "dvis-vipseg-swinl-online")
    assert code == 1 and "pan.baidu.com" in err and "dvis models add FILE --name dvis-vipseg-swinl-online" in err
    code, _, err = run(capsys, "models", "info", "nothing")
    assert code == 1 and "No installed or catalogue model" in err
    code, _, err = run(capsys, "models", "add", Path(__file__))
    assert code == 1 and "cannot be added" in err


def test_the_data_folder_holds_the_library(tmp_path):
    assert ModelLibrary().folder == tmp_path / "data" / "models"  # conftest points the data folder here
