"""The IBM Quantum Runtime JSON encoding, read and written (no HTTP here).

The format is qiskit-ibm-runtime's ``RuntimeEncoder``/``RuntimeDecoder`` (checked against
0.51): plain JSON, plus objects tagged ``{"__type__": tag, "__value__": value}``:

=====================  ===========================================================================
tag                    value
=====================  ===========================================================================
``QuantumCircuit``     base64(zlib(QPY)), QPY version 17 (:data:`SERVICE_QPY_VERSION`) or the
                       nearest this Qiskit writes; metadata JSON uses this same encoding
``ndarray``            base64(zlib(``np.save(..., allow_pickle=False)``)); also read: a plain list
``Parameter``          base64 of QPY's parameter record (name and UUID), no zlib
``Instruction``        a one-instruction QPY circuit, as ``QuantumCircuit``
``complex``            ``[real, imag]``
``set``                a list
``datetime``           ISO 8601 text (``date`` objects too; they read back as ``datetime``)
``ObservablesArray``   nested lists of ``{label: coeff}``
``BindingsArray``      ``{"shape": [...], "data": {'["a", "b"]': ndarray}}``
``BitArray``           ``{"array": ndarray(uint8), "num_bits": n}``
``DataBin``            ``{"field_names": [...], "shape": [...], "fields": {...}}``
``PubResult``          ``{"data": DataBin, "metadata": {...}}``; ``SamplerPubResult`` alike;
                       ``EstimatorPubResult`` reads as a ``PubResult``
``PrimitiveResult``    ``{"pub_results": [...], "metadata": {...}}``
``ExecutionSpans``     ``{"spans": [...]}`` of ``ExecutionSpan``/``DoubleSliceSpan``/
                       ``TwirledSliceSpan``/``TwirledSliceSpanV2``, read as :class:`ExecutionSpan`
``PauliLindbladMap``   ``{"paulis": sparse list, "num_qubits": n}``
``settings``           ``Pauli``, ``PauliList``, ``SparsePauliOp`` from their ``settings`` (only
                       these three: the ``__module__``/``__class__`` it carries is never imported)
``to_json``            read only: the value as is
=====================  ===========================================================================

PUBs travel untagged as the lists :func:`pubs_to_wire` writes. The registry is closed: any other
tag, a malformed value, bad base64 or zlib, an object or pickled array, a blob that is not
``.npy``/QPY, or more than ``max_decompressed_bytes`` inflated is a :class:`WireError`::

    >>> from aqrt.wire import encode, decode
    >>> decode(encode({"z": 1 + 2j}))
    {'z': (1+2j)}
"""

from ._blobs import DEFAULT_MAX_DECOMPRESSED_BYTES, SERVICE_QPY_VERSION, qpy_write_version
from ._codec import decode, encode, from_jsonable, to_jsonable
from ._errors import WireError
from ._pubs import Program, pubs_from_wire, pubs_to_wire
from ._spans import ExecutionSpan, ExecutionSpans

__all__ = [
    "DEFAULT_MAX_DECOMPRESSED_BYTES",
    "SERVICE_QPY_VERSION",
    "ExecutionSpan",
    "ExecutionSpans",
    "Program",
    "WireError",
    "decode",
    "encode",
    "from_jsonable",
    "pubs_from_wire",
    "pubs_to_wire",
    "qpy_write_version",
    "to_jsonable",
]
