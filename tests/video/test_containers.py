"""Every container FFmpeg can mux is written, or refused before any frame is decoded."""

from __future__ import annotations

from pathlib import Path

import av
import media
import numpy as np
import pytest

from snl_cli.errors import OutputError, UsageError
from snl_cli.video import VideoWriter, plan_output, probe, read_frames


def _copy(src: Path, dst: Path, **options) -> VideoWriter:
    with VideoWriter(dst, probe(src), **options) as writer:
        for frame in read_frames(src):
            writer.write(frame)
    return writer


@pytest.mark.parametrize("suffix", [".ts", ".m2ts", ".mts", ".mpg"])
def test_mpeg_ts_and_ps_outputs(make_clip, tmp_path, suffix):
    src = make_clip("cam.mp4", frames=6, audio=True)
    out = tmp_path / f"out{suffix}"
    writer = _copy(src, out, preset="ultrafast")
    assert writer.plan.codec == "libx264"  # follows the H.264 input
    decoded = media.decode_rgb(out)
    assert len(decoded) == 6
    assert media.psnr(decoded[3], media.decode_rgb(src)[3]) > 30
    if suffix != ".mpg":  # MPEG-TS holds AAC; MPEG-PS does not and says so
        assert writer.plan.copied == ["audio:aac"]
        assert len(media.packets(out, "audio")) == len(media.packets(src, "audio"))
    else:
        assert writer.plan.dropped == ["audio:aac (mpeg cannot hold aac)"]


def test_mpeg2_takes_a_frame_rate_time_base(make_clip, tmp_path):
    """MPEG-2 refuses the input's 1/12800 time base: frames go onto 1/fps instead."""
    src = make_clip("cam.mp4", frames=5)
    out = tmp_path / "out.ts"
    writer = _copy(src, out, codec="mpeg2video")
    assert writer.plan.time_base == 1 / probe(src).fps
    times = [float(f.pts * f.time_base) for f in media.video_frames_meta(out)]
    assert np.allclose(np.diff(times), 1 / 25)


def test_gif_and_apng_keep_colour(make_clip, tmp_path):
    src = make_clip("c.mp4", frames=2)
    for suffix in (".gif", ".apng"):
        plan = plan_output(probe(src), tmp_path / f"o{suffix}")
        assert not plan.pix_fmt.startswith("gray"), plan.pix_fmt


def test_unwritable_container_refused_up_front(make_clip, tmp_path):
    """DV holds only broadcast sizes: refused at planning, with the encoder's reason."""
    src = make_clip("c.mp4", frames=2)
    with pytest.raises(OutputError, match=r"dv cannot be written.*try a \.mkv"):
        VideoWriter(tmp_path / "o.dv", probe(src))
    assert list(tmp_path.iterdir()) == [src]  # no temporary file left


def test_encoder_options_checked_before_work(make_clip, tmp_path):
    info = probe(make_clip("c.mp4", frames=2))
    with pytest.raises(UsageError, match="--crf for libx264: expected 0 to 51, got 100"):
        plan_output(info, tmp_path / "o.mp4", crf=100)
    with pytest.raises(UsageError, match="--preset for libx264: expected one of"):
        plan_output(info, tmp_path / "o.mp4", preset="ultrafastest")
    assert plan_output(info, tmp_path / "o.mp4", crf=51, preset="veryslow").options["crf"] == "51"


def test_overwrite_of_a_folder_with_other_files_refused_up_front(make_clip, tmp_path):
    src = make_clip("c.mp4", frames=2)
    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(OutputError, match="not only images"):
        VideoWriter(folder, probe(src), overwrite=True)
    assert (folder / "notes.txt").read_text() == "keep me"


def test_every_muxer_with_a_suffix_writes_or_refuses(make_clip, tmp_path):
    """Common suffixes: a playable file, or an OutputError before the first frame."""
    src = make_clip("c.mp4", frames=3)
    for suffix in (".flv", ".3gp", ".ogv", ".nut", ".mxf", ".asf", ".m4v", ".swf", ".dv"):
        out = tmp_path / f"o{suffix}"
        try:
            writer = VideoWriter(out, probe(src), preset=None)
        except OutputError:
            continue
        with writer:
            for frame in read_frames(src):
                writer.write(frame)
        with av.open(str(out)) as container:
            assert sum(1 for _ in container.decode(video=0)) == 3, suffix
