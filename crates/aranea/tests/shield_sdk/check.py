"""Exercises every endpoint of the Arachnid Shield Python SDK (PyPI arachnid-shield-sdk)
against a real `aranea serve`. Run by crates/aranea/tests/shield_sdk.rs, which sets
ARACHNID_SHIELD_URL (read by the SDK at import) and the inputs below. One line per check;
exit status 1 on the first failure.

Usage: check.py all | wait-match FILE | wait-refused
"""

import os
import sys
import time

from arachnid_shield_sdk import (
    ArachnidShield,
    ArachnidShieldException,
    MediaClassification,
    ScanMediaFromPdq,
)
from arachnid_shield_sdk.models.scanned_media import MatchType


def check(what, ok, detail=""):
    if ok:
        print(f"ok   {what}")
    else:
        print(f"FAIL {what}: {detail}")
        sys.exit(1)


def refused(call):
    """The ErrorDetail text of an ArachnidShieldException, or None if the call succeeded."""
    try:
        result = call()
    except ArachnidShieldException as error:
        return error.detail.detail
    return None if result is not None else "no result"


def read(name):
    with open(os.environ[name], "rb") as f:
        return f.read()


def client(password=None):
    return ArachnidShield(os.environ["SHIELD_USER"], password or os.environ["SHIELD_PASS"])


def all_checks():
    shield = client()
    known = shield.scan_media_from_bytes(read("KNOWN"), "image/jpeg")
    check("known media matches exactly as csam",
          known.classification == MediaClassification.CSAM and known.match_type == MatchType.Exact
          and known.matches_known_media, known)
    near = shield.scan_media_from_bytes(read("NEAR"), "image/jpeg")
    check("a re-encoded copy matches as near",
          near.match_type == MatchType.Near and near.near_match_details
          and near.near_match_details[0].classification == "csam"
          and near.near_match_details[0].timestamp == 0.0, near)
    unknown = shield.scan_media_from_file(os.environ["UNKNOWN"])
    check("unknown media has no known match",
          unknown.classification == MediaClassification.NoKnownMatch and unknown.match_type is None
          and not unknown.matches_known_media and unknown.size_bytes == len(read("UNKNOWN")), unknown)
    allowed = shield.scan_media_from_bytes(read("ALLOWED"), "image/jpeg")
    check("allow-listed media is suppressed", not allowed.matches_known_media, allowed)
    harmful = shield.scan_media_from_bytes(read("HARMFUL"), "image/jpeg")
    check("a harmful-abusive-material bank hit says so",
          harmful.classification == MediaClassification.HarmfulAbusiveMaterial, harmful)
    strict = shield.scan_media_from_bytes(read("STRICT_NEAR"), "image/jpeg")
    check("a bank's own threshold applies (threshold 0: a near copy does not match)",
          not strict.matches_known_media, strict)
    strict_exact = shield.scan_media_from_bytes(read("STRICT"), "image/jpeg")
    check("the strict bank still matches its own original", strict_exact.matches_known_media,
          strict_exact)

    import base64
    known_pdq = base64.b64encode(bytes.fromhex(os.environ["KNOWN_PDQ_HEX"])).decode()
    unknown_pdq = base64.b64encode(bytes([0x5A] * 32)).decode()
    scanned = shield.scan_pdq_hashes(ScanMediaFromPdq(hashes=[known_pdq, unknown_pdq]))
    check("PDQ batch answers per hash",
          scanned.scanned_hashes[known_pdq].matches_known_media
          and scanned.scanned_hashes[known_pdq].near_match_details is not None
          and not scanned.scanned_hashes[unknown_pdq].matches_known_media, scanned)

    by_url = shield.scan_media_from_url(os.environ["KNOWN_URL"])
    check("known media by URL matches", by_url.matches_known_media, by_url)
    detail = refused(lambda: shield.scan_media_from_url(os.environ["FORBIDDEN_URL"]))
    check("a URL on a private address is refused", detail and "refused" in detail, detail)
    detail = refused(lambda: shield.scan_media_from_url("not a url"))
    check("a malformed URL is refused", detail and "valid URL" in detail, detail)

    detail = refused(lambda: shield.scan_media_from_bytes(read("BIG"), "image/jpeg"))
    check("an oversized body is refused", detail and "larger than" in detail, detail)
    detail = refused(lambda: shield.scan_media_from_bytes(read("TRUNCATED"), "image/jpeg"))
    check("a truncated JPEG is refused", detail is not None, detail)
    detail = refused(lambda: shield.scan_media_from_bytes(b"\x00" * 100, "image/png"))
    check("garbage bytes are refused", detail is not None, detail)
    detail = refused(lambda: shield.scan_media_from_bytes(read("KNOWN"), "text/plain"))
    check("a non-media content type is refused", detail and "Unsupported media type" in detail, detail)
    detail = refused(lambda: shield.scan_pdq_hashes(ScanMediaFromPdq(hashes=["not base64!"])))
    check("a malformed PDQ hash is refused", detail and "Invalid PDQ" in detail, detail)
    detail = refused(lambda: shield.scan_pdq_hashes(ScanMediaFromPdq(hashes=[base64.b64encode(b"short").decode()])))
    check("a PDQ hash of the wrong length is refused", detail and "32 bytes" in detail, detail)

    detail = refused(lambda: client("wrong").scan_media_from_bytes(read("UNKNOWN"), "image/jpeg"))
    check("wrong credentials are refused", detail == "Invalid username/password.", detail)
    print("all checks passed")


def wait_match(path):
    shield = client()
    with open(path, "rb") as f:
        data = f.read()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if shield.scan_media_from_bytes(data, "image/jpeg").matches_known_media:
            print("ok   matched after the bank change")
            return
        time.sleep(0.2)
    check("matched after the bank change", False, "no match within 15 s")


def wait_refused():
    shield = client()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        detail = refused(lambda: shield.scan_pdq_hashes(ScanMediaFromPdq(hashes=[])))
        if detail == "Invalid username/password.":
            print("ok   revoked credentials refused")
            return
        time.sleep(0.2)
    check("revoked credentials refused", False, "still accepted after 15 s")


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "all"
    if command == "all":
        all_checks()
    elif command == "wait-match":
        wait_match(sys.argv[2])
    elif command == "wait-refused":
        wait_refused()
    else:
        sys.exit(f"unknown command {command}")
