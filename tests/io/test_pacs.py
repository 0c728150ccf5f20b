"""Tests of `kerastrans.io.pacs` that need no model: a node that never answers."""

import socket

import pytest
from pydicom.data import get_testdata_file

from kerastrans.errors import DataError
from kerastrans.io.pacs import Destination, send_files


def test_a_node_that_never_answers_times_out_in_one_line():
    with socket.socket() as silent:  # accepts connections (backlog), never speaks DICOM
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        with pytest.raises(DataError) as error:
            send_files(
                [get_testdata_file("CT_small.dcm")],
                Destination("PACS", "127.0.0.1", port),
                timeout=0.5,
                progress=False,
            )
    assert str(error.value) == (
        f"PACS@127.0.0.1:{port}: cannot connect (connection refused, or no answer within 0.5 s)"
    )
