#!/usr/bin/env python3
"""Where the squared Jacobian alignment loss gets its weight in a training distribution.

For an experiment config (assets/experiments/*.json) of an articulated model, draws the two
distributions scripts/contact_share.py draws (uniform in the sampling box; along random-action
rollouts, as the trainer's `sampling.mode` `rollout` picks them) and computes each state's true
one-step Jacobian J* = d x' / d[x, u] twice: with contact, as the trainer sees it, and with
contact disabled. What a residual network has to learn is D = J* - [I 0]; eq. 1's squared
metric weighs a sample by |D|_F^2 (at the start of training, when the network's own part is
small). Per distribution, prints:

- mean and median of |D|_F^2 per sample, and the share of the batch total held by the largest
  1 % and 10 % of samples (a heavy tail: a few samples carry the loss);
- the same split by contact (the states where contact changes J*) and, at the same states,
  for J* with contact disabled: what is left when contact is removed, the velocity-dependent
  terms;
- mean |D|_F^2 per quartile of the state's joint-speed norm |qvel|, with contact disabled (how
  the velocity terms grow with speed) and with it (over all states and over contact states);
- the entries (row, column of D) holding the largest shares of the total.

  /usr/bin/python3 scripts/jacobian_tails.py --phydream build/phydream \\
      --config assets/experiments/half_cheetah_rollout.json --n 4096

Needs numpy. The draws are numpy's (seeded), the same as contact_share.py's for the same --n,
--horizon and --seed.
"""
import json
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from contact_share import call, draw_both, fail, parser, run  # noqa: E402


def jacobian(phydream, model, disable, x, u, tmp, tag):
    """(B, nx, nx + nu) Jacobians of one step in x coordinates, and the (B, nx) next states."""
    out = call(phydream, "jacobian", model, disable, x, u, tmp, tag)
    jx = np.load(os.path.join(out, "jac_state.npy"))
    ju = np.load(os.path.join(out, "jac_action.npy"))
    if jx.shape[1] != x.shape[1]:
        fail(f"the model's tangent size {jx.shape[1]} differs from its state size {x.shape[1]} "
             "(a ball or free joint): this script compares Jacobians in x coordinates only")
    return np.concatenate([jx, ju], axis=2), np.load(os.path.join(out, "next_state.npy"))


def tail_shares(w):
    """Shares of sum(w) held by the largest 1 % and 10 % of the entries of w."""
    s = np.sort(w)[::-1]
    total = s.sum()
    if total == 0:
        return 0.0, 0.0
    top = lambda p: float(s[: max(1, int(round(p * len(s))))].sum() / total)  # noqa: E731
    return top(0.01), top(0.10)


def summary(w):
    top1, top10 = tail_shares(w)
    return {"n": int(len(w)), "mean": float(w.mean()) if len(w) else 0.0,
            "median": float(np.median(w)) if len(w) else 0.0, "top1_share": top1,
            "top10_share": top10}


def analyse(phydream, model, disable, x, u, nq, tmp, tag, top_entries):
    jc, nc = jacobian(phydream, model, disable, x, u, tmp, tag + "_c")
    jf, nf = jacobian(phydream, model, sorted(set(disable) | {"contact"}), x, u, tmp, tag + "_f")
    n, k, d = jc.shape
    eye = np.zeros((k, d))
    eye[:, :k] = np.eye(k)
    dc, df = jc - eye, jf - eye
    wc = np.sum(dc * dc, axis=(1, 2))  # |D|_F^2 per sample, with contact
    wf = np.sum(df * df, axis=(1, 2))  # and at the same states without
    touching = np.max(np.abs(nc - nf), axis=1) > 0  # contact changes the step (contact_share.py)
    speed = np.linalg.norm(x[:, nq:], axis=1)
    edges = np.quantile(speed, [0.25, 0.5, 0.75])
    bins = np.digitize(speed, edges)
    quartiles = []
    for b in range(4):
        sel = bins == b
        hit = sel & touching
        quartiles.append({"speed_min": float(speed[sel].min()), "speed_max": float(speed[sel].max()),
                          "mean_no_contact": float(wf[sel].mean()), "mean": float(wc[sel].mean()),
                          "in_contact": float(touching[sel].mean()),
                          "mean_contact_states": float(wc[hit].mean()) if hit.any() else 0.0})
    per_entry = np.sum(dc * dc, axis=0) / wc.sum()
    order = np.argsort(per_entry, axis=None)[::-1][:top_entries]
    entries = [{"row": int(i // d), "col": int(i % d), "share": float(per_entry.flat[i])} for i in order]
    return {
        "states": int(n),
        "in_contact": float(touching.mean()),
        "with_contact": summary(wc),
        "with_contact_contact_states": summary(wc[touching]),
        "with_contact_free_states": summary(wc[~touching]),
        "contact_states_share": float(wc[touching].sum() / wc.sum()),
        "contact_disabled": summary(wf),
        "speed_quartiles": quartiles,
        "largest_entries": entries,
    }


def main():
    ap = parser(__doc__.split("\n\n")[0])
    ap.add_argument("--top-entries", type=int, default=5, help="largest entries of D to list")
    args = ap.parse_args()
    if args.top_entries < 0:
        fail("--top-entries must be >= 0")

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        # four states at least: the speed quartiles
        model, disable, _, box, picked, _ = draw_both(args, 4, tmp)
        nq = int(json.loads(run([args.phydream, "inspect", model, "--json"]))["sizes"]["nq"])
        for name, (x, u) in (("box", box), ("trajectory", picked)):
            results[name] = analyse(args.phydream, model, disable, x, u, nq, tmp, name, args.top_entries)

    for name, r in results.items():
        print(json.dumps({"config": args.config, "distribution": name, **r}))
    out = sys.stderr
    print("\n|D|_F^2 per sample, D = J* - [I 0]:\n", file=out)
    print("| states | Jacobian | samples | mean | median | top 1 % share | top 10 % share |", file=out)
    print("| --- | --- | --- | --- | --- | --- | --- |", file=out)
    for name, r in results.items():
        for label, key in (("with contact", "with_contact"),
                           ("  contact states", "with_contact_contact_states"),
                           ("  contact-free states", "with_contact_free_states"),
                           ("contact disabled", "contact_disabled")):
            s = r[key]
            print(f"| {name} | {label} | {s['n']} | {s['mean']:.3g} | {s['median']:.3g} "
                  f"| {s['top1_share']:.1%} | {s['top10_share']:.1%} |", file=out)
    print("\nmean |D|_F^2 by quartile of |qvel|:\n", file=out)
    print("| states | |qvel| | contact disabled | with contact | in contact | contact states |", file=out)
    print("| --- | --- | --- | --- | --- | --- |", file=out)
    for name, r in results.items():
        for q in r["speed_quartiles"]:
            print(f"| {name} | {q['speed_min']:.2g}-{q['speed_max']:.2g} | {q['mean_no_contact']:.3g} "
                  f"| {q['mean']:.3g} | {q['in_contact']:.0%} | {q['mean_contact_states']:.3g} |", file=out)
    for name, r in results.items():
        tops = ", ".join(f"({e['row']}, {e['col']}) {e['share']:.1%}" for e in r["largest_entries"])
        print(f"\n{name}: contact states hold {r['contact_states_share']:.1%} of the total; "
              f"largest entries (row, col): {tops}", file=out)


if __name__ == "__main__":
    main()
