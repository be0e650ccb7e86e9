"""The digits MLP: ``64 -> 128 -> 128 -> 10`` (ReLU) trained on scikit-learn's 8x8 digits.

scikit-learn ships the 1,797 digit images, so nothing is downloaded. Pixels are scaled to ``[0, 1]``
(the data's own range is ``[0, 16]``), a fixed seed makes the training repeatable, and the model is
written as ``digits_mlp.onnx`` beside this script (float32 weights, as a trained model usually is).
The ONNX file is committed; this script is how it was made::

    python examples/digits_model.py        # prints the test accuracy, rewrites digits_mlp.onnx

Other examples and benchmarks load the ONNX file, so they need no scikit-learn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MODEL = HERE / "digits_mlp.onnx"
WIDTHS = (128, 128)
SEED = 0


def digits() -> tuple[np.ndarray, np.ndarray]:
    """The images as ``x (1797, 64)`` in ``[0, 1]`` and their labels ``(1797,)``."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.data / 16.0, data.target


def train(seed: int = SEED):
    """Train the MLP; returns ``(network, test_accuracy)``."""
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    from milp import Network

    x, labels = digits()
    x_train, x_test, y_train, y_test = train_test_split(x, labels, test_size=0.25, random_state=seed)
    clf = MLPClassifier(hidden_layer_sizes=WIDTHS, max_iter=300, random_state=seed)
    clf.fit(x_train, y_train)
    # scikit-learn multiplies rows by coefs_ (x @ W); the network's maps are W @ x
    layers = [(w.T, b) for w, b in zip(clf.coefs_, clf.intercepts_)]
    network = Network.mlp(layers, output_relu=False, input_names=tuple(f"px{i}" for i in range(64)),
                          output_names=tuple(f"digit{k}" for k in range(10)))
    return network, float(clf.score(x_test, y_test))


def main() -> float:
    from importers import save_onnx

    network, accuracy = train()
    save_onnx(network, MODEL)
    print(f"64-128-128-10 MLP on the digits: test accuracy {accuracy:.3f}, written to {MODEL.name}")
    return accuracy


if __name__ == "__main__":
    main()
