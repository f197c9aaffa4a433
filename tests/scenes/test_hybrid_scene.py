"""The "hybrid" scene: continuous moves, a discrete grab, and what each costs or pays."""

from __future__ import annotations

import numpy as np
import pytest

from gym_unity_il.scenes import make_scene

BEHAVIOR = "Hybrid?team=0"


def act(scene, move, grab) -> None:
    scene.act({BEHAVIOR: (np.asarray(move, np.float32).reshape(1, 2), np.array([[grab]], np.int32))})


def test_moves_are_continuous_and_bounded():
    scene = make_scene("hybrid", max_steps=0, seed=0)
    before = scene.observe()[BEHAVIOR].observations[0][0]
    act(scene, [0.5, -3.0], 0)  # out-of-range values are clipped to [-1, 1]
    after = scene.observe()[BEHAVIOR].observations[0][0]
    np.testing.assert_allclose(after[:2] - before[:2], [0.05, -0.1], atol=1e-6)
    np.testing.assert_allclose(after[4:], after[2:4] - after[:2], atol=1e-6)
    for _ in range(30):
        act(scene, [1.0, 1.0], 0)
    assert scene.observe()[BEHAVIOR].observations[0][0, :2].tolist() == pytest.approx([1.0, 1.0])


def test_grab_pays_only_within_reach():
    scene = make_scene("hybrid", max_steps=0, seed=1)
    offset = scene.observe()[BEHAVIOR].observations[0][0, 4:]
    assert np.linalg.norm(offset) > 0.3
    act(scene, [0.0, 0.0], 1)  # a grab from afar misses
    assert scene.observe()[BEHAVIOR].rewards.tolist() == pytest.approx([-0.11])
    act(scene, [0.0, 0.0], 0)
    assert scene.observe()[BEHAVIOR].rewards.tolist() == pytest.approx([-0.01])
    for _ in range(40):
        offset = scene.observe()[BEHAVIOR].observations[0][0, 4:]
        if np.linalg.norm(offset) < 0.1:
            break
        act(scene, np.clip(offset / 0.1, -1, 1), 0)
    assert np.linalg.norm(offset) < 0.1
    act(scene, [0.0, 0.0], 1)
    batch = scene.observe()[BEHAVIOR]
    assert batch.done.tolist() == [True, False] and not batch.max_step_reached[0]
    assert batch.rewards[0] == pytest.approx(1.0)
