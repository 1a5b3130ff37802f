"""Converts MediaPipe's person detector (BlazePose detection, `pose_detection.tflite` from the PyPI
`mediapipe==0.10.9` wheel, Apache-2.0) from TensorFlow Lite to ONNX, without TensorFlow.

The TFLite flatbuffer is read with the `tflite` package (generated flatbuffer accessors only).
Its weights are stored compactly: float16 constants behind DEQUANTIZE ops, 38 of them also
sparse (CSR) behind DENSIFY ops. Both are constant-folded here into plain float32 initializers,
so the ONNX graph needs only Transpose, Pad, Conv, Relu/Clip, Add, DepthToSpace, Resize, Reshape
and Concat, which ONNX Runtime and tract both run.

TFLite is NHWC; ONNX convolutions are NCHW. The input keeps the TFLite layout and is transposed
once; activations stay NCHW, and go back to NHWC only before the reshapes of the output heads
(whose element order is NHWC's).

Input  `input`   [1, H, W, 3] NHWC RGB in [-1, 1]. The model was trained on 224×224 letterboxed
                 squares; H and W may be any multiples of 32 (224×160 for a landscape photo wastes
                 no work on padding), the pixel scale staying that of the 224 square.
Outputs `boxes`  [1, anchors, 12] per anchor: box centre x/y, width, height (input pixels, relative to
                 the anchor), then 4 keypoints x/y: hip centre, a point on the circle around the
                 whole body, shoulder centre, a point on the circle around the upper body;
        `scores` [1, anchors, 1] logits (sigmoid → probability that a person is there).
Anchors: (H/8 × W/8) × 2, (H/16 × W/16) × 2, (H/32 × W/32) × 6 cells, centred in their cells
(2254 at 224×224).

usage: convert_blazepose_detector.py pose_detection.tflite OUT.onnx
"""
import sys

import numpy as np
import onnx
import tflite
from onnx import TensorProto, helper, numpy_helper

OP_NAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
NUMPY_TYPES = {
    tflite.TensorType.FLOAT32: np.float32,
    tflite.TensorType.FLOAT16: np.float16,
    tflite.TensorType.INT32: np.int32,
    tflite.TensorType.INT64: np.int64,
    tflite.TensorType.INT8: np.int8,
    tflite.TensorType.UINT8: np.uint8,
}
NCHW_FROM_NHWC = [0, 3, 1, 2]
NHWC_FROM_NCHW = [0, 2, 3, 1]
OUTPUT_NAMES = {2254 * 12: "boxes", 2254: "scores"}


def union_vector(dim, kind):
    """A sparsity segment/index vector (a flatbuffer union of int32/uint16/uint8 vectors)."""
    get_type, get = (dim.ArraySegmentsType, dim.ArraySegments) if kind == "segments" else (dim.ArrayIndicesType, dim.ArrayIndices)
    table = get()
    vector_class = {
        tflite.SparseIndexVector.Int32Vector: tflite.Int32Vector,
        tflite.SparseIndexVector.Uint16Vector: tflite.Uint16Vector,
        tflite.SparseIndexVector.Uint8Vector: tflite.Uint8Vector,
    }[get_type()]
    vector = vector_class()
    vector.Init(table.Bytes, table.Pos)
    return vector.ValuesAsNumpy()


def densify(values, shape, sparsity):
    """Expands a TFLite sparse tensor (traversal order, optional blocks, DENSE / SPARSE_CSR
    dimensions) into a dense array, as TFLite's own format converter does."""
    order = list(sparsity.TraversalOrderAsNumpy())
    block_map = list(sparsity.BlockMapAsNumpy()) if sparsity.BlockMapLength() else []
    rank = len(shape)
    metas = [sparsity.DimMetadata(i) for i in range(sparsity.DimMetadataLength())]
    block_size = {d: metas[order.index(rank + i)].DenseSize() for i, d in enumerate(block_map)}
    dense = np.zeros(shape, values.dtype)
    coords = [0] * len(order)

    def visit(level, position):
        if level == len(order):
            index = tuple(
                coords[d] * block_size.get(d, 1) + (coords[rank + block_map.index(d)] if d in block_size else 0)
                for d in range(rank)
            )
            dense[index] = values[position]
            return
        meta, dim = metas[level], order[level]
        if meta.Format() == tflite.DimensionType.DENSE:
            size = meta.DenseSize()
            for i in range(size):
                coords[dim] = i
                visit(level + 1, position * size + i)
        else:
            segments, indices = union_vector(meta, "segments"), union_vector(meta, "indices")
            for k in range(segments[position], segments[position + 1]):
                coords[dim] = int(indices[k])
                visit(level + 1, k)

    visit(0, 0)
    return dense


