"""The app served to strangers: typed server paths are an opt-in limited to allowed folders and reveal nothing
outside them; uploads are capped per server; checkpoints come in through the uploader, zips unpacked safely."""

import io
import os
import time
import zipfile

import pytest
from hf_fixtures import tiny_hf_config
from streamlit import config
from test_app import charts, demo_dir, sidebar_text, start  # noqa: F401  (demo_dir is a fixture)
from transformers import TimesformerForVideoClassification

import ui.uploads as uploads
from timesformer.checkpoints import load_checkpoint
from ui.server_paths import ALLOWED_DIRS_VARIABLE, REFUSED, allowed_dirs


@pytest.fixture
def allowed(tmp_path, monkeypatch):
    """A folder the server allows, and one beside it that it does not."""
    inside, outside = tmp_path / "allowed", tmp_path / "private"
    inside.mkdir()
    outside.mkdir()
    monkeypatch.setenv(ALLOWED_DIRS_VARIABLE, str(inside))
    return inside, outside


def checkpoint_error(app, path: str) -> str:
    app.sidebar.text_input(key="checkpoint_path").input(path).run()
    assert not app.exception
    (error,) = app.error
    return error.value


def test_paths_are_off_unless_whoever_starts_the_server_allows_them(demo_dir, monkeypatch):  # noqa: F811
    monkeypatch.delenv(ALLOWED_DIRS_VARIABLE, raising=False)
    assert allowed_dirs() == ()  # Streamlit listens on every interface by default: off
    app = start()
    assert app.sidebar.radio(key="model_source").options == ["Shipped demo", "Upload"]
    config.set_option("server.address", "localhost")
    try:
        assert len(allowed_dirs()) == 2  # a server on this machine only: the home and working folders
    finally:
        config.set_option("server.address", "")
    monkeypatch.setenv(ALLOWED_DIRS_VARIABLE, "")
    assert allowed_dirs() == ()


def test_a_path_outside_the_allowed_folders_reveals_nothing(demo_dir, allowed):  # noqa: F811
    inside, outside = allowed
    (outside / "secret.pyth").write_bytes(b"not a checkpoint")
    (inside / "link.pyth").symlink_to(outside / "secret.pyth")
    app = start("video")
    app.sidebar.radio(key="model_source").set_value("Server path").run()
    said = {
        checkpoint_error(app, str(path))
        for path in (
            outside / "secret.pyth",  # a file that exists
            outside / "missing.pyth",  # one that does not
            outside,  # a folder
            inside / ".." / "private" / "secret.pyth",  # the way round
            inside / "link.pyth",  # a link from inside to outside
            "/etc/shadow",
        )
    }
    assert said == {f"Could not use this checkpoint: {REFUSED}"}


def test_inside_the_allowed_folders_only_regular_files_are_opened(demo_dir, allowed):  # noqa: F811
    inside, _ = allowed
    (inside / "garbage.pyth").write_bytes(b"not a checkpoint at all")
    os.mkfifo(inside / "pipe.pyth")
    (inside / "hf").mkdir()
    os.mkfifo(inside / "hf" / "config.json")
    app = start("video")
    app.sidebar.radio(key="model_source").set_value("Server path").run()
    assert "There is no file or folder" in checkpoint_error(app, str(inside / "nope.pth"))
    assert "not a regular file" in checkpoint_error(app, str(inside / "pipe.pyth"))  # would hang a session
    assert "holds config.json" in checkpoint_error(app, str(inside / "hf"))
    assert "not a readable" in checkpoint_error(app, str(inside / "garbage.pyth"))
    (inside / "model.safetensors").write_bytes((demo_dir / "space_only_motion.safetensors").read_bytes())
    app.sidebar.text_input(key="checkpoint_path").input(str(inside / "model.safetensors")).run()
    assert not app.exception and not app.error and "S · space only" in sidebar_text(app)


def test_a_batch_output_folder_opens_only_inside_the_allowed_folders(demo_dir, allowed, write_batch_output):  # noqa: F811
    inside, outside = allowed
    out = write_batch_output(inside, demo_dir / "divided_space_time_motion.safetensors", 6, ["a", "b"], broken=1)
    app = start("embeddings")
    app.radio(key="embed_source").set_value("A batch output folder").run()  # the held-out clips are not embedded
    assert "Enter the path" in app.info[0].value and not charts(app)
    app.text_input(key="embed_folder").input(str(out)).run()
    assert not app.exception and not app.error
    traces = charts(app)[0]["data"]
    assert [t["name"] for t in traces] == ["a", "b"] and [len(t["customdata"]) for t in traces] == [3, 3]
    assert {text.split("<br>")[0] for t in traces for text in t["text"]} == {f"clip{i:02d}.mp4" for i in range(6)}
    assert "6 videos embedded · 1 error row skipped" in "\n".join(c.value for c in app.caption)
    assert len(app.get("download_button")) == 2
    for bad, message in (
        (inside / "nowhere", "There is no file"),
        (inside, "not a batch output folder"),
        (outside, REFUSED),
        (outside / "nowhere", REFUSED),
    ):
        app.text_input(key="embed_folder").input(str(bad)).run()
        assert not app.exception and message in app.error[0].value and not charts(app)


