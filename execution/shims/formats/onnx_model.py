"""Serves an .onnx file with onnxruntime. Input: named arrays, e.g.
{"float_input": [[5.1, 3.5, 1.4, 0.2]]}; a bare list goes to the only input.
Output: {output_name: array, ...}."""

import os

import numpy as np
import onnxruntime

_NUMPY_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(string)": np.str_,
    "tensor(bool)": np.bool_,
    "tensor(float16)": np.float16,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
}


def load():
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    return onnxruntime.InferenceSession(
        os.environ["MARKETPLACE_MODEL_FILE"], options, providers=["CPUExecutionProvider"]
    )


def apply(data, session):
    inputs = session.get_inputs()
    if isinstance(data, list) and len(inputs) == 1:
        data = {inputs[0].name: data}
    if not isinstance(data, dict):
        names = ", ".join(i.name for i in inputs)
        raise ValueError(f"send a JSON object of named arrays; this model takes: {names}")
    feed = {}
    for spec in inputs:
        if spec.name not in data:
            raise ValueError(f"missing input {spec.name!r} (shape {spec.shape}, {spec.type})")
        feed[spec.name] = np.asarray(data[spec.name], dtype=_NUMPY_TYPES.get(spec.type))
    unknown = set(data) - {i.name for i in inputs}
    if unknown:
        raise ValueError(f"unknown inputs: {', '.join(sorted(unknown))}")
    outputs = session.run(None, feed)
    return {
        spec.name: _plain(value) for spec, value in zip(session.get_outputs(), outputs, strict=True)
    }


def _plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "item"):
        return value.item()
    return value
