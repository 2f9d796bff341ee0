#!/usr/bin/env python3
"""How much contact a training distribution holds.

For an experiment config (assets/experiments/*.json) of an articulated model, draws states the
two ways the trainer can (training/sampler.cpp): uniform in the sampling box, and along
random-action rollouts of `horizon` steps from such states, one step picked uniformly in
0..horizon (a diverged state, non-finite or more than 100 box widths outside the box, falls
back to the rollout's start, as the trainer's pick_state does). Each state gets a uniform
random action and is stepped twice, with and without contact (`phydream step --disable
contact`): it counts as in contact when the two next states differ, and the largest entry of their difference says how much contact changes the
step. Prints one JSON object per distribution and a table.

  /usr/bin/python3 scripts/contact_share.py --phydream build/phydream \\
      --config assets/experiments/half_cheetah_rollout.json --n 4096

Needs numpy. The draws are numpy's (seeded), not the trainer's own random streams: the
distributions are the same, the samples are not.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np


def fail(msg):
    print(f"{os.path.basename(sys.argv[0])}: error: {msg}", file=sys.stderr)
    sys.exit(2)


def run(cmd):
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if res.returncode != 0:
        fail(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stderr.strip()}")
    return res.stdout


def load_config(path):
    try:
        with open(path) as f:
            cfg = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        fail(f"cannot read config '{path}': {e}")
    base = cfg.get("base", cfg)
    model = base.get("env_model")
    if not model:
        fail(f"'{path}': base.env_model is missing (this script needs an articulated model)")
    model = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(path)), model))
    sampling = base.get("sampling", {})
    for key in ("state_low", "state_high"):
        if key not in sampling:
            fail(f"'{path}': base.sampling.{key} is missing")
    return model, sampling, base.get("disable", [])


def action_box(phydream, model, sampling):
    if "action_low" in sampling and "action_high" in sampling:
        return np.array(sampling["action_low"], float), np.array(sampling["action_high"], float)
    info = json.loads(run([phydream, "inspect", model, "--json"]))
    lo, hi = [], []
    for a in info["actuators"]:
        if not a.get("ctrllimited", False):
            fail(f"actuator '{a['name']}' has no ctrlrange: give sampling.action_low/high in the config")
        lo.append(a["ctrlrange"][0])
        hi.append(a["ctrlrange"][1])
    return np.array(lo, float), np.array(hi, float)


def call(phydream, command, model, disable, x, u, tmp, tag):
    """`phydream COMMAND` (step, jacobian) on states x and actions u; returns its output folder."""
    xs, us, out = (os.path.join(tmp, f"{tag}_{n}") for n in ("x.npy", "u.npy", "out"))
    np.save(xs, x)
    np.save(us, u)
    cmd = [phydream, command, "--model", model, "--state", xs, "--action", us, "--out", out]
    if disable:
        cmd += ["--disable", ",".join(disable)]
    run(cmd)
    return out


def step(phydream, model, disable, x, u, tmp, tag):
    out = call(phydream, "step", model, disable, x, u, tmp, tag)
    return np.load(os.path.join(out, "next_state.npy"))


def draw_states(phydream, model, disable, lo, hi, alo, ahi, n, T, rng, tmp):
    """n states uniform in [lo, hi] and n picked along random-action rollouts of T steps from
    other such states, as the trainer picks them, each with a uniform random action; returns
    ((box states, their actions), (trajectory states, their actions), share fallen back)."""
    nx, nu = len(lo), len(alo)
    box = rng.uniform(lo, hi, (n, nx))
    box_u = rng.uniform(alo, ahi, (n, nu))
    x0 = rng.uniform(lo, hi, (n, nx))
    acts = rng.uniform(alo, ahi, (n, T, nu))
    np.save(os.path.join(tmp, "x0.npy"), x0)
    np.save(os.path.join(tmp, "acts.npy"), acts)
    cmd = [phydream, "rollout", "--model", model, "--state", os.path.join(tmp, "x0.npy"),
           "--actions", os.path.join(tmp, "acts.npy"), "--out", os.path.join(tmp, "roll")]
    if disable:
        cmd += ["--disable", ",".join(disable)]
    run(cmd)
    states = np.load(os.path.join(tmp, "roll", "states.npy"))  # (n, T + 1, nx)
    t = np.minimum((rng.uniform(size=n) * (T + 1)).astype(int), T)
    picked = states[np.arange(n), t]
    reach = 100.0 * (hi - lo)  # training/pipeline.h: kRolloutDivergedWidths
    ok = np.all(np.isfinite(picked) & (picked >= lo - reach) & (picked <= hi + reach), axis=1)
    picked[~ok] = x0[~ok]
    return (box, box_u), (picked, rng.uniform(alo, ahi, (n, nu))), float(np.mean(~ok))


def share(phydream, model, disable, x, u, tmp, tag):
    with_contact = step(phydream, model, disable, x, u, tmp, tag + "_c")
    without = step(phydream, model, sorted(set(disable) | {"contact"}), x, u, tmp, tag + "_f")
    diff = np.max(np.abs(with_contact - without), axis=1)
    touching = diff > 0
    eff = diff[touching]
    q = (lambda p: float(np.quantile(eff, p))) if eff.size else (lambda p: 0.0)
    return {
        "states": int(len(x)),
        "in_contact": float(np.mean(touching)),
        "effect_median": q(0.5),
        "effect_p90": q(0.9),
        "effect_max": float(eff.max()) if eff.size else 0.0,
        "effect_over_1e-2": float(np.mean(diff > 1e-2)),
    }


def parser(description):
    """The options both scripts share: --phydream, --config, --n, --horizon, --seed."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--phydream", default="build/phydream", help="the phydream binary")
    ap.add_argument("--config", required=True, help="experiment config (assets/experiments/*.json)")
    ap.add_argument("--n", type=int, default=4096, help="states per distribution")
    ap.add_argument("--horizon", type=int, default=0,
                    help="rollout steps (0: the config's sampling.horizon, else 20)")
    ap.add_argument("--seed", type=int, default=1)
    return ap


