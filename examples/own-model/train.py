"""The bring-your-own-model example (docs/models.md): a model Ampoule does not ship, made the way a user's would be.

The data: the iris flowers that scikit-learn ships (150 flowers x 4 measurements in cm, 3 species). The model:
multinomial logistic regression, written as ONNX with onnx.helper from the fitted weights using standard operators
only (MatMul, Add, Softmax), so that burn-onnx imports it. Deterministic: one BLAS thread (set by xtask), a fixed
split, float32 export.

Writes, next to this file (or into AMPOULE_MODEL_OUT): iris.onnx, iris-limits.json (each measurement's name and
accepted range, and the species as the output's labels), iris-reference.json (held-out flowers and onnxruntime's
probabilities for them). `cargo xtask train` runs it; a test checks that it reproduces the committed files.
"""
import json
import os

import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

OUT = os.environ.get("AMPOULE_MODEL_OUT", os.path.dirname(os.path.abspath(__file__)))
REFERENCE_CASES = 12


def build_onnx(model, n_features, n_classes):
    weights = numpy_helper.from_array(model.coef_.T.astype(np.float32), "weights")
    bias = numpy_helper.from_array(model.intercept_.astype(np.float32), "bias")
    nodes = [
        helper.make_node("MatMul", ["measurements", "weights"], ["scores"]),
        helper.make_node("Add", ["scores", "bias"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "iris",
        [helper.make_tensor_value_info("measurements", TensorProto.FLOAT, [1, n_features])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, n_classes])],
        [weights, bias],
    )
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="ampoule-example")
    onnx_model.ir_version = 8
    onnx.checker.check_model(onnx_model)
    return onnx_model


def main():
    data = load_iris()
    x, y = data.data.astype(np.float32), data.target
    x_train, x_test, y_train, _ = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    model = LogisticRegression(max_iter=1000).fit(x_train, y_train)
    path = os.path.join(OUT, "iris.onnx")
    onnx.save(build_onnx(model, x.shape[1], len(data.target_names)), path)

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    cases = []
    for row in x_test[:REFERENCE_CASES]:
        probabilities = session.run(None, {"measurements": row.reshape(1, -1)})[0][0]
        cases.append({"features": [float(v) for v in row], "probabilities": [float(p) for p in probabilities]})
    names = [n.replace(" (cm)", "") for n in data.feature_names]
    limits = {
        # Zero to twice the largest measurement in the data set: anything beyond is a unit error, not a flower.
        "features": [{"name": n, "min": 0.0, "max": round(2.0 * float(x[:, i].max()), 4)} for i, n in enumerate(names)],
        "classes": [str(c) for c in data.target_names],
    }
    for name, value in [("iris-limits.json", limits), ("iris-reference.json", {"cases": cases})]:
        with open(os.path.join(OUT, name), "w") as f:
            json.dump(value, f, indent=1, sort_keys=True)
            f.write("\n")
    print(json.dumps({"onnx": path, "reference_cases": len(cases)}))


if __name__ == "__main__":
    main()
