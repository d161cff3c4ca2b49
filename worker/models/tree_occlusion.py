"""Pure: a histogram gradient boosting classifier's class probabilities for rows and for
occluded copies of them, the same numbers as predicting every row, for a fraction of the cost.

An explanation occludes one group of features at a time (sets them to the typical deal's
values, :mod:`worker.models.deal_explain`): one more block of rows per group, each run
through every tree, most of the cost of a champion's tick. But occluding a group can change a
tree's output only for a row whose path through that tree tests one of the group's features:
every other test on the path reads an unchanged feature, so the row reaches the same leaf. So
each tree runs once over the deals' own rows, recording the leaf each reaches; an occluded row
runs again only through the trees whose path it took tests the group (scikit-learn's own tree
code, fed node numbers for leaf values). The raw prediction is then summed as scikit-learn sums
it (zero plus the baseline, then each tree in turn) and turned into probabilities by the
classifier's own loss: the same floating-point operations in the same order, so the same
probabilities to the last bit (``tests/models/test_tree_occlusion.py`` holds it to that).

Only a fitted ``HistGradientBoostingClassifier`` without a preprocessor (no categorical
features) qualifies (:func:`forest_of` returns None otherwise: the caller predicts every row).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Forest", "Occlusion", "forest_of", "occluded_proba"]


@dataclass(frozen=True, slots=True)
class _Tree:
    column: int  # the raw prediction's column it adds to (its class)
    leaf_of: Any  # a TreePredictor whose node values are the node numbers
    values: np.ndarray  # node -> value added
    path_groups: np.ndarray  # node -> bit mask of the groups tested on the way to it
    groups: int  # the groups any of its splits tests


@dataclass(frozen=True, slots=True)
class Forest:
    """A classifier's trees, in scikit-learn's order of summation, ready for occlusion."""

    classifier: Any
    trees: tuple[_Tree, ...]
    group_of: dict[int, int]  # feature -> bit of its group
    known_cat_bitsets: Any
    f_idx_map: Any


@dataclass(frozen=True, slots=True)
class Occlusion:
    """One block of occluded rows: the deals ``moved`` (indices) with ``columns`` set to the
    reference's values."""

    columns: Sequence[int]
    moved: np.ndarray
    bit: int


_FORESTS: weakref.WeakKeyDictionary[Any, dict[tuple[tuple[int, ...], ...], Forest]] = (
    weakref.WeakKeyDictionary()
)


def forest_of(classifier: Any, groups: Sequence[Sequence[int]]) -> Forest | None:
    """The classifier's :class:`Forest` for these feature ``groups`` (built once per
    classifier), or None when it is not a fitted histogram gradient boosting without a
    preprocessor."""
    if not all(hasattr(classifier, a) for a in ("_predictors", "_baseline_prediction", "_loss")):
        return None
    if getattr(classifier, "_preprocessor", None) is not None:
        return None
    key = tuple(tuple(g) for g in groups)
    try:
        cached = _FORESTS.setdefault(classifier, {})
    except TypeError:  # not weakly referenceable: build each time
        cached = {}
    if key not in cached:
        try:
            cached[key] = _build(classifier, key)
        except (AttributeError, TypeError, ValueError, ImportError):
            # scikit-learn's internals moved: every row is predicted (the same figures)
            return None
    return cached[key]


def _build(classifier: Any, groups: tuple[tuple[int, ...], ...]) -> Forest:
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

    group_of = {f: 1 << g for g, cols in enumerate(groups) for f in cols}
    trees = []
    for iteration in classifier._predictors:
        for column, predictor in enumerate(iteration):
            nodes = predictor.nodes
            numbered = nodes.copy()
            numbered["value"] = np.arange(len(nodes), dtype=np.float64)
            leaf_of = TreePredictor(
                numbered, predictor.binned_left_cat_bitsets, predictor.raw_left_cat_bitsets
            )
            path = _path_groups(nodes, group_of)
            splits = nodes["feature_idx"][nodes["is_leaf"] == 0]
            tested = 0
            for f in splits.tolist():
                tested |= group_of.get(int(f), 0)
            trees.append(_Tree(column, leaf_of, nodes["value"].copy(), path, tested))
    known, f_idx_map = classifier._bin_mapper.make_known_categories_bitsets()
    return Forest(classifier, tuple(trees), group_of, known, f_idx_map)


