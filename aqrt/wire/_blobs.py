"""The binary values inside tagged objects: base64 text over zlib over ``.npy`` or QPY bytes.

qiskit-ibm-runtime writes ``base64.standard_b64encode(zlib.compress(blob))`` (zlib's default
level), with ``np.save(..., allow_pickle=False)`` for arrays and ``qiskit.qpy.dump`` for circuits;
a ``Parameter`` is QPY's bare parameter record (``!H16s`` name length and UUID, then the UTF-8
name), base64 without zlib. Reading is the suspicious part: base64 is strict, decompression is
bounded while it runs, ``.npy`` headers are checked against the data before anything is
allocated, and nothing is unpickled.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import re
import struct
import threading
import uuid
import zlib
from typing import Any, Literal

import numpy as np
from qiskit import qpy
from qiskit.circuit import Parameter, QuantumCircuit

from ._errors import WireError

__all__ = [
    "DEFAULT_MAX_DECOMPRESSED_BYTES",
    "SERVICE_QPY_VERSION",
    "Budget",
    "array_from_bytes",
    "array_to_text",
    "circuit_to_text",
    "circuits_from_bytes",
    "clean_message",
    "npy_header",
    "parameter_from_bytes",
    "parameter_to_text",
    "qpy_write_version",
    "text_to_bytes",
]

#: The newest QPY version the IBM Runtime service reads; qiskit-ibm-runtime 0.4x/0.5x sends
#: ``min(SERVICE_MAX_SUPPORTED_QPY_VERSION, qiskit.qpy.QPY_VERSION)`` with this value at 17.
SERVICE_QPY_VERSION = 17

#: Decompressed bytes one ``decode`` may produce, over all its arrays and circuits together.
DEFAULT_MAX_DECOMPRESSED_BYTES = 256 * 2**20

_NPY_MAGIC = b"\x93NUMPY"
_QPY_MAGIC = b"QISKIT"
_PARAMETER = struct.Struct("!H16s")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# np.load's limit on a .npy header (its max_header_size default): larger ones are refused.
_NPY_MAX_HEADER = 10000


class Budget:
    """The decompressed bytes one decode may still produce; every blob of it draws on this."""

    __slots__ = ("limit", "remaining")

    def __init__(self, limit: int) -> None:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise WireError(f"max_decompressed_bytes must be a non-negative int, not {limit!r}")
        self.limit = limit
        self.remaining = limit


def qpy_write_version(
    newest: int | None = None, oldest: int | None = None, *, wanted: int = SERVICE_QPY_VERSION
) -> int:
    """The QPY version circuits are written in: ``wanted`` (17), or the nearest one Qiskit writes.

    ``newest`` and ``oldest`` default to ``qiskit.qpy.QPY_VERSION`` and
    ``QPY_COMPATIBILITY_VERSION``: an older Qiskit writes its newest version (what
    qiskit-ibm-runtime does), a Qiskit that no longer writes 17 writes its oldest one.
    """
    newest = qpy.QPY_VERSION if newest is None else newest
    oldest = qpy.QPY_COMPATIBILITY_VERSION if oldest is None else oldest
    return max(min(wanted, newest), oldest)


def _text(data: bytes, *, compress: bool) -> str:
    return base64.standard_b64encode(zlib.compress(data) if compress else data).decode("ascii")


def text_to_bytes(tag: str, value: Any, budget: Budget, *, compressed: bool = True) -> bytes:
    """Strict base64, then (if ``compressed``) zlib bounded by ``budget``."""
    if not isinstance(value, str):
        raise WireError(f"expected a base64 string, got {type(value).__name__}", tag=tag)
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WireError(f"the value is not valid base64 ({exc})", tag=tag) from exc
    return _inflate(tag, data, budget) if compressed else data


def _inflate(tag: str, data: bytes, budget: Budget) -> bytes:
    inflater = zlib.decompressobj()
    try:
        # One byte over the budget tells "too large" apart from "exactly at the limit";
        # max_length stops zlib there, so a zip bomb never gets further than that.
        out = inflater.decompress(data, budget.remaining + 1)
    except zlib.error as exc:
        raise WireError(f"the value is not valid zlib data ({exc})", tag=tag) from exc
    if len(out) > budget.remaining:
        raise WireError(
            f"the decompressed data exceeds the limit of {budget.limit} bytes "
            "(max_decompressed_bytes, for the whole document)",
            tag=tag,
        )
    if not inflater.eof:
        raise WireError("the zlib data is truncated", tag=tag)
    if inflater.unused_data:
        raise WireError(f"{len(inflater.unused_data)} bytes follow the zlib data", tag=tag)
    budget.remaining -= len(out)
    return out


def array_to_text(array: np.ndarray) -> str:
    """``np.save`` (no pickle), zlib, base64; object arrays are refused."""
    if array.dtype.hasobject:
        raise WireError(
            f"cannot encode an array of dtype {array.dtype}: object arrays need pickle, which the wire format refuses",
            tag="ndarray",
        )
    # The bytes np.save(allow_pickle=False) writes, held to what np.load (and so RuntimeDecoder)
    # reads back: a format 1.0 header of at most 10000 bytes.
    with io.BytesIO() as buffer:
        try:
            np.lib.format.write_array(buffer, array, version=(1, 0), allow_pickle=False)
        except ValueError:
            size = _NPY_MAX_HEADER + 1  # over 64 KiB: np.save would fall back to format 2.0
        else:
            size = int.from_bytes(buffer.getbuffer()[8:10], "little")
        if size > _NPY_MAX_HEADER:
            raise WireError(
                f"the dtype {array.dtype} is too wide: its .npy header would be over "
                f"{_NPY_MAX_HEADER} bytes, which np.load refuses",
                tag="ndarray",
            )
        return _text(buffer.getvalue(), compress=True)


# numpy reads a header with ast.literal_eval, and CPython 3.11's AST constructor keeps one
# recursion counter per interpreter: parsing in several threads at once can fail with
# "SystemError: AST constructor recursion depth mismatch" (CPython gh-106905; seen when a
# server decoded many jobs at once). Headers are tiny, so they are read one at a time.
_AST_LOCK = threading.Lock()


def npy_header(tag: str, raw: bytes) -> tuple[tuple[int, ...], bool, np.dtype[Any], int]:
    """``(shape, fortran_order, dtype, data_offset)`` of a ``.npy`` blob, read and checked: a format
    1.0 header of at most 10000 bytes, no object dtype, and exactly the data bytes it announces
    (so what it declares is what it holds: nothing is allocated from a header's word)."""
    if not raw.startswith(_NPY_MAGIC):
        raise WireError("the data is not a .npy array (np.save output)", tag=tag)
    stream = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):  # np.save writes 2.0 only for headers np.load refuses anyway
            with _AST_LOCK:
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream, max_header_size=_NPY_MAX_HEADER)
    except (ValueError, TypeError, SyntaxError, struct.error) as exc:
        raise WireError(f"the .npy header is malformed ({clean_message(exc)})", tag=tag) from exc
    if version != (1, 0):
        raise WireError(f".npy format version {version} is not accepted", tag=tag)
    if dtype.hasobject:
        raise WireError(f"arrays of dtype {dtype} are refused: object arrays need pickle", tag=tag)
    count = math.prod(shape)
    offset = stream.tell()
    if len(raw) - offset != count * dtype.itemsize:
        raise WireError(
            f"the .npy header announces {count * dtype.itemsize} data bytes "
            f"(shape {shape}, dtype {dtype}), the blob holds {len(raw) - offset}",
            tag=tag,
        )
    return shape, fortran, dtype, offset


