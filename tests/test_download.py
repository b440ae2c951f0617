"""`avsep download solos` against a local HTTP server standing in for YouTube."""

from __future__ import annotations

import functools
import http.server
import json
import re
import threading
from pathlib import Path

import av
import numpy as np
import pytest

from avsep.classes import SOLOS_CLASSES
from avsep.cli import main as avsep_main
from data_prep.download import download_music, download_solos, is_transient, load_ids
from data_prep.music_ids import load_music_ids


def tiny_mp4(path: Path) -> bytes:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(10):
            image = np.full((32, 32, 3), i * 20, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path.read_bytes()


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def do_GET(self):
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def server(tmp_path):
    """Serves tmp_path/site over HTTP on 127.0.0.1; yields (url_template, requests, files)."""
    site = tmp_path / "site"
    site.mkdir()
    files = {name: tiny_mp4(site / f"{name}.mp4") for name in ("vidA_000000", "vidB_000000")}
    requests: list[str] = []
    handler = functools.partial(type("H", (_Handler,), {"requests": requests}),
                                directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/{{id}}.mp4", requests, files
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def ids_file(tmp_path):
    path = tmp_path / "ids.json"
    path.write_text(json.dumps({"Violin": ["vidA_000000", "gone404_000"], "Flute": ["vidB_000000"]}))
    return path


def test_downloads_to_class_folders_and_records_unavailable(server, ids_file, tmp_path):
    template, _requests, files = server
    raw = tmp_path / "raw"
    summary = download_solos(raw, ids_file, url_template=template)
    assert sorted(summary.downloaded) == ["vidA_000000", "vidB_000000"]
    assert (raw / "Violin" / "vidA_000000.mp4").read_bytes() == files["vidA_000000"]
    assert (raw / "Flute" / "vidB_000000.mp4").read_bytes() == files["vidB_000000"]
    unavailable = json.loads((raw / "unavailable.json").read_text())
    assert list(unavailable) == ["gone404_000"]
    assert unavailable["gone404_000"]["class"] == "Violin"
    assert "404" in unavailable["gone404_000"]["reason"]
    assert (raw / "solos_timestamps.json").is_file()  # where `avsep prepare solos` looks
    assert not list(raw.rglob("*.part"))


def test_rerun_skips_present_and_unavailable_ids(server, ids_file, tmp_path):
    template, requests, _ = server
    raw = tmp_path / "raw"
    download_solos(raw, ids_file, url_template=template)
    seen = len(requests)
    summary = download_solos(raw, ids_file, url_template=template)
    assert len(requests) == seen  # nothing fetched again
    assert sorted(summary.present) == ["vidA_000000", "vidB_000000"]
    assert summary.known_unavailable == ["gone404_000"]
    summary = download_solos(raw, ids_file, url_template=template, retry_unavailable=True)
    assert requests[seen:] == ["/gone404_000.mp4"]
    assert "gone404_000" in summary.unavailable


def test_network_errors_are_not_recorded_as_unavailable(ids_file, tmp_path):
    import socket

    with socket.socket() as sock:  # a port with nobody listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    raw = tmp_path / "raw"
    summary = download_solos(raw, ids_file, url_template=f"http://127.0.0.1:{port}/{{id}}.mp4",
                             max_consecutive_network_errors=2)
    assert len(summary.failed) == 2  # stopped after two in a row
    assert all(is_transient(reason) for reason in summary.failed.values())
    assert not (raw / "unavailable.json").exists()


def test_cli_download_and_template_check(server, ids_file, tmp_path, capsys):
    template, _, _ = server
    raw = tmp_path / "raw"
    code = avsep_main(["download", "solos", "--out", str(raw), "--ids", str(ids_file),
                       "--url-template", template, "--classes", "Flute"])
    assert code == 0
    assert (raw / "Flute" / "vidB_000000.mp4").is_file() and not (raw / "Violin").exists()
    code = avsep_main(["download", "solos", "--out", str(raw), "--url-template", "http://x/"])
    assert code == 2
    assert "must contain {id}" in capsys.readouterr().err


def test_packaged_id_list_covers_the_solos_classes():
    ids = load_ids()
    assert sorted(ids) == sorted(SOLOS_CLASSES)
    assert sum(len(v) for v in ids.values()) > 700


@pytest.mark.parametrize("ids, words", [
    ({"Violin": ["../../../../tmp/evil"]}, "not YouTube video ids"),
    ({"Violin": ["abc"]}, "not YouTube video ids"),
    ({"Violin": [12345678901]}, "not YouTube video ids"),
    ({"../escape": ["vidA_000000"]}, "unknown classes ['../escape']"),
    ({"Banjo": ["vidA_000000"]}, "unknown classes ['Banjo']"),
])
def test_id_files_that_could_write_outside_out_are_refused(ids, words, tmp_path, capsys):
    path = tmp_path / "ids.json"
    path.write_text(json.dumps(ids))
    with pytest.raises(ValueError, match=re.escape(words)):
        load_ids(path)
    raw = tmp_path / "deep" / "raw"
    code = avsep_main(["download", "solos", "--out", str(raw), "--ids", str(path),
                       "--url-template", "http://127.0.0.1:9/{id}.mp4"])
    assert code == 2
    assert words in capsys.readouterr().err
    assert not raw.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["ids.json"]


# ----------------------------------------------------------------------------- MUSIC lists
def test_music_lists_go_to_solo_and_duet_folders_and_gone_ids_are_recorded(server, tmp_path):
    template, requests, files = server
    solo, duet = tmp_path / "solo.json", tmp_path / "duet.json"
    solo.write_text(json.dumps({"videos": {"violin": ["vidA_000000", "gone404_000"]}}))
    duet.write_text(json.dumps({"videos": {"acoustic_guitar violin": ["vidB_000000"]}}))
    raw = tmp_path / "raw"
    code = avsep_main(["download", "music", "--out", str(raw), "--ids", str(solo), str(duet),
                       "--url-template", template])
    assert code == 0
    assert (raw / "solo" / "violin" / "vidA_000000.mp4").read_bytes() == files["vidA_000000"]
    assert ((raw / "duet" / "acoustic_guitar violin" / "vidB_000000.mp4").read_bytes()
            == files["vidB_000000"])
    unavailable = json.loads((raw / "unavailable.json").read_text())
    assert unavailable["gone404_000"]["folder"] == "solo/violin"
    assert "404" in unavailable["gone404_000"]["reason"]
    assert (raw / "solo.json").is_file() and (raw / "duet.json").is_file()
    seen = len(requests)
    summary = download_music(raw, [solo, duet], url_template=template)
    assert len(requests) == seen  # resumed: nothing fetched again
    assert summary.known_unavailable == ["gone404_000"]


def test_music_class_filter_keeps_duets_of_chosen_classes_only(server, tmp_path):
    template, _, _ = server
    ids = tmp_path / "ids.json"
    ids.write_text(json.dumps({"videos": {"violin": ["vidA_000000"],
                                          "flute violin": ["vidB_000000"]}}))
    summary = download_music(tmp_path / "raw", [ids], url_template=template, classes=["violin"])
    assert summary.downloaded == ["vidA_000000"]


@pytest.mark.parametrize("videos, words", [
    ({"Violin": ["vidA_000000"]}, "unknown classes ['Violin']"),
    ({"violin  flute": ["vidA_000000"]}, "unknown classes ['violin  flute']"),
    ({"../violin": ["vidA_000000"]}, "unknown classes ['../violin']"),
    ({"violin": ["../../evil_id"]}, "not YouTube video ids"),
])
def test_music_lists_that_could_write_outside_out_are_refused(videos, words, tmp_path, capsys):
    path = tmp_path / "ids.json"
    path.write_text(json.dumps({"videos": videos}))
    raw = tmp_path / "raw"
    code = avsep_main(["download", "music", "--out", str(raw), "--ids", str(path),
                       "--url-template", "http://127.0.0.1:9/{id}.mp4"])
    assert code == 2
    assert words in capsys.readouterr().err
    assert not raw.exists()
    path.write_text(json.dumps(videos))  # the Solos format is not a MUSIC list
    with pytest.raises(ValueError, match='expected {"videos"'):
        load_music_ids([path])
