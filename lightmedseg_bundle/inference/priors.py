"""LightMedSeg's priors for quality assurance: the anchors as a Slicer markups file, the texture map as NIfTI.

What is written, per case, next to the label map (``configs/inference_qa.json``, ``save_priors``):

- ``<case>_anchors.mrk.json``: the ``K`` anchors that the global anchor detector predicts for the **whole**
  preprocessed volume (reoriented to RAS and padded to a multiple of 16), in physical LPS coordinates (mm).
  The sliding window gives every window its own anchors, relative to that window; the whole-volume anchors
  are the detector's one global answer for the case, and the ones that can be drawn on the image. Only the
  detector and the stem run on the whole volume (a fraction of the network's memory), not the decoder.
- ``<case>_texture.nii.gz``: the texture routing map ``T`` of the local structural prior, computed from the
  same whole-volume stem, upsampled (trilinear) from half resolution to the padded grid and put back through
  the inverse of the preprocessing, so it has the input image's shape and affine (float32, values in [0, 1]).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Hashable

import numpy as np
import torch
import torch.nn.functional as F
from ignite.engine import Engine, Events
from monai.data import MetaTensor
from monai.networks.utils import eval_mode
from monai.transforms import InvertibleTransform, SaveImage

from ..networks import LightMedSeg
from .atomic_output import atomic_image_writer
from .engine_outputs import case_outputs
from .geometry import invert_to_input, normalised_to_world, ras_to_lps
from .markups import point_list_markups, save_markups
from .output_layout import case_output_path

__all__ = ["predict_priors", "PriorsWriter"]

logger = logging.getLogger(__name__)


def predict_priors(network: LightMedSeg, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """
    The anchors and texture map that ``network`` computes for ``inputs``, exactly as its forward pass with
    ``return_priors=True`` returns them, without running the encoder stages and the decoder.

    Args:
        network: a LightMedSeg network.
        inputs: (B, C, D, H, W), spatial sizes multiples of 16.

    Returns:
        anchors (B, K, 3) in [0, 1] and the texture map (B, 1, D/2, H/2, W/2) in [0, 1].
    """
    if not isinstance(network, LightMedSeg):
        raise TypeError(
            f"the priors come from the PyTorch LightMedSeg network, got {type(network).__name__}; with "
            "inference_onnx.json the priors still use the PyTorch network (`network`), loaded from --ckpt_path."
        )
    device = next(network.parameters()).device
    x = inputs.as_tensor() if isinstance(inputs, MetaTensor) else inputs
    x = x.to(device=device, dtype=torch.float32)
    network.check_input(x)
    with eval_mode(network):
        anchors = network.anchor_detector(x)
        _, texture = network.structural_prior(network.stem(x))
    return anchors, texture


class PriorsWriter:
    """
    An ignite handler for the inference evaluator that writes, for every case, the anchors as a 3D Slicer
    markups file and the texture map as a NIfTI image in the input's geometry (see the module docstring).

    Attach it with the evaluator's handlers; it runs after the postprocessing (``SaveImaged``) of each iteration
    and reads the preprocessed image from the iteration's output.

    Args:
        network: the PyTorch LightMedSeg network (the config's ``network``, weights loaded).
        preprocessing: the preprocessing transform of the dataset, inverted for the texture map.
        output_dir: root folder of the outputs, as for ``SaveImaged``.
        separate_folder: one folder per case, as for ``SaveImaged``.
        data_root_dir: inputs' folders are kept relative to it, as for ``SaveImaged`` (the config's ``input_root``).
        image_key: key of the preprocessed image in the iteration's output.
        anchors_postfix: postfix of the markups file, ``<case>_<postfix>.mrk.json``.
        texture_postfix: postfix of the texture file, ``<case>_<postfix>.nii.gz``.
    """

    def __init__(
        self,
        network: LightMedSeg,
        preprocessing: InvertibleTransform,
        output_dir: str | os.PathLike,
        separate_folder: bool = True,
        data_root_dir: str = "",
        image_key: Hashable = "image",
        anchors_postfix: str = "anchors",
        texture_postfix: str = "texture",
    ) -> None:
        self.network = network
        self.preprocessing = preprocessing
        self.output_dir = output_dir
        self.separate_folder = separate_folder
        self.data_root_dir = data_root_dir
        self.image_key = image_key
        self.anchors_postfix = anchors_postfix
        self.texture_saver = SaveImage(
            output_dir=output_dir,
            output_postfix=texture_postfix,
            output_ext=".nii.gz",
            output_dtype=np.float32,
            resample=False,
            separate_folder=separate_folder,
            data_root_dir=data_root_dir,
            writer=atomic_image_writer(".nii.gz"),
            print_log=False,
        )

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        for case in case_outputs(engine):
            self.write(case[self.image_key])

    def write(self, image: MetaTensor) -> dict[str, str]:
        """Write the priors of one preprocessed image (C, D, H, W); returns the paths written."""
        anchors, texture = predict_priors(self.network, image[None])
        anchors = anchors[0].cpu()
        spatial = list(image.shape[1:])

        positions = ras_to_lps(normalised_to_world(anchors, image))
        labels = [f"A{k + 1}" for k in range(len(anchors))]
        descriptions = [
            f"anchor {k + 1}: normalised (d, h, w) = ({a[0]:.4f}, {a[1]:.4f}, {a[2]:.4f}) of the {spatial} "
            "padded RAS network input"
            for k, a in enumerate(anchors.tolist())
        ]
        markups_path = case_output_path(
            image.meta, self.output_dir, self.anchors_postfix, ".mrk.json", self.separate_folder, self.data_root_dir
        )
        save_markups(point_list_markups(positions, labels, descriptions, name="LightMedSeg anchors"), markups_path)

        full = F.interpolate(texture.float(), size=spatial, mode="trilinear", align_corners=False)[0].cpu()
        texture_image = invert_to_input(full, image, self.preprocessing)
        self.texture_saver(texture_image)
        texture_path = self.texture_saver.folder_layout.filename(subject=str(image.meta["filename_or_obj"]))
        logger.info(f"priors of {image.meta['filename_or_obj']}: {markups_path}, {texture_path}")
        return {"anchors": str(markups_path), "texture": str(texture_path)}
