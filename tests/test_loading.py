"""Tests of `kerastrans.loading`: a model path to a translator."""

import pytest

from kerastrans.errors import DataError
from kerastrans.loading import load_translator


def test_load_translator_rejects_an_unknown_direction(tmp_path):
    with pytest.raises(ValueError, match=r"direction must be one of \('AtoB', 'BtoA'\), got 'AB'"):
        load_translator(tmp_path, "AB")


def test_load_translator_of_a_folder_that_is_neither_export_nor_run(tmp_path):
    with pytest.raises(DataError, match="not a run directory of kerastrans fit"):
        load_translator(tmp_path)
