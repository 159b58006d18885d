"""``laser view``: a browser viewer (viser) that renders the scene client-side and answers text queries live.

Gaussian runs are sent as splats (centres, covariances, colours, opacities) that the browser sorts and
renders itself; field runs (tensorf) as a coloured point cloud of their surfaces. A query never re-renders
on the server: the decoded CLIP feature of every point is unit-normalised once, so a prompt is one
matrix product ``[P, D] @ [D, 1 + C]`` (the prompt and its negatives), a LERF relevancy per point and a
new colour array. :class:`ViewerModel` holds that logic (tested without a browser); :func:`serve` puts it
behind viser's GUI.
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from laser_gs.backends.protocol import Backend
from laser_gs.choices import CANONICAL_NEGATIVES
from laser_gs.errors import LaserError
from laser_gs.export import export_points
from laser_gs.export.labels import point_labels
from laser_gs.safety import check_output_file
from laser_gs.export.records import PointSet
from laser_gs.prompts import prompt_key
from laser_gs.query import pairwise_relevancy
from laser_gs.run import RunConfig
from laser_gs.data.scene import Scene
from laser_gs.visualize import palette

MODES = ("rgb", "labels", "relevancy")
MAX_PROMPT = 77  # CLIP's context length in tokens; longer prompts are truncated by CLIP, refused here
HIGHLIGHT = np.array([1.0, 0.15, 0.85])  # what a selected point turns to in relevancy mode (magenta)


@dataclass
class QueryAnswer:
    """One answered prompt: ``relevancy`` and ``selected`` ``[P]`` and how long it took."""

    prompt: str
    relevancy: np.ndarray
    selected: np.ndarray
    seconds: float


class ViewerModel:
    """Colours of a run's points for each display mode and prompt, and the selection a prompt makes.

    Args:
        points: the run's :class:`PointSet` (with ``feature`` for runs with semantics).
        classes: the run's class names; ``text`` ``[C, D]`` their embeddings (None: the features came
            without class text, so every prompt goes through ``encode`` and there is no label mode).
        encode: ``prompts -> [K, D]`` for prompts that are not the run's classes (the run's CLIP text tower),
            or None when its weights are not available.

    Prompts match the run's classes as ``laser segment`` matches them (case and spacing do not matter).
    """

    def __init__(self, points: PointSet, classes: list[str], text: Tensor | None,
                 encode: Callable[[list[str]], Tensor] | None = None, offsets: Tensor | None = None):
        self.points = points
        self.text = F.normalize(text.float().cpu(), dim=-1) if text is not None and len(classes) else None
        self.classes = list(classes) if self.text is not None else []
        #: [C] the run's class calibration (added to the classes' cosines), zeros without one
        self.offsets = (offsets.float().cpu() if offsets is not None and self.text is not None
                        else torch.zeros(len(self.classes)))
        self.encode = encode
        self.features = F.normalize(points.feature.float(), dim=-1) if points.feature is not None else None
        self.rgb = points.rgb.numpy().astype(np.float32)
        self.answer: QueryAnswer | None = None

    @property
    def semantic(self) -> bool:
        """The run has a feature per point, so prompts can be answered (with its classes or CLIP)."""
        return self.features is not None and (self.text is not None or self.encode is not None)

    @property
    def has_classes(self) -> bool:
        """The run stores class names with embeddings: a label mode and a legend exist."""
        return self.features is not None and self.text is not None

    def labels(self) -> np.ndarray:
        """``[P]`` index of each point's best class: the ensemble head with the run's class calibration, as
        ``laser export`` labels the PLY (:func:`~laser_gs.export.labels.point_labels`), so a point shows the class
        here that it has in the exported file."""
        label = self.points.label.float() if self.points.label is not None else None
        return point_labels(self.points.feature.float(), label, self.text, offsets=self.offsets)[0].numpy()

    def _class_index(self, prompt: str) -> int | None:
        return {prompt_key(c): i for i, c in enumerate(self.classes)}.get(prompt_key(prompt))

    def embed(self, prompt: str) -> Tensor:
        """``[D]`` unit embedding of a prompt: the run's own for its classes (any case), else CLIP's."""
        index = self._class_index(prompt)
        if index is not None:
            return self.text[index]
        if self.encode is None:
            raise LaserError(f"{prompt!r} is not one of the run's classes ({', '.join(self.classes)}) and the run's "
                             "CLIP text tower is not available here (its weights are missing); query a class")
        embedding = self.encode([prompt])[0].float().cpu()
        if embedding.shape[0] != self.features.shape[1]:
            raise LaserError(f"CLIP text width {embedding.shape[0]} differs from the run's feature width "
                             f"{self.features.shape[1]}; use the CLIP the features were extracted with")
        return F.normalize(embedding, dim=-1)

    def query(self, prompt: str, threshold: float = 0.5, negatives: str = "classes") -> QueryAnswer:
        """LERF relevancy of every point to ``prompt`` against the run's other classes (or the canonical
        phrases), and the points at or above ``threshold``."""
        prompt = " ".join(prompt.split())
        if not prompt:
            raise LaserError("the prompt is empty; type an object, e.g. a class of the run")
        if len(prompt) > 4 * MAX_PROMPT:
            raise LaserError(f"the prompt is {len(prompt)} characters long; CLIP reads about {MAX_PROMPT} tokens, "
                             "so keep it to a short phrase")
        if not self.semantic:
            raise LaserError("this run has no semantics (trained with --features none, or its features carry no "
                             "class text and its CLIP weights are missing); only RGB can be shown")
        t0 = time.perf_counter()
        query = self.embed(prompt)
        others = [i for i in range(len(self.classes)) if i != self._class_index(prompt)]
        if negatives == "classes" and others:
            negs = self.text[others]
        else:  # asked for, or the run has no other classes to compare against
            if self.encode is None:
                raise LaserError("canonical negatives need the run's CLIP text tower, whose weights are missing")
            negs = F.normalize(self.encode(list(CANONICAL_NEGATIVES)).float().cpu(), dim=-1)
        cos = self.features @ torch.cat([query[None], negs]).T  # [P, 1 + M]
        if negatives == "classes" and others:  # the class calibration, as in the label mode
            index = self._class_index(prompt)
            cos = cos + torch.cat([self.offsets[[index]] if index is not None else torch.zeros(1),
                                   self.offsets[others]])
        rel = pairwise_relevancy(cos[:, 0], cos[:, 1:]).numpy()
        self.answer = QueryAnswer(prompt, rel, rel >= threshold, time.perf_counter() - t0)
        return self.answer

    def colours(self, mode: str, threshold: float = 0.5) -> np.ndarray:
        """``[P, 3]`` float colours in [0, 1] for display mode ``rgb``, ``labels`` or ``relevancy``."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {MODES}")
        if mode == "rgb" or not self.semantic or (mode == "labels" and not self.has_classes):
            return self.rgb
        if mode == "labels":
            return palette(self.classes)[self.labels()].astype(np.float32) / 255.0
        if self.answer is None:
            return 0.35 * self.rgb + 0.65 * 0.5  # greyed until a prompt is given
        rel = self.answer.relevancy[:, None]
        grey = 0.3 * self.rgb + 0.7 * 0.45
        return np.where(rel >= threshold, HIGHLIGHT[None] * (0.6 + 0.4 * rel), grey).astype(np.float32)

    def export_selection(self, run_dir: Path, threshold: float) -> Path:
        """The points the last prompt selects, as PLY in the run folder (3DGS layout for Gaussians)."""
        if self.answer is None:
            raise LaserError("type a prompt first; the export writes the points it selects")
        keep = self.answer.relevancy >= threshold
        if not keep.any():
            raise LaserError(f"nothing reaches relevancy {threshold:.2f} for {self.answer.prompt!r}; lower the "
                             "threshold")
        slug = re.sub(r"[^A-Za-z0-9]+", "_", self.answer.prompt).strip("_")[:40] or "selection"
        path = Path(run_dir) / f"view_selection_{slug}.ply"
        check_output_file(path, True, b"ply", "selection")  # replaces an earlier selection, never another file
        text = torch.cat([self.embed(self.answer.prompt)[None]])
        return export_points(self.points, path, [self.answer.prompt], text, keep=torch.from_numpy(keep))[0]


