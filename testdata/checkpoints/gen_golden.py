"""Writes the golden files the checkpoint reader's tests compare against (run once, by hand):

    cd testdata/checkpoints && /usr/bin/python3 gen_golden.py

needs PyTorch (written with Debian's torch 1.13). Outputs, all small:
- golden_{zip,legacy}_p{2,5}.pth: one dict of tensors (views, dtypes, shared storage, a Parameter) and
  plain values, saved by torch.save in both formats with pickle protocols 2 and 5;
- plain_p{0..5}.pkl: plain Python values (no tensors) pickled with the standard pickle module, every
  protocol (the text opcodes of protocols 0 and 1 included);
- golden_expected.json: the exact values of both, in a tagged form (floats as the hex bits of a float64,
  ints beyond 2^53 as decimal strings, tensors as dtype, shape and row-major elements);
- checkpoint_expected.json: for the two real checkpoints beside this script (which hold the same
  dictionary, checked here), the top-level keys, the args, and every state_dict and EMA tensor's dtype,
  shape and SHA-256 of its contiguous little-endian bytes.
"""
import argparse
import collections
import hashlib
import json
import math
import pickle
import struct
import sys

import torch


class Thing:
    """An arbitrary class: the reader must keep it as an inert record with its state."""

    def __init__(self):
        self.a = 1
        self.name = "thing"
        self.w = torch.tensor([1.5, -2.0])


def fbits(x):
    return struct.pack(">d", float(x)).hex()


def enc(v):
    if v is None:
        return {"t": "none"}
    if isinstance(v, bool):
        return {"t": "bool", "v": v}
    if isinstance(v, int):
        if abs(v) <= 2**53 - 1:
            return {"t": "num", "bits": fbits(v)}
        return {"t": "int", "v": str(v)}
    if isinstance(v, float):
        return {"t": "num", "bits": fbits(v)}
    if isinstance(v, str):
        return {"t": "str", "v": v}
    if isinstance(v, (bytes, bytearray)):
        return {"t": "bytes", "hex": bytes(v).hex()}
    if isinstance(v, torch.Tensor):
        if v.dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
            vals = [fbits(x) for x in v.double().flatten().tolist()]
        else:
            vals = [str(int(x)) for x in v.flatten().tolist()]
        return {
            "t": "tensor",
            "dtype": str(v.dtype).replace("torch.", ""),
            "shape": list(v.shape),
            "values": vals,
            "parameter": isinstance(v, torch.nn.Parameter),
            "requiresGrad": v.requires_grad,
        }
    if isinstance(v, tuple):
        return {"t": "tuple", "items": [enc(x) for x in v]}
    if isinstance(v, list):
        return {"t": "list", "items": [enc(x) for x in v]}
    if isinstance(v, dict):
        return {"t": "dict", "items": [[enc(k), enc(x)] for k, x in v.items()]}
    if isinstance(v, (set, frozenset)):
        return {"t": "set", "items": [enc(x) for x in v]}
    if isinstance(v, argparse.Namespace) or isinstance(v, Thing):
        cls = type(v)
        return {"t": "object", "module": cls.__module__, "name": cls.__qualname__, "state": enc(vars(v))}
    raise TypeError(type(v))


def plain_values():
    return {
        "none": None,
        "bools": [True, False],
        "small": [0, 1, -1, 255, 256, 65535, 65536, -2**31, 2**31 - 1, 2**31, 2**53 - 1],
        "big": [2**53, -2**53, 2**63, -2**63 - 1, 2**70, -2**100, 10**30],
        "floats": [1.5, -0.0, 1e-310, 1e308, math.pi, float("inf"), float("-inf"), float("nan")],
        "text": ["", "ascii", "ünïcödé ✓", "x" * 300, "line\nbreak", 'q"u\'ote\\'],
        "bytes": [b"", b"\x00\xff\x80abc", bytes(range(256))],
        "bytearray": bytearray(b"\x01\x02"),
        "tuples": ((), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4), ((("deep",),),)),
        "set": {3, 1, 2},
        "frozenset": frozenset(["a"]),
        "intkeys": {0: "a", 1: "b", -5: "c", 2**40: "d"},
        "ordered": collections.OrderedDict([("z", 1), ("a", 2)]),
        "shared": None,  # set below: the same list twice (memo)
        "namespace": argparse.Namespace(nblocks="2-2", idim=32, lr=1e-3, flag=True, nothing=None),
        "long_list": list(range(1500)),
    }


