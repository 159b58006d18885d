import torch

from laser_gs.data.cameras import Cameras, intrinsics_matrix, is_forward_facing, look_at


def _cams():
    c2w = torch.stack([look_at(torch.tensor([0.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 5.0])),
                       look_at(torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 5.0]))])
    K = intrinsics_matrix(100.0, 100.0, 32.0, 24.0).expand(2, 3, 3).clone()
    return Cameras(c2w, K, 64, 48)


def test_look_at_is_opencv_and_orthonormal():
    c2w = look_at(torch.tensor([0.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 5.0]))
    # Looking down +z with world +y as image-down gives the identity rotation.
    assert torch.allclose(c2w[:3, :3], torch.eye(3), atol=1e-6)
    R = look_at(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([-1.0, 0.5, 7.0]))[:3, :3]
    assert torch.allclose(R.T @ R, torch.eye(3), atol=1e-5)
    assert torch.det(R) > 0


def test_project_target_lands_on_principal_point():
    cams = _cams()
    uv, depth = cams.project(torch.tensor([[0.0, 0.0, 5.0]]))
    assert torch.allclose(uv[:, 0], torch.tensor([[32.0, 24.0], [32.0, 24.0]]), atol=1e-4)
    assert (depth > 0).all()
    # A point to the right (+x) of the first camera lands right of centre; one below (+y) lands lower.
    uv, _ = cams.project(torch.tensor([[1.0, 0.0, 5.0], [0.0, 1.0, 5.0]]))
    assert uv[0, 0, 0] == 32.0 + 100.0 * 1.0 / 5.0
    assert uv[0, 1, 1] == 24.0 + 100.0 * 1.0 / 5.0


def test_pixel_rays_reproject_to_their_pixel_centres():
    cams = _cams()
    o, d = cams.pixel_rays(1)
    assert o.shape == d.shape == (48, 64, 3)
    assert torch.allclose(d.norm(dim=-1), torch.ones(48, 64), atol=1e-5)
    pts = (o + 3.0 * d).reshape(-1, 3)
    uv, depth = cams[1].project(pts)
    jj, ii = torch.meshgrid(torch.arange(64) + 0.5, torch.arange(48) + 0.5, indexing="xy")
    assert torch.allclose(uv[0], torch.stack([jj, ii], -1).reshape(-1, 2), atol=1e-3)
    assert (depth > 0).all()


def test_pixel_rays_stay_on_the_cameras_device():
    """The meta device stands in for a GPU: a pixel grid made on the CPU cannot mix with it (it broke every
    tensorf render on CUDA, found by the first GPU check)."""
    o, d = _cams().to("meta").pixel_rays(0)
    assert o.device.type == d.device.type == "meta" and d.shape == (48, 64, 3)


def test_forward_facing_detection():
    cams = _cams()
    assert is_forward_facing(cams)
    ring = torch.stack([look_at(torch.tensor([4 * torch.cos(torch.tensor(a)), 0.0, 4 * torch.sin(torch.tensor(a))]),
                                torch.zeros(3)) for a in torch.linspace(0, 6.0, 12).tolist()])
    assert not is_forward_facing(Cameras(ring, cams.K[:1].expand(12, 3, 3).clone(), 64, 48))
