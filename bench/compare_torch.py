#!/usr/bin/env python3
"""Ratios of PhyDream's training throughput to PyTorch torch.func's, from the JSON lines of
bench/train_bench and bench/torch_jal.py measured in the same run on the same device.

    python3 bench/compare_torch.py train_bench.jsonl torch_jal.jsonl
"""
import json
import sys


def lines(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip().startswith("{")]


def main():
    ours = [l for l in lines(sys.argv[1]) if l.get("bench") == "train" and "mlp_samples_per_s" in l]
    peer = [l for l in lines(sys.argv[2]) if "mlp_samples_per_s" in l]
    print("| width | loss | PhyDream kernels | PhyDream samples/s | best torch.func samples/s (how) | ratio |")
    print("| --- | --- | --- | --- | --- | --- |")
    for o in ours:
        same = [p for p in peer if p["width"] == o["width"] and p["loss"] == o["loss"]
                and p["batch"] == o["batch"] and p["depth"] == o["depth"]]
        if not same:
            continue
        best = max(same, key=lambda p: p["mlp_samples_per_s"])
        how = (best.get("jacobian") or "no Jacobian") + (", compiled" if best.get("compiled") else "")
        print(f"| {o['width']} | {o['loss']} | {o.get('kernels', '?')} | {o['mlp_samples_per_s']:.3g} | "
              f"{best['mlp_samples_per_s']:.3g} ({how}) | "
              f"{o['mlp_samples_per_s'] / best['mlp_samples_per_s']:.1f}x |")


if __name__ == "__main__":
    main()
