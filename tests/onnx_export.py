"""Python side of tests/onnx_export.sh: the ONNX models nn.h exported (tests/onnx_export.c
writes DIR/NAME.onnx, a random batch DIR/NAME_x.npy and nn.h's evaluation-mode output on
it DIR/NAME_y.npy) checked three ways:
  1. onnx.checker.check_model(full_check=True) (python3-onnx: the schema of every node,
     and strict shape inference, which must agree with the declared output shape), and
     the header: opset 13, producer "nn.h", input "input" and output "output" with a
     dynamic batch dimension "N";
  2. OpenCV's DNN module (cv2.dnn.readNetFromONNX, python3-opencv 4.6), an independent
     runtime, on the same batch (batch > 1): its output must be nn.h's within 1e-4
     relative, max |a - b| / max |b| over the whole output. OpenCV 4.6 cannot run
     opset 13's Clip (min and max as inputs: its importer asserts a single input) nor
     Where (no importer): a graph with Clip is run in a copy with every Clip rewritten to
     opset 10's form (min and max as attributes; the rest of the graph byte for byte
     the file's), a graph with Where is not run by OpenCV. Graphs of up to 64 nodes are
     also cut after each node and run by OpenCV, each node's output compared with the
     interpreter's (within 1e-4 relative);
  3. a small numpy interpreter of the operators nn.h emits, in float64, written from the
     ONNX operator specification (not from nn.h): a check of the graph's meaning as
     ONNX defines it, not an independent runtime. It runs every model, and is the only
     evaluation of the Softplus threshold (Greater + Where).
    Usage: onnx_export.py DIR NAME...
Prints one "PASS"/"FAIL" line per check and "onnx_export: N passed, N failed"."""
import math
import os
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper

TOLERANCE = 1e-4
BY_NODE = 64   # OpenCV is also compared node by node on graphs of up to this many nodes


def relative(ours, theirs):
    """max |a - b| / max |b|"""
    return float(np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-30))


# ---- the numpy interpreter ----------------------------------------------------------

def windows(x, kernel, strides, dilations):
    """N x C x H x W -> N x C x OH x OW x KH x KW views of the windows (already padded)."""
    n, c, h, w = x.shape
    kh, kw = kernel
    eh, ew = (kh - 1) * dilations[0] + 1, (kw - 1) * dilations[1] + 1
    oh, ow = (h - eh) // strides[0] + 1, (w - ew) // strides[1] + 1
    s = x.strides
    return np.lib.stride_tricks.as_strided(
        x, (n, c, oh, ow, kh, kw),
        (s[0], s[1], s[2] * strides[0], s[3] * strides[1], s[2] * dilations[0], s[3] * dilations[1]),
        writeable=False)


def pad_nchw(x, pads, value):
    top, left, bottom, right = pads
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)


