"""SavedModel export for TF Serving: physical units in, physical units out.

`export_translator` saves the whole `kerastrans.translate.Translator` graph
(window, pad, generator, crop, unwindow) as a SavedModel whose
``serving_default`` signature is::

    inputs['images']:  float32 (-1, -1, -1, C)   physical units (HU for CT)
    outputs['output']: float32 (-1, -1, -1, C')  physical units

Batch size, height and width are dynamic unless the network fixes them
(AUTOMAP). The SavedModel holds only TensorFlow ops and variables: it loads
with ``tf.saved_model.load`` or TF Serving on a machine without kerastrans.

TF Serving serves a *model folder* holding numbered version folders, so
``export_translator(translator, "models/ldct")`` writes
``models/ldct/1/saved_model.pb``; serve it with
``tensorflow_model_server --model_base_path=/abs/models/ldct``. A new version
(``version=2``) is picked up by a running server. Each version folder is
written atomically (complete or absent) and never replaced unless
``overwrite=True``. Its ``assets.extra/kerastrans.json`` records the windows,
the size multiple, the direction (``AtoB`` or ``BtoA``) and where the model
came from (TF Serving ignores it).

A SavedModel holds one direction: `kerastrans.loading.load_translator`
refuses to use it for the other. Given a model folder, the highest version
is used unless one is asked for (`find_saved_model`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tensorflow as tf

from kerastrans import __version__
from kerastrans.atomic import atomic_directory, writable_directory
from kerastrans.config import Window
from kerastrans.errors import file_error
from kerastrans.translate import DIRECTIONS, Translator, check_images

__all__ = [
    "INPUT_NAME",
    "OUTPUT_NAME",
    "SIGNATURE",
    "ExportedTranslator",
    "export_run",
    "export_translator",
    "find_saved_model",
    "load_exported",
    "model_versions",
    "read_export_info",
]

logger = logging.getLogger(__name__)

#: Name of the serving signature (the one TF Serving uses by default).
SIGNATURE = "serving_default"
#: Input and output names of the signature (keys of REST and gRPC requests).
INPUT_NAME = "images"
OUTPUT_NAME = "output"
#: Side file with what the graph does not say (windows, provenance).
_INFO_FILE = Path("assets.extra") / "kerastrans.json"
#: Ops that call back into Python: a SavedModel holding them cannot be served.
_PYTHON_OPS = ("PyFunc", "PyFuncStateless", "EagerPyFunc")


class _ServingModule(tf.Module):
    """The tf.Module saved: the generator's variables and the serving function."""

    def __init__(self, translator: Translator, shape: tuple[int | None, ...]) -> None:
        super().__init__(name="kerastrans_translator")
        # The variables, not the Keras model: the SavedModel then holds no Keras objects.
        self.generator_variables = list(translator.generator.variables)
        spec = tf.TensorSpec([None, *shape], tf.float32, name=INPUT_NAME)

        def serve(images: tf.Tensor) -> dict[str, tf.Tensor]:
            return {OUTPUT_NAME: translator.translate_graph(images)}

        self.serve = tf.function(serve, input_signature=[spec], autograph=False)


