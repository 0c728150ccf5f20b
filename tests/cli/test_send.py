"""``kerastrans convert --send``: C-STORE of the derived series to a real Storage SCP."""

import socket

import keras
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification

from kerastrans.cli.main import main
from kerastrans.config import Window
from kerastrans.export import export_translator
from kerastrans.io.pacs import parse_destination
from kerastrans.translate import Translator

CT = Window.from_center_width(40, 400)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    identity = keras.Sequential([keras.Input((None, None, 1)), keras.layers.Identity()])
    folder = tmp_path_factory.mktemp("send") / "model"
    export_translator(Translator(identity, CT, CT, size_multiple=4), folder)
    return folder


@pytest.fixture
def series(tmp_path):
    """Three CT slices of one series."""
    folder = tmp_path / "in"
    folder.mkdir()
    for index in range(3):
        dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        dataset.ImagePositionPatient = [0.0, 0.0, 5.0 * index]
        dataset.SOPInstanceUID = pydicom.uid.generate_uid()
        dataset.save_as(folder / f"IM{index}.dcm")
    return folder


@pytest.fixture
def scp():
    """pynetdicom's Storage SCP 'STORE_SCP' on a free local port; yields (port, received)."""
    received = []

    def store(event):
        received.append(event.dataset)
        return 0x0000

    ae = AE(ae_title="STORE_SCP")
    ae.supported_contexts = AllStoragePresentationContexts
    ae.add_supported_context(Verification)
    ae.require_called_aet = True  # a wrong called AE title is rejected
    server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, store)])
    yield server.server_address[1], received
    server.shutdown()


def local_uids(folder):
    return {
        (str(ds.SOPInstanceUID), str(ds.SeriesInstanceUID))
        for ds in (pydicom.dcmread(path) for path in folder.rglob("*.dcm"))
    }


def test_derived_series_is_stored_on_the_scp_with_the_local_uids(
    model_dir, series, scp, tmp_path, capsys
):
    port, received = scp
    out = tmp_path / "out"
    argv = ["convert", str(model_dir), str(series), str(out), "--no-progress"]
    assert main([*argv, "--send", f"STORE_SCP@127.0.0.1:{port}"]) == 0
    assert f"sent 3 instances to STORE_SCP@127.0.0.1:{port}" in capsys.readouterr().out
    stored = {(str(ds.SOPInstanceUID), str(ds.SeriesInstanceUID)) for ds in received}
    assert len(received) == 3 and stored == local_uids(out)
    assert len({series_uid for _, series_uid in stored}) == 1


def test_rejected_association_is_one_line_exit_1_and_the_local_series_stays(
    model_dir, series, scp, tmp_path, capsys
):
    port, received = scp
    out = tmp_path / "out"
    argv = ["convert", str(model_dir), str(series), str(out), "--no-progress"]
    assert main([*argv, "--send", f"OTHER@127.0.0.1:{port}"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"kerastrans convert: error: OTHER@127.0.0.1:{port}: the node rejected the "
        "association (Called AE title not recognised)"
    ]
    assert received == [] and len(local_uids(out)) == 3


def test_unreachable_node_is_one_line_exit_1(model_dir, series, tmp_path, capsys):
    with socket.socket() as probe:  # a free port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = ["convert", str(model_dir), str(series), str(tmp_path / "out"), "--no-progress"]
    assert main([*argv, "--send", f"PACS@127.0.0.1:{port}"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"kerastrans convert: error: PACS@127.0.0.1:{port}: cannot connect (connection "
        "refused, or no answer within 30 s)"
    ]
    assert len(list((tmp_path / "out").glob("*.dcm"))) == 3


def test_bad_destinations_are_usage_errors(model_dir, series, tmp_path, capsys):
    argv = ["convert", str(model_dir), str(series), str(tmp_path / "out")]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--send", "PACS@host"])
    assert exit_info.value.code == 2
    assert "destination must be AE_TITLE@HOST:PORT" in capsys.readouterr().err
    with pytest.raises(ValueError, match="AE title must be 1-16 printable"):
        parse_destination("A_VERY_LONG_AE_TITLE@host:104")
    with pytest.raises(ValueError, match=r"port must be a number in 1\.\.65535, got '0'"):
        parse_destination("PACS@host:0")
