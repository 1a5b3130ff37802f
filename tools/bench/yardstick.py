"""The yardstick `snaplabel bench` measures itself against: a straightforward Python labeler
using Pillow and ONNX Runtime on the same EfficientNet-Lite0 model and the same folder.

It does what a competent person would write first: open, convert to RGB, resize the short side
to 256, centre-crop 224, normalise, run the session, softmax, top 5. One image at a time.

usage: yardstick.py MODEL.onnx FOLDER  -> prints {"images": N, "seconds": S} as JSON
"""
import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort
from PIL import Image


def preprocess(path):
    im = Image.open(path).convert("RGB")
    w, h = im.size
    scale = 256 / min(w, h)
    im = im.resize((round(w * scale), round(h * scale)), Image.BILINEAR)
    w, h = im.size
    left, top = (w - 224) // 2, (h - 224) // 2
    im = im.crop((left, top, left + 224, top + 224))
    a = (np.asarray(im, dtype=np.float32) - 127.0) / 128.0
    return a.transpose(2, 0, 1)[None]


def main():
    model, folder = sys.argv[1], sys.argv[2]
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    files = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith((".jpg", ".jpeg", ".png")))
    start = time.perf_counter()
    for path in files:
        logits = session.run(["logits"], {"input": preprocess(path)})[0][0]
        p = np.exp(logits - logits.max())
        p /= p.sum()
        np.argsort(-p)[:5]
    print(json.dumps({"images": len(files), "seconds": time.perf_counter() - start}))


if __name__ == "__main__":
    main()
