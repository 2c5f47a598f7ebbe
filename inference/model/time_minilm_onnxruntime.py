"""onnxruntime's latency on paraphrase-MiniLM-L3-v2, for `cargo xtask bench` (not a test).

Usage: python time_minilm_onnxruntime.py ONNX N IDS. Runs N embeddings of the comma-separated token ids IDS through
onnxruntime's Python API on the ONNX file as shipped, one thread (burn's flex backend runs on one); prints
{"p50_ns": ..., "runs": N}. The timed call is session.run; the input arrays are made before the clock starts.
"""
import json
import sys
import time

import numpy as np
import onnxruntime


def main():
    onnx, runs, ids = sys.argv[1], int(sys.argv[2]), [int(i) for i in sys.argv[3].split(",")]
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(onnx, options, providers=["CPUExecutionProvider"])
    input_ids = np.asarray([ids], dtype=np.int64)
    feeds = {"input_ids": input_ids, "attention_mask": np.ones_like(input_ids)}
    samples = []
    for _ in range(runs):
        started = time.perf_counter_ns()
        session.run(["461"], feeds)
        samples.append(time.perf_counter_ns() - started)
    samples.sort()
    print(json.dumps({"p50_ns": samples[len(samples) // 2], "runs": runs}))


if __name__ == "__main__":
    main()
