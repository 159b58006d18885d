"""Class colours: distinct, and never contradicting a colour word in a class name."""

from __future__ import annotations

import colorsys

import numpy as np

from laser_gs.visualize import COLOUR_WORDS, legend, palette


def _hue_light(rgb) -> tuple[float, float, float]:
    return colorsys.rgb_to_hls(*(np.asarray(rgb) / 255.0))


def test_colour_words_get_their_colour_and_others_stay_distinct():
    names = ["brick wall", "wooden floor", "red apple", "red book", "blue mug", "green ball", "Grey pillar"]
    pal = palette(names)
    assert pal.shape == (7, 3) and len({tuple(c) for c in pal}) == 7
    for name, colour in zip(names, pal):
        word = next((w for w in name.lower().split() if w in COLOUR_WORDS), None)
        if word is None:
            continue
        hue, light, sat = _hue_light(colour)
        want_hue, _ = COLOUR_WORDS[word]
        if want_hue is None:
            assert sat < 0.05, (name, colour)
        else:
            assert min(abs(hue - want_hue), 1 - abs(hue - want_hue)) < 0.03 and sat > 0.3, (name, colour)
    # the colourless classes are not drawn in a hue a colour word claims
    for colour in pal[:2]:
        hue = _hue_light(colour)[0]
        assert all(min(abs(hue - COLOUR_WORDS[w][0]), 1 - abs(hue - COLOUR_WORDS[w][0])) > 0.05
                   for w in ("red", "blue", "green")), colour


def test_two_classes_of_one_colour_differ_in_lightness():
    a, b = palette(["red apple", "red book"])
    assert abs(_hue_light(a)[1] - _hue_light(b)[1]) > 0.1


def test_legend_text_is_large():
    img = legend(["a", "b", "c"], height=10)
    assert img.shape[0] >= 3 * 24 and img.shape[1] >= 200
