"""The official code's ResNet-18 GAPNet and PermuteNet in PyTorch, for the `train` and
`experiment` benchmarks (needs the torch extra).

torchvision's ResNet-18 layout with the paper's stem (7x7/2 conv, BN, ReLU, no max-pool), then the
GAPNet head (a 3x3 conv with bias to the classes and a global average pool) or the PermuteNet head.
NCHW, float32, as the official code runs it.
"""

import torch
from torch import nn
from torch.nn import functional as F


class BasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNet18(nn.Module):
    """ResNet-18 with the paper's stem and `width` channels in its first stage (64 in the paper),
    then the official code's GAPNet head (3x3 conv to the classes, global average pool) or its
    PermuteNet head (global average pool, a fresh channel permutation at every forward, linear)."""

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 64, head="gapnet"):
        super().__init__()
        if head not in ("gapnet", "permutenet"):
            raise ValueError(f"head={head!r}: the reference has gapnet and permutenet heads")
        self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        blocks, inplanes = [], width
        for stage in range(4):
            planes = width * 2**stage
            blocks += [
                BasicBlock(inplanes, planes, 1 if stage == 0 else 2),
                BasicBlock(planes, planes),
            ]
            inplanes = planes
        self.layers = nn.Sequential(*blocks)
        self.head_name = head
        if head == "gapnet":
            self.head = nn.Conv2d(inplanes, num_classes, 3, 1, 1)
        else:
            self.head = nn.Linear(inplanes, num_classes)

    def forward(self, x):
        x = self.layers(F.relu(self.bn1(self.conv1(x))))
        if self.head_name == "gapnet":
            return self.head(x).mean(dim=(2, 3))
        x = x.mean(dim=(2, 3))
        return self.head(x[:, torch.randperm(x.shape[1])])


def make_train_step(
    num_classes: int, learning_rate: float, betas: tuple[float, float], **model_args
):
    """A train step `step(canvases, labels) -> loss` of the official code's loop: zero_grad,
    forward, cross-entropy, backward, Adam step. `model_args` go to `ResNet18`."""
    model = ResNet18(num_classes, **model_args).train()
    optimizer = torch.optim.Adam(model.parameters(), learning_rate, betas=betas)

    def step(canvases, labels):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(canvases), labels)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step
