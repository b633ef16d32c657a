"""The DDPM ε-predictor U-Net (Ho et al. 2020, Appendix B; PixelCNN++-style backbone).

The network learns ε_θ(x_t, t) ≈ ε for x_t = √ᾱ_t · x_0 + √(1 − ᾱ_t) · ε (eq. 4), trained on
L_simple = E_{t, x_0, ε} ‖ε − ε_θ(x_t, t)‖² (eq. 14). Call convention: ``model(x_t, t) -> eps_hat``
with x_t (B, C, H, W) float32 and t a LongTensor (B,) of paper timesteps 1..T; the output has
x_t's shape.

Architecture (as in the paper's reference implementation, plus an optional patch stem):
- optional patch stem (``patch_size`` p > 1): x_t (B, C, H, W) is rearranged without loss into
  (B, C·p², H/p, W/p) (``pixel_unshuffle``; each p×p block of pixels becomes p² channels) and
  the output is rearranged back (``pixel_shuffle``), so the network never runs at full
  resolution. On CPU, full-resolution levels with few channels cost the most time per
  parameter; p = 2 is what makes the `small` preset ~4× faster than a full-resolution layout.
- t → sinusoidal embedding (Transformer positional encoding, Vaswani et al. 2017)
  emb(t)_{2i} = sin(t / 10000^{2i/d}), emb(t)_{2i+1} = cos(t / 10000^{2i/d}), then a 2-layer MLP.
- residual blocks: h = conv(SiLU(GN(x))); h += W_t · SiLU(temb) (one projection per block);
  h = conv(dropout(SiLU(GN(h)))); out = h + skip(x), skip a 1×1 conv when widths differ.
- one level per resolution: ``num_res_blocks`` blocks, self-attention where the resolution is in
  ``attention_resolutions``, a stride-2 3×3 conv down to the next level; a bottleneck
  (res, attention, res); the way up mirrors it with one more block per level, each block taking
  the concatenated skip from the way down, and nearest ×2 + 3×3 conv up-sampling whose conv
  already narrows to the next level's width (running a wide conv at the higher resolution
  would cost up to (wide / narrow)× more for nothing).
- class-conditional with ``num_classes`` K > 0 (`core.conditioning`): ``model(x_t, t, y)``, y (B,) long in
  0..K (K: no class, also what ``model(x_t, t)`` means); a learned vector per label is added to the time
  embedding (as in Ho & Salimans 2022 and diffusers' ``num_class_embeds``), so it reaches every residual block.
- zero-initialised last conv of every residual branch, attention output and the final conv
  (the reference code's ``init_scale=0``): at initialisation the network is the identity on its
  residual paths and outputs ε̂ = 0.

The weights are created channels-last and inputs are converted on entry: oneDNN (CPU) and
tensor-core (GPU) convolutions are faster in that layout (the `small` preset's forward pass:
~80 ms instead of ~105 ms for 64 images on 2 CPU cores). The output is returned contiguous.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.conditioning import null_labels
from core.image_data import MAX_IMAGE_SIZE
from core.schedules import check_timesteps

UNET_PRESETS = ("tiny", "small", "base")
MIN_RESOLUTION = 4  # the presets stop down-sampling before the feature maps get smaller than this
MIN_DOWNSAMPLES = 2  # a preset needs at least two halvings (28 → 14 → 7) to see global structure
# A checkpoint's config is built and run as it says (an upload's too), so its costs are bounded: blocks per level (a
# million took minutes to build), the image's side (`core.image_data.MAX_IMAGE_SIZE`), and the positions one attention
# layer attends over, L, whose n × L × L scores take 64 MB an image at 64 × 64 (at 7,168² a few images took 13 GB).
MAX_RES_BLOCKS = 16
MAX_ATTENDED = 64 * 64


@dataclass
class UNetConfig:
    """Every hyper-parameter of `UNet`; JSON-able (``dataclasses.asdict`` ↔ ``UNetConfig(**d)``)."""

    image_size: int = 28  # height = width of x_t, in pixels
    channels: int = 1  # input and output channels (1: grey, 3: RGB)
    base_channels: int = 32  # feature maps at full resolution (Ho et al.: 128 on CIFAR-10)
    channel_mults: tuple[int, ...] = (1, 2, 2)  # width = base × mult per level; len − 1 halvings
    num_res_blocks: int = 2  # residual blocks per level going down (going up: one more)
    attention_resolutions: tuple[int, ...] = (7,)  # spatial sizes whose levels get self-attention
    middle_attention: bool = True  # self-attention in the bottleneck (between its two res blocks)
    num_heads: int = 1  # attention heads (Ho et al.: 1); must divide every attended width
    dropout: float = 0.1  # dropout inside residual blocks (Ho et al.: 0.1 on CIFAR-10)
    norm_groups: int = 8  # GroupNorm groups (Ho et al.: 32); must divide every width
    time_embed_mult: int = 4  # time-embedding width = base_channels × this
    patch_size: int = 1  # patch stem: the network runs on (C·p², H/p, W/p) (1: no stem)
    num_classes: int = 0  # K > 0: class-conditional on labels 0..K−1, K meaning "no class" (core.conditioning)

    def __post_init__(self) -> None:
        # JSON round-trips turn tuples into lists: turn them back.
        self.channel_mults = tuple(int(m) for m in self.channel_mults)
        self.attention_resolutions = tuple(int(r) for r in self.attention_resolutions)
        self.validate()

    @property
    def resolutions(self) -> tuple[int, ...]:
        """Spatial size at each level: image_size/p, image_size/(2p), ..."""
        return tuple(self.image_size // self.patch_size // 2**i for i in range(len(self.channel_mults)))

    @property
    def widths(self) -> tuple[int, ...]:
        """Feature channels at each level."""
        return tuple(self.base_channels * m for m in self.channel_mults)

    def validate(self) -> None:
        """Raise ValueError, with the reason, for any inconsistent setting."""
        for name in ("image_size", "channels", "base_channels", "num_res_blocks", "num_heads",
                     "norm_groups", "time_embed_mult", "patch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"UNetConfig.{name} must be a positive integer, got {value!r}")
        if not isinstance(self.num_classes, int) or isinstance(self.num_classes, bool) or self.num_classes < 0:
            raise ValueError(f"UNetConfig.num_classes must be a whole number ≥ 0 (0: unconditional), got {self.num_classes!r}")
        if self.base_channels % 2 or self.base_channels < 4:
            raise ValueError(f"UNetConfig.base_channels (also the sinusoidal embedding width) must be even and ≥ 4, got {self.base_channels}")
        if self.image_size > MAX_IMAGE_SIZE or self.num_res_blocks > MAX_RES_BLOCKS:
            raise ValueError(f"UNetConfig.image_size must be at most {MAX_IMAGE_SIZE} and num_res_blocks at most "
                             f"{MAX_RES_BLOCKS}, got {self.image_size} and {self.num_res_blocks}")
        if not self.channel_mults or min(self.channel_mults) < 1:
            raise ValueError(f"UNetConfig.channel_mults must be positive integers, got {self.channel_mults}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"UNetConfig.dropout must lie in [0, 1), got {self.dropout}")
        halvings = len(self.channel_mults) - 1
        if self.image_size % (self.patch_size * 2**halvings):
            raise ValueError(
                f"image_size {self.image_size} cannot be cut into {self.patch_size}×{self.patch_size} patches "
                f"and halved {halvings} times ({len(self.channel_mults)} levels): it must be divisible by "
                f"{self.patch_size * 2**halvings}"
            )
        for width in (self.base_channels, *self.widths):
            if width % self.norm_groups:
                raise ValueError(f"width {width} is not divisible by norm_groups={self.norm_groups}")
        unknown = sorted(set(self.attention_resolutions) - set(self.resolutions))
        if unknown:
            raise ValueError(
                f"attention_resolutions {unknown} are not among this U-Net's resolutions {self.resolutions}"
            )
        attended = [(w, r) for w, r in zip(self.widths, self.resolutions) if r in self.attention_resolutions]
        if self.middle_attention:
            attended.append((self.widths[-1], self.resolutions[-1]))
        for width, side in attended:
            if side**2 > MAX_ATTENDED:
                raise ValueError(f"self-attention at {side}×{side} would attend over {side**2:,} positions; at most "
                                 f"{MAX_ATTENDED:,} (64×64)")
            if width % self.num_heads:
                raise ValueError(f"attention width {width} is not divisible by num_heads={self.num_heads}")


# Per preset: (patch_size, base_channels, channel_mults at most, num_res_blocks, attention at levels
# whose resolution is ≤ this (0: none outside the bottleneck), norm_groups, dropout).
_PRESETS: dict[str, tuple[int, int, tuple[int, ...], int, int, int, float]] = {
    # tests: ≈66k parameters, a training step on 8 MNIST digits in tens of milliseconds
    "tiny": (1, 8, (1, 2, 2), 1, 0, 4, 0.0),
    # CPU default for 28×28: ≈0.67M parameters; 2×2 patch stem, 32 channels at 14×14 and 64 at 7×7
    # with attention. On 2 CPU cores a 64-image forward pass takes ~80 ms and training runs at
    # 200–280 images/s, against ~310 ms and ~65 images/s for the earlier full-resolution 16/64/64 layout.
    "small": (2, 32, (1, 2), 1, 8, 8, 0.0),
    # GPU / 32×32 colour: ≈9M parameters, attention at 16×16 as in Ho et al.'s CIFAR-10 model
    "base": (1, 64, (1, 2, 2, 2), 2, 16, 32, 0.1),
}


def unet_config(preset: str, image_size: int, channels: int, num_classes: int = 0) -> UNetConfig:
    """The `UNetConfig` of a named preset for ``image_size``² images with ``channels`` channels (class-conditional
    on ``num_classes`` classes when > 0).

    The number of levels adapts to the image: after the patch stem, halve while the size stays
    even and ≥ 4, up to the preset's depth (28 → 14 → 7; 32 → 16 → 8 → 4). The stem and the
    halvings together must shrink the image at least 4× (e.g. 28 → 7).
    """
    if preset not in _PRESETS:
        raise ValueError(f"Unknown U-Net preset {preset!r}; choose one of: {', '.join(UNET_PRESETS)}")
    if not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image_size must be a positive integer, got {image_size!r}")
    patch, base, mults, blocks, attn_max, groups, dropout = _PRESETS[preset]
    levels = 1
    top = image_size // patch if image_size % patch == 0 else 1  # side after the patch stem
    size = top
    while levels < len(mults) and size % 2 == 0 and size // 2 >= MIN_RESOLUTION:
        size //= 2
        levels += 1
    if patch * 2 ** (levels - 1) < 2**MIN_DOWNSAMPLES or size < MIN_RESOLUTION:
        raise ValueError(
            f"image_size {image_size} is not supported by the U-Net presets: it must be divisible by "
            f"{2**MIN_DOWNSAMPLES} and at least {MIN_RESOLUTION * 2**MIN_DOWNSAMPLES} (e.g. 28, 32, 64)"
        )
    resolutions = [top // 2**i for i in range(levels)]
    attention = tuple(r for r in resolutions if r <= attn_max)
    return UNetConfig(
        patch_size=patch,
        image_size=image_size,
        channels=channels,
        base_channels=base,
        channel_mults=mults[:levels],
        num_res_blocks=blocks,
        attention_resolutions=attention,
        norm_groups=groups,
        dropout=dropout,
        num_classes=num_classes,
    )


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding (B,) → (B, dim): [sin(t·ω_i), cos(t·ω_i)], ω_i = 10000^{−i/(dim/2−1)}."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) / (half - 1) * torch.arange(half, device=t.device, dtype=torch.float32))
    angles = t.float()[:, None] * freqs[None, :]  # (B, half)
    return torch.cat([angles.sin(), angles.cos()], dim=1)  # (B, dim)


def _zero(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    """x + F(x, t): GN → SiLU → conv3×3 → +W·temb → GN → SiLU → dropout → conv3×3 (zero-init)."""

    def __init__(self, in_ch: int, out_ch: int, temb_dim: int, groups: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.temb_proj = nn.Linear(temb_dim, out_ch)
        self.norm2 = nn.GroupNorm(groups, out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = _zero(nn.Conv2d(out_ch, out_ch, 3, padding=1))
        self.skip = nn.Identity() if in_ch == out_ch else nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (B, out, H, W)
        h = h + self.temb_proj(temb)[:, :, None, None]  # temb: (B, T_emb) → (B, out, 1, 1)
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class AttnBlock(nn.Module):
    """x + proj(softmax(QKᵀ/√d) V) over the H·W positions (multi-head, GN-normalised input)."""

    def __init__(self, ch: int, groups: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(groups, ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = _zero(nn.Conv2d(ch, ch, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        qkv = self.qkv(self.norm(x))  # (B, 3C, H, W)
        qkv = qkv.reshape(B, 3, self.heads, C // self.heads, H * W).permute(1, 0, 2, 4, 3)  # (3, B, h, HW, d)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # (B, h, HW, d)
        out = out.permute(0, 1, 3, 2).reshape(B, C, H, W)
        if x.is_contiguous(memory_format=torch.channels_last):
            out = out.contiguous(memory_format=torch.channels_last)
        return x + self.proj(out)


class Downsample(nn.Module):
    """Stride-2 3×3 conv: (B, C, H, W) → (B, C, H/2, W/2)."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest ×2 then 3×3 conv: (B, C_in, H, W) → (B, C_out, 2H, 2W)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class UNet(nn.Module):
    """ε_θ(x_t, t): (B, C, H, W) float32, (B,) long → (B, C, H, W). See the module docstring."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        c = config
        temb_dim = c.base_channels * c.time_embed_mult
        self.time_mlp = nn.Sequential(
            nn.Linear(c.base_channels, temb_dim), nn.SiLU(), nn.Linear(temb_dim, temb_dim)
        )
        if c.num_classes:  # one vector per label and one for ∅, zero at first: the labels start out ignored
            self.class_embed = nn.Embedding(c.num_classes + 1, temb_dim)
            nn.init.zeros_(self.class_embed.weight)
        stem_channels = c.channels * c.patch_size**2
        self.conv_in = nn.Conv2d(stem_channels, c.base_channels, 3, padding=1)

        def block(i: int, o: int) -> ResBlock:
            return ResBlock(i, o, temb_dim, c.norm_groups, c.dropout)

        def attention(ch: int, resolution: int) -> nn.Module:
            return AttnBlock(ch, c.norm_groups, c.num_heads) if resolution in c.attention_resolutions else nn.Identity()

        # Way down: record the width of every tensor pushed on the skip stack.
        self.down_blocks = nn.ModuleList()
        self.down_attns = nn.ModuleList()
        self.downsamples = nn.ModuleList()
        skip_widths = [c.base_channels]
        ch = c.base_channels
        last = len(c.channel_mults) - 1
        for level, (width, res) in enumerate(zip(c.widths, c.resolutions)):
            for _ in range(c.num_res_blocks):
                self.down_blocks.append(block(ch, width))
                self.down_attns.append(attention(width, res))
                ch = width
                skip_widths.append(ch)
            if level != last:
                self.downsamples.append(Downsample(ch))
                skip_widths.append(ch)

        self.mid_block1 = block(ch, ch)
        self.mid_attn = AttnBlock(ch, c.norm_groups, c.num_heads) if c.middle_attention else nn.Identity()
        self.mid_block2 = block(ch, ch)

        # Way up: one more block per level, each eating one skip tensor.
        self.up_blocks = nn.ModuleList()
        self.up_attns = nn.ModuleList()
        self.upsamples = nn.ModuleList()
        for level in reversed(range(len(c.channel_mults))):
            width, res = c.widths[level], c.resolutions[level]
            for _ in range(c.num_res_blocks + 1):
                self.up_blocks.append(block(ch + skip_widths.pop(), width))
                self.up_attns.append(attention(width, res))
                ch = width
            if level != 0:
                self.upsamples.append(Upsample(ch, c.widths[level - 1]))
                ch = c.widths[level - 1]

        self.norm_out = nn.GroupNorm(c.norm_groups, ch)
        self.conv_out = _zero(nn.Conv2d(ch, stem_channels, 3, padding=1))
        self.to(memory_format=torch.channels_last)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _check_inputs(self, x: torch.Tensor, t: torch.Tensor) -> None:
        c = self.config
        expected = (c.channels, c.image_size, c.image_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"U-Net expects x_t of shape (B, {c.channels}, {c.image_size}, {c.image_size}), got {tuple(x.shape)}"
            )
        check_timesteps(t, x.shape[0])

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        self._check_inputs(x, t)
        c = self.config
        temb = self.time_mlp(timestep_embedding(t, c.base_channels))  # (B, T_emb)
        if c.num_classes:
            temb = temb + self.class_embed(null_labels(labels, len(x), c.num_classes, x.device))
        elif labels is not None:
            raise ValueError("this U-Net is not class-conditional: it takes no labels")

        x = F.pixel_unshuffle(x.contiguous(memory_format=torch.channels_last), c.patch_size)  # (B, C·p², H/p, W/p)
        h = self.conv_in(x)  # (B, base, H/p, W/p)
        skips = [h]
        blocks = iter(zip(self.down_blocks, self.down_attns))
        downsamples = iter(self.downsamples)
        for level in range(len(c.channel_mults)):
            for _ in range(c.num_res_blocks):
                res_block, attn = next(blocks)
                h = attn(res_block(h, temb))
                skips.append(h)
            if level != len(c.channel_mults) - 1:
                h = next(downsamples)(h)  # (B, ch, H/2, W/2)
                skips.append(h)

        h = self.mid_block2(self.mid_attn(self.mid_block1(h, temb)), temb)

        blocks = iter(zip(self.up_blocks, self.up_attns))
        upsamples = iter(self.upsamples)
        for level in reversed(range(len(c.channel_mults))):
            for _ in range(c.num_res_blocks + 1):
                res_block, attn = next(blocks)
                h = attn(res_block(torch.cat([h, skips.pop()], dim=1), temb))
            if level != 0:
                h = next(upsamples)(h)  # (B, ch, 2H, 2W)

        out = self.conv_out(F.silu(self.norm_out(h)))  # (B, C·p², H/p, W/p)
        return F.pixel_shuffle(out, c.patch_size).contiguous()  # (B, C, H, W)