def _path_groups(nodes: np.ndarray, group_of: dict[int, int]) -> np.ndarray:
    """Per node, the groups of the features tested on the way from the root to it."""
    masks = np.zeros(len(nodes), dtype=np.int64)
    stack = [0]
    while stack:
        node = stack.pop()
        if nodes["is_leaf"][node]:
            continue
        bit = masks[node] | group_of.get(int(nodes["feature_idx"][node]), 0)
        for child in (int(nodes["left"][node]), int(nodes["right"][node])):
            masks[child] = bit
            stack.append(child)
    return masks


def _threads() -> int:
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

    return int(_openmp_effective_n_threads())


def _leaves(forest: Forest, tree: _Tree, rows: np.ndarray, threads: int) -> np.ndarray:
    found = tree.leaf_of.predict(rows, forest.known_cat_bitsets, forest.f_idx_map, threads)
    return found.astype(np.intp)


def _raw(forest: Forest, values: Any) -> np.ndarray:
    """scikit-learn's ``_raw_predict`` from each tree's output (``values(t)``: tree ``t``'s per
    row): zero plus the baseline, then each tree's output in order."""
    clf = forest.classifier
    first = values(0)
    raw = np.zeros(
        (len(first), clf.n_trees_per_iteration_), dtype=clf._baseline_prediction.dtype, order="F"
    )
    raw += clf._baseline_prediction
    for t, tree in enumerate(forest.trees):
        raw[:, tree.column] += values(t)
    return raw


def occluded_proba(
    forest: Forest, rows: np.ndarray, months: int, reference: np.ndarray, blocks: list[Occlusion]
) -> np.ndarray:
    """``predict_proba`` of ``rows`` (deal-major, ``months`` rows per deal) followed by each
    block of occluded rows, in order: what the classifier gives for them stacked."""
    rows = np.ascontiguousarray(rows, dtype=np.float64)
    threads = _threads()
    trees = forest.trees
    leaves = [_leaves(forest, tree, rows, threads) for tree in trees]
    values = [tree.values[leaves[t]] for t, tree in enumerate(trees)]
    base = _raw(forest, values.__getitem__)
    raws = [base]
    per_deal = rows.reshape(-1, months, rows.shape[1])
    offsets = np.arange(months)
    for block in blocks:
        own = (block.moved[:, None] * months + offsets).ravel()
        # trees whose path tests the group for at least one of the block's rows: the others
        # give every occluded row its own row's output, and so the same sum
        again = [
            t
            for t, tree in enumerate(trees)
            if tree.groups & block.bit and (tree.path_groups[leaves[t][own]] & block.bit).any()
        ]
        if not again:
            raws.append(base[own])
            continue
        occluded = per_deal[block.moved].copy()
        occluded[:, :, block.columns] = reference[block.columns]
        occluded = occluded.reshape(-1, rows.shape[1])
        # a row whose path did not test the group reaches the same leaf again: running the
        # whole block through such a tree costs less than picking the rows out
        changed = {t: trees[t].values[_leaves(forest, trees[t], occluded, threads)] for t in again}
        whole = len(own) == len(rows)
        raws.append(
            _raw(
                forest,
                lambda t, c=changed, w=whole, o=own: (
                    c[t] if t in c else values[t] if w else values[t][o]
                ),
            )
        )
    return forest.classifier._loss.predict_proba(np.asfortranarray(np.concatenate(raws)))
