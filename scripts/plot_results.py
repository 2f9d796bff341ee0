#!/usr/bin/env python3
"""Plots of a `phydream experiment` output directory, after the seed's Figures 5-8.

    /usr/bin/python3 scripts/plot_results.py RUNS_DIR [--out PLOTS_DIR]

writes, into RUNS_DIR/plots (or PLOTS_DIR):
    training_curves.png   loss terms over training steps, geometric mean and 95% CI over seeds
                          (Fig. 8)
    rollout_error.png     median rollout MSE against horizon (Fig. 6)
    ood.png               one-step and rollout error as the state box grows (Fig. 7)
    jacobians.png         predicted and true Jacobians at one state, per variant (Fig. 5)
The curves over seeds are geometric means with the 95% CI of the mean of log10 (log axes).

Needs numpy and matplotlib (Debian: python3-numpy python3-matplotlib, or
scripts/install_deps.sh --plots).
"""
import argparse
import csv
import json
import math
import os
import sys

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
except ImportError as e:  # pragma: no cover - environment problem, not a code path
    sys.exit(f"plot_results.py: {e}; install python3-matplotlib and python3-numpy "
             "(scripts/install_deps.sh --plots) and run with /usr/bin/python3")

# two-sided 95% Student-t quantiles for 1..30 degrees of freedom
T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
       2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
       2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def mean_ci(samples):
    """Mean and 95% CI half-width along axis 0 of a (seeds, points) array."""
    a = np.asarray(samples, dtype=float)
    n = a.shape[0]
    mean = np.nanmean(a, axis=0)
    if n < 2:
        return mean, np.zeros_like(mean)
    sd = np.nanstd(a, axis=0, ddof=1)
    t = T95[n - 2] if n - 1 <= 30 else 1.96
    return mean, t * sd / math.sqrt(n)


def log_mean_ci(samples):
    """Geometric mean and its 95% CI band (low, high) along axis 0, for a log axis: errors that
    vary by orders of magnitude between seeds would give an arithmetic band reaching below 0."""
    a = np.log10(np.maximum(np.asarray(samples, dtype=float), 1e-30))
    mean, ci = mean_ci(a)
    return 10 ** mean, 10 ** (mean - ci), 10 ** (mean + ci)


def colors(variants):
    """One colour per variant, the same in every panel."""
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {v: cycle[i % len(cycle)] for i, v in enumerate(variants)}


def value(x):
    return float("nan") if x is None else float(x)


def load(runs_dir):
    with open(os.path.join(runs_dir, "results.json")) as f:
        results = json.load(f)
    variants = list(results["variants"].keys())
    runs = {}
    for v in variants:
        vdir = os.path.join(runs_dir, "runs", v)
        runs[v] = []
        for seed_dir in sorted(os.listdir(vdir)):
            d = os.path.join(vdir, seed_dir)
            with open(os.path.join(d, "eval.json")) as f:
                ev = json.load(f)
            with open(os.path.join(d, "metrics.csv")) as f:
                rows = list(csv.DictReader(f))
            runs[v].append({"eval": ev, "metrics": rows})
    return results, variants, runs


