"""The reference path Meta's Hasher-Matcher-Actioner uses: Pillow decode + PyPI pdqhash.

Run by the `throughput` bench with the image paths as arguments; prints two lines,
`end_to_end <images per CPU second>` and `hashing_alone <images per CPU second>`, single-threaded.
"""
import sys
import time

import numpy as np
import pdqhash
from PIL import Image

MIN_SECONDS = 3.0


def load(path):
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def rate(work, items):
    # Per CPU second of this thread, as the Rust side measures: the machine may be shared.
    count, start, cpu_start = 0, time.perf_counter(), time.thread_time()
    while True:
        for item in items:
            work(item)
            count += 1
        if time.perf_counter() - start >= MIN_SECONDS:
            return count / (time.thread_time() - cpu_start)


def main(paths):
    end_to_end = rate(lambda path: pdqhash.compute(load(path)), paths)
    pixels = [load(path) for path in paths]
    hashing = rate(pdqhash.compute, pixels)
    print(f"end_to_end {end_to_end:.2f}")
    print(f"hashing_alone {hashing:.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
