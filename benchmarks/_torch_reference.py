"""PyTorch reference train steps of pix2pix and CycleGAN, for `train_step.py` (needs torch).

Written from the papers' description (Isola et al. 2017, "Image-to-image
translation with conditional adversarial networks"; Zhu et al. 2017, "Unpaired
image-to-image translation using cycle-consistent adversarial networks"), in
the layout of junyanz/pytorch-CycleGAN-and-pix2pix, with the benchmark's
choices so that the three implementations (ours, plain Keras, PyTorch) do the
same arithmetic:

- U-Net: ``levels`` stride-2 4 x 4 convolutions (leaky ReLU 0.2; batch norm
  except the outermost and the innermost, as in junyanz's U-Net: PyTorch refuses
  batch norm over one value per channel, the 1 x 1 bottleneck of batch 1),
  stride-2 4 x 4 transposed convolutions back (batch norm, dropout 0.5 in the
  3 deepest, ReLU), skips concatenated, tanh.
- ResNet generator: 7 x 7 stem, two stride-2 3 x 3 convolutions, 9 residual
  blocks, two transposed convolutions, 7 x 7 head, instance norm (affine),
  zero padding (junyanz pads by reflection; the FLOPs are the same).
- PatchGAN (70 x 70): 4 x 4 convolutions, 'same' padding on the stride-1 ones,
  as the benchmark's Keras networks (32 x 32 logits at 256 x 256).
- Convolutions followed by a normalisation have no bias (as ours).
- Steps: pix2pix vanilla GAN + 100 x L1, CycleGAN LSGAN + cycle 10 + identity
  5, no image pool; Adam 2e-4, beta 0.5. Each discriminator sees the fake once,
  its logits serving the generator's loss and (through its own gradient) the
  discriminator's, like the Keras steps' two gradient tapes; junyanz's code
  runs the discriminator a second time on the detached fake.

Tensors are NCHW (PyTorch's default layout, as in junyanz's code). bfloat16
rows wrap the forward pass and the losses in ``torch.autocast("cpu",
dtype=torch.bfloat16)``; weights and optimizer states stay float32.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Sequence
from itertools import pairwise

import numpy as np
import torch
from torch import nn
from torch.nn import functional

__all__ = ["PatchDiscriminator", "ResnetGenerator", "UNet", "make_step"]


class UNet(nn.Module):
    """pix2pix U-Net with ``len(levels)`` down-sampling steps."""

    def __init__(self, channels: int, levels: Sequence[int], dropout_levels: int = 3):
        super().__init__()
        self.down, self.up = nn.ModuleList(), nn.ModuleList()
        previous = channels
        for index, width in enumerate(levels):
            plain = index in (0, len(levels) - 1)  # outermost and innermost: no norm
            layers = [nn.Conv2d(previous, width, 4, 2, 1, bias=plain)]
            layers += [] if plain else [nn.BatchNorm2d(width)]
            self.down.append(nn.Sequential(*layers, nn.LeakyReLU(0.2)))
            previous = width
        for depth, width in enumerate(reversed(levels[:-1])):
            layers = [nn.ConvTranspose2d(previous, width, 4, 2, 1, bias=False)]
            layers += [nn.BatchNorm2d(width)]
            layers += [nn.Dropout(0.5)] if depth < dropout_levels else []
            self.up.append(nn.Sequential(*layers, nn.ReLU()))
            previous = 2 * width  # concatenated with the skip of the same level
        self.head = nn.Sequential(nn.ConvTranspose2d(previous, channels, 4, 2, 1), nn.Tanh())

    def forward(self, x):
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        skips.pop()  # the bottleneck
        for block in self.up:
            x = torch.cat([block(x), skips.pop()], dim=1)
        return self.head(x)


def _conv_norm_relu(cin: int, cout: int, kernel: int, stride: int = 1, transpose: bool = False):
    if transpose:
        conv = nn.ConvTranspose2d(cin, cout, kernel, stride, 1, output_padding=1, bias=False)
    else:
        conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False)
    return [conv, nn.InstanceNorm2d(cout, affine=True), nn.ReLU()]


class _Residual(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        body = _conv_norm_relu(width, width, 3)
        body += [
            nn.Conv2d(width, width, 3, 1, 1, bias=False),
            nn.InstanceNorm2d(width, affine=True),
        ]
        self.body = nn.Sequential(*body)

    def forward(self, x):
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """CycleGAN ResNet generator: stem, down-sampling, residual blocks, up-sampling, head."""

    def __init__(self, channels: int, levels: Sequence[int] = (64, 128, 256), blocks: int = 9):
        super().__init__()
        layers = _conv_norm_relu(channels, levels[0], 7)
        for cin, cout in pairwise(levels):
            layers += _conv_norm_relu(cin, cout, 3, 2)
        layers += [_Residual(levels[-1]) for _ in range(blocks)]
        for cin, cout in pairwise(reversed(levels)):
            layers += _conv_norm_relu(cin, cout, 3, 2, transpose=True)
        layers += [nn.Conv2d(levels[0], channels, 7, 1, 3), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class PatchDiscriminator(nn.Sequential):
    """70 x 70 PatchGAN: ``widths`` 4 x 4 conv blocks (stride 2 but the last), then 1 logit."""

    def __init__(self, channels: int, widths: Sequence[int], norm: str = "batch"):
        norm_layer = (
            nn.BatchNorm2d if norm == "batch" else lambda c: nn.InstanceNorm2d(c, affine=True)
        )
        layers = [nn.Conv2d(channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2)]
        for index, (cin, cout) in enumerate(pairwise(widths), start=1):
            last = index == len(widths) - 1
            conv = nn.Conv2d(cin, cout, 4, 1, "same", bias=False) if last else None
            conv = conv or nn.Conv2d(cin, cout, 4, 2, 1, bias=False)
            layers += [conv, norm_layer(cout), nn.LeakyReLU(0.2)]
        layers.append(nn.Conv2d(widths[-1], 1, 4, 1, "same"))
        super().__init__(*layers)


def _adam(*modules: nn.Module) -> list[torch.optim.Optimizer]:
    return [torch.optim.Adam(m.parameters(), lr=2e-4, betas=(0.5, 0.999)) for m in modules]


def _apply(losses, modules: Sequence[nn.Module], optimizers) -> None:
    """Each module's gradients of its loss, then every update (as the Keras steps' tapes)."""
    for loss, module in zip(losses, modules, strict=True):
        parameters = list(module.parameters())
        gradients = torch.autograd.grad(loss, parameters, retain_graph=True)
        for parameter, gradient in zip(parameters, gradients, strict=True):
            parameter.grad = gradient
    for optimizer in optimizers:
        optimizer.step()


def _pix2pix(batch, levels, widths, autocast):
    source, target = batch
    generator = UNet(source.shape[1], levels)
    discriminator = PatchDiscriminator(2 * source.shape[1], widths, "batch")
    optimizers = _adam(generator, discriminator)

    def step() -> float:
        with autocast():
            fake = generator(source)
            fake_logits = discriminator(torch.cat([source, fake], 1))
            real_logits = discriminator(torch.cat([source, target], 1))
            bce = functional.binary_cross_entropy_with_logits
            g_loss = bce(fake_logits, torch.ones_like(fake_logits)) + 100 * functional.l1_loss(
                fake.float(), target
            )
            d_loss = 0.5 * (
                bce(real_logits, torch.ones_like(real_logits))
                + bce(fake_logits, torch.zeros_like(fake_logits))
            )
        _apply((g_loss, d_loss), (generator, discriminator), optimizers)
        return float(g_loss.detach())

    return step, (generator, discriminator), (source, torch.cat([source, target], 1))


def _cyclegan(batch, levels, widths, autocast):
    real_x, real_y = batch
    channels = real_x.shape[1]
    gen_g, gen_f = ResnetGenerator(channels, levels), ResnetGenerator(channels, levels)
    disc_x = PatchDiscriminator(channels, widths, "instance")
    disc_y = PatchDiscriminator(channels, widths, "instance")
    optimizers = _adam(gen_g, gen_f, disc_x, disc_y)

    def step() -> float:
        mse, mae = functional.mse_loss, functional.l1_loss
        with autocast():
            fake_y, fake_x = gen_g(real_x), gen_f(real_y)
            cycled_x, cycled_y = gen_f(fake_y), gen_g(fake_x)
            same_x, same_y = gen_f(real_x), gen_g(real_y)
            disc_fake_x, disc_fake_y = disc_x(fake_x).float(), disc_y(fake_y).float()
            disc_real_x, disc_real_y = disc_x(real_x).float(), disc_y(real_y).float()
            cycle = 10 * (mae(cycled_x.float(), real_x) + mae(cycled_y.float(), real_y))
            total_g = mse(disc_fake_y, torch.ones_like(disc_fake_y)) + cycle
            total_g = total_g + 5 * mae(same_y.float(), real_y)
            total_f = mse(disc_fake_x, torch.ones_like(disc_fake_x)) + cycle
            total_f = total_f + 5 * mae(same_x.float(), real_x)
            losses = [total_g, total_f]
            for real, fake in ((disc_real_x, disc_fake_x), (disc_real_y, disc_fake_y)):
                ones, zeros = torch.ones_like(real), torch.zeros_like(fake)
                losses.append(0.5 * (mse(real, ones) + mse(fake, zeros)))
        _apply(losses, (gen_g, gen_f, disc_x, disc_y), optimizers)
        return float((total_g + total_f).detach())

    return step, (gen_g, disc_x), (real_x, real_x)


def make_step(
    kind: str,
    batch: Sequence[np.ndarray],
    levels: Sequence[int],
    widths: Sequence[int],
    bfloat16: bool,
    seed: int = 0,
) -> tuple[Callable[[], float], int, int]:
    """A PyTorch train step of ``kind`` on a fixed batch, and its networks' forward MACs.

    Args:
        kind: ``"pix2pix"`` or ``"cyclegan"``.
        batch: Two NHWC float32 arrays (source and target, or X and Y), in [-1, 1].
        levels: Generator channels per level: 8 for the U-Net, 3 for the ResNet.
        widths: Discriminator channels of its 4 conv blocks.
        bfloat16: Run forward and losses under ``torch.autocast`` in bfloat16.
        seed: Seed of the weights and dropout.

    Returns:
        ``(step, generator_macs, discriminator_macs)``: ``step()`` runs one
        train step and returns the generator loss; the MACs are of one forward
        pass of one generator and one discriminator (see `_flops`).
    """
    from _flops import torch_forward_macs

    # The stride-1 'same' convolutions of even kernels pad a copy of their input (so does TF).
    warnings.filterwarnings("ignore", "Using padding='same' with even kernel", UserWarning)
    torch.manual_seed(seed)
    tensors = tuple(torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2))) for a in batch)
    if bfloat16:
        autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731
    else:
        autocast = contextlib.nullcontext
    build = _pix2pix if kind == "pix2pix" else _cyclegan
    step, (generator, discriminator), (g_input, d_input) = build(tensors, levels, widths, autocast)
    generator_macs = torch_forward_macs(generator, g_input)
    discriminator_macs = torch_forward_macs(discriminator, d_input)
    return step, generator_macs, discriminator_macs
