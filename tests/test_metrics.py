import torch

from laser_gs.metrics import per_class_iou, pixel_accuracy, psnr, segmentation_scores


def test_iou_on_hand_made_masks_with_absent_class():
    # 2x3 image, 3 classes; class 2 is absent from both GT and prediction: it scores 0 (3D-OVS protocol).
    gt = torch.tensor([[0, 0, 1], [0, 1, 1]])
    pred = torch.tensor([[0, 1, 1], [0, 1, 1]])
    gt_masks = torch.stack([gt == c for c in range(3)])
    iou = per_class_iou(pred, gt_masks)
    assert torch.allclose(iou, torch.tensor([2 / 3, 3 / 4, 0.0], dtype=torch.float64))
    assert abs(pixel_accuracy(pred, gt_masks) - 5 / 6) < 1e-9


def test_unlabelled_pixels_always_count_wrong():
    gt_masks = torch.zeros(2, 1, 2, dtype=torch.bool)
    gt_masks[0, 0, 0] = True  # pixel 1 has no class
    pred = torch.tensor([[0, 0]])
    assert pixel_accuracy(pred, gt_masks) == 0.5


def test_scores_average_over_views_and_classes():
    gt = {0: torch.stack([torch.ones(2, 2, dtype=torch.bool), torch.zeros(2, 2, dtype=torch.bool)]),
          3: torch.stack([torch.zeros(2, 2, dtype=torch.bool), torch.ones(2, 2, dtype=torch.bool)])}
    preds = {0: torch.zeros(2, 2, dtype=torch.long), 3: torch.zeros(2, 2, dtype=torch.long)}
    r = segmentation_scores(preds, gt, ["a", "b"])
    # view 0: IoU a = 1, b = 0 (absent in both); view 3: a = 0, b = 0.
    assert r["miou"] == 25.0 and r["accuracy"] == 50.0
    assert r["per_class"] == {"a": 50.0, "b": 0.0}


def test_psnr():
    a = torch.zeros(4, 4, 3)
    assert abs(psnr(a + 0.1, a) - 20.0) < 1e-4
