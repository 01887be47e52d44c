#!/usr/bin/env python3
"""Python peers for feedfold's benchmarks (run by feedfold-bench, see BENCHMARKS.md).

    peers.py fingerprint TEXTS.jsonl [SECONDS]   -> {"simhash_docs_per_s": .., "minhash_docs_per_s": ..}
    peers.py parse FEED_FILE SECONDS              -> {"feeds_per_s": .., "items": ..}

Each prints one JSON line last. One thread, like the Rust side: numbers are per core.
"""
import json
import re
import sys
import time


def rate(n_docs, fn, min_seconds):
    start = time.perf_counter()
    rounds = 0
    while rounds == 0 or time.perf_counter() - start < min_seconds:
        fn()
        rounds += 1
    return rounds * n_docs / (time.perf_counter() - start)


def fingerprint(path, seconds):
    from simhash import Simhash
    from datasketch import MinHash

    with open(path, encoding="utf-8") as f:
        texts = [json.loads(line) for line in f if line.strip()]
    min_seconds = seconds if seconds > 0 else 3.0

    def run_simhash():
        for t in texts:
            Simhash(t).value

    # datasketch has no tokenizer: word shingles of lowercased \w+ tokens, the
    # common recipe; CJK text without spaces becomes long tokens, as it would
    # for a user following that recipe.
    word = re.compile(r"\w+")

    def run_minhash():
        for t in texts:
            m = MinHash(num_perm=128)
            m.update_batch([w.encode("utf-8") for w in set(word.findall(t.lower()))])
            m.digest()

    sim = rate(len(texts), run_simhash, min_seconds)
    mh = rate(len(texts), run_minhash, min_seconds)
    print(json.dumps({"simhash_docs_per_s": sim, "minhash_docs_per_s": mh, "docs": len(texts)}))


def parse(path, seconds):
    import feedparser

    with open(path, "rb") as f:
        data = f.read()
    items = 0

    def run():
        nonlocal items
        d = feedparser.parse(data)
        items = len(d.entries)

    fps = rate(1, run, seconds)
    print(json.dumps({"feeds_per_s": fps, "items": items}))


def main():
    mode, path = sys.argv[1], sys.argv[2]
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    if mode == "fingerprint":
        fingerprint(path, seconds)
    elif mode == "parse":
        parse(path, seconds)
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