class Converter:
    def __init__(self, buf):
        self.model = tflite.Model.GetRootAsModel(buf, 0)
        self.graph = self.model.Subgraphs(0)
        self.nodes, self.inits = [], []
        self.consts = {}  # tensor index → numpy array (weights, folded DEQUANTIZE/DENSIFY)
        self.names = {}  # tensor index → ONNX value name (activations, NCHW when 4-D)
        self.counter = 0

    def fresh(self, base):
        self.counter += 1
        return f"{base}_{self.counter}"

    def tensor(self, i):
        return self.graph.Tensors(i)

    def shape(self, i):
        return [int(s) for s in self.tensor(i).ShapeAsNumpy()]

    def buffer_array(self, i):
        t = self.tensor(i)
        data = self.model.Buffers(t.Buffer()).DataAsNumpy()
        if isinstance(data, int) or len(data) == 0:
            return None
        return np.frombuffer(data.tobytes(), NUMPY_TYPES[t.Type()])

    def const(self, i):
        if i not in self.consts:
            values = self.buffer_array(i)
            if values is None:
                raise ValueError(f"tensor {self.tensor(i).Name()} has no data")
            t = self.tensor(i)
            self.consts[i] = densify(values, self.shape(i), t.Sparsity()) if t.Sparsity() else values.reshape(self.shape(i))
        return self.consts[i]

    def init(self, base, array):
        name = self.fresh(base)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op, inputs, base, **attrs):
        out = self.fresh(base)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def activation(self, x, fused):
        if fused == tflite.ActivationFunctionType.NONE:
            return x
        if fused == tflite.ActivationFunctionType.RELU:
            return self.node("Relu", [x], "relu")
        if fused == tflite.ActivationFunctionType.RELU6:
            return self.node("Clip", [x, self.init("zero", np.array(0, np.float32)), self.init("six", np.array(6, np.float32))], "relu6")
        raise ValueError(f"fused activation {fused} is not supported")

    def same_pads(self, in_hw, kernel_hw, strides, dilations):
        pads_begin, pads_end = [], []
        for size, k, s, d in zip(in_hw, kernel_hw, strides, dilations):
            out = -(-size // s)
            total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
            pads_begin.append(total // 2)
            pads_end.append(total - total // 2)
        return pads_begin + pads_end

    def convolution(self, op, depthwise):
        ins, out = list(op.InputsAsNumpy()), op.OutputsAsNumpy()[0]
        opts_class = tflite.DepthwiseConv2DOptions if depthwise else tflite.Conv2DOptions
        opts = opts_class()
        table = op.BuiltinOptions()
        opts.Init(table.Bytes, table.Pos)
        weight = self.const(ins[1]).astype(np.float32)  # conv: [O, H, W, I]; depthwise: [1, H, W, C·M]
        in_shape = self.shape(ins[0])
        channels = in_shape[3]
        if depthwise:
            w = weight.transpose(3, 0, 1, 2)  # [C·M, 1, H, W]
            group = channels
        else:
            w = weight.transpose(0, 3, 1, 2)
            group = 1
        strides = [opts.StrideH(), opts.StrideW()]
        dilations = [opts.DilationHFactor(), opts.DilationWFactor()]
        kernel = list(w.shape[2:])
        if opts.Padding() == tflite.Padding.SAME:
            pads = self.same_pads(in_shape[1:3], kernel, strides, dilations)
        else:
            pads = [0, 0, 0, 0]
        inputs = [self.names[ins[0]], self.init("w", w)]
        if len(ins) > 2 and ins[2] >= 0:
            inputs.append(self.init("b", self.const(ins[2]).astype(np.float32)))
        y = self.node("Conv", inputs, "conv", strides=strides, dilations=dilations, pads=pads, group=group, kernel_shape=kernel)
        self.names[out] = self.activation(y, opts.FusedActivationFunction())

    def convert_op(self, op):
        code = self.model.OperatorCodes(op.OpcodeIndex())
        name = OP_NAMES[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        ins, outs = list(op.InputsAsNumpy()), list(op.OutputsAsNumpy())
        table = op.BuiltinOptions()

        def options(cls):
            o = cls()
            o.Init(table.Bytes, table.Pos)
            return o

        if name == "DENSIFY":
            self.consts[outs[0]] = self.const(ins[0])
        elif name == "DEQUANTIZE":
            source = self.const(ins[0])
            if source.dtype != np.float16:
                raise ValueError("only float16 DEQUANTIZE is supported")
            self.consts[outs[0]] = source.astype(np.float32)
        elif name == "CONV_2D":
            self.convolution(op, depthwise=False)
        elif name == "DEPTHWISE_CONV_2D":
            self.convolution(op, depthwise=True)
        elif name == "PAD":
            paddings = self.const(ins[1]).astype(np.int64)[NCHW_FROM_NHWC]  # [4, 2] in NCHW order
            pads = np.concatenate([paddings[:, 0], paddings[:, 1]])
            self.names[outs[0]] = self.node("Pad", [self.names[ins[0]], self.init("pads", pads)], "pad")
        elif name == "ADD":
            y = self.node("Add", [self.names[ins[0]], self.names[ins[1]]], "add")
            self.names[outs[0]] = self.activation(y, options(tflite.AddOptions).FusedActivationFunction())
        elif name == "DEPTH_TO_SPACE":
            block = options(tflite.DepthToSpaceOptions).BlockSize()
            # TensorFlow's depth_to_space on NHWC is ONNX's DCR mode on NCHW.
            self.names[outs[0]] = self.node("DepthToSpace", [self.names[ins[0]]], "d2s", blocksize=block, mode="DCR")
        elif name == "RESIZE_BILINEAR":
            o = options(tflite.ResizeBilinearOptions)
            size = self.const(ins[1]).astype(np.int64)
            _, h, w, _ = self.shape(ins[0])
            # Scales, not sizes: the graph runs at any input size that is a multiple of 32.
            scales = np.array([1, 1, size[0] / h, size[1] / w], np.float32)
            mode = "align_corners" if o.AlignCorners() else "half_pixel" if o.HalfPixelCenters() else "asymmetric"
            self.names[outs[0]] = self.node(
                "Resize", [self.names[ins[0]], "", self.init("scales", scales)], "resize", mode="linear", coordinate_transformation_mode=mode
            )
        elif name == "RESHAPE":
            x = self.names[ins[0]]
            if len(self.shape(ins[0])) == 4:
                x = self.node("Transpose", [x], "nhwc", perm=NHWC_FROM_NCHW)
            # [1, anchors, values]: the anchor count follows the input size.
            target = np.array(self.shape(outs[0]), np.int64)
            target[1] = -1
            self.names[outs[0]] = self.node("Reshape", [x, self.init("shape", target)], "reshape")
        elif name == "CONCATENATION":
            o = options(tflite.ConcatenationOptions)
            rank = len(self.shape(outs[0]))
            if rank == 4:
                raise ValueError("4-D concatenation is not needed by this model")
            y = self.node("Concat", [self.names[i] for i in ins], "concat", axis=o.Axis())
            self.names[outs[0]] = self.activation(y, o.FusedActivationFunction())
        else:
            raise ValueError(f"TFLite op {name} is not supported by this converter")

    def convert(self):
        g = self.graph
        [inp] = list(g.InputsAsNumpy())
        shape = [1, "height", "width", 3]
        self.names[inp] = self.node("Transpose", ["input"], "nchw", perm=NCHW_FROM_NHWC)
        for i in range(g.OperatorsLength()):
            self.convert_op(g.Operators(i))
        outputs = []
        for out in g.OutputsAsNumpy():
            out_shape = self.shape(out)
            name = OUTPUT_NAMES[int(np.prod(out_shape))]
            out_shape[1] = "anchors"
            self.nodes.append(helper.make_node("Identity", [self.names[out]], [name]))
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, out_shape))
        graph = helper.make_graph(
            self.nodes,
            "blazepose_detector",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
            outputs,
            self.inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="snaplabel")
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model


def main():
    src, dst = sys.argv[1], sys.argv[2]
    model = Converter(open(src, "rb").read()).convert()
    onnx.save(model, dst)
    ops = sorted({n.op_type for n in model.graph.node})
    print(f"wrote {dst}: {len(model.graph.node)} nodes ({', '.join(ops)})")


if __name__ == "__main__":
    main()