def hf_zip(tmp_path, top: str = "my-model", extra: dict[str, bytes] | None = None) -> bytes:
    """A tiny Hugging Face TimeSformer saved by transformers, zipped under `top/`, with `extra` members."""
    model = TimesformerForVideoClassification(tiny_hf_config(num_labels=3))
    model.save_pretrained(tmp_path / "saved")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in (tmp_path / "saved").iterdir():
            archive.write(path, f"{top}/{path.name}")
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_a_zipped_model_is_unpacked_without_leaving_its_folder(tmp_path):
    evil = {
        "../../escaped.txt": b"x",
        "/absolute.txt": b"x",
        "my-model/../../up.json": b"x",
        "my-model/notes/config.json": b"{}",
    }
    archive = hf_zip(tmp_path, extra=evil)
    target = uploads.unpack_model_zip(archive, tmp_path / "uploads")
    assert target.parent == tmp_path / "uploads"
    assert sorted(p.name for p in target.iterdir()) == ["config.json", "model.safetensors"]
    assert sorted(p.name for p in tmp_path.rglob("*.txt")) == [] and not list(tmp_path.rglob("up.json"))
    assert load_checkpoint(target).config.num_frames == 4
    assert uploads.unpack_model_zip(archive, tmp_path / "uploads") == target  # once per content
    with pytest.raises(uploads.UploadError, match="over"):
        uploads.unpack_model_zip(hf_zip(tmp_path, top="other"), tmp_path / "small", limit=1000)
    assert not (tmp_path / "small").exists() or not any((tmp_path / "small").iterdir())
    with pytest.raises(uploads.UploadError, match="no config.json"):
        uploads.unpack_model_zip(zipfile_bytes({"model.safetensors": b"x"}), tmp_path / "uploads")
    with pytest.raises(uploads.UploadError, match="not a readable zip"):
        uploads.unpack_model_zip(b"PK not really", tmp_path / "uploads")


def zipfile_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_checkpoints_come_in_through_the_uploader(demo_dir, tmp_path):  # noqa: F811
    app = start("video")
    app.sidebar.radio(key="model_source").set_value("Upload").run()

    def upload(name: str, data: bytes) -> None:
        app.sidebar.file_uploader(key="checkpoint_upload").upload(name, data, "application/octet-stream").run()

    upload("mine.safetensors", (demo_dir / "axial_motion.safetensors").read_bytes())
    assert not app.exception and not app.error
    assert "T+W+H · axial" in sidebar_text(app) and "mine.safetensors" in sidebar_text(app)
    upload("hf.zip", hf_zip(tmp_path))
    assert not app.exception and not app.error and "hf.zip" in sidebar_text(app)
    upload("broken.pyth", b"not a checkpoint at all")
    (error,) = app.error
    assert "broken.pyth" in error.value and str(uploads.UPLOAD_DIR) not in error.value


def touched(path, age_s: float, now: float):
    os.utime(path, (now - age_s, now - age_s))
    return path


def test_the_upload_folder_is_capped_oldest_first_never_what_is_in_use(tmp_path, monkeypatch):
    monkeypatch.setattr(uploads, "MAX_TOTAL_BYTES", 300)
    now = time.time()
    old = touched(uploads.store(b"a" * 100, ".mp4", tmp_path), 3 * 3600, now)
    older = touched(uploads.store(b"b" * 100, ".mp4", tmp_path), 5 * 3600, now)
    busy = touched(uploads.store(b"c" * 100, ".mp4", tmp_path), 60, now)  # used a minute ago
    uploads.make_room(100, tmp_path, now)
    assert not older.exists() and old.exists() and busy.exists()  # the least recently used went first
    uploads.make_room(200, tmp_path, now)
    assert not old.exists() and busy.exists()
    with pytest.raises(uploads.UploadError, match="in use"):
        uploads.make_room(250, tmp_path, now)  # only what is in use is left, and it leaves no room
    with pytest.raises(uploads.UploadError, match="larger than"):
        uploads.make_room(301, tmp_path, now)
    stale = touched(uploads.store(b"d" * 10, ".mp4", tmp_path), uploads.MAX_AGE_S + 60, now)
    uploads.make_room(0, tmp_path, now)
    assert not stale.exists() and busy.exists()  # unused for a day: gone, though there was room