def array_from_bytes(tag: str, raw: bytes) -> np.ndarray:
    """Read one ``.npy`` blob; the header must describe exactly the bytes that follow it."""
    shape, fortran, dtype, offset = npy_header(tag, raw)
    count = math.prod(shape)
    order: Literal["C", "F"] = "F" if fortran else "C"
    if count == 0 or dtype.itemsize == 0:
        return np.zeros(shape, dtype=dtype, order=order)
    flat = np.frombuffer(raw, dtype=dtype, count=count, offset=offset)
    return flat.reshape(shape, order=order).copy(order="K")


def circuit_to_text(circuit: QuantumCircuit, metadata_serializer: type[json.JSONEncoder] | None) -> str:
    """QPY at :func:`qpy_write_version`, zlib, base64."""
    with io.BytesIO() as buffer:
        try:
            qpy.dump(circuit, buffer, metadata_serializer, version=qpy_write_version())
        except WireError as exc:  # from metadata_serializer: place it under the circuit
            exc.at("metadata")
            raise
        except Exception as exc:  # QPY refuses some circuits; say which, whatever it raised
            raise WireError(f"QPY cannot write this circuit ({clean_message(exc)})", tag="QuantumCircuit") from exc
        return _text(buffer.getvalue(), compress=True)


def circuits_from_bytes(tag: str, raw: bytes) -> list[Any]:
    """Every program of one QPY blob; metadata comes back as plain JSON, not yet decoded."""
    if not raw.startswith(_QPY_MAGIC) or len(raw) < 7:
        raise WireError("the data is not a QPY blob", tag=tag)
    if raw[6] > qpy.QPY_VERSION:
        raise WireError(
            f"QPY version {raw[6]} is newer than this Qiskit reads ({qpy.QPY_VERSION}); upgrade qiskit",
            tag=tag,
        )
    try:
        return list(qpy.load(io.BytesIO(raw)))
    except Exception as exc:  # a malformed QPY blob fails in many ways (QpyError, struct, ...)
        raise WireError(f"the QPY data cannot be read ({clean_message(exc)})", tag=tag) from exc
    except BaseException as exc:
        # A panic in QPY's Rust reader arrives as pyo3's PanicException, which is no Exception.
        if type(exc).__name__ != "PanicException":
            raise
        raise WireError(f"the QPY data cannot be read ({clean_message(exc)})", tag=tag) from exc


def parameter_to_text(parameter: Parameter) -> str:
    """QPY's parameter record, base64, no zlib."""
    name = parameter.name.encode("utf-8")
    if len(name) > 0xFFFF:
        raise WireError("a parameter name is limited to 65535 bytes of UTF-8", tag="Parameter")
    return _text(_PARAMETER.pack(len(name), parameter.uuid.bytes) + name, compress=False)


def parameter_from_bytes(tag: str, raw: bytes) -> Parameter:
    """The inverse of :func:`parameter_to_text`: same name, same UUID, so it equals the original."""
    if len(raw) < _PARAMETER.size:
        raise WireError("the parameter record is too short", tag=tag)
    size, uuid_bytes = _PARAMETER.unpack_from(raw)
    name = raw[_PARAMETER.size :]
    if len(name) != size:
        raise WireError(f"the parameter name is {len(name)} bytes, its record says {size}", tag=tag)
    try:
        return Parameter(name.decode("utf-8"), uuid=uuid.UUID(bytes=uuid_bytes))
    except (UnicodeDecodeError, ValueError, TypeError) as exc:
        raise WireError(f"the parameter record is malformed ({exc})", tag=tag) from exc


def clean_message(exc: BaseException) -> str:
    """One short line of an error message (QPY's Rust errors carry colours and backtraces)."""
    text = " ".join(_ANSI.sub("", f"{type(exc).__name__}: {exc}").split())
    return text if len(text) <= 300 else text[:297] + "..."
