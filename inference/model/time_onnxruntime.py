"""onnxruntime's latency on the reference inputs, for `cargo xtask bench` (not a test).

Usage: python time_onnxruntime.py N. Runs N single-input inferences through onnxruntime's Python API, one thread
(burn's flex backend runs on one), cycling through the inputs of reference.json; prints {"p50_ns": ..., "runs": N}.
The timed call is session.run, as an application would call it; the input array is made before the clock starts.
"""
import json
import os
import sys
import time

import numpy as np
import onnxruntime

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    runs = int(sys.argv[1])
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        os.path.join(HERE, "ampoule-mlp.onnx"), options, providers=["CPUExecutionProvider"]
    )
    name = session.get_inputs()[0].name
    with open(os.path.join(HERE, "reference.json")) as f:
        cases = json.load(f)["cases"]
    inputs = [np.asarray([c["features"]], dtype=np.float32) for c in cases]
    samples = []
    for i in range(runs):
        x = inputs[i % len(inputs)]
        started = time.perf_counter_ns()
        session.run(None, {name: x})
        samples.append(time.perf_counter_ns() - started)
    samples.sort()
    print(json.dumps({"p50_ns": samples[len(samples) // 2], "runs": runs}))


if __name__ == "__main__":
    main()
