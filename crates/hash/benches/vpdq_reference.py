#!/usr/bin/env python3
"""Compare aranea-hash's vPDQ with Meta's reference implementation, frame by frame.

Generates benign videos from ../shared/corpus with the ffmpeg CLI (a slideshow, re-encodes in
other codecs, sizes and frame rates, a clip, an animated GIF), hashes each with the reference
(PyPI `vpdq`, the Cython binding of ThreatExchange's C++ vpdq, built against Debian's libav*)
and with our `vpdq_text` example, at one frame a second, every frame, and downsampled to
128x128 (as the `-128x128` files in vpdq/sample-hashes), and prints how many frame numbers,
qualities, hashes and timestamps agree.

Setup (once): apt-get install cmake libavcodec-dev libavformat-dev libavutil-dev libswscale-dev
libavfilter-dev libavdevice-dev libswresample-dev; python3 -m venv /tmp/vpdq-venv;
/tmp/vpdq-venv/bin/pip install vpdq;
cargo build --release -p aranea-hash --example vpdq_text
Run: /tmp/vpdq-venv/bin/python crates/hash/benches/vpdq_reference.py TARGET_DIR
"""
import os
import subprocess
import sys
import tempfile

import vpdq

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.normpath(os.path.join(HERE, "../../../../shared/corpus"))
IMAGES = ["img-0001.jpg", "img-0002.jpg", "img-0004.jpg", "img-0005.jpg"]


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-nostdin", "-y", "-loglevel", "error", *args], check=True)


def make_videos(dir):
    inputs, graph = [], ""
    for i, name in enumerate(IMAGES):
        inputs += ["-loop", "1", "-t", "2", "-i", os.path.join(CORPUS, name)]
        graph += f"[{i}]scale=320:240,setsar=1,fps=10[v{i}];"
    graph += "".join(f"[v{i}]" for i in range(len(IMAGES))) + f"concat=n={len(IMAGES)}:v=1[out]"
    show = os.path.join(dir, "show.mp4")
    ffmpeg(*inputs, "-filter_complex", graph, "-map", "[out]", "-c:v", "libx264",
           "-preset", "ultrafast", "-pix_fmt", "yuv420p", show)
    out = {"show.mp4": show}
    variants = {
        "small.webm": ["-vf", "scale=240:180,fps=15", "-c:v", "libvpx", "-b:v", "400k"],
        "mjpeg.avi": ["-vf", "fps=25", "-c:v", "mjpeg", "-q:v", "20"],
        "big.mkv": ["-vf", "scale=640:480", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "40"],
        "ntsc.mp4": ["-vf", "fps=30000/1001", "-c:v", "libx264", "-preset", "ultrafast"],
        "anim.gif": ["-vf", "split[a][b];[a]palettegen[p];[b][p]paletteuse"],
    }
    for name, args in variants.items():
        out[name] = os.path.join(dir, name)
        ffmpeg("-i", show, *args, out[name])
    out["clip.mp4"] = os.path.join(dir, "clip.mp4")
    ffmpeg("-ss", "2", "-t", "3", "-i", show, "-c:v", "libx264", "-preset", "ultrafast", out["clip.mp4"])
    return out


def compare(ours_bin, name, path, seconds, size):
    ref = vpdq.computeHash(input_video_filename=path, seconds_per_hash=seconds,
                           downsample_width=size, downsample_height=size)
    args = [ours_bin, path, str(seconds)] + ([str(size), str(size)] if size else [])
    run = subprocess.run(args, capture_output=True, text=True)
    if run.returncode != 0:
        print(f"{name:11} sph={seconds} size={size or 'native':6} ours failed: {run.stderr.strip()}")
        return
    ours = [line.split(",") for line in run.stdout.splitlines()]
    pairs = list(zip(ours, ref))
    dists = [bin(int(o[2], 16) ^ int(r.hex, 16)).count("1") for o, r in pairs]
    print(f"{name:11} sph={seconds} size={size or 'native':6} frames ours={len(ours):3} ref={len(ref):3} "
          f"numbers={'same' if [int(o[0]) for o in ours] == [r.frame_number for r in ref] else 'DIFFER'} "
          f"exact hashes={sum(d == 0 for d in dists)}/{len(dists)} max distance={max(dists, default=0)} "
          f"same quality={sum(int(o[1]) == r.quality for o, r in pairs)} "
          f"same timestamp text={sum(o[3] == f'{r.timestamp:.3f}' for o, r in pairs)}")


def main():
    target = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("CARGO_TARGET_DIR", "target")
    ours_bin = os.path.join(target, "release", "examples", "vpdq_text")
    with tempfile.TemporaryDirectory() as dir:
        for name, path in make_videos(dir).items():
            for seconds, size in [(1, 0), (0, 0), (1, 128)]:
                compare(ours_bin, name, path, seconds, size)


if __name__ == "__main__":
    main()
