"""Video through the Arachnid Shield Python SDK (PyPI arachnid-shield-sdk) against a real
`aranea serve`. Run by crates/aranea/tests/shield_sdk_video.rs, which sets
ARACHNID_SHIELD_URL (read by the SDK at import), the credentials and the video paths. One
line per check; exit status 1 on the first failure.

Usage: check_video.py spliced FILE SECONDS SHA256 | no-match FILE | wait-match FILE | wait-no-match FILE
"""

import os
import sys
import time

from arachnid_shield_sdk import ArachnidShield, MediaClassification
from arachnid_shield_sdk.models.scanned_media import MatchType


def check(what, ok, detail=""):
    if ok:
        print(f"ok   {what}")
    else:
        print(f"FAIL {what}: {detail}")
        sys.exit(1)


def scan(path):
    shield = ArachnidShield(os.environ["SHIELD_USER"], os.environ["SHIELD_PASS"])
    with open(path, "rb") as f:
        data = f.read()
    return shield.scan_media_from_bytes(data, "video/mp4")


def is_known_video(answer):
    """A known video: near rows at whole seconds, each carrying the scanned file's hashes."""
    rows = answer.near_match_details or []
    return (answer.matches_known_media and answer.match_type == MatchType.Near
            and answer.classification == MediaClassification.CSAM
            and len(rows) >= 3
            and [r.timestamp for r in rows] == sorted(r.timestamp for r in rows)
            and all(r.timestamp == int(r.timestamp) for r in rows)
            and all(r.sha256_hex == answer.sha256_hex and r.sha1_base32 == answer.sha1_base32
                    for r in rows))


def spliced(path, seconds, sha256):
    answer = scan(path)
    rows = answer.near_match_details or []
    check("a known photo spliced into a video matches at the second it shows",
          answer.match_type == MatchType.Near and len(rows) == 1
          and rows[0].timestamp == float(seconds) and rows[0].sha256_hex == sha256
          and rows[0].classification == "csam", answer)


def no_match(path):
    answer = scan(path)
    check("the video has no known match",
          not answer.matches_known_media and answer.match_type is None
          and answer.classification == MediaClassification.NoKnownMatch
          and not answer.near_match_details, answer)


def wait(path, want):
    deadline = time.monotonic() + 15
    started = time.monotonic()
    answer = None
    while time.monotonic() < deadline:
        answer = scan(path)
        if is_known_video(answer) == want and (want or not answer.matches_known_media):
            print(f"ok   {'matched' if want else 'no longer matched'} after "
                  f"{time.monotonic() - started:.2f} s: {len(answer.near_match_details or [])} rows")
            return
        time.sleep(0.2)
    check("the bank change took effect within 15 s", False, answer)


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "spliced":
        spliced(sys.argv[2], sys.argv[3], sys.argv[4])
    elif command == "no-match":
        no_match(sys.argv[2])
    elif command == "wait-match":
        wait(sys.argv[2], True)
    elif command == "wait-no-match":
        wait(sys.argv[2], False)
    else:
        sys.exit(f"unknown command {command}")
