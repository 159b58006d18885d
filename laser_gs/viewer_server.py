"""The viser side of ``laser view``: scene, training-camera frusta and the query panel (see :mod:`viewer`).

Safety: the WebSocket accepts only pages of the viewer's own origin (:mod:`laser_gs.viewer_origin`), every text
from a run or a user is escaped before the panel shows it, and every GUI value is checked here on the server
(a client can send any value, whatever its widget allows).
"""

from __future__ import annotations

import html
import math
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch

from laser_gs.data.cameras import Cameras
from laser_gs.errors import LaserError
from laser_gs.viewer import MODES, ViewerModel, covariances
from laser_gs.viewer_origin import OriginPolicy, origin_checked_serve
from laser_gs.visualize import palette

MODE_LABELS = {"RGB": "rgb", "class labels": "labels", "relevancy": "relevancy"}


def escape_markdown(text: str) -> str:
    """``text`` shown literally in viser's markdown: HTML escaped, markdown's special characters backslashed."""
    return re.sub(r"([\\`*_\[\]{}()#+!|~>-])", r"\\\1", html.escape(str(text), quote=False))


def _legend(classes: list[str]) -> str:
    """Markdown legend: a coloured square and the class name per line."""
    rows = []
    for name, (r, g, b) in zip(classes, palette(classes).tolist()):
        rows.append(f'<span style="display:inline-block;width:0.9em;height:0.9em;background:rgb({r},{g},{b});'
                    f'border:1px solid #555;margin-right:0.4em"></span>{html.escape(name, quote=True)}')
    return "<div class='laser-legend'>" + "<br>".join(rows) + "</div>"


