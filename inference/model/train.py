"""Trains Ampoule's model and writes it as ONNX, with reference vectors from onnxruntime (`cargo xtask train`).

The data: the Wisconsin breast-cancer diagnostic data set that scikit-learn ships (569 patients x 30 features).
The model: standardisation (inside the graph, so clients send raw measurements), then an MLP 30-16-8-2 with ReLU,
softmax probabilities out; its L2 penalty chosen by cross-validation on the training patients. Deterministic: fixed seeds, one BLAS thread (set by xtask), float32 export.

The ONNX graph is written with onnx.helper from the trained weights, using standard operators only (Sub, Div,
MatMul, Add, Relu, Softmax) so that burn-onnx imports it; skl2onnx would emit ai.onnx.ml operators it does not.

Writes, next to this file: ampoule-mlp.onnx, reference.json (inputs and onnxruntime outputs of held-out patients),
limits.json (feature names and the accepted value range of each feature), training.json (accuracy and settings).
"""
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

SEED = 0
HIDDEN = (16, 8)
ALPHAS = [1e-3, 1e-2, 1e-1, 1.0, 10.0]
# Where the artifacts go: next to this file, or AMPOULE_MODEL_OUT (the drift test regenerates into target/).
OUT = os.environ.get("AMPOULE_MODEL_OUT", os.path.dirname(os.path.abspath(__file__)))
REFERENCE_CASES = 24


def build_onnx(scaler, mlp, n_features):
    mean = numpy_helper.from_array(scaler.mean_.astype(np.float32), "mean")
    scale = numpy_helper.from_array(scaler.scale_.astype(np.float32), "scale")
    initializers, nodes, previous = [mean, scale], [], "standardised"
    nodes.append(helper.make_node("Sub", ["features", "mean"], ["centred"]))
    nodes.append(helper.make_node("Div", ["centred", "scale"], ["standardised"]))
    coefs, intercepts = list(mlp.coefs_), list(mlp.intercepts_)
    if coefs[-1].shape[1] == 1:
        # A binary MLPClassifier has one logistic output unit z. Softmax over [0, z] is exactly [1 - s(z), s(z)],
        # so a zero column makes the two-class probabilities with standard operators only.
        coefs[-1] = np.hstack([np.zeros_like(coefs[-1]), coefs[-1]])
        intercepts[-1] = np.concatenate([[0.0], intercepts[-1]])
    layers = len(coefs)
    for i, (w, b) in enumerate(zip(coefs, intercepts)):
        initializers.append(numpy_helper.from_array(w.astype(np.float32), f"w{i}"))
        initializers.append(numpy_helper.from_array(b.astype(np.float32), f"b{i}"))
        nodes.append(helper.make_node("MatMul", [previous, f"w{i}"], [f"mm{i}"]))
        nodes.append(helper.make_node("Add", [f"mm{i}", f"b{i}"], [f"z{i}"]))
        if i < layers - 1:
            nodes.append(helper.make_node("Relu", [f"z{i}"], [f"h{i}"]))
            previous = f"h{i}"
    nodes.append(helper.make_node("Softmax", [f"z{layers - 1}"], ["probabilities"], axis=1))
    graph = helper.make_graph(
        nodes,
        "ampoule_mlp",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, n_features])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, 2])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="ampoule-train")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main():
    data = load_breast_cancer()
    x, y = data.data, data.target
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=SEED, stratify=y)
    scaler = StandardScaler().fit(x_train)
    # The L2 penalty is chosen by 5-fold cross-validation on the training patients only; the held-out patients
    # are touched once, for the reported accuracy.
    search = GridSearchCV(
        MLPClassifier(hidden_layer_sizes=HIDDEN, random_state=SEED, max_iter=2000),
        {"alpha": ALPHAS},
        cv=StratifiedKFold(n_splits=5, shuffle=True, random_state=SEED),
    )
    search.fit(scaler.transform(x_train), y_train)
    mlp = search.best_estimator_
    accuracy = float(mlp.score(scaler.transform(x_test), y_test))

    model = build_onnx(scaler, mlp, x.shape[1])
    path = os.path.join(OUT, "ampoule-mlp.onnx")
    onnx.save(model, path)

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    cases = []
    for features in x_test[:REFERENCE_CASES].astype(np.float32):
        probabilities = session.run(None, {"features": features.reshape(1, -1)})[0][0]
        cases.append({"features": [float(v) for v in features], "probabilities": [float(v) for v in probabilities]})
    expected = mlp.predict_proba(scaler.transform(x_test[:REFERENCE_CASES]))
    got = np.array([c["probabilities"] for c in cases])
    worst = float(np.max(np.abs(got - expected)))
    # float32 ONNX vs float64 scikit-learn: agreement to well within float32 rounding of probabilities.
    assert worst < 1e-4, f"the ONNX graph disagrees with scikit-learn by {worst}"
    agreement = worst

    # Accepted inputs: each feature between 0 and twice its observed maximum (all 30 are non-negative measurements).
    limits = {
        "features": [
            {"name": str(n), "min": 0.0, "max": float(2 * x[:, i].max())} for i, n in enumerate(data.feature_names)
        ],
        "classes": [str(c) for c in data.target_names],
    }
    training = {
        "data": "sklearn.datasets.load_breast_cancer (Wisconsin diagnostic, 569 x 30)",
        "split": "train_test_split(test_size=0.25, stratify=y, random_state=0)",
        "model": f"StandardScaler + MLPClassifier(hidden_layer_sizes={HIDDEN}, alpha={mlp.alpha}, random_state=0)",
        "alpha_chosen_by": f"5-fold stratified cross-validation on the training patients over {ALPHAS}",
        "cross_validation_accuracy": round(float(search.best_score_), 4),
        "held_out_accuracy": round(accuracy, 4),
        "held_out_patients": int(len(y_test)),
        "onnx_vs_sklearn_max_abs_difference": agreement,
        "versions": {"python": sys.version.split()[0], "numpy": np.__version__, "onnx": onnx.__version__,
                     "onnxruntime": onnxruntime.__version__, "scikit-learn": __import__("sklearn").__version__},
    }
    for name, value in [("reference.json", {"cases": cases}), ("limits.json", limits), ("training.json", training)]:
        with open(os.path.join(OUT, name), "w") as f:
            json.dump(value, f, indent=1, sort_keys=True)
            f.write("\n")
    print(json.dumps({"held_out_accuracy": accuracy, "onnx": path}))


if __name__ == "__main__":
    main()