def draw_both(args, min_n, tmp):
    """Checks parser()'s arguments and draws the two distributions of args.config (draw_states);
    returns (model, disable, horizon, box, trajectory, share fallen back)."""
    if args.n < min_n:
        fail(f"--n must be >= {min_n}")
    if not os.access(args.phydream, os.X_OK):
        fail(f"--phydream '{args.phydream}' is not an executable")
    model, sampling, disable = load_config(args.config)
    if "contact" in disable:
        fail(f"'{args.config}' disables contact: nothing to measure")
    lo = np.array(sampling["state_low"], float)
    hi = np.array(sampling["state_high"], float)
    alo, ahi = action_box(args.phydream, model, sampling)
    T = args.horizon or int(sampling.get("horizon", 20))
    if T < 1:
        fail("the horizon must be >= 1")
    rng = np.random.default_rng(args.seed)
    box, picked, fell_back = draw_states(args.phydream, model, disable, lo, hi, alo, ahi, args.n, T, rng, tmp)
    return model, disable, T, box, picked, fell_back


def main():
    args = parser(__doc__.split("\n\n")[0]).parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        model, disable, T, box, picked, fell_back = draw_both(args, 1, tmp)
        results["box"] = share(args.phydream, model, disable, *box, tmp, "box")
        traj = share(args.phydream, model, disable, *picked, tmp, "traj")
        traj["horizon"] = T
        traj["fell_back_to_start"] = fell_back
        results["trajectory"] = traj

    for name, r in results.items():
        print(json.dumps({"config": args.config, "distribution": name, **r}))
    print("\n| states | in contact | effect median | effect p90 | effect > 1e-2 |", file=sys.stderr)
    print("| --- | --- | --- | --- | --- |", file=sys.stderr)
    for name, r in results.items():
        print(f"| {name} | {r['in_contact']:.1%} | {r['effect_median']:.2e} | {r['effect_p90']:.2e} "
              f"| {r['effect_over_1e-2']:.1%} |", file=sys.stderr)


if __name__ == "__main__":
    main()
