"""Temporary files of interrupted uploads and URL fetches are removed at start; nothing else is."""

from __future__ import annotations

from pathlib import Path

from bridge.adapters.leftovers import remove_leftover_temp_files


def test_interrupted_upload_and_fetch_files_are_removed_and_nothing_else(tmp_path: Path) -> None:
    media, cache, rec = tmp_path / "media", tmp_path / "media-cache", tmp_path / "recordings" / "rec_1"
    for folder in (media, cache, rec):
        folder.mkdir(parents=True)
    temporary = [media / ".media_ab12.upload.ogg", media / ".media_cd34.upload", cache / "3f2a.wav.part"]
    kept = [media / "media_ab12.ogg", cache / "3f2a.wav", rec / "mix.pcm.part", tmp_path / "bridge.sqlite3"]
    for path in temporary + kept:
        path.write_bytes(b"x")

    removed = remove_leftover_temp_files(tmp_path)

    assert sorted(removed) == sorted(temporary)
    assert not any(p.exists() for p in temporary)
    assert all(p.exists() for p in kept), "a finished file or a recording track was removed"


def test_a_fresh_data_dir_is_fine(tmp_path: Path) -> None:
    assert remove_leftover_temp_files(tmp_path) == []
