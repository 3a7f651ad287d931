"""LightMedSeg as a MONAI bundle: the network, its losses, transforms and the helpers that configs call.

Laid out as MONAI is: :mod:`.networks`, :mod:`.losses`, :mod:`.transforms`, :mod:`.data` (datalists),
:mod:`.handlers` (engine event handlers), :mod:`.inferers` (flip TTA), :mod:`.bundle` (the glue a bundle run needs
around its configs); and :mod:`.workarounds`, every workaround for MONAI / ignite / fire behaviour in one place.
The rest: :mod:`.inference` (outputs beyond the label map), :mod:`.cpu` (the CPU speed pass), :mod:`.release`,
:mod:`.benchmarking`, :mod:`.visualize`.
"""

__version__ = "0.8.1"