def export_translator(
    translator: Translator,
    model_dir: str | os.PathLike,
    *,
    version: int = 1,
    image_size: tuple[int, int] | None = None,
    overwrite: bool = False,
    direction: str = "AtoB",
    info: Mapping[str, Any] | None = None,
) -> Path:
    """Save ``translator`` as a SavedModel at ``model_dir/<version>``, atomically.

    Args:
        translator: The generator and its windows.
        model_dir: The model folder (TF Serving's ``--model_base_path``).
        version: Version folder number (>= 1).
        image_size: ``(height, width)`` to fix in the signature; by default
            any size the network takes (its fixed shape for AUTOMAP). Needed
            for generators whose layers cannot run on unknown sizes.
        overwrite: Replace an existing version folder.
        direction: The direction ``translator`` translates (``"AtoB"``, or
            ``"BtoA"`` for the second generator of a CycleGAN), recorded so
            that the model is never used for the other one.
        info: Extra JSON-serialisable provenance for ``kerastrans.json``.

    Returns:
        The version folder written.

    Raises:
        FileExistsError: If the version folder exists and not ``overwrite``.
        DataError: If ``model_dir`` is a file or cannot be written.
        ValueError: For a bad ``version``, ``direction`` or ``image_size``, a generator that
            cannot be traced for the requested sizes, or one whose graph calls
            Python (``tf.py_function``), which a SavedModel cannot hold.
    """
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"version must be an int >= 1, got {version!r}")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    shape = _signature_shape(translator, image_size)
    target = Path(model_dir) / str(version)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target}: already exists (--overwrite replaces it)")
    writable_directory(model_dir)
    module = _ServingModule(translator, shape)
    signature = _trace(module)
    with atomic_directory(target, replace=True) as folder:
        tf.saved_model.save(module, os.fspath(folder), signatures={SIGNATURE: signature})
        record = {
            "kerastrans_version": __version__,
            "signature": SIGNATURE,
            "input": INPUT_NAME,
            "output": OUTPUT_NAME,
            "input_window": dataclasses.asdict(translator.input_window),
            "output_window": dataclasses.asdict(translator.output_window),
            "size_multiple": translator.size_multiple,
            "neighbours": translator.neighbours,
            "input_shape": list(shape),
            **dict(info or {}),
            "direction": direction,
        }
        (folder / _INFO_FILE).parent.mkdir(parents=True, exist_ok=True)
        (folder / _INFO_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
        folder.chmod(0o755)  # a temporary folder is private; a server may run as another user
    logger.info("exported %s", target)
    return target


def export_run(
    run_dir: str | os.PathLike,
    model_dir: str | os.PathLike,
    *,
    direction: str = "AtoB",
    version: int = 1,
    image_size: tuple[int, int] | None = None,
    overwrite: bool = False,
    which: str = "auto",
) -> Path:
    """Export the generator of a training run (see `export_translator`).

    Args:
        run_dir: A run directory of ``kerastrans fit``.
        model_dir: The model folder to write ``<version>/`` into.
        direction: ``"AtoB"``, or ``"BtoA"`` for a CycleGAN run.
        version: Version folder number.
        image_size: Fixed ``(height, width)`` of the signature, if wanted.
        overwrite: Replace an existing version folder.
        which: The epoch's model: ``"auto"``, ``"best"`` or ``"latest"``
            (see `kerastrans.runs.load_run`); ``kerastrans.json`` records
            which file was exported (``model``).

    Returns:
        The version folder written.

    Raises:
        DataError: If ``run_dir`` is not a run directory, or has no model of ``which``.
    """
    from kerastrans.runs import load_run

    run = load_run(run_dir, which)
    translator = run.translator(direction)
    info = {"run_dir": os.fspath(Path(run_dir).resolve()), "model": run.source}
    return export_translator(
        translator,
        model_dir,
        version=version,
        image_size=image_size,
        overwrite=overwrite,
        direction=direction,
        info=info,
    )


@dataclasses.dataclass(frozen=True)
class ExportedTranslator:
    """A loaded SavedModel used like a `Translator` (physical units in and out).

    Attributes:
        path: The version folder.
        input_window: Input window recorded at export, or `None`.
        output_window: Output window recorded at export, or `None`.
        input_shape: ``(height, width, channels)`` of the signature.
        direction: The direction recorded at export (``"AtoB"`` when none
            was recorded: a SavedModel translates its input domain to its
            output domain).
        size_multiple: Recorded size multiple (1 when not recorded).
        neighbours: Recorded 2.5D neighbours on each side (0 when not recorded).
    """

    path: Path
    input_window: Window | None
    output_window: Window | None
    input_shape: tuple[int | None, int | None, int]
    direction: str
    _loaded: Any = dataclasses.field(repr=False, compare=False)
    size_multiple: int | None = 1
    neighbours: int = 0

    def __call__(self, images: Any) -> tf.Tensor:
        """Translate ``N x H x W x C`` images in physical units (see `Translator`)."""
        images = check_images(images, self.input_shape)
        return self._loaded.signatures[SIGNATURE](**{INPUT_NAME: images})[OUTPUT_NAME]


def model_versions(path: str | os.PathLike) -> dict[int, Path]:
    """The numbered SavedModel version folders of model folder ``path``, by version.

    Returns ``{}`` when ``path`` is not a folder or holds no version folder.
    """
    path = Path(path)
    if not path.is_dir():
        return {}
    versions = {
        int(child.name): child
        for child in path.iterdir()
        if child.name.isdigit() and (child / "saved_model.pb").is_file()
    }
    return dict(sorted(versions.items()))


def find_saved_model(path: str | os.PathLike, version: int | None = None) -> Path | None:
    """Return the SavedModel folder at ``path``, or `None` if there is none.

    Args:
        path: The SavedModel itself (it holds ``saved_model.pb``) or a model
            folder of numbered versions.
        version: The version folder to use; by default the highest.

    Returns:
        The version (or SavedModel) folder, `None` if ``path`` holds none.

    Raises:
        DataError: If ``version`` is given and ``path`` has no such version
            folder (also when ``path`` is a SavedModel itself).
    """
    path = Path(path)
    is_saved_model = (path / "saved_model.pb").is_file()
    if version is None and is_saved_model:
        return path
    versions = {} if is_saved_model else model_versions(path)
    if version is None:
        return versions[max(versions)] if versions else None
    if version not in versions:
        held = ", ".join(map(str, versions)) or "none: not a model folder of kerastrans export"
        raise file_error(path, f"no SavedModel version {version} (versions: {held})")
    return versions[version]


def load_exported(path: str | os.PathLike, version: int | None = None) -> ExportedTranslator:
    """Load a SavedModel written by `export_translator` (no Python code is run from it).

    Args:
        path: The version folder, or the model folder.
        version: Version folder of the model folder; by default the highest.

    Returns:
        The `ExportedTranslator`.

    Raises:
        DataError: If there is no SavedModel (of ``version``) at ``path`` or
            it has no ``serving_default`` signature taking ``images``.
    """
    folder = find_saved_model(path, version)
    info = read_export_info(path if folder is None else folder)  # checks there is a SavedModel
    loaded = tf.saved_model.load(os.fspath(folder))
    signature = loaded.signatures.get(SIGNATURE)
    inputs = {} if signature is None else signature.structured_input_signature[1]
    if INPUT_NAME not in inputs:
        raise file_error(folder, f"no '{SIGNATURE}' signature with an '{INPUT_NAME}' input")
    spec = inputs[INPUT_NAME]
    height, width, channels = spec.shape[1:]
    return ExportedTranslator(
        path=folder,
        input_window=_window(info.get("input_window")),
        output_window=_window(info.get("output_window")),
        input_shape=(height, width, int(channels)),
        direction=info.get("direction", "AtoB"),
        _loaded=loaded,
        size_multiple=info.get("size_multiple", 1),
        neighbours=int(info.get("neighbours", 0)),
    )


def _signature_shape(
    translator: Translator, image_size: tuple[int, int] | None
) -> tuple[int | None, int | None, int]:
    """``(height, width, channels)`` of the signature, ``image_size`` checked against the net."""
    if image_size is None:
        return translator.input_shape
    try:
        height, width = (int(n) for n in image_size)
    except (TypeError, ValueError):
        raise ValueError(f"image_size must be (height, width), got {image_size!r}") from None
    fixed = translator.input_shape[:2]
    if height < 1 or width < 1 or (fixed != (None, None) and fixed != (height, width)):
        raise ValueError(
            f"image_size must be positive (and {fixed} for this fixed-shape network), "
            f"got {image_size!r}"
        )
    return height, width, translator.input_shape[2]


def _trace(module: _ServingModule) -> Any:
    """Trace the serving function; explain failures on unknown sizes and Python ops."""
    try:
        concrete = module.serve.get_concrete_function()
    except (TypeError, ValueError, tf.errors.OperatorNotAllowedInGraphError) as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        calls = [line.split(": ", 1)[-1] for line in lines if "Exception encountered" in line]
        detail = (calls or lines or [type(error).__name__])[-1].rstrip(".")
        raise ValueError(
            "the generator cannot be traced for images of unknown height/width "
            f"({detail}); export a fixed size with image_size=(height, width) (--image-size)"
        ) from error
    python_ops = sorted(_op_types(concrete) & set(_PYTHON_OPS))
    if python_ops:
        raise ValueError(
            f"the generator calls Python ({', '.join(python_ops)} ops, e.g. an ODL operator "
            "layer), which a SavedModel cannot hold; export a network made of TensorFlow ops"
        )
    return concrete


def _op_types(concrete: Any) -> set[str]:
    """Op types of a traced function, including those of the functions it calls."""
    graph_def = concrete.graph.as_graph_def()
    types = {node.op for node in graph_def.node}
    for function in graph_def.library.function:
        types.update(node.op for node in function.node_def)
    return types


def read_export_info(path: str | os.PathLike) -> dict[str, Any]:
    """Return what `export_translator` recorded in ``assets.extra/kerastrans.json``.

    Args:
        path: The version folder, or the model folder (highest version).

    Returns:
        The record (windows, size multiple, signature names, provenance), or
        ``{}`` for a SavedModel that kerastrans did not write.

    Raises:
        DataError: If there is no SavedModel at ``path`` or the record is corrupt.
    """
    folder = find_saved_model(path)
    if folder is None:
        raise file_error(path, "no SavedModel (saved_model.pb) here or in a version folder")
    try:
        return json.loads((folder / _INFO_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, json.JSONDecodeError) as error:
        raise file_error(folder / _INFO_FILE, f"cannot read: {error}") from error


def _window(data: Mapping[str, float] | None) -> Window | None:
    return None if data is None else Window(**data)
