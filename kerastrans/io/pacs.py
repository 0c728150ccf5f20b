"""Send DICOM files to a PACS (or any DICOM node) by C-STORE, with pynetdicom.

``kerastrans convert ... --send AE_TITLE@HOST:PORT`` writes the derived series
locally first, then stores every DICOM file of the output folder on the node
over one association: the files are sent as they are on disk (same SOP
Instance and Series UIDs, same transfer syntax). A node that cannot be
reached, refuses the association or does not answer within the timeout gives
one `DataError` line; the local files are left as they are.

>>> parse_destination("PACS@pacs.example.org:11112")
Destination(ae_title='PACS', host='pacs.example.org', port=11112)
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tqdm.auto import tqdm

from kerastrans.errors import DataError, file_error
from kerastrans.io.dicom import read_dataset

__all__ = ["CALLING_AE_TITLE", "Destination", "SendSummary", "parse_destination", "send_files"]

#: Our AE title when we call a node (the node may need to know it).
CALLING_AE_TITLE = "KERASTRANS"
#: C-STORE statuses that mean "stored" (0x0000 success; B000, B006, B007 warnings).
_STORED = {0x0000, 0xB000, 0xB006, 0xB007}


@dataclasses.dataclass(frozen=True)
class Destination:
    """A DICOM node: its AE title, host and TCP port."""

    ae_title: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


@dataclasses.dataclass(frozen=True)
class SendSummary:
    """What `send_files` stored.

    Attributes:
        destination: The node.
        sent: Instances the node stored (success or warning status).
        errors: One line per instance that was not stored.
        seconds: Wall time, association included.
    """

    destination: Destination
    sent: int
    errors: tuple[str, ...]
    seconds: float

    def format(self) -> str:
        """One line: how many instances were stored where, and how many failed."""
        line = f"sent {self.sent} instances to {self.destination} in {self.seconds:.1f} s"
        return line + (f"; {len(self.errors)} failed" if self.errors else "")


def parse_destination(text: str) -> Destination:
    """Parse ``AE_TITLE@HOST:PORT``.

    Raises:
        ValueError: If a part is missing, the AE title is longer than 16
            characters or has a backslash or control character, or the port
            is not in 1..65535.
    """
    title, at, address = text.partition("@")
    host, colon, port = address.rpartition(":")
    expected = "AE_TITLE@HOST:PORT, e.g. PACS@192.168.1.10:104"
    if not (at and colon and title.strip() and host):
        raise ValueError(f"destination must be {expected}, got {text!r}")
    title = title.strip()
    if len(title) > 16 or "\\" in title or not title.isprintable():
        raise ValueError(f"AE title must be 1-16 printable characters without '\\', got {title!r}")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"port must be a number in 1..65535, got {port!r} in {text!r}")
    return Destination(title, host.strip("[]"), int(port))


def send_files(
    paths: Sequence[str | os.PathLike],
    destination: Destination,
    *,
    calling_ae_title: str = CALLING_AE_TITLE,
    timeout: float = 30.0,
    progress: bool = True,
    on_error: Callable[[str], None] | None = None,
) -> SendSummary:
    """Store DICOM files on ``destination`` by C-STORE over one association.

    Args:
        paths: The DICOM files (sent as they are on disk).
        destination: The node (see `parse_destination`).
        calling_ae_title: Our AE title.
        timeout: Seconds to wait for the connection, the association and each
            response.
        progress: Show a progress bar.
        on_error: Called with each instance's error line as it happens.

    Returns:
        The `SendSummary`; instances the node refused are in ``errors``.

    Raises:
        DataError: If a file cannot be read, or the node cannot be reached,
            refuses the association or stops answering (one line, naming it).
    """
    from pynetdicom import AE, evt

    datasets = [(Path(path), read_dataset(path)) for path in paths]
    if not datasets:
        raise DataError(f"{destination}: nothing to send (no DICOM files)")
    ae = AE(ae_title=calling_ae_title)
    for attribute in ("connection_timeout", "acse_timeout", "dimse_timeout", "network_timeout"):
        setattr(ae, attribute, timeout)
    contexts = sorted(
        {(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for _, ds in datasets}
    )
    for sop_class, syntax in contexts:
        ae.add_requested_context(sop_class, syntax)
    responses = []

    def keep_response(event) -> None:  # the A-ASSOCIATE answer says why a node refused
        responses.append(event.primitive)

    start = time.perf_counter()
    association = ae.associate(
        destination.host,
        destination.port,
        ae_title=destination.ae_title,
        evt_handlers=[(evt.EVT_ACSE_RECV, keep_response)],
    )
    if not association.is_established:
        raise DataError(f"{destination}: {_refusal(association, responses, timeout)}")
    errors: list[str] = []
    sent = 0
    try:
        for path, dataset in tqdm(datasets, desc="sending", unit="instance", disable=not progress):
            status = association.send_c_store(dataset)
            if not association.is_established or "Status" not in status:
                raise DataError(
                    f"{destination}: the association ended while sending {path} "
                    f"(no answer within {timeout:g} s, or the node aborted); {sent} "
                    f"of {len(datasets)} instances were stored"
                )
            if int(status.Status) in _STORED:
                sent += 1
                continue
            line = str(file_error(path, f"{destination} refused it (status 0x{status.Status:04X})"))
            errors.append(line)
            if on_error is not None:
                on_error(line)
    finally:
        if association.is_established:
            association.release()
    return SendSummary(destination, sent, tuple(errors), time.perf_counter() - start)


def _refusal(association, responses: list, timeout: float) -> str:
    """Why an association was not established, in words."""
    if association.is_rejected:
        answer = next((r for r in responses if getattr(r, "result", None) in (1, 2)), None)
        reason = f" ({answer.reason_str})" if answer is not None else ""
        return f"the node rejected the association{reason}"
    if not responses:  # pynetdicom reports a refused connection as an abort
        return f"cannot connect (connection refused, or no answer within {timeout:g} s)"
    return "the node aborted the association"
