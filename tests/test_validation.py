"""Every bad-input case of a scene folder gives a SceneError naming the file, and exit 2 from the CLI."""

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from laser_gs_cli.main import laser
from laser_gs.data import load_scene
from laser_gs.errors import SceneError


def _expect(path, needle: str, file_hint: str):
    with pytest.raises(SceneError) as err:
        load_scene(path)
    msg = str(err.value)
    assert needle in msg, msg
    assert file_hint in msg, msg
    # The CLI shows the same message on one line with exit code 2 and no traceback.
    result = CliRunner().invoke(laser, ["inspect", str(path)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: ") and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert file_hint in result.output


def test_missing_folder(tmp_path):
    _expect(tmp_path / "nope", "does not exist", "nope")


def test_folder_without_scene_files(tmp_path):
    _expect(tmp_path, "not a scene folder", str(tmp_path))


def test_missing_image_folder(scene_copy):
    shutil.rmtree(scene_copy / "images")
    _expect(scene_copy, "no images/ or images_N/ folder", str(scene_copy))


def test_unreadable_image(scene_copy):
    (scene_copy / "images" / "03.png").write_bytes(b"this is not a png")
    _expect(scene_copy, "cannot read image", "03.png")


def test_truncated_image(scene_copy):
    p = scene_copy / "images" / "02.png"
    p.write_bytes(p.read_bytes()[:200])
    _expect(scene_copy, "cannot read image", "02.png")


def test_mis_sized_image(scene_copy):
    Image.new("RGB", (50, 40)).save(scene_copy / "images" / "04.png")
    _expect(scene_copy, "image is 50x40", "04.png")


def test_pose_count_differs_from_image_count(scene_copy):
    arr = np.load(scene_copy / "poses_bounds.npy")
    np.save(scene_copy / "poses_bounds.npy", arr[:-1])
    _expect(scene_copy, "7 poses but 8 images", "poses_bounds.npy")


def test_non_finite_poses(scene_copy):
    arr = np.load(scene_copy / "poses_bounds.npy")
    arr[2, 3] = np.nan
    np.save(scene_copy / "poses_bounds.npy", arr)
    _expect(scene_copy, "non-finite", "poses_bounds.npy")


def test_malformed_poses_file(scene_copy):
    np.save(scene_copy / "poses_bounds.npy", np.zeros((8, 12)))
    _expect(scene_copy, "expected an [N, 17] array", "poses_bounds.npy")


def test_empty_classes(scene_copy):
    (scene_copy / "segmentations" / "classes.txt").write_text("\n  \n")
    _expect(scene_copy, "class list is empty", "classes.txt")


def test_duplicate_classes(scene_copy):
    (scene_copy / "segmentations" / "classes.txt").write_text("red apple\nbrick wall\nred apple\n")
    _expect(scene_copy, "duplicate class 'red apple'", "classes.txt")


def test_mask_missing_for_a_class(scene_copy, generated):
    view = generated[1].annotated[0]
    (scene_copy / "segmentations" / str(view) / "blue mug.png").unlink()
    _expect(scene_copy, "mask for class 'blue mug' is missing", "blue mug.png")


def test_mask_of_wrong_size(scene_copy, generated):
    view = generated[1].annotated[1]
    Image.new("L", (40, 40)).save(scene_copy / "segmentations" / str(view) / "red book.png")
    _expect(scene_copy, "mask is 40x40", "red book.png")


def test_full_resolution_mask_is_resized(scene_copy, generated):
    """A mask at a larger size with the image's aspect ratio is accepted (NEAREST resize)."""
    view = generated[1].annotated[0]
    p = scene_copy / "segmentations" / str(view) / "green ball.png"
    big = Image.open(p).resize((96 * 4, 72 * 4), Image.NEAREST)
    big.save(p)
    scene = load_scene(scene_copy)
    cls = scene.classes.index("green ball")
    assert np.array_equal(scene.gt_masks[view][cls].numpy(), generated[1].labels[view].numpy() == cls)


def test_annotated_index_out_of_range(scene_copy, generated):
    src = scene_copy / "segmentations" / str(generated[1].annotated[0])
    shutil.copytree(src, scene_copy / "segmentations" / "8")
    _expect(scene_copy, "annotated index 8 is out of range", "8")


def test_annotation_folder_not_an_index(scene_copy, generated):
    src = scene_copy / "segmentations" / str(generated[1].annotated[0])
    shutil.copytree(src, scene_copy / "segmentations" / "test_view0")
    _expect(scene_copy, "not an image index", "test_view0")


def _mini_blender(root, frames, angle=0.69):
    (root / "train").mkdir(parents=True)
    Image.new("RGBA", (16, 16), (255, 0, 0, 255)).save(root / "train" / "r_0.png")
    (root / "transforms_train.json").write_text(json.dumps({"camera_angle_x": angle, "frames": frames}))


def test_blender_path_escape_is_refused(tmp_path):
    root = tmp_path / "scene"
    _mini_blender(root, [{"file_path": "../../etc/passwd", "transform_matrix": np.eye(4).tolist()}])
    _expect(root, "points outside the scene folder", "transforms_train.json")


def test_blender_non_finite_pose(tmp_path):
    m = np.eye(4)
    m[0, 3] = np.inf
    root = tmp_path / "scene"
    _mini_blender(root, [{"file_path": "./train/r_0", "transform_matrix": m.tolist()}])
    _expect(root, "non-finite", "transforms_train.json")


def test_blender_missing_image(tmp_path):
    root = tmp_path / "scene"
    _mini_blender(root, [{"file_path": "./train/r_9", "transform_matrix": np.eye(4).tolist()}])
    _expect(root, "none of the images the frames list exists (e.g. './train/r_9')", "transforms_train.json")


def test_blender_bad_json(tmp_path):
    root = tmp_path / "scene"
    root.mkdir()
    (root / "transforms_train.json").write_text("{not json")
    _expect(root, "cannot parse JSON", "transforms_train.json")
