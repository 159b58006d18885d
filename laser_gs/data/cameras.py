"""Pinhole cameras in one convention shared by every loader and backend.

Convention (the same as OpenCV, COLMAP and gsplat):

* camera axes: x right, y down, z forward (the camera looks along +z);
* ``c2w`` is a 4x4 camera-to-world matrix whose first three columns are those
  axes expressed in world coordinates and whose last column is the centre;
* ``K`` maps camera coordinates to pixel coordinates, with pixel ``(row i,
  column j)`` covering ``[j, j+1) x [i, i+1)``, so its centre is at
  ``(j + 0.5, i + 0.5)``.

Loaders convert from their file conventions (LLFF's [down, right, back],
Blender's OpenGL [right, up, back]) into this one, so nothing downstream has to
know where a scene came from.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Cameras:
    """A batch of N pinhole cameras that share one image size.

    Attributes:
        c2w: ``[N, 4, 4]`` float32 camera-to-world matrices (OpenCV axes).
        K: ``[N, 3, 3]`` float32 intrinsics in pixels.
        width: image width in pixels.
        height: image height in pixels.
    """

    c2w: Tensor
    K: Tensor
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.c2w.ndim != 3 or self.c2w.shape[1:] != (4, 4):
            raise ValueError(f"c2w must be [N, 4, 4], got {tuple(self.c2w.shape)}")
        if self.K.shape != (self.c2w.shape[0], 3, 3):
            raise ValueError(f"K must be [N, 3, 3] matching c2w, got {tuple(self.K.shape)}")

    def __len__(self) -> int:
        return int(self.c2w.shape[0])

    def __getitem__(self, index: int | slice | list[int] | Tensor) -> "Cameras":
        """Subset of cameras; an int keeps the batch dimension (N = 1)."""
        if isinstance(index, int):
            index = [index]
        return Cameras(self.c2w[index], self.K[index], self.width, self.height)

    def resized(self, width: int, height: int) -> "Cameras":
        """The same cameras rendering ``width x height`` images (intrinsics scaled per axis)."""
        K = self.K.clone()
        K[:, 0] *= width / self.width
        K[:, 1] *= height / self.height
        return Cameras(self.c2w, K, width, height)

    def scaled(self, index: int, scale: float) -> "Cameras":
        """Camera ``index`` alone, rendering at ``scale`` of the resolution (at least 1 pixel per axis)."""
        return self[index].resized(max(1, round(self.width * scale)), max(1, round(self.height * scale)))

    @property
    def centers(self) -> Tensor:
        """``[N, 3]`` camera centres in world coordinates."""
        return self.c2w[:, :3, 3]

    @property
    def forward(self) -> Tensor:
        """``[N, 3]`` unit viewing directions (+z axis) in world coordinates."""
        return self.c2w[:, :3, 2]

    @property
    def focal(self) -> Tensor:
        """``[N, 2]`` focal lengths (fx, fy) in pixels."""
        return torch.stack([self.K[:, 0, 0], self.K[:, 1, 1]], dim=-1)

    def w2c(self) -> Tensor:
        """``[N, 4, 4]`` world-to-camera matrices (gsplat's ``viewmats``)."""
        return torch.linalg.inv(self.c2w)

    def project(self, points: Tensor) -> tuple[Tensor, Tensor]:
        """Project world points into every camera.

        Args:
            points: ``[P, 3]`` world coordinates.

        Returns:
            ``uv`` ``[N, P, 2]`` pixel coordinates (x = column, y = row, pixel
            centres at +0.5) and ``depth`` ``[N, P]`` along the camera +z axis;
            points with depth <= 0 are behind the camera and their ``uv`` is
            meaningless.
        """
        w2c = self.w2c()
        cam = torch.einsum("nij,pj->npi", w2c[:, :3, :3], points) + w2c[:, None, :3, 3]
        depth = cam[..., 2]
        pix = torch.einsum("nij,npj->npi", self.K, cam)
        uv = pix[..., :2] / pix[..., 2:3].clamp_min(1e-12)
        return uv, depth

    def rays_at(self, index: int | Tensor, u: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Rays through pixel coordinates ``u`` (x) and ``v`` (y) of camera ``index``.

        ``index`` is one camera for all pixels, or a tensor of camera indices
        with the shape of ``u`` (a batch of rays from many views).

        Returns:
            ``origins`` and unit ``directions``, each ``[*u.shape, 3]`` in world coordinates.
        """
        K = self.K[index]
        c2w = self.c2w[index]
        x = (u - K[..., 0, 2]) / K[..., 0, 0]
        y = (v - K[..., 1, 2]) / K[..., 1, 1]
        cam = torch.stack([x, y, torch.ones_like(x)], dim=-1)
        dirs = torch.einsum("...j,...ij->...i", cam, c2w[..., :3, :3])
        dirs = dirs / dirs.norm(dim=-1, keepdim=True)
        return c2w[..., :3, 3].expand_as(dirs), dirs

    def pixel_rays(self, index: int) -> tuple[Tensor, Tensor]:
        """Rays through every pixel centre of one camera: ``origins``, ``directions`` ``[H, W, 3]``, on the
        cameras' device (pixel grids made on the CPU broke every CUDA render of tensorf)."""
        dev = self.K.device
        j, i = torch.meshgrid(
            torch.arange(self.width, dtype=torch.float32, device=dev) + 0.5,
            torch.arange(self.height, dtype=torch.float32, device=dev) + 0.5,
            indexing="xy",
        )
        return self.rays_at(index, j, i)

    def to(self, device: torch.device | str) -> "Cameras":
        return Cameras(self.c2w.to(device), self.K.to(device), self.width, self.height)


def intrinsics_matrix(fx: float, fy: float, cx: float, cy: float) -> Tensor:
    """``[3, 3]`` float32 pinhole intrinsics."""
    return torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=torch.float32)


def look_at(eye: Tensor, target: Tensor, down: Tensor | None = None) -> Tensor:
    """``[4, 4]`` OpenCV camera-to-world matrix looking from ``eye`` at ``target``.

    Args:
        eye: ``[3]`` camera centre.
        target: ``[3]`` point the +z axis goes through.
        down: ``[3]`` approximate world direction of the image's +y (down) axis;
            defaults to world +y.
    """
    if down is None:
        down = torch.tensor([0.0, 1.0, 0.0])
    z = target - eye
    z = z / z.norm()
    x = torch.linalg.cross(down, z)
    x = x / x.norm()
    y = torch.linalg.cross(z, x)
    c2w = torch.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = x, y, z, eye
    return c2w


def is_forward_facing(cameras: Cameras, max_angle_deg: float = 45.0) -> bool:
    """True when every camera looks within ``max_angle_deg`` of the mean view direction.

    Forward-facing captures (LLFF) suit NDC rays; others (360 degrees, Blender)
    need a bounding box instead.
    """
    fwd = cameras.forward
    mean = fwd.mean(dim=0)
    if mean.norm() < 1e-6:
        return False
    mean = mean / mean.norm()
    cos = fwd @ mean
    return bool((cos >= torch.cos(torch.deg2rad(torch.tensor(max_angle_deg)))).all())