class ViewerServer:
    """A running viewer: ``url``, and ``stop()``. Built by :func:`serve`."""

    def __init__(self, model: ViewerModel, cameras: Cameras, run_dir: Path, host: str, port: int,
                 point_size: float | None = None, allow_origins: tuple[str, ...] = ()):
        import viser
        import viser.transforms as tf

        self.model, self.run_dir = model, Path(run_dir)
        with origin_checked_serve(OriginPolicy(host, allow_origins)):
            self.server = viser.ViserServer(host=host, port=port, verbose=False)
        self.lock = threading.RLock()  # callbacks set other widgets, which call back in the same thread
        self.mode = "rgb"
        self.threshold = 0.5
        p = model.points
        scene = self.server.scene
        scene.set_up_direction("-y")  # OpenCV worlds: y points down
        if p.gaussians is not None:
            opac = 1.0 / (1.0 + np.exp(-p.gaussians.opacities.numpy().astype(np.float32)))
            self.handle = scene.add_gaussian_splats("/scene", centers=p.xyz.numpy().astype(np.float32),
                                                    covariances=covariances(p).astype(np.float32),
                                                    rgbs=model.rgb, opacities=opac[:, None])
        else:
            self.handle = scene.add_point_cloud("/scene", points=p.xyz.numpy().astype(np.float32), colors=model.rgb,
                                                point_size=point_size or default_point_size(p.xyz),
                                                point_shape="circle")
        # training cameras: click one to look through it
        self.poses, self.frusta = [], []
        fov = float(2 * np.arctan(cameras.height / (2 * float(cameras.K[0, 1, 1]))))
        for i in range(len(cameras)):
            c2w = cameras.c2w[i].numpy()
            wxyz, pos = tf.SO3.from_matrix(c2w[:3, :3]).wxyz, c2w[:3, 3]
            self.poses.append((wxyz, pos, fov))
            frustum = scene.add_camera_frustum(f"/cameras/{i:03d}", fov=fov, aspect=cameras.width / cameras.height,
                                               scale=0.03 * max(1e-3, self._extent()), color=(90, 90, 200),
                                               thickness=1.5, thickness_units="screen",
                                               wxyz=wxyz, position=pos)
            frustum.on_click(lambda event, i=i: self.look_through(i))
            self.frusta.append(frustum)
        # start a little behind the first training camera, so the rig is in view
        first = cameras.c2w[0].numpy()
        self.server.initial_camera.position = first[:3, 3] - first[:3, 2] * 0.5 * self._extent()
        self.server.initial_camera.look_at = first[:3, 3] + first[:3, 2] * self._extent()
        self.server.initial_camera.up = -first[:3, 1]
        self.server.initial_camera.fov = fov
        self._gui()

    def _extent(self) -> float:
        xyz = self.model.points.xyz.numpy()
        if not len(xyz):
            return 1.0
        lo, hi = np.percentile(xyz, 5, axis=0), np.percentile(xyz, 95, axis=0)
        return float(np.linalg.norm(hi - lo)) / 2

    def _gui(self) -> None:
        gui, m = self.server.gui, self.model
        gui.add_markdown("**laser_gs** language-guided 3D segmentation")
        self.prompt = gui.add_text("Prompt", initial_value="", hint="an object, e.g. one of the classes below; Enter")
        modes = [k for k, v in MODE_LABELS.items()
                 if v == "rgb" or (m.semantic and (v != "labels" or m.has_classes))]
        self.mode_box = gui.add_dropdown("Show", tuple(modes), initial_value="RGB")
        self.slider = gui.add_slider("Threshold", min=0.0, max=1.0, step=0.01, initial_value=0.5)
        self.status = gui.add_markdown(
            "Type a prompt to highlight it." if m.semantic else
            "This run has no semantics (trained with --features none, or features without class text and no "
            "CLIP weights here): RGB only.")
        self.export = gui.add_button("Export selection (PLY)", disabled=not m.semantic)
        self.show_cameras = gui.add_checkbox("Training cameras", initial_value=True,
                                             hint="click a camera in the scene to look through it")
        if m.has_classes:
            gui.add_html(_legend(m.classes))
        self.prompt.on_update(lambda event: self._safe(self._on_prompt, event))
        self.mode_box.on_update(lambda event: self._safe(self._on_mode, event))
        self.slider.on_update(lambda event: self._safe(self._on_threshold, event))
        self.export.on_click(lambda event: self._safe(self._on_export, event))
        self.show_cameras.on_update(lambda event: self._safe(self._on_cameras, event))

    def _safe(self, fn: Any, event: Any) -> None:
        """GUI callbacks never raise into the browser: user errors become a notice in the panel."""
        try:
            with self.lock:
                fn(event)
        except LaserError as exc:
            self.status.content = f"**Note:** {escape_markdown(str(exc))}"
            client = getattr(event, "client", None)
            if client is not None:
                client.add_notification("laser_gs", str(exc), auto_close_seconds=8.0, color="yellow")

    def _paint(self) -> None:
        colours = self.model.colours(self.mode, self.threshold)
        if self.model.points.gaussians is not None:
            self.handle.rgbs = colours
        else:
            self.handle.colors = (np.clip(colours, 0, 1) * 255).astype(np.uint8)

    def _on_prompt(self, event: Any) -> None:
        text = self.prompt.value
        if not isinstance(text, str):  # the model checks its length and content
            raise LaserError("a prompt is a text")
        answer = self.model.query(text, self.threshold)
        self.mode = "relevancy"
        self.mode_box.value = "relevancy"
        self._paint()
        n = int(answer.selected.sum())
        self.status.content = (f"**{escape_markdown(answer.prompt)}**: {n} of {len(answer.selected)} points at "
                               f"relevancy >= {self.threshold:.2f} (answered in {1000 * answer.seconds:.0f} ms)")

    def _on_mode(self, event: Any) -> None:
        mode = MODE_LABELS.get(self.mode_box.value) if isinstance(self.mode_box.value, str) else None
        if mode is None or self.mode_box.value not in self.mode_box.options:
            current = next(k for k, v in MODE_LABELS.items() if v == self.mode)
            self.mode_box.value = current  # new clients see the valid value, not the refused one
            raise LaserError(f"unknown display mode; choose one of {', '.join(self.mode_box.options)}")
        self.mode = mode
        self._paint()

    def _on_threshold(self, event: Any) -> None:
        value = self.slider.value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not 0.0 <= value <= 1.0:
            self.slider.value = self.threshold  # put the last valid value back for every client
            raise LaserError("the threshold is a number from 0 to 1")
        self.threshold = float(value)
        if self.model.answer is not None:
            self.model.answer.selected = self.model.answer.relevancy >= self.threshold
        self._paint()

    def _on_cameras(self, event: Any) -> None:
        for frustum in self.frusta:
            frustum.visible = bool(self.show_cameras.value)

    def _on_export(self, event: Any) -> None:
        from laser_gs.run_lock import run_lock

        with run_lock(self.run_dir, "view (export)"):  # not while a training writes this run
            path = self.model.export_selection(self.run_dir, self.threshold)
        self.status.content = f"Wrote {escape_markdown(str(path))}"

    def look_through(self, index: int) -> None:
        wxyz, pos, fov = self.poses[index]
        for client in self.server.get_clients().values():
            with client.atomic():
                client.camera.wxyz = wxyz
                client.camera.position = pos
                client.camera.fov = fov

    @property
    def url(self) -> str:
        host = self.server.get_host()
        return f"http://{'localhost' if host in ('0.0.0.0', '127.0.0.1', '::') else host}:{self.server.get_port()}"

    def stop(self) -> None:
        self.server.stop()


def default_point_size(xyz: torch.Tensor, sample: int = 2000, factor: float = 1.2) -> float:
    """Point size for a surface point cloud ``[P, 3]``: ``factor`` times the median distance from a point to its
    nearest neighbour (on a sample of points), so neighbouring points just overlap and surfaces look closed."""
    if len(xyz) < 2:
        return 0.01
    g = torch.Generator().manual_seed(0)
    queries = xyz[torch.randperm(len(xyz), generator=g)[:sample]].float()
    d = torch.cdist(queries, xyz.float(), compute_mode="donot_use_mm_for_euclid_dist")  # [sample, P]
    nearest = d.topk(2, largest=False).values[:, 1]  # the first is the point itself
    return float(factor * nearest.median().clamp_min(1e-6))


def serve(model: ViewerModel, cameras: Cameras, run_dir: Path, host: str = "127.0.0.1", port: int = 8080,
          point_size: float | None = None, allow_origins: tuple[str, ...] = ()) -> ViewerServer:
    """Start the viewer (returns at once; the server runs in background threads). ``allow_origins``: further
    page origins (``scheme://host:port``) whose pages may connect besides the viewer's own."""
    assert set(MODE_LABELS.values()) == set(MODES)
    return ViewerServer(model, cameras, run_dir, host, port, point_size, allow_origins)