def plot_training(variants, runs, path):
    color = colors(variants)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for term, ax in zip(["loss", "mse", "jal"], axes):
        for v in variants:
            curves = [[float(r[term]) for r in run["metrics"]] for run in runs[v]]
            steps = [int(r["step"]) for r in runs[v][0]["metrics"]]
            length = min(len(c) for c in curves)
            trimmed = np.asarray([c[:length] for c in curves])
            if np.all(trimmed == 0):
                continue  # the term is not trained (its weight is 0)
            # on the log axis, the mean and CI of log10: batch losses of models with stiff
            # constraints jump by orders of magnitude, and an arithmetic CI would reach below 0
            mean, low, high = log_mean_ci(trimmed)
            ax.plot(steps[:length], mean, label=v, color=color[v])
            ax.fill_between(steps[:length], low, high, color=color[v], alpha=0.2)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title({"loss": "total loss", "mse": "MSE (next state)",
                      "jal": "JAL (Jacobian)"}[term])
        ax.legend()
    fig.suptitle("training loss on each batch (geometric mean and 95% CI over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_rollouts(variants, runs, path):
    color = colors(variants)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for v in variants:
        curves = [[value(m) for m in run["eval"]["rollout"]["mse_median"]] for run in runs[v]]
        mean, low, high = log_mean_ci(curves)
        h = np.arange(1, len(mean) + 1)
        ax.plot(h, mean, label=v, color=color[v])
        ax.fill_between(h, low, high, color=color[v], alpha=0.2)
    ax.set_yscale("log")
    ax.set_xlabel("rollout horizon (steps)")
    ax.set_ylabel("median over environments of the state MSE")
    ax.set_title("open-loop rollout error (geometric mean and 95% CI over seeds)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_ood(variants, runs, path):
    color = colors(variants)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for key, ax, title in [("one_step_mse", axes[0], "one-step MSE"),
                           ("rollout_mse_median", axes[1], "rollout MSE at the OOD horizon (median)")]:
        for v in variants:
            factors = [row["factor"] for row in runs[v][0]["eval"]["ood"]]
            curves = [[value(row[key]) for row in run["eval"]["ood"]] for run in runs[v]]
            mean, low, high = log_mean_ci(curves)
            ax.errorbar(factors, mean, yerr=[mean - low, high - mean], marker="o", capsize=3,
                        label=v, color=color[v])
        ax.set_yscale("log")
        ax.set_xlabel("state box scale (1 = the training box)")
        ax.set_title(title)
        ax.legend()
    fig.suptitle("out-of-distribution error (geometric mean and 95% CI over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_jacobians(variants, runs, path):
    first = runs[variants[0]][0]["eval"]["jacobian_examples"][0]
    truth = np.asarray(first["truth"])
    nx = len(first["x"])
    cols = truth.size // nx
    panels = [("simulator", truth.reshape(nx, cols))]
    for v in variants:
        ex = runs[v][0]["eval"]["jacobian_examples"][0]
        panels.append((v, np.asarray(ex["model"]).reshape(nx, cols)))
    lim = max(np.max(np.abs(p)) for _, p in panels)
    # a few entries much larger than the rest (contact, joint limits) would wash the others
    # out on a linear scale: then the colours are symmetric-logarithmic, linear below 1 % of
    # the largest entry
    magnitudes = np.abs(truth[truth != 0])
    heavy = magnitudes.size > 0 and lim > 20 * np.percentile(magnitudes, 90)
    norm = (matplotlib.colors.SymLogNorm(linthresh=0.01 * lim, vmin=-lim, vmax=lim) if heavy
            else matplotlib.colors.Normalize(vmin=-lim, vmax=lim))
    # numbers in the cells only while they stay legible
    annotate = nx * cols <= 64
    side = 3.4 if annotate else max(3.4, 0.22 * cols)
    fig, axes = plt.subplots(1, len(panels), figsize=(side * len(panels), side * nx / cols + 0.8))
    for k, (ax, (name, mat)) in enumerate(zip(axes, panels)):
        im = ax.imshow(mat, cmap="RdBu_r", norm=norm)
        ax.set_title(name)
        ax.set_xlabel("d / d[x, u]")
        if k == 0:
            ax.set_ylabel("x' entry")
        if annotate:
            for (i, j), val in np.ndenumerate(mat):
                ax.text(j, i, f"{val:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=axes, shrink=0.8, label="symlog scale" if heavy else None)
    fig.suptitle("Jacobian of the next state at one evaluation state (seed 0)")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs_dir", help="output directory of `phydream experiment`")
    parser.add_argument("--out", help="where to write the PNGs (default RUNS_DIR/plots)")
    args = parser.parse_args()
    if not os.path.isfile(os.path.join(args.runs_dir, "results.json")):
        sys.exit(f"plot_results.py: {args.runs_dir}: no results.json; is it the output of "
                 "`phydream experiment`?")
    out = args.out or os.path.join(args.runs_dir, "plots")
    os.makedirs(out, exist_ok=True)
    _, variants, runs = load(args.runs_dir)
    plot_training(variants, runs, os.path.join(out, "training_curves.png"))
    plot_rollouts(variants, runs, os.path.join(out, "rollout_error.png"))
    plot_ood(variants, runs, os.path.join(out, "ood.png"))
    plot_jacobians(variants, runs, os.path.join(out, "jacobians.png"))
    print(f"wrote {out}/training_curves.png, rollout_error.png, ood.png, jacobians.png")


if __name__ == "__main__":
    main()
