"""Choice lists shared by the library and the CLI, in a module without heavy imports (``laser --help`` stays fast)."""

#: Semantic heads a label map can be read from: the rendered CLIP feature, the label volume, or their average.
HEADS = ("feature", "label", "ensemble")
#: The default head: best of the three on the synthetic scene (docs/benchmarks.md).
DEFAULT_HEAD = "feature"
#: Camera paths of ``laser render``.
PATHS = ("spiral", "train", "test")
#: LERF's canonical negative phrases for relevancy.
CANONICAL_NEGATIVES = ("object", "things", "stuff", "texture")
#: Dense CLIP modes of ``laser features extract``.
CLIP_MODES = ("naclip", "sclip", "maskclip", "clearclip", "vanilla")
