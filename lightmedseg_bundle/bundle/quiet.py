"""Messages of MONAI 1.6 that a bundle user can do nothing about, silenced for the bundle's own runs.

Each entry names the upstream behaviour it silences; ``tests/test_bundle_quiet.py`` shows when one is no longer
emitted upstream (then it goes from here). Everything else (warnings about the user's data or overrides) stays.
"""

from __future__ import annotations

import logging
import warnings

__all__ = ["KNOWN_HARMLESS_WARNINGS", "KNOWN_HARMLESS_LOGGERS", "silence_known_harmless_messages"]

KNOWN_HARMLESS_LOGGERS = {
    # monai.data.nvimgcodec_pydicom_plugin.register_as_decoder_plugin logs a warning every time a LoadImage(d)
    # builds its readers on a machine without nvImageCodec (the GPU DICOM decoder): pydicom decodes instead
    "monai.data.nvimgcodec_pydicom_plugin": logging.ERROR
}

KNOWN_HARMLESS_WARNINGS = (
    # monai.data.image_reader.NvImgCodecPydicomReader.__init__ repeats the same fact as a UserWarning
    r"NvImgCodecPydicomReader: nvImageCodec decoder plugin did not register",
    # monai.transforms.Orientationd warns on every construction that its `labels` default changes in a later
    # version; the bundle's axcodes (RAS) mean the same with either default
    r".*Orientationd.__init__:labels: Current default value of argument",
)


def silence_known_harmless_messages() -> None:
    """Raise the levels of :data:`KNOWN_HARMLESS_LOGGERS` and ignore :data:`KNOWN_HARMLESS_WARNINGS` (first in
    each config's ``initialize``, before MONAI builds the transforms that emit them)."""
    for name, level in KNOWN_HARMLESS_LOGGERS.items():
        logging.getLogger(name).setLevel(level)
    for message in KNOWN_HARMLESS_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
