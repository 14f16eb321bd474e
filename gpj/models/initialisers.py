"""How parameters start: the builders' own initialisers, or PyTorch's layer defaults.

`kaiming` keeps what the modules draw: convs kaiming-normal over fan-out (torchvision's ResNet and
VGG), dense kernels lecun-normal, biases zero. `pytorch` redraws every conv and dense layer as
torch.nn.Conv2d and torch.nn.Linear initialise themselves when the model code sets nothing, as in
the paper's official ResNet: kernel and bias uniform in ±1/sqrt(fan_in) (kaiming_uniform with
a=√5), fan_in = kernel height × width × input channels. BatchNorm keeps scale 1 and bias 0.
"""

import flax.traverse_util
import jax
import numpy as np


def pytorch_defaults(params, rng):
    """`params` with every conv and dense kernel and bias redrawn as PyTorch's defaults; the
    draw of parameter i (in sorted path order) uses `fold_in(rng, i)`."""
    flat = flax.traverse_util.flatten_dict(params)
    out = {}
    for i, (path, value) in enumerate(sorted(flat.items())):
        kernel = flat.get((*path[:-1], "kernel"))
        if path[-1] not in ("kernel", "bias") or kernel is None:
            out[path] = value  # BatchNorm scale and bias, which have no kernel beside them
            continue
        bound = 1.0 / np.sqrt(np.prod(kernel.shape[:-1]))
        out[path] = jax.random.uniform(
            jax.random.fold_in(rng, i), value.shape, value.dtype, -bound, bound
        )
    return flax.traverse_util.unflatten_dict(out)


# `model.param_init` -> the function `(params, rng) -> params` applied after the modules' init.
PARAMS_INIT = {"kaiming": None, "pytorch": pytorch_defaults}
INITS = tuple(PARAMS_INIT)
