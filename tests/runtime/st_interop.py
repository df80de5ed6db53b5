"""An independent safetensors reader and writer, for libnncrt's interop test.

Run by test_rt_interop (with /usr/bin/python3, which has torch): PyPI's
safetensors package is not installed here, so this implements the format
directly from its specification (8-byte little-endian header length, JSON
header, data; offsets relative to the data) with struct, json and
torch.frombuffer.  The writer orders tensors the way the safetensors crate
does (larger dtypes first, then by name), so the C reader sees a layout it
did not produce itself.

    st_interop.py check FILE           verify the checkpoint the C side wrote
    st_interop.py write PARAMS INPUTS  write files for the C side to load

Values follow formulas that test_rt_interop.c computes too; floats are
compared bit for bit.
"""
import json
import math
import struct
import sys

import torch

DTYPES = {"F32": (torch.float32, 4), "I32": (torch.int32, 4),
          "I64": (torch.int64, 8)}
SPECIAL_BITS = [0x80000000, 0x00000001, 0x7F7FFFFF, 0xFF800000]


def c_value(t, i):
    """Element i of tensor t in the file the C side writes."""
    return ((i * 37 + t * 11) % 101 - 50) / 16.0


def py_value(t, i):
    """Element i of tensor t in the file this script writes."""
    return ((i * 53 + t * 7) % 89 - 44) / 8.0


def f32_tensor(shape, t, formula, special=False):
    n = math.prod(shape)
    x = torch.tensor([formula(t, i) for i in range(n)], dtype=torch.float32)
    if special:
        bits = x.view(torch.int32)
        for i, b in enumerate(SPECIAL_BITS):
            bits[i] = struct.unpack("<i", struct.pack("<I", b))[0]
    return x.reshape(shape)


def read(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    text = blob[8:8 + n].decode("utf-8")
    header = json.loads(text)
    data = bytearray(blob[8 + n:])
    meta = header.pop("__metadata__", None)
    tensors, spans = {}, []
    for name, e in header.items():
        dtype, size = DTYPES[e["dtype"]]
        begin, end = e["data_offsets"]
        assert end - begin == size * math.prod(e["shape"]), name
        spans.append((begin, end))
        x = torch.frombuffer(data[begin:end], dtype=dtype) if end > begin \
            else torch.empty(0, dtype=dtype)
        tensors[name] = (e["dtype"], x.reshape(e["shape"]))
    spans.sort()
    assert spans[0][0] == 0 and spans[-1][1] == len(data), spans
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:])), spans
    return n, text, meta, tensors


def expect(cond, what):
    if not cond:
        print("st_interop: FAILED:", what)
        sys.exit(1)


def same_bits(a, b):
    return torch.equal(a.contiguous().view(torch.int32),
                       b.contiguous().view(torch.int32))


def check(path):
    n, text, meta, tensors = read(path)
    expect((8 + n) % 8 == 0, "header not padded to 8 bytes")
    body = text.rstrip(" ")
    expect(body.endswith("}") and len(text) - len(body) < 8,
           "padding is not up to 7 spaces after the JSON")
    expect(meta == {"format": "pt", "producer": "nnc", "model": "interop"},
           "metadata %r" % (meta,))
    want = {"w": ("F32", f32_tensor([4, 5], 0, c_value, special=True)),
            "b": ("F32", f32_tensor([5], 1, c_value)),
            "e": ("F32", f32_tensor([3, 2, 2], 2, c_value)),
            "opt.w.exp_avg": ("F32", f32_tensor([4, 5], 3, c_value))}
    expect(set(tensors) == set(want) | {"opt.step"},
           "names %s" % sorted(tensors))
    for name, (dtype, x) in want.items():
        got_dtype, got = tensors[name]
        expect(got_dtype == dtype and got.shape == x.shape,
               "%s: %s %s" % (name, got_dtype, list(got.shape)))
        expect(same_bits(got, x), "%s values:\n%s\n%s" % (name, got, x))
    step_dtype, step = tensors["opt.step"]
    expect(step_dtype == "I64" and step.shape == () and int(step) == 123456789012,
           "opt.step %s %s" % (step_dtype, step))
    print("st_interop: C file verified:", sorted(tensors))


def write(path, tensors):
    """tensors: name -> (dtype, torch tensor); safetensors crate order."""
    order = sorted(tensors, key=lambda k: (-DTYPES[tensors[k][0]][1], k))
    header, chunks, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in order:
        dtype, x = tensors[name]
        raw = x.contiguous().numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(x.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def write_files(params_path, inputs_path):
    write(params_path, {
        "w": ("F32", f32_tensor([4, 5], 0, py_value)),
        "b": ("F32", f32_tensor([5], 1, py_value)),
        "e": ("F32", f32_tensor([3, 2, 2], 2, py_value)),
    })
    y = torch.tensor([3, -1, 2147483647, -2147483648], dtype=torch.int32)
    write(inputs_path, {"x": ("F32", f32_tensor([2, 3], 5, py_value)),
                        "y": ("I32", y)})
    print("st_interop: wrote", params_path, inputs_path)


if __name__ == "__main__":
    if sys.argv[1] == "check":
        check(sys.argv[2])
    elif sys.argv[1] == "write":
        write_files(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: st_interop.py check FILE | write PARAMS INPUTS")
