#!/usr/bin/env python3
"""PyTorch peer of bench/train_bench: the same MLP and loss, trained with torch.func.

One optimizer step on a fixed batch: predictions, the input Jacobian of every sample by
vmap(jacrev) (and vmap(jacfwd)), MSE + JAL (seed eq. 1), backward through the Jacobian (the
double backward), Adam. Prints one JSON line per configuration, with the field names of
train_bench (mlp_samples_per_s). Runs on the GPU machine, where PyTorch is installed:

    python3 bench/torch_jal.py --widths 64,256 --depth 3 --batch 4096 --device cuda
"""
import argparse
import json
import time

import torch
from torch import nn
from torch.func import jacfwd, jacrev, vmap

NX, NU = 4, 2  # the double pendulum: state and action sizes


class Mlp(nn.Module):
    """tanh MLP predicting x' = x + f(x, u), as PhyDream's residual model."""

    def __init__(self, width, depth):
        super().__init__()
        layers, inp = [], NX + NU
        for _ in range(depth):
            layers += [nn.Linear(inp, width), nn.Tanh()]
            inp = width
        layers.append(nn.Linear(inp, NX))
        self.net = nn.Sequential(*layers)

    def forward(self, xu):
        return xu[..., :NX] + self.net(xu)


def measure(width, depth, batch, jal, jacobian, device, min_time, compile_model):
    torch.manual_seed(0)
    model = Mlp(width, depth).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    xu = torch.rand(batch, NX + NU, device=device) * 2 - 1
    target = torch.rand(batch, NX, device=device) * 2 - 1
    target_jac = torch.rand(batch, NX, NX + NU, device=device) * 2 - 1
    jac_of = (jacrev if jacobian == "jacrev" else jacfwd)(model)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = torch.mean((model(xu) - target) ** 2)
        if jal:
            J = vmap(jac_of)(xu)  # (batch, NX, NX + NU), differentiable w.r.t. the parameters
            loss = loss + torch.mean((J - target_jac) ** 2)
        loss.backward()
        opt.step()

    if compile_model:
        step = torch.compile(step)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for _ in range(3):  # warm-up (and compilation)
        step()
    sync()
    calls, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_time:
        step()
        calls += 1
    sync()
    secs = time.perf_counter() - t0
    return {
        "bench": "train", "peer": "torch.func", "jacobian": jacobian if jal else None,
        "compiled": compile_model, "device": torch.cuda.get_device_name() if device.startswith("cuda") else "cpu",
        "torch": torch.__version__, "width": width, "depth": depth, "batch": batch,
        "loss": "mse+jal" if jal else "mse", "dtype": "float32",
        "mlp_samples_per_s": calls * batch / secs,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--widths", default="64,256")
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--min-time", type=float, default=1.0)
    p.add_argument("--compile", action="store_true", help="also measure torch.compile")
    a = p.parse_args()
    for width in [int(w) for w in a.widths.split(",")]:
        print(json.dumps(measure(width, a.depth, a.batch, False, None, a.device, a.min_time, False)), flush=True)
        for jacobian in ("jacrev", "jacfwd"):
            print(json.dumps(measure(width, a.depth, a.batch, True, jacobian, a.device, a.min_time, False)), flush=True)
            if a.compile:
                try:
                    print(json.dumps(measure(width, a.depth, a.batch, True, jacobian, a.device, a.min_time, True)), flush=True)
                except Exception as e:  # torch.compile support varies by version
                    print(json.dumps({"peer": "torch.func", "compiled": True, "jacobian": jacobian,
                                      "width": width, "error": str(e)[:200]}), flush=True)


if __name__ == "__main__":
    main()
