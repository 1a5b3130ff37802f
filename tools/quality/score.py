"""Scores snaplabel's default output on the quality set.

usage: score.py photos.json labels.ndjson   (labels.ndjson: `snaplabel label --json` over the set)

Prints one line per photo (hit or miss, what was expected, what snaplabel said, and the labels
that are wrong for it), the share of photos where at least one expected word is among the label
names (recall), and the share of returned labels that are right for their photo (precision: a
label is right when it is among the photo's "expect" or "accept" words). Exit code 0 always:
this measures, the targets are judged by people reading the report.
"""
import json
import os
import sys


def main():
    spec = json.load(open(sys.argv[1]))
    results = {}
    for line in open(sys.argv[2]):
        if line.strip():
            r = json.loads(line)
            results[os.path.basename(r["file"])] = r
    hits = 0
    returned = right = 0
    for photo in spec["photos"]:
        r = results.get(photo["name"])
        said = [l["Name"] for l in r.get("Labels", [])] if r else []
        expected = {w.lower() for w in photo["expect"]}
        hit = any(n.lower() in expected for n in said)
        hits += hit
        accepted = expected | {w.lower() for w in photo.get("accept", [])}
        wrong = [n for n in said if n.lower() not in accepted]
        returned += len(said)
        right += len(said) - len(wrong)
        status = "hit " if hit else "MISS"
        error = f" error={r['error']['code']}" if r and r.get("status") == "error" else ""
        wrong_note = f"; wrong: {', '.join(wrong)}" if wrong else ""
        print(f"{status} {photo['name']:<24} expected {'/'.join(photo['expect'])}; said {', '.join(said) or '-'}{wrong_note}{error}")
    total = len(spec["photos"])
    print(f"\n{hits}/{total} photos ({100 * hits / total:.0f}%) have at least one expected word")
    if returned:
        print(f"{right}/{returned} returned labels ({100 * right / returned:.0f}%) are right for their photo")


if __name__ == "__main__":
    main()
