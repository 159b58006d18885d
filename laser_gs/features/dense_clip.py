"""Dense per-patch CLIP features from an open_clip ViT with a modified last block.

CLIP's image tower only aligns its pooled token with text. Training-free dense
methods change the **last** residual block so that each patch token keeps its
own semantics; the result is projected with ``ln_post`` and ``proj`` into the
joint space like the pooled token. Modes (``q``, ``k``, ``v`` are the last
block's per-head projections of ``ln_1(x)``, scores scaled by ``1/sqrt(d)``):

* ``vanilla``: the unmodified block (the tokens open_clip itself would give);
* ``sclip`` (paper / SCLIP): ``softmax(q q^T) + softmax(k k^T)`` applied to
  ``v``; the residual and MLP are kept;
* ``maskclip``: the value path ``out_proj(v)``, no attention, residual or MLP;
* ``clearclip``: ``softmax(q q^T) v``, no residual, no MLP;
* ``naclip``: ``softmax(k k^T + G) v`` with ``G`` a Gaussian of the distance
  between patch positions (std ``naclip_std`` patches), no residual, no MLP.

Position embeddings are interpolated (bicubic) for any input that is a
multiple of the patch size; large images are processed in overlapping windows
whose token grids are averaged.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from laser_gs.choices import CLIP_MODES
from laser_gs.errors import WeightsError

MODES = CLIP_MODES
DEFAULT_MODEL = "ViT-B-16-quickgelu"
DEFAULT_PRETRAINED = "openai"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


@dataclass
class DenseCLIP:
    """An open_clip model with its tokenizer and dense extraction settings.

    Attributes:
        model: the open_clip ``CLIP`` (eval mode, frozen).
        tokenizer: open_clip tokenizer (callable on a list of strings).
        mode: one of :data:`MODES`.
        name: description stored in feature folders' ``meta.json``.
        naclip_std: std of NACLIP's Gaussian neighbourhood, in patches.
    """

    model: nn.Module
    tokenizer: Callable
    mode: str = "naclip"
    name: str = DEFAULT_MODEL
    naclip_std: float = 5.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown dense mode {self.mode!r}; choose one of {MODES}")
        self.model.eval().requires_grad_(False)
        cfg = getattr(self.model.visual, "preprocess_cfg", {}) or {}
        self.mean = torch.tensor(cfg.get("mean", (0.48145466, 0.4578275, 0.40821073))).view(1, 3, 1, 1)
        self.std = torch.tensor(cfg.get("std", (0.26862954, 0.26130258, 0.27577711))).view(1, 3, 1, 1)

    @property
    def patch_size(self) -> int:
        return int(self.model.visual.conv1.kernel_size[0])

    @property
    def dim(self) -> int:
        return int(self.model.visual.proj.shape[1])

    @property
    def native_size(self) -> int:
        """Training image size of the vision tower (224 for ViT-B/16)."""
        grid = int(math.isqrt(self.model.visual.positional_embedding.shape[0] - 1))
        return grid * self.patch_size

    # ------------------------------------------------------------------ text
    @torch.no_grad()
    def encode_text(self, prompts: list[str]) -> Tensor:
        """``[C, D]`` L2-normalised text embeddings."""
        tokens = self.tokenizer(prompts)
        return F.normalize(self.model.encode_text(tokens).float(), dim=-1)

    # ----------------------------------------------------------------- image
    def _positional(self, gh: int, gw: int) -> Tensor:
        pos = self.model.visual.positional_embedding
        n = int(math.isqrt(pos.shape[0] - 1))
        if (gh, gw) == (n, n):
            return pos
        grid = pos[1:].reshape(1, n, n, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(gh, gw), mode="bicubic", align_corners=False)
        return torch.cat([pos[:1], grid.permute(0, 2, 3, 1).reshape(gh * gw, -1)])

    def _last_block(self, block: nn.Module, x: Tensor, gh: int, gw: int) -> Tensor:
        """The modified last residual block; ``x`` is ``[B, N, width]`` (batch first)."""
        if self.mode == "vanilla":
            return block(x)
        attn: nn.MultiheadAttention = block.attn
        B, N, C = x.shape
        heads = attn.num_heads
        hd = C // heads
        y = block.ln_1(x)
        q, k, v = F.linear(y, attn.in_proj_weight, attn.in_proj_bias).split(C, dim=-1)
        q, k, v = (t.reshape(B, N, heads, hd).transpose(1, 2) for t in (q, k, v))  # [B, h, N, hd]
        scale = hd ** -0.5
        if self.mode == "maskclip":
            out = v
        elif self.mode == "sclip":
            a = torch.softmax(q @ q.transpose(-1, -2) * scale, -1) + torch.softmax(k @ k.transpose(-1, -2) * scale, -1)
            out = a @ v
        elif self.mode == "clearclip":
            out = torch.softmax(q @ q.transpose(-1, -2) * scale, -1) @ v
        else:  # naclip
            logits = k @ k.transpose(-1, -2) * scale + self._neighbourhood_bias(gh, gw, x.dtype, x.device)
            out = torch.softmax(logits, -1) @ v
        out = attn.out_proj(out.transpose(1, 2).reshape(B, N, C))
        if self.mode == "sclip":
            x = x + block.ls_1(out)
            return x + block.ls_2(block.mlp(block.ln_2(x)))
        return out

    def _neighbourhood_bias(self, gh: int, gw: int, dtype: torch.dtype, device: torch.device) -> Tensor:
        """``[N, N]`` Gaussian of patch distances on ``device``; the class token (index 0) gets no bias."""
        ii, jj = torch.meshgrid(torch.arange(gh), torch.arange(gw), indexing="ij")
        coords = torch.stack([ii.reshape(-1), jj.reshape(-1)], -1).float()
        d2 = torch.cdist(coords, coords).square()
        g = torch.exp(-d2 / (2 * self.naclip_std ** 2))
        bias = torch.zeros(gh * gw + 1, gh * gw + 1)
        bias[1:, 1:] = g
        return bias.to(device=device, dtype=dtype)

    @torch.no_grad()
    def encode_dense(self, images: Tensor) -> Tensor:
        """Dense features of a batch.

        Args:
            images: ``[B, 3, H, W]`` RGB in [0, 1]; H and W multiples of the patch size.

        Returns:
            ``[B, H / p, W / p, D]`` float32 projected patch tokens (class token dropped).
        """
        p = self.patch_size
        B, _, H, W = images.shape
        if H % p or W % p:
            raise ValueError(f"image size {W}x{H} is not a multiple of the patch size {p}")
        visual = self.model.visual
        x = (images - self.mean.to(images)) / self.std.to(images)
        x = visual.conv1(x)
        gh, gw = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2)
        cls = visual.class_embedding.to(x.dtype).expand(B, 1, -1)
        x = torch.cat([cls, x], dim=1) + self._positional(gh, gw).to(x.dtype)
        x = visual.ln_pre(x)
        blocks = list(visual.transformer.resblocks)
        batch_first = getattr(visual.transformer, "batch_first", True)
        if not batch_first:
            x = x.transpose(0, 1)
        for block in blocks[:-1]:
            x = block(x)
        if not batch_first:
            x = x.transpose(0, 1)
        x = self._last_block(blocks[-1], x, gh, gw)
        x = visual.ln_post(x) @ visual.proj
        return x[:, 1:].reshape(B, gh, gw, -1).float()

    @torch.no_grad()
    def encode_image(self, image: Tensor, window: int | None = None, stride: int | None = None) -> Tensor:
        """``[h, w, D]`` dense features of one ``[H, W, 3]`` image of any size.

        The image is resized to the nearest multiple of the patch size. Images
        larger than ``window`` (default: 2x the native size) are covered by
        overlapping ``window``-pixel crops at ``stride`` (default window/2),
        whose token grids are averaged where they overlap.
        """
        p = self.patch_size
        H, W = image.shape[:2]
        Hp, Wp = max(p, round(H / p) * p), max(p, round(W / p) * p)
        x = image.permute(2, 0, 1)[None].float()
        if (Hp, Wp) != (H, W):
            x = F.interpolate(x, size=(Hp, Wp), mode="bilinear", align_corners=False, antialias=True)
        window = window or 2 * self.native_size
        window = max(p, window // p * p)
        if Hp <= window and Wp <= window:
            return self.encode_dense(x)[0]
        stride = max(p, (stride or window // 2) // p * p)
        gh, gw = Hp // p, Wp // p
        acc = torch.zeros(gh, gw, self.dim)
        count = torch.zeros(gh, gw, 1)
        tops = _window_starts(Hp, min(window, Hp), stride)
        lefts = _window_starts(Wp, min(window, Wp), stride)
        for top in tops:
            for left in lefts:
                crop = x[..., top:top + min(window, Hp), left:left + min(window, Wp)]
                feats = self.encode_dense(crop)[0]
                ti, li = top // p, left // p
                acc[ti:ti + feats.shape[0], li:li + feats.shape[1]] += feats
                count[ti:ti + feats.shape[0], li:li + feats.shape[1]] += 1
        return acc / count


def _window_starts(size: int, window: int, stride: int) -> list[int]:
    """Window offsets covering ``[0, size)``; the last window is flush with the end."""
    starts = list(range(0, max(size - window, 0) + 1, stride))
    if starts[-1] + window < size:
        starts.append(size - window)
    return starts


# ----------------------------------------------------------------- loading
def _hub_cached_file(model_name: str, pretrained: str) -> str | None:
    """Path of the weights in the local Hugging Face / open_clip caches, without any network access."""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(model_name, pretrained) or {}
    hub = cfg.get("hf_hub", "")
    if hub:
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:  # pragma: no cover - huggingface_hub ships with open_clip
            try_to_load_from_cache = None
        if try_to_load_from_cache is not None:
            repo_id, filename = os.path.split(hub)  # a trailing slash means the default file names
            for name in ([filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]):
                found = try_to_load_from_cache(repo_id, name)
                if isinstance(found, str) and os.path.isfile(found):
                    return found
    url = cfg.get("url", "")
    if url:
        legacy = Path(os.path.expanduser("~/.cache/clip")) / os.path.basename(url)
        if legacy.is_file():
            return str(legacy)
    return None


TRAINING_ALTERNATIVE = "Without CLIP, use --features precomputed with a features/ folder."


def missing_weights_message(model_name: str, pretrained: str, alternative: str = TRAINING_ALTERNATIVE) -> str:
    import open_clip

    cfg = open_clip.get_pretrained_cfg(model_name, pretrained) or {}
    sources = []
    if cfg.get("hf_hub"):
        sources.append(f"open_clip_model.safetensors of the Hugging Face repo {cfg['hf_hub'].rstrip('/')}")
    if cfg.get("url"):
        sources.append(cfg["url"])
    where = " or ".join(sources) or "(no public source known)"
    return (f"CLIP weights for {model_name} ({pretrained}) not found: no --clip-weights file was given and the "
            f"local caches have no copy of {where}. Download it on a machine with internet, then pass "
            "--clip-weights PATH (a .safetensors, .bin or .pt file) or copy it into the Hugging Face cache "
            f"(HF_HOME). {alternative}")


def load_clip(mode: str = "naclip", weights: str | Path | None = None, model_name: str = DEFAULT_MODEL,
              pretrained: str = DEFAULT_PRETRAINED, device: str = "cpu",
              alternative: str = TRAINING_ALTERNATIVE) -> DenseCLIP:
    """Load an open_clip model for dense extraction, failing fast when the weights are absent.

    Args:
        mode: dense mode, one of :data:`MODES`.
        weights: local weights file; None looks in the Hugging Face cache only (never downloads).
        model_name: open_clip architecture (default ViT-B-16-quickgelu, the OpenAI model).
        pretrained: open_clip pretrained tag used to find cached weights.
        device: torch device.

    Raises:
        WeightsError: weights missing or unreadable, with where to put them.
    """
    import open_clip

    if mode not in MODES:
        raise WeightsError(f"unknown dense CLIP mode {mode!r}; choose one of {', '.join(MODES)}")
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise WeightsError(f"{path}: CLIP weights file not found; pass the path of a "
                               f"{'/'.join(WEIGHT_SUFFIXES)} file for {model_name}")
        source = str(path)
    else:
        source = _hub_cached_file(model_name, pretrained)
        if source is None:
            raise WeightsError(missing_weights_message(model_name, pretrained, alternative))
    try:
        model = open_clip.create_model(model_name, pretrained=source, device=device)
    except Exception as exc:  # wrong architecture, corrupt file, pickle refused by weights_only
        first = (str(exc).strip().splitlines() or [""])[0].rstrip(".")[:200]  # not torch's multi-line advice
        raise WeightsError(f"{source}: cannot load as {model_name} ({pretrained}) weights ({exc.__class__.__name__}: "
                           f"{first}); the file is damaged or holds another model: download the weights again "
                           "and pass them with --clip-weights") from None
    return DenseCLIP(model=model, tokenizer=open_clip.get_tokenizer(model_name), mode=mode,
                     name=f"{model_name}/{pretrained} dense={mode}")


def tiny_clip(mode: str = "naclip", seed: int = 0, embed_dim: int = 32, image_size: int = 64) -> DenseCLIP:
    """A small randomly initialised open_clip model with the real tokenizer (tests, offline demos)."""
    import open_clip

    torch.manual_seed(seed)
    model = open_clip.model.CLIP(
        embed_dim=embed_dim, quick_gelu=True,
        vision_cfg=dict(image_size=image_size, layers=2, width=64, patch_size=16, head_width=32),
        text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=2, layers=2),
    )
    return DenseCLIP(model=model, tokenizer=open_clip.get_tokenizer("ViT-B-16"), mode=mode,
                     name=f"tiny-random-clip(seed={seed}) dense={mode}")