def tensor_values():
    base = (torch.arange(12, dtype=torch.float32) * 0.5 - 1.25).reshape(3, 4)
    shared = torch.arange(10, dtype=torch.float64) / 3
    x = plain_values()
    del x["long_list"]
    x.update({
        "f32": base,
        "transposed": base.t(),
        "sliced": base[1:, 1:3],
        "strided": base[:, ::2],
        "f64": torch.tensor([math.pi, -1e-300, 1e300, float("inf"), -0.0], dtype=torch.float64),
        "f16": torch.tensor([1.0, -2.5, 65504.0, 6e-8, 1e-5, float("inf"), -0.0, 0.1], dtype=torch.float16),
        "bf16": torch.tensor([1.0, -2.5, 3.0e38, 1e-40, float("-inf"), 0.1], dtype=torch.bfloat16),
        "i64": torch.tensor([0, -1, 2**62, -2**63, 2**53 + 1], dtype=torch.int64),
        "i32": torch.tensor([[0, -1], [2**31 - 1, -2**31]], dtype=torch.int32),
        "i16": torch.tensor([-32768, 32767, 5], dtype=torch.int16),
        "i8": torch.tensor([-128, 127, 0], dtype=torch.int8),
        "u8": torch.tensor([0, 255, 128], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "share_a": shared[0:6],
        "share_b": shared[3:9].view(2, 3),
        "scalar": torch.tensor(7.25),
        "empty": torch.zeros(0, 3),
        "expanded": torch.arange(3, dtype=torch.int32).expand(4, 3),
        "param": torch.nn.Parameter(torch.tensor([[0.5, -0.5]])),
        "size": torch.Size([2, 3]),
        "thing": Thing(),
    })
    return x


def main():
    plain = plain_values()
    lst = ["same"]
    plain["shared"] = [lst, lst]
    for p in range(6):
        with open(f"plain_p{p}.pkl", "wb") as f:
            pickle.dump(plain, f, protocol=p)
    tens = tensor_values()
    for fmt in ("zip", "legacy"):
        for p in (2, 5):
            torch.save(tens, f"golden_{fmt}_p{p}.pth", pickle_protocol=p,
                       _use_new_zipfile_serialization=(fmt == "zip"))
    with open("golden_expected.json", "w") as f:
        json.dump({"plain": enc(plain), "tensors": enc(tens)}, f, indent=None, separators=(",", ":"))

    # The two real checkpoints hold the same dictionary: one record, checked against both here.
    records = []
    for name in ("checkpoint_zip.pth", "checkpoint_legacy.pth"):
        ck = torch.load(name, map_location="cpu")
        records.append({
            "keys": list(ck.keys()),
            "state_dict": digest(ck["state_dict"]),
            "shadow_params": digest(ck["ema"].shadow_params),
            "args": dict(vars(ck["args"])),
        })
    assert records[0] == records[1], "the zip and legacy checkpoints differ"
    rec = records[0]
    with open("checkpoint_expected.json", "w") as f:
        f.write("{\n" + f' "keys": {json.dumps(rec["keys"])},\n "args": {json.dumps(rec["args"])},\n')
        for part in ("state_dict", "shadow_params"):
            lines = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in rec[part].items()]
            f.write(f' "{part}": {{\n' + ",\n".join(lines) + "\n }" + (",\n" if part == "state_dict" else "\n"))
        f.write("}\n")


def digest(sd):
    """dtype, shape and SHA-256 of the contiguous little-endian bytes of each tensor."""
    return {
        k: {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape),
            "sha256": hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()}
        for k, t in sd.items()
    }


if __name__ == "__main__":
    sys.path.insert(0, "../../../shared/peers/residual-flows")
    main()
