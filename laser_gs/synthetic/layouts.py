"""Object layouts of generated scenes: the fixed tabletop and random ones with hard cases.

A random layout puts ``n`` objects (spheres, boxes, cylinders of a catalogue of
nouns and colours) on the floor without overlaps, and can make the cases that
defeat colour-only segmentation: several objects of one colour (``similar``),
small objects, and an object of the background's colour in front of it
(``camouflage``, a grey pillar before a grey wall). Forward-facing layouts have a
wall behind the objects; orbit layouts an open floor to the horizon and a sky
dome instead, so cameras can circle the objects. Objects of one colour (and a
camouflaged object with its background) form *confusable groups*: the synthetic
features confuse their members with each other (``synthetic.features``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from laser_gs.synthetic.primitives import Box, Cylinder, Plane, Sphere

# World frame: x right, y down (gravity is +y), z away from forward-facing cameras.
FLOOR_Y = 1.5
WALL_Z = 8.0
SKY_RADIUS = 60.0
#: where random objects stand (forward-facing): x range, z range (in front of the wall, in the cameras' view)
FRONT_AREA = ((-2.2, 2.2), (3.3, 6.6))
#: where random objects stand (orbit): a disc around the origin
ORBIT_RADIUS = 1.8

Texture = Callable[[Tensor], Tensor]

COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.76, 0.11, 0.10), "blue": (0.14, 0.28, 0.74), "green": (0.20, 0.60, 0.24),
    "yellow": (0.86, 0.76, 0.16), "orange": (0.90, 0.45, 0.10), "purple": (0.45, 0.20, 0.60),
    "white": (0.92, 0.92, 0.90), "grey": (0.55, 0.55, 0.56), "brown": (0.45, 0.30, 0.18),
    "pink": (0.92, 0.55, 0.65),
}
#: nouns by shape; every object is "<colour> <noun>"
NOUNS = {"sphere": ("ball", "apple", "orange", "globe"), "box": ("book", "box", "crate", "brick"),
         "cylinder": ("mug", "can", "vase", "pillar")}


@dataclass
class SceneObject:
    """One labeled primitive with a solid (3D) texture."""

    name: str
    primitive: object
    texture: Texture
    anchor: tuple[float, float, float]  # a point inside the object, for reprojection tests


@dataclass
class Layout:
    """Objects in class order, and groups of class indices the features confuse with each other."""

    objects: list[SceneObject]
    confusable: tuple[tuple[int, ...], ...]
    orbit: bool = False


def stripes(v: Tensor, period: float, sharp: float = 6.0) -> Tensor:
    return torch.sigmoid(sharp * torch.sin(2 * math.pi * v / period))


def wall_texture(p: Tensor, base_colour: tuple[float, float, float] = (0.86, 0.84, 0.80),
                 mortar_colour: tuple[float, float, float] = (0.62, 0.60, 0.58)) -> Tensor:
    row = torch.floor(p[:, 1] / 0.35)
    shift = (row % 2) * 0.35
    mortar = ((p[:, 1] / 0.35) % 1 < 0.1) | (((p[:, 0] + shift) / 0.7) % 1 < 0.05)
    base = torch.tensor(base_colour) * (0.93 + 0.07 * torch.sin(7.0 * p[:, 0] + 3.0 * p[:, 1]))[:, None]
    return torch.where(mortar[:, None], torch.tensor(mortar_colour), base)


def floor_texture(p: Tensor) -> Tensor:
    plank = stripes(p[:, 0], 0.55, 20.0)
    grain = 0.85 + 0.15 * torch.sin(9.0 * p[:, 2] + 2.5 * torch.sin(4.0 * p[:, 0]))
    base = torch.tensor([0.58, 0.38, 0.20]) * (0.8 + 0.2 * plank)[:, None]
    return base * grain[:, None]


def sky_texture(p: Tensor) -> Tensor:
    up = (-p[:, 1] / SKY_RADIUS).clamp(0, 1)[:, None]  # y is down
    return torch.tensor([0.80, 0.86, 0.94]) * (1 - up) + torch.tensor([0.45, 0.62, 0.88]) * up


def speckle(color: tuple[float, float, float], freq: float) -> Texture:
    def tex(p: Tensor) -> Tensor:
        s = torch.sin(freq * p[:, 0]) * torch.sin(freq * p[:, 1] + 1.0) * torch.sin(freq * p[:, 2] + 2.0)
        return torch.tensor(color) * (0.85 + 0.15 * s)[:, None]
    return tex


def banded(color: tuple[float, float, float], band: tuple[float, float, float], axis: int, period: float) -> Texture:
    def tex(p: Tensor) -> Tensor:
        w = stripes(p[:, axis], period, 8.0)[:, None]
        return torch.tensor(color) * (1 - 0.35 * w) + torch.tensor(band) * 0.35 * w
    return tex


def checker(c1: tuple[float, float, float], c2: tuple[float, float, float], size: float) -> Texture:
    def tex(p: Tensor) -> Tensor:
        k = (torch.floor(p[:, 0] / size) + torch.floor(p[:, 1] / size) + torch.floor(p[:, 2] / size)) % 2
        return torch.where(k[:, None] > 0, torch.tensor(c1), torch.tensor(c2))
    return tex


def tabletop() -> Layout:
    """The default scene: brick wall, wooden floor, red apple, red book, blue mug, green ball."""
    return Layout([
        SceneObject("brick wall", Plane((0, 0, 1), WALL_Z), wall_texture, (0.0, -1.0, WALL_Z)),
        SceneObject("wooden floor", Plane((0, 1, 0), FLOOR_Y), floor_texture, (0.0, FLOOR_Y, 6.5)),
        SceneObject("red apple", Sphere((-1.35, FLOOR_Y - 0.62, 5.0), 0.62),
                    speckle((0.78, 0.10, 0.09), 23.0), (-1.35, FLOOR_Y - 0.62, 5.0)),
        SceneObject("red book", Box((0.55, FLOOR_Y - 0.32, 4.6), (0.75, 0.32, 0.5)),
                    banded((0.72, 0.12, 0.11), (0.95, 0.85, 0.70), 1, 0.16), (0.55, FLOOR_Y - 0.32, 4.6)),
        SceneObject("blue mug", Cylinder((2.0, 5.7), 0.5, FLOOR_Y - 1.25, FLOOR_Y),
                    banded((0.14, 0.28, 0.74), (0.90, 0.92, 0.95), 0, 0.18), (2.0, FLOOR_Y - 0.6, 5.7)),
        SceneObject("green ball", Sphere((-0.35, FLOOR_Y - 0.42, 3.5), 0.42),
                    checker((0.20, 0.62, 0.24), (0.10, 0.40, 0.14), 0.2), (-0.35, FLOOR_Y - 0.42, 3.5)),
    ], confusable=((2, 3),))


def _texture(colour: tuple[float, float, float], kind: int, g: torch.Generator) -> Texture:
    light = tuple(min(1.0, 0.55 + 0.6 * c) for c in colour)
    dark = tuple(0.6 * c for c in colour)
    freq = 15.0 + 15.0 * float(torch.rand(1, generator=g))
    return [speckle(colour, freq), banded(colour, light, int(torch.randint(3, (1,), generator=g)), 0.18),
            checker(colour, dark, 0.18)][kind % 3]


def random_layout(objects: int = 4, similar: int = 2, small: int = 0, camouflage: bool = False, orbit: bool = False,
                  seed: int = 0) -> Layout:
    """``objects`` random objects on the floor (before a wall, or in the open for ``orbit`` cameras).

    ``similar`` of them share one colour (0 or 1: all colours differ); ``small`` of them are small (a
    radius of 0.15 to 0.25 instead of 0.3 to 0.7); ``camouflage`` makes one object a grey pillar before a
    grey wall (forward-facing) or a floor-coloured crate (orbit).
    """
    if not 1 <= objects <= 8:
        raise ValueError("objects must be between 1 and 8")
    if similar + int(camouflage) > objects:
        raise ValueError(f"similar ({similar}) plus the camouflaged object cannot exceed objects ({objects})")
    g = torch.Generator().manual_seed(50_000 + seed)
    background = [SceneObject("wooden floor", Plane((0, 1, 0), FLOOR_Y), floor_texture, (0.0, FLOOR_Y, 6.5))]
    wall_colour = COLOURS["grey"] if camouflage else (0.86, 0.84, 0.80)
    mortar = tuple(0.72 * c for c in wall_colour) if camouflage else (0.62, 0.60, 0.58)
    if orbit:
        background.append(SceneObject("sky", Sphere((0.0, 0.0, 0.0), SKY_RADIUS), sky_texture, (0.0, -50.0, 0.0)))
    else:
        background.insert(0, SceneObject("grey wall" if camouflage else "brick wall", Plane((0, 0, 1), WALL_Z),
                                         lambda p: wall_texture(p, wall_colour, mortar), (0.0, -1.0, WALL_Z)))
    palette = [c for c in COLOURS if not (camouflage and c == "grey")]
    order = torch.randperm(len(palette), generator=g).tolist()
    shared = palette[order[0]]
    colours = ["grey"] * int(camouflage) + [shared] * (similar if similar >= 2 else 0) + [palette[i] for i in order[1:]]
    colours = colours[:objects]
    shapes = ["sphere", "box", "cylinder"]
    placed: list[tuple[float, float, float]] = []  # (x, z, footprint radius)
    out: list[SceneObject] = []
    names: set[str] = set()
    group = []
    for k in range(objects):
        is_small = k >= objects - small
        size = (0.15 + 0.1 * float(torch.rand(1, generator=g))) if is_small else \
            (0.3 + 0.4 * float(torch.rand(1, generator=g)))
        if camouflage and k == 0:
            shape, noun, colour_name = "cylinder", "pillar", "grey" if not orbit else "brown"
            colour = wall_colour if not orbit else (0.55, 0.37, 0.20)
            size = max(size, 0.35)
        else:
            shape = shapes[int(torch.randint(3, (1,), generator=g))]
            colour_name = colours[k]
            colour = COLOURS[colour_name]
            nouns = [n for n in NOUNS[shape] if f"{colour_name} {n}" not in names]
            noun = nouns[int(torch.randint(len(nouns), (1,), generator=g))]
        for _ in range(200):  # a free spot on the floor
            if orbit:
                r = ORBIT_RADIUS * float(torch.rand(1, generator=g)) ** 0.5
                a = 2 * math.pi * float(torch.rand(1, generator=g))
                x, z = r * math.cos(a), r * math.sin(a)
            else:
                (x0, x1), (z0, z1) = FRONT_AREA
                x = x0 + (x1 - x0) * float(torch.rand(1, generator=g))
                z = z0 + (z1 - z0) * float(torch.rand(1, generator=g))
                if camouflage and k == 0:
                    z = 6.2 + 0.4 * float(torch.rand(1, generator=g))  # near the wall it hides against
                    x = 0.6 * x  # and in the middle, where the cameras see it
                elif camouflage:
                    z = min(z, 5.6)  # the others stand in front
            if all(math.hypot(x - px, z - pz) > size + pr + 0.15 for px, pz, pr in placed):
                break
        placed.append((x, z, size))
        name = f"{colour_name} {noun}"
        names.add(name)
        if shape == "sphere":
            prim, anchor = Sphere((x, FLOOR_Y - size, z), size), (x, FLOOR_Y - size, z)
        elif shape == "box":
            half = (size, 0.6 * size, 0.8 * size)
            prim, anchor = Box((x, FLOOR_Y - half[1], z), half), (x, FLOOR_Y - half[1], z)
        else:
            height = 3.5 * size if noun == "pillar" else 2.0 * size
            prim, anchor = Cylinder((x, z), 0.8 * size, FLOOR_Y - height, FLOOR_Y), (x, FLOOR_Y - height / 2, z)
        out.append(SceneObject(name, prim, _texture(colour, k, g), anchor))
        if similar >= 2 and colour_name == shared and not (camouflage and k == 0):
            group.append(len(background) + k)
    groups: list[tuple[int, ...]] = [tuple(group)] if len(group) >= 2 else []
    if camouflage:  # the pillar and its background (the wall, or the floor in the open)
        groups.append((0, len(background)))
    return Layout(background + out, tuple(groups), orbit)
