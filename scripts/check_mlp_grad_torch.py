#!/usr/bin/env python3
"""Checks `phydream mlp-grad` against PyTorch autograd: the same network and loss written in
torch (float64), its input Jacobian by torch.func.jacrev and the loss gradient by autograd through
it (the double backward), compared with PhyDream's hand-written gradient for every activation,
output form (residual or not), loss (mse, jal, both), JAL metric and Jacobian scaling.

An independent implementation, not a test: PyTorch is a tool from PyPI here, never a dependency of
the engine (pip install torch numpy). Prints one line per case and exits 1 if any case differs by
more than --tol (largest |g - g_torch| over the largest |g_torch|, per tensor).

    scripts/check_mlp_grad_torch.py --phydream build/phydream
"""
import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch.func import jacrev, vmap

SCALE_FLOOR = 1e-12  # training/mlp.h: kScaleRangeFloor
ZSCORE_EPS = 1e-12   # training/mlp.h: kZscoreEps
FROB_FLOOR = 1e-30   # training/mlp.h: kFrobeniusFloor
HUBER_DELTA = 0.5    # the huber cases' delta (the random errors lie on both sides of it)

TRAIN_CONFIG = {
    "env": "double_pendulum",
    "model": {"hidden": [16, 12], "activation": "tanh", "residual": True},
    "loss": {"lambda_mse": 1, "lambda_jal": 1},
    "optimizer": {"lr": 1e-3},
    "train": {"steps": 5, "batch": 64, "log_every": 5, "stats_samples": 1024},
}


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    return r.stdout


def network(model, params):
    """f(xu) for one sample, as training/mlp.h defines it."""
    arch, norm = model["architecture"], model["normalization"]
    nx = arch["nx"]
    act = {"tanh": torch.tanh, "silu": torch.nn.functional.silu,
           "softplus": torch.nn.functional.softplus, "relu": torch.relu}[arch["activation"]]
    in_mean, in_std = (torch.tensor(norm[k], dtype=torch.float64) for k in ("in_mean", "in_std"))
    out_mean, out_std = (torch.tensor(norm[k], dtype=torch.float64) for k in ("out_mean", "out_std"))
    layers = len(arch["hidden"]) + 1

    def f(xu):
        h = (xu - in_mean) / in_std
        for l in range(layers):
            h = params[f"W{l}"] @ h + params[f"b{l}"]
            if l < layers - 1:
                h = act(h)
        y = out_mean + out_std * h
        return xu[:nx] + y if arch["residual"] else y
    return f


def scale(J, how, jac_std):
    if how == "none":
        return J
    if how == "minmax":
        lo, hi = J.min(), J.max()
        width = hi - lo
        return (J - lo) / width if width.item() > SCALE_FLOOR else (J - lo) / SCALE_FLOOR
    if how == "zscore":
        return (J - J.mean()) / torch.sqrt(J.var(unbiased=False) + ZSCORE_EPS)
    if how == "std":
        s = torch.tensor(jac_std, dtype=torch.float64).reshape(J.shape[1:])
        return J / torch.where(s > SCALE_FLOOR, s, torch.ones_like(s))
    raise ValueError(how)


