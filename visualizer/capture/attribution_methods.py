"""The attribution methods by name, with labels and one-line descriptions: no torch here,
so the window's process can list them without importing torch or Captum."""
from __future__ import annotations

from collections.abc import Sequence

METHODS: dict[str, str] = {
    "saliency": "Saliency",
    "integrated_gradients": "Integrated Gradients",
    "gradient_shap": "GradientSHAP",
    "deeplift": "DeepLift",
    "occlusion": "Occlusion",
    "grad_cam": "Layer Grad-CAM",
    "smoothgrad": "SmoothGrad",
}
"""Method key -> human label, in the order the panel offers them."""

DESCRIPTIONS: dict[str, str] = {
    "saliency": "|gradient| of the target logit with respect to each input value",
    "integrated_gradients": "gradients averaged along the straight path from the baseline to the input, "
                            "times (input − baseline); their sum equals f(x) − f(baseline) up to the delta",
    "gradient_shap": "gradient × (input − baseline) at random points between the baseline and the noisy input",
    "deeplift": "the difference from the baseline propagated back layer by layer (rescale rule)",
    "occlusion": "how much the target logit drops when a window of the input is replaced by the baseline",
    "grad_cam": "a conv layer's maps weighted by their mean gradient, upsampled to the input",
    "smoothgrad": "saliency (or Integrated Gradients) averaged over noisy copies of the input (NoiseTunnel)",
}
BASELINES = ("zeros", "blur", "mean", "uniform")
SMOOTH_BASES = ("saliency", "integrated_gradients")
TOKEN_METHODS = ("saliency", "integrated_gradients", "deeplift", "occlusion")  # GradientSHAP would mix token ids


def available_methods(input_shape: Sequence[int], tokens: bool = False, has_conv: bool = True) -> list[str]:
    """The methods that apply to one input of ``input_shape`` (without the batch dimension)."""
    if tokens:
        return list(TOKEN_METHODS)
    spatial = len(input_shape) >= 2
    return [m for m in METHODS if m != "grad_cam" or (spatial and has_conv)]
