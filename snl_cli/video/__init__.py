"""Streaming video I/O: probe clips, read frames lazily, write safely.

Public names:
    probe, ClipInfo          metadata of a video file or a folder of frames
    read_frames, Frame       lazy float RGB frames with their pts and time base
    VideoWriter              encoder / frame-folder writer that renames into place on success
    plan_output, OutputPlan  the writer's container/codec decision, without writing
    check_output_path        the never-the-input and no-clobber rules
    is_temp_name             recognises the writer's hidden temporary names
"""

from snl_cli.video.plan import OutputPlan, choose_pix_fmt, plan_output
from snl_cli.video.probe import ClipInfo, probe
from snl_cli.video.reader import Frame, read_frames
from snl_cli.video.safety import check_output_path, is_temp_name
from snl_cli.video.writer import VideoWriter

__all__ = [
    "ClipInfo",
    "Frame",
    "OutputPlan",
    "VideoWriter",
    "check_output_path",
    "choose_pix_fmt",
    "is_temp_name",
    "plan_output",
    "probe",
    "read_frames",
]