def torch_loss(model, params, X, Y, Jt, lam_mse, lam_jal, metric, scaling, jac_std):
    f = network(model, params)
    loss = lam_mse * torch.mean((vmap(f)(X) - Y) ** 2)
    if lam_jal != 0:
        D = scale(vmap(jacrev(f))(X), scaling, jac_std) - scale(Jt, scaling, jac_std)
        if metric == "mse":
            jal = torch.mean(D ** 2)
        elif metric == "l1":
            jal = torch.mean(torch.abs(D))
        elif metric == "huber":
            # PyTorch's huber_loss is half of PhyDream's h(r) (r^2 below delta)
            jal = 2 * torch.nn.functional.huber_loss(D, torch.zeros_like(D), delta=HUBER_DELTA)
        else:  # frobenius: mean over samples of |D|_F
            jal = torch.mean(torch.sqrt(torch.clamp((D ** 2).sum(dim=(1, 2)), min=FROB_FLOOR)))
        loss = loss + lam_jal * jal
    return loss


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--phydream", default="build/phydream")
    p.add_argument("--batch", type=int, default=48)
    p.add_argument("--tol", type=float, default=1e-9)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    rng = np.random.default_rng(a.seed)
    tmp = Path(tempfile.mkdtemp(prefix="mlp_grad_torch_"))
    worst, failed = 0.0, 0
    try:
        (tmp / "train.json").write_text(json.dumps(TRAIN_CONFIG))
        run([a.phydream, "train", "--config", tmp / "train.json", "--out", tmp / "run",
             "--backend", "cpu", "--quiet"])
        base = next(d for d in (tmp / "run").rglob("model.json")).parent
        model0 = json.loads((base / "model.json").read_text())
        arch = model0["architecture"]
        nx, d = arch["nx"], arch["nx"] + arch["nu"]
        X = rng.uniform(-2, 2, (a.batch, d))
        Y = rng.normal(size=(a.batch, nx))
        J = rng.normal(size=(a.batch, nx, d))
        for name, arr in (("X", X), ("Y", Y), ("J", J)):
            np.save(tmp / f"{name}.npy", arr)
        cases = []
        for activation in ("tanh", "silu", "softplus"):
            for residual in (True, False):
                for loss in ("mse", "jal", "both"):
                    metrics = ("mse",) if loss == "mse" else ("mse", "frobenius", "l1", "huber")
                    scalings = ("none",) if loss == "mse" else ("none", "minmax", "zscore", "std")
                    cases += [(activation, residual, loss, m, s) for m in metrics for s in scalings]
        for i, (activation, residual, loss, metric, scaling) in enumerate(cases):
            # the trained tensors, perturbed so that every weight matters, and random statistics
            ck = tmp / f"ck{i}"
            shutil.copytree(base, ck)
            model = json.loads((ck / "model.json").read_text())
            model["architecture"].update(activation=activation, residual=residual)
            norm = model["normalization"]
            norm["in_mean"] = rng.normal(scale=0.3, size=d).tolist()
            norm["in_std"] = rng.uniform(0.5, 2.0, size=d).tolist()
            norm["out_mean"] = rng.normal(scale=0.3, size=nx).tolist()
            norm["out_std"] = rng.uniform(0.5, 2.0, size=nx).tolist()
            model["loss"]["jac_std"] = rng.uniform(0.2, 3.0, size=nx * d).tolist()
            (ck / "model.json").write_text(json.dumps(model))
            params = {}
            for t in model["tensors"]:
                if t["name"][0] in "Wb":
                    v = np.load(ck / t["file"]).astype(np.float64)
                    v = v + rng.normal(scale=0.2, size=v.shape)
                    np.save(ck / t["file"], v)
                    params[t["name"]] = torch.tensor(v, requires_grad=True)
            out = tmp / f"out{i}"
            run([a.phydream, "mlp-grad", "--checkpoint", ck, "--inputs", tmp / "X.npy",
                 "--targets", tmp / "Y.npy", "--target-jacobians", tmp / "J.npy", "--out", out,
                 "--loss", loss, "--metric", metric, "--scaling", scaling]
                + (["--huber-delta", str(HUBER_DELTA)] if metric == "huber" else []))
            ours = json.loads((out / "loss.json").read_text())
            lt = torch_loss(model, params, torch.tensor(X), torch.tensor(Y), torch.tensor(J),
                            ours["lambda_mse"], ours["lambda_jal"], metric, scaling,
                            model["loss"]["jac_std"])
            lt.backward()
            err = abs(ours["loss"] - lt.item()) / max(abs(lt.item()), 1e-300)
            for name, v in params.items():
                g_ours = np.load(out / f"grad_{name}.npy")
                g_torch = v.grad.numpy()
                err = max(err, np.abs(g_ours - g_torch).max() / max(np.abs(g_torch).max(), 1e-300))
            worst = max(worst, err)
            ok = err <= a.tol
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {activation:8s} residual={int(residual)} loss={loss:4s} "
                  f"metric={metric:9s} scaling={scaling:6s} loss={lt.item():.6e} "
                  f"rel.err={err:.2e}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(cases) - failed} of {len(cases)} cases within {a.tol:g} of PyTorch autograd "
          f"(worst {worst:.2e}; torch {torch.__version__})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
