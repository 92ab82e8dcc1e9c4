"""A reference point for a dataset: logistic regression on the raw inputs."""
from __future__ import annotations

from visualizer.engine.data.base import Dataset


def logistic_baseline(dataset: Dataset, max_iter: int = 300) -> float:
    """Validation accuracy of a logistic regression fitted on the flattened raw training inputs.

    If a network does not beat this clearly, it has not learned features beyond pixels.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    if dataset.y_train.dim() > 1:
        raise ValueError("the logistic-regression baseline needs one label per sample, not one per token")
    x_train = dataset.x_train.reshape(len(dataset.x_train), -1).numpy()
    x_val = dataset.x_val.reshape(len(dataset.x_val), -1).numpy()
    clf = LogisticRegression(max_iter=max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x_train, dataset.y_train.numpy())
    return float(clf.score(x_val, dataset.y_val.numpy()))