def covariances(points: PointSet) -> np.ndarray:
    """``[P, 3, 3]`` world covariances ``R S S^T R^T`` of Gaussians (scales are logs, quats w x y z)."""
    from laser_gs.backends.gsplat.raster import quat_to_rotmat

    g = points.gaussians
    R = quat_to_rotmat(g.quats.float())
    S = torch.exp(g.scales.float())
    M = R * S[:, None, :]
    return (M @ M.transpose(1, 2)).numpy()


class RunTextEncoder:
    """``prompts -> [K, D]`` with the run's CLIP text tower, loaded on the first prompt and kept."""

    def __init__(self, config: RunConfig, classes: list[str]):
        self.config = config
        self.classes = classes
        self.clip = None

    def __call__(self, prompts: list[str]) -> Tensor:
        if self.clip is None:
            from laser_gs.features.dense_clip import load_clip

            alternative = (f"Query the run's classes instead: {', '.join(self.classes)}." if self.classes else
                           "This run has no class names of its own; start `laser view` with --clip-weights.")
            self.clip = load_clip(self.config.clip_mode or "naclip", weights=self.config.clip_weights,
                                  alternative=alternative)
        return self.clip.encode_text(prompts)


def load_model(backend: Backend, config: RunConfig, scene: Scene, max_points: int | None = None) -> ViewerModel:
    """The viewer's model of a trained run: its points (Gaussians or surface points) and their features."""
    points = backend.points(scene.cameras, scene.train_views)
    if max_points and len(points) > max_points:
        keep = torch.zeros(len(points), dtype=torch.bool)
        keep[torch.randperm(len(points), generator=torch.Generator().manual_seed(0))[:max_points]] = True
        points = points.select(keep)
    encode = RunTextEncoder(config, list(backend.classes)) if points.feature is not None else None
    return ViewerModel(points, backend.classes, backend.text, encode, backend.class_offsets(backend.text))


def check_port(host: str, port: int) -> None:
    """A clear error when ``host:port`` cannot be listened on (in use, or not an address of this machine)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        # as the server binds (asyncio sets it on Unix): a port whose last connection is in TIME-WAIT is free
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise LaserError(f"--host {host} --port {port}: cannot listen there ({exc.strerror}); pick another "
                             "--port (e.g. --port 0 for any free one)") from None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