def conv(x, w, b, a):
    group = a.get("group", 1)
    k = a.get("kernel_shape", list(w.shape[2:]))
    xp = pad_nchw(x, a.get("pads", [0, 0, 0, 0]), 0.0)
    win = windows(xp, k, a.get("strides", [1, 1]), a.get("dilations", [1, 1]))
    n, c, oh, ow = win.shape[:4]
    o = w.shape[0]
    win = win.reshape(n, group, c // group, oh, ow, k[0], k[1])
    wg = w.reshape(group, o // group, c // group, k[0], k[1])
    y = np.einsum("ngchwij,gocij->ngohw", win, wg, optimize=True).reshape(n, o, oh, ow)
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def pool_geometry(x, a):
    """The padded input and the output size of MaxPool / AveragePool (opset 13): out =
    floor or ceil((in + pad_begin + pad_end - kernel) / stride) + 1."""
    k, s = a["kernel_shape"], a.get("strides", [1, 1])
    pads = a.get("pads", [0, 0, 0, 0])
    rnd = math.ceil if a.get("ceil_mode", 0) else math.floor
    out = [int(rnd((x.shape[2 + i] + pads[i] + pads[i + 2] - k[i]) / s[i])) + 1 for i in range(2)]
    return k, s, pads, out


def pool(x, a, average):
    """Windows that run past the end padding (ceil_mode) hold only what exists; padding
    is never a maximum; AveragePool divides by the cells of the window inside the input
    (count_include_pad 0) or inside the padded input (1)."""
    k, s, pads, out = pool_geometry(x, a)
    n, c, h, w = x.shape
    y = np.empty((n, c, out[0], out[1]))
    for i in range(out[0]):
        for j in range(out[1]):
            y0, x0 = i * s[0] - pads[0], j * s[1] - pads[1]
            y1, x1 = y0 + k[0], x0 + k[1]
            cells = x[:, :, max(y0, 0):min(y1, h), max(x0, 0):min(x1, w)]
            if not average:
                y[:, :, i, j] = cells.max(axis=(2, 3), initial=-np.inf)   # -inf: a window of padding only
                continue
            if a.get("count_include_pad", 0):
                q = (min(y1, h + pads[2]) - max(y0, -pads[0])) * (min(x1, w + pads[3]) - max(x0, -pads[1]))
            else:
                q = cells.shape[2] * cells.shape[3]
            y[:, :, i, j] = cells.sum(axis=(2, 3)) / q
    return y


def batchnorm(x, scale, bias, mean, var, a):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    eps = a.get("epsilon", 1e-5)
    return (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * scale.reshape(shape) + bias.reshape(shape)


def reshape(x, shape):
    shape = [x.shape[i] if d == 0 else int(d) for i, d in enumerate(shape)]
    return x.reshape(shape)


ERF = np.vectorize(math.erf)
OPS = {
    "Conv": lambda i, a: conv(i[0], i[1], i[2] if len(i) > 2 else None, a),
    "Gemm": lambda i, a: (i[0].T if a.get("transA", 0) else i[0]) @ (i[1].T if a.get("transB", 0) else i[1])
                         * a.get("alpha", 1.0) + (a.get("beta", 1.0) * i[2] if len(i) > 2 else 0.0),
    "MaxPool": lambda i, a: pool(i[0], a, False),
    "AveragePool": lambda i, a: pool(i[0], a, True),
    "GlobalAveragePool": lambda i, a: i[0].mean(axis=(2, 3), keepdims=True),
    "BatchNormalization": lambda i, a: batchnorm(*i, a),
    "Relu": lambda i, a: np.maximum(i[0], 0.0),
    "LeakyRelu": lambda i, a: np.where(i[0] >= 0, i[0], a.get("alpha", 0.01) * i[0]),
    "Clip": lambda i, a: np.minimum(np.maximum(i[0], i[1]), i[2]),
    "Sigmoid": lambda i, a: 1.0 / (1.0 + np.exp(-i[0])),
    "Tanh": lambda i, a: np.tanh(i[0]),
    "Erf": lambda i, a: ERF(i[0]),
    "Softplus": lambda i, a: np.logaddexp(0.0, i[0]),
    "Greater": lambda i, a: i[0] > i[1],
    "Where": lambda i, a: np.where(i[0], i[1], i[2]),
    "Add": lambda i, a: i[0] + i[1],
    "Mul": lambda i, a: i[0] * i[1],
    "Div": lambda i, a: i[0] / i[1],
    "Pow": lambda i, a: np.power(i[0], i[1]),
    "Flatten": lambda i, a: i[0].reshape(int(np.prod(i[0].shape[:a.get("axis", 1)])), -1),
    "Reshape": lambda i, a: reshape(i[0], i[1]),
    "Pad": lambda i, a: np.pad(i[0], [(int(i[1][d]), int(i[1][d + i[0].ndim])) for d in range(i[0].ndim)]),
    "Identity": lambda i, a: i[0],
}


def interpret(model, x):
    """Runs the graph on x in float64 (the initializers' float32 values made float64);
    returns every tensor by name."""
    values = {t.name: numpy_helper.to_array(t).astype(np.float64) if t.data_type == onnx.TensorProto.FLOAT
              else numpy_helper.to_array(t) for t in model.graph.initializer}
    values[model.graph.input[0].name] = x.astype(np.float64)
    for node in model.graph.node:
        attrs = {at.name: helper.get_attribute_value(at) for at in node.attribute}
        values[node.output[0]] = OPS[node.op_type]([values[name] for name in node.input], attrs)
    return values


# ---- OpenCV ---------------------------------------------------------------------------

def opencv_copy(model):
    """The model with each Clip in opset 10's form (min, max attributes), for OpenCV 4.6."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    consts = {t.name: float(numpy_helper.to_array(t)) for t in m.graph.initializer if not t.dims}
    for node in m.graph.node:
        if node.op_type == "Clip":
            lo, hi = consts[node.input[1]], consts[node.input[2]]
            del node.input[1:]
            node.attribute.extend([helper.make_attribute("min", lo), helper.make_attribute("max", hi)])
    m.opset_import[0].version = 10
    return m


def opencv_run(path, x):
    import cv2
    net = cv2.dnn.readNetFromONNX(path)
    net.setInput(x)
    return net.forward()


def opencv_by_node(model, x, values, path):
    """OpenCV on the graph cut after each node in turn (that node's output made the
    graph's): the worst relative error of a node's output against the interpreter's,
    and that node. An error inside the graph may fade by the output (OpenCV 4.6's Pow
    overwrote its input, which another node still read: 4% there, 1e-5 at the end)."""
    worst, where = 0.0, ""
    for k, node in enumerate(model.graph.node):
        cut = onnx.ModelProto()
        cut.CopyFrom(model)
        del cut.graph.node[k + 1:]
        cut.graph.output[0].name = node.output[0]
        del cut.graph.output[0].type.tensor_type.shape.dim[:]
        onnx.save(cut, path)
        got, want = opencv_run(path, x), values[node.output[0]]
        err = relative(got.reshape(want.shape), want) if got.size == want.size else float("inf")
        if err >= worst:
            worst, where = err, f"{node.op_type} {node.output[0]}"
    return worst, where


# ---- the checks -------------------------------------------------------------------------

class Counter:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, ok, what):
        print(("PASS " if ok else "FAIL ") + what, flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1


def dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def one(folder, name, count):
    path = os.path.join(folder, name + ".onnx")
    x, ours = np.load(os.path.join(folder, name + "_x.npy")), np.load(os.path.join(folder, name + "_y.npy"))
    model = onnx.load(path)
    try:
        onnx.checker.check_model(model, full_check=True)
        checked = ""
    except Exception as e:   # noqa: BLE001 - any failure of the checker is the verdict
        checked = str(e).splitlines()[0]
    count.check(not checked, f"{name}: onnx.checker.check_model(full_check=True)" + (f": {checked}" if checked else ""))
    graph = model.graph
    head = (model.opset_import[0].domain, model.opset_import[0].version, model.producer_name,
            [i.name for i in graph.input], [o.name for o in graph.output], dims(graph.input[0])[0],
            dims(graph.output[0])[0])
    count.check(head == ("", 13, "nn.h", ["input"], ["output"], "N", "N"),
                f"{name}: opset 13, producer nn.h, input/output named, dynamic batch N: {head}")
    ops = sorted({node.op_type for node in graph.node})
    values = {}
    try:
        values = interpret(model, x)
        theirs = values[graph.output[0].name]
        err = relative(ours, theirs.reshape(ours.shape)) if theirs.size == ours.size else float("inf")
    except Exception as e:   # noqa: BLE001 - a graph the interpreter cannot run fails
        print(f"  {name}: the interpreter failed: {e!r}")
        err = float("inf")
    count.check(err <= TOLERANCE, f"{name}: numpy interpreter of the graph (float64) vs nn.h {ours.shape}: "
                f"max|a-b|/max|b| = {err:.3g}; operators {' '.join(ops)}")
    if "Where" in ops:
        print(f"  {name}: not run by OpenCV 4.6: it has no Where (the Softplus threshold)")
        return
    run_path, how = path, ""
    if "Clip" in ops:
        run_path, how = os.path.join(folder, name + ".opencv.onnx"), " (Clip in opset 10's form)"
        onnx.save(opencv_copy(model), run_path)
    try:
        cv = opencv_run(run_path, x)
        err = relative(ours, cv.reshape(ours.shape)) if cv.size == ours.size else float("inf")
        count.check(err <= TOLERANCE, f"{name}: OpenCV {__import__('cv2').__version__} readNetFromONNX{how} vs "
                    f"nn.h, batch {x.shape[0]}: max|a-b|/max|b| = {err:.3g} (max|b| {np.abs(ours).max():.3g})")
        if len(graph.node) <= BY_NODE and values:
            err, where = opencv_by_node(onnx.load(run_path), x, values, os.path.join(folder, name + ".cut.onnx"))
            count.check(err <= TOLERANCE, f"{name}: OpenCV node by node vs the interpreter, worst "
                        f"max|a-b|/max|b| = {err:.3g} at {where}")
    except Exception as e:   # noqa: BLE001
        count.check(False, f"{name}: OpenCV: {str(e).splitlines()[-1] if str(e) else e}")


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    count = Counter()
    for name in sys.argv[2:]:
        one(sys.argv[1], name, count)
    print(f"onnx_export: {count.passed} passed, {count.failed} failed")
    return 1 if count.failed else 0


if __name__ == "__main__":
    sys.exit(main())
