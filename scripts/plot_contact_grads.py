#!/usr/bin/env python3
"""Plots and tables of a `contact_grad_bench --out DIR` run (docs/contact_gradients.md).

    /usr/bin/python3 scripts/plot_contact_grads.py DIR/contact_gradients.json [--out PLOTS_DIR]

writes, into PLOTS_DIR (default: the JSON file's directory):
    contact_events.png        bounce and two balls: relative error of the final-position gradient
                              against the elastic answer, per mode, against dt and stiffness
    contact_events_phase.png  the same gradients against where in a step the contact begins
    contact_states_hist.png   Finger and half-cheetah: per-state relative error of [A | B] against
                              the reference, per mode
    contact_solver.png        those errors under looser solver tolerances and fewer iterations
    contact_gradients_tables.md  the tables of docs/contact_gradients.md

Needs numpy and matplotlib (Debian: python3-numpy python3-matplotlib, or
scripts/install_deps.sh --plots).
"""
import argparse
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
    sys.exit(f"plot_contact_grads.py: {e}; install python3-matplotlib and python3-numpy "
             "(scripts/install_deps.sh --plots) and run with /usr/bin/python3")

# one style per gradient source, the same in every figure; the exact ones overlap, so each gets
# its own marker and the later ones are drawn smaller on top
STYLE = {
    "ift": dict(color="C0", marker="o", ms=7, label="IFT"),
    "unrolled": dict(color="C1", marker="s", ms=5.5, label="unrolled"),
    "fd": dict(color="C2", marker="^", ms=5, label="FD (per step)"),
    "fd_rollout": dict(color="C4", marker="v", ms=4.5, label="FD (whole rollout)"),
    "mujoco": dict(color="C3", marker="x", ms=6, label="MuJoCo mjd_transitionFD"),
    "ift_phase_mean": dict(color="k", marker=".", ms=6, ls="--", label="IFT, mean over phases"),
    "ift_toi": dict(color="C5", marker="D", ms=5, label="IFT + time-of-impact correction"),
}
MODEL_TITLE = {"bounce": "bounce (ball on floor)", "two_balls": "two balls (head-on)",
               "finger": "Finger", "half_cheetah": "half-cheetah"}


def fmt(x, digits=2):
    """Short scientific notation; '-' for a missing value."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if x == 0:
        return "0"
    if 1e-2 <= abs(x) < 1e3:
        return f"{x:.{digits + 1}g}"
    return f"{x:.{digits - 1}e}".replace("e-0", "e-").replace("e+0", "e")


def load(path):
    with open(path) as f:
        data = json.load(f)
    lines = data["lines"]
    return lines, data.get("distributions", {})


def of_kind(lines, kind, **match):
    return [l for l in lines if l.get("kind") == kind and all(l.get(k) == v for k, v in match.items())]


def err(line, mode, key="rel_error_analytic"):
    m = line["modes"].get(mode)
    if m is None or m.get(key) is None:
        return float("nan")
    return float(m[key])


def meta_of(lines):
    metas = of_kind(lines, "meta")
    return metas[0] if metas else {}


def event_defaults(events):
    """(dt0, k0): the dt and stiffness of the phase sweep, which the 1-D cuts of the grid use."""
    phase = [e for e in events if e["sweep"] == "phase"]
    if phase:
        return phase[0]["dt"], phase[0]["stiffness"]
    grid = [e for e in events if e["sweep"] == "grid"]
    dts = sorted({e["dt"] for e in grid})
    ks = sorted({e["stiffness"] for e in grid})
    return dts[len(dts) // 2], ks[len(ks) // 2]


# ---------------------------------------------------------------------------------------------
# events

def plot_events(lines, path):
    events = of_kind(lines, "event")
    if not events:
        return False
    dt0, k0 = event_defaults(events)
    models = [m for m in ("bounce", "two_balls") if any(e["model"] == m for e in events)]
    fig, axes = plt.subplots(len(models), 3, figsize=(15, 3.7 * len(models)), squeeze=False)
    for row, model in enumerate(models):
        grid = [e for e in events if e["model"] == model and e["sweep"] == "grid"]
        for col, (key, fixed_key, fixed, xlabel) in enumerate(
                [("dt", "stiffness", k0, "timestep dt (s)"),
                 ("stiffness", "dt", dt0, "contact stiffness k (solref -k 0)")]):
            ax = axes[row][col]
            cut = sorted([e for e in grid if e[fixed_key] == fixed], key=lambda e: e[key])
            if not cut:
                ax.set_visible(False)
                continue
            x = np.array([e[key] for e in cut])
            modes = [m for m in STYLE if any(m in e["modes"] for e in cut)]
            for mode in modes:
                st = dict(STYLE[mode])
                ax.plot(x, [err(e, mode) for e in cut], lw=1, alpha=0.9, mfc="none", **st)
            ax.plot(x, [e["soft_prediction_rel_error"] for e in cut], color="0.4", ls=":", lw=1.5,
                    label="soft model, continuous time")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(xlabel)
            ax.set_ylabel("relative error vs elastic gradient")
            fixed_txt = f"k = {fixed:g}" if fixed_key == "stiffness" else f"dt = {fixed:g} s"
            ax.set_title(f"{MODEL_TITLE[model]}, {fixed_txt}, phase {cut[0]['phase']:g}", fontsize=10)
            ax.grid(True, which="major", alpha=0.3)
            if row == 0 and col == 0:
                ax.legend(fontsize=7, loc="upper left")
        # every grid point against k dt T_after: the size of the phase-dependent part of the
        # exact gradient (docs/contact_gradients.md), unstable springs (omega dt >= 2) apart
        ax = axes[row][2]
        norm = float(np.linalg.norm(grid[0]["analytic"]))
        x = np.array([e["stiffness"] * e["dt"] * max(e.get("t_after_s", 0.0), 1e-9) for e in grid])
        stable = np.array([e["omega_dt"] < 2 for e in grid])
        y_ift = np.array([err(e, "ift") for e in grid])
        y_mean = np.array([err(e, "ift_phase_mean") for e in grid])
        y_soft = np.array([e["soft_prediction_rel_error"] for e in grid])
        ax.scatter(x[stable], y_ift[stable], s=30, facecolors="none", edgecolors="C0",
                   label="IFT (= every exact mode), phase 0.5")
        ax.scatter(x[stable], y_mean[stable], s=14, color="k", marker=".", label="IFT, mean over phases")
        ax.scatter(x[stable], y_soft[stable], s=14, color="0.5", marker="_", label="soft model, continuous time")
        ax.scatter(x[~stable], y_ift[~stable], s=30, color="C3", marker="x",
                   label="omega dt >= 2 (unstable spring)")
        xs = np.logspace(math.log10(x.min()), math.log10(x.max()), 20)
        ax.plot(xs, xs / norm, color="C0", ls="--", lw=1, label="k dt T_after / |g| (bound of the phase wiggle)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("k dt T_after (T_after: free flight after the contact)")
        ax.set_ylabel("relative error vs elastic gradient")
        ax.set_title(f"{MODEL_TITLE[model]}: whole dt x k grid", fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("gradient of the final position through one elastic contact "
                 "(all exact modes overlap)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)
    return True


def plot_phase(lines, path):
    events = [e for e in of_kind(lines, "event") if e["sweep"] == "phase"]
    if not events:
        return False
    models = [m for m in ("bounce", "two_balls") if any(e["model"] == m for e in events)]
    fig, axes = plt.subplots(1, len(models), figsize=(5.5 * len(models), 3.8), squeeze=False)
    for ax, model in zip(axes[0], models):
        cut = sorted([e for e in events if e["model"] == model], key=lambda e: e["phase"])
        x = np.array([e["phase"] for e in cut])
        name = cut[0]["entries"][0]
        for mode in [m for m in ("ift", "unrolled", "fd", "fd_rollout", "mujoco", "ift_toi")
                     if m in cut[0]["modes"]]:
            y = [e["modes"][mode]["grad"][0] for e in cut]
            ax.plot(x, y, lw=0.8, mfc="none", **STYLE[mode])
        ax.axhline(cut[0]["analytic"][0], color="k", lw=1, label="elastic (analytic)")
        ax.axhline(cut[0]["soft_prediction"][0], color="0.4", ls=":", lw=1.5,
                   label="soft model, continuous time")
        inner = [e for e in cut if e["phase"] > 0]
        if inner:
            ax.axhline(np.mean([e["modes"]["ift"]["grad"][0] for e in inner]), color="k", ls="--",
                       lw=1, label="IFT, mean over phases")
        ax.set_xlabel("phase of the first contacting step (fraction of dt)")
        ax.set_ylabel(name)
        ax.set_title(f"{MODEL_TITLE[model]}: dt = {cut[0]['dt']:g}, k = {cut[0]['stiffness']:g}",
                     fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True


# ---------------------------------------------------------------------------------------------
# random contact states

HIST_MODES = [("ift", "IFT"), ("unrolled", "unrolled"), ("fd", "FD (per step)"),
              ("mujoco", "MuJoCo mjd_transitionFD"), ("unrolled_vs_ift", "unrolled vs IFT")]


def plot_states(dists, path):
    models = [m for m in ("finger", "half_cheetah") if m in dists]
    if not models:
        return False
    fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 3.8), squeeze=False)
    lo, hi = -17, 2
    bins = np.linspace(lo, hi, 58)
    colors = {"ift": "C0", "unrolled": "C1", "fd": "C2", "mujoco": "C3", "unrolled_vs_ift": "0.3"}
    for ax, model in zip(axes[0], models):
        d = dists[model]
        for key, label in HIST_MODES:
            if key not in d:
                continue
            e = np.array([np.inf if v is None else v for v in d[key]], dtype=float)
            bad = int(np.sum(~np.isfinite(e)))
            v = np.log10(np.clip(e[np.isfinite(e)], 10.0 ** lo, 10.0 ** hi))
            extra = f", {bad} non-finite" if bad else ""
            ax.hist(v, bins=bins, histtype="step", lw=3.5 if key == "ift" else 1.5,
                    alpha=0.45 if key == "ift" else 1.0, color=colors[key],
                    ls="--" if key == "unrolled_vs_ift" else "-", label=f"{label}{extra}")
        ax.set_xlabel("log10 relative error of [A | B] (clipped to [1e-17, 1e2])")
        ax.set_ylabel("states")
        n = len(d.get("ift", d.get("fd", [])))
        ax.set_title(f"{MODEL_TITLE[model]}: {n} contact states, vs extrapolated FD", fontsize=10)
        ax.legend(fontsize=7, loc="upper left")
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True


def plot_solver(lines, path):
    sweep = of_kind(lines, "solver_sweep")
    if not sweep:
        return False
    models = [m for m in ("finger", "half_cheetah") if any(l["model"] == m for l in sweep)]
    fig, axes = plt.subplots(len(models), 2, figsize=(11, 3.5 * len(models)), squeeze=False)
    for row, model in enumerate(models):
        rows = [l for l in sweep if l["model"] == model]
        default_it = max(l["iterations"] for l in rows if l["tolerance"] > 0)
        for col, (key, cut) in enumerate([
                ("tolerance", [l for l in rows if l["iterations"] == default_it]),
                ("iterations", [l for l in rows if l["tolerance"] == 0])]):
            ax = axes[row][col]
            for mode in ("ift", "unrolled", "fd"):
                c = sorted([l for l in cut if l["mode"] == mode], key=lambda l: l[key])
                if not c:
                    continue
                # tolerance 0 is drawn at 1e-12 and labelled "0"
                x = [l[key] if (key != "tolerance" or l[key] > 0) else 1e-12 for l in c]
                st = STYLE[mode]
                ax.plot(x, [l["error_vs_reference"]["median"] for l in c], color=st["color"],
                        marker=st["marker"], mfc="none", lw=1.2, label=f"{st['label']} median")
                ax.plot(x, [l["error_vs_reference"]["max"] for l in c], color=st["color"],
                        marker=st["marker"], ls=":", lw=1, mfc="none", label=f"{st['label']} max")
            ax.set_xscale("log")
            ax.set_yscale("log")
            if key == "tolerance":
                ticks = [1e-12, 1e-10, 1e-8, 1e-6, 1e-4, 1e-2]
                ax.set_xticks(ticks)
                ax.set_xticklabels(["0"] + [f"1e{int(math.log10(t))}" for t in ticks[1:]])
                ax.set_xlabel(f"solver tolerance ({default_it} iterations at most)")
            else:
                ax.set_xlabel("solver iterations (tolerance 0)")
            ax.set_ylabel("relative error vs reference")
            ax.set_title(f"{MODEL_TITLE[model]} ({cut[0]['states'] if cut else 0} states)", fontsize=10)
            ax.grid(True, alpha=0.3)
            if row == 0 and col == 1:
                ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True


# ---------------------------------------------------------------------------------------------
# tables

EVENT_COLS = ["ift", "unrolled", "fd", "fd_rollout", "mujoco", "ift_phase_mean", "ift_toi"]


def tables(lines, dists):
    out = []
    meta = meta_of(lines)
    if meta:
        out.append(f"Run: {meta.get('date', '?')}, {meta.get('cpu', '?')}, {meta.get('cores', '?')} "
                   f"cores, MuJoCo {meta.get('mujoco_version', '-')}, command "
                   f"`{' '.join(meta.get('argv', []))}`.\n")
    events = of_kind(lines, "event")
    if events:
        dt0, k0 = event_defaults(events)
        for model in ("bounce", "two_balls"):
            grid = [e for e in events if e["model"] == model and e["sweep"] == "grid"]
            if not grid:
                continue
            e0 = grid[0]
            out.append(f"#### {model}: gradient of the final position, T = {e0['horizon_s']:g} s "
                       f"(entries {', '.join(e0['entries'])}; elastic answer "
                       f"{', '.join(fmt(v) for v in e0['analytic'])})\n")
            for key, fixed_key, fixed in (("dt", "stiffness", k0), ("stiffness", "dt", dt0)):
                cut = sorted([e for e in grid if e[fixed_key] == fixed], key=lambda e: e[key])
                if not cut:
                    continue
                cols = [m for m in EVENT_COLS if m in cut[0]["modes"]]
                out.append(f"Relative error against the elastic gradient, {fixed_key} = {fixed:g}, "
                           f"phase {cut[0]['phase']:g}:\n")
                out.append("| " + key + " | omega dt | soft model (continuous time) | " +
                           " | ".join(cols) + " | restitution | final-position error (m) |")
                out.append("|" + " --- |" * (len(cols) + 5))
                for e in cut:
                    out.append(f"| {e[key]:g} | {fmt(e['omega_dt'])} | {fmt(e['soft_prediction_rel_error'])} | " +
                               " | ".join(fmt(err(e, m)) for m in cols) +
                               f" | {fmt(e['restitution'], 4)} | {fmt(e['final_pos_error'])} |")
                out.append("")
            # the whole grid for IFT (the exact modes agree) and the phase mean
            ks = sorted({e["stiffness"] for e in grid})
            dts = sorted({e["dt"] for e in grid})
            out.append("Whole grid, IFT at phase 0.5 / IFT averaged over phases (rows dt, columns k):\n")
            out.append("| dt \\ k | " + " | ".join(f"{k:g}" for k in ks) + " |")
            out.append("|" + " --- |" * (len(ks) + 1))
            for dt in dts:
                cells = []
                for k in ks:
                    e = next((e for e in grid if e["dt"] == dt and e["stiffness"] == k), None)
                    cells.append("-" if e is None else f"{fmt(err(e, 'ift'))} / {fmt(err(e, 'ift_phase_mean'))}")
                out.append(f"| {dt:g} | " + " | ".join(cells) + " |")
            out.append("")
            # largest disagreement among the exact modes, everywhere but the aligned phase 0
            worst = 0.0
            for e in [e for e in events if e["model"] == model and e["phase"] > 0]:
                g_ift = np.array([np.nan if v is None else v for v in e["modes"]["ift"]["grad"]], dtype=float)
                for m in ("unrolled", "fd", "fd_rollout", "mujoco"):
                    if m in e["modes"]:
                        g = np.array([np.nan if v is None else v for v in e["modes"][m]["grad"]], dtype=float)
                        if np.all(np.isfinite(g)) and np.all(np.isfinite(g_ift)):
                            worst = max(worst, float(np.max(np.abs(g - g_ift)) / max(1e-300, np.max(np.abs(g_ift)))))
            out.append(f"Largest relative difference between IFT and any other mode over every "
                       f"configuration with phase > 0: {fmt(worst)}.\n")
        phase = [e for e in events if e["sweep"] == "phase"]
        for model in ("bounce", "two_balls"):
            cut = sorted([e for e in phase if e["model"] == model], key=lambda e: e["phase"])
            if not cut:
                continue
            cols = [m for m in ("ift", "unrolled", "fd", "fd_rollout", "mujoco", "ift_toi")
                    if m in cut[0]["modes"]]
            out.append(f"#### {model}: phase sweep at dt = {cut[0]['dt']:g}, k = {cut[0]['stiffness']:g} "
                       f"({cut[0]['entries'][0]}; elastic {fmt(cut[0]['analytic'][0])}, soft model "
                       f"{fmt(cut[0]['soft_prediction'][0])})\n")
            out.append("| phase | steps in contact | " + " | ".join(cols) + " |")
            out.append("|" + " --- |" * (len(cols) + 2))
            for e in cut:
                out.append(f"| {e['phase']:g} | {e['contact_steps']} | " +
                           " | ".join(fmt(e["modes"][m]["grad"][0], 4) for m in cols) + " |")
            inner = [e for e in cut if e["phase"] > 0]
            if inner:
                mean = np.mean([e["modes"]["ift"]["grad"][0] for e in inner])
                out.append(f"| mean over phases > 0 | | {fmt(mean, 4)} |" + " |" * (len(cols) - 1))
            out.append("")

    samples = {l["model"]: l for l in of_kind(lines, "states_sample")}
    refs = {l["model"]: l for l in of_kind(lines, "states_reference")}
    checks = of_kind(lines, "check")
    errs = of_kind(lines, "state_errors")
    if errs:
        out.append("#### Random contact states: relative error of [A | B] per state\n")
        for model, s in samples.items():
            r = refs.get(model, {})
            parity = next((c for c in checks if c["model"] == model and c["check"] == "mujoco_vs_phydream_next_state"), None)
            rev = next((c for c in checks if c["model"] == model and c["check"] == "ift_reverse_vs_forward_sweeps"), None)
            txt = (f"- {model}: {s['states']} states from {s['trajectories']} trajectories "
                   f"({s['steps']} steps, {fmt(100 * s['contact_step_fraction'])} % of them in contact), "
                   f"dt {s['dt']:g}, {s['cone']} cones, solver tolerance {s['tolerance']:g}, "
                   f"{s['iterations']} iterations")
            if r:
                txt += (f"; reference step halving: median {fmt(r['fd_step_halving']['median'])}, "
                        f"max {fmt(r['fd_step_halving']['max'])}, {r['smooth_states']} smooth states")
            if parity:
                txt += (f"; MuJoCo's next state vs PhyDream's: max {fmt(parity['max_abs_diff']['max'])}, "
                        f"MuJoCo finds contacts at {fmt(100 * parity['mujoco_contact_fraction'])} % of the states")
            if rev:
                txt += f"; IFT reverse vs forward sweeps: {fmt(rev['max_rel_diff'])}"
            closed = next((c for c in checks if c["model"] == model and c["check"] == "ift_analytic_vs_forward_sweeps"), None)
            if closed:
                txt += f"; IFT closed form vs forward sweeps: {fmt(closed['max_rel_diff'])}"
            out.append(txt + ".")
        out.append("")
        out.append("| model | mode | against | states | non-finite | median | p90 | p99 | max | "
                   "max, smooth states | > 1e-6 | > 1e-3 | largest norm of [A B] |")
        out.append("|" + " --- |" * 13)
        order = {"ift": 0, "unrolled": 1, "fd": 2, "mujoco": 3}
        for l in sorted([l for l in errs if l["subset"] == "all"],
                        key=lambda l: (l["model"], l["reference"] != "fd_tight", order.get(l["mode"], 9))):
            e = l["error"]
            against = "reference" if l["reference"] == "fd_tight" else l["reference"].upper()
            norm = fmt(l["norms"]["largest_fro_norm"], 3) if "norms" in l else ""
            smooth = next((m["error"] for m in errs if m["subset"] == "smooth" and m["model"] == l["model"]
                           and m["mode"] == l["mode"] and m["reference"] == l["reference"]), None)
            out.append(f"| {l['model']} | {l['mode']} | {against} | {e['n']} | {e['nonfinite']} | "
                       f"{fmt(e['median'])} | {fmt(e['p90'])} | {fmt(e['p99'])} | {fmt(e['max'])} | "
                       f"{fmt(smooth['max']) if smooth else '-'} | "
                       f"{fmt(100 * e['frac_above_1e-06'])} % | {fmt(100 * e['frac_above_0.001'])} % | {norm} |")
        out.append("")

    timing = of_kind(lines, "timing")
    if timing:
        out.append("#### Time per Jacobian, one thread (ratio: MuJoCo's time / PhyDream's, same run)\n")
        out.append("| model | mode | states | µs per call | MuJoCo µs per call | ratio |")
        out.append("| --- | --- | --- | --- | --- | --- |")
        order = {"step": 0, "ift_analytic": 1, "ift": 2, "ift_reverse": 3, "unrolled": 4, "fd": 5}
        for l in sorted(timing, key=lambda l: (l["model"], order.get(l["mode"], 9))):
            mj = l.get("mujoco_per_s")
            name = {"step": "step (vs mj_step)", "ift_analytic": "IFT (closed form, the default)",
                    "ift": "IFT (forward sweeps)",
                    "ift_reverse": "IFT (reverse sweeps)"}.get(l["mode"], l["mode"])
            out.append(f"| {l['model']} | {name} | {l['states']} | {fmt(l['us_per_call'], 3)} | "
                       f"{fmt(1e6 / mj, 3) if mj else '-'} | {fmt(l.get('ratio_vs_mujoco'), 3)} |")
        out.append("")

    sweep = of_kind(lines, "solver_sweep")
    if sweep:
        out.append("#### Solver settings: error against the converged reference (median / max, and "
                   "the share of states above 1e-3), and the unrolled Jacobian against FD at the same "
                   "settings\n")
        out.append("| model | tolerance | iterations | IFT | unrolled | FD | unrolled vs same-settings FD | "
                   "next-state error (max) |")
        out.append("|" + " --- |" * 8)
        keyset = []
        for l in sweep:
            k = (l["model"], l["tolerance"], l["iterations"])
            if k not in keyset:
                keyset.append(k)
        for model, tol, it in keyset:
            by = {l["mode"]: l for l in sweep if (l["model"], l["tolerance"], l["iterations"]) == (model, tol, it)}

            def cell(mode, key="error_vs_reference"):
                if mode not in by:
                    return "-"
                e = by[mode][key]
                bad = f", {e['nonfinite']} non-finite" if e["nonfinite"] else ""
                above = e["frac_above_0.001"]
                many = f" ({fmt(100 * above)} % > 1e-3)" if above > 0 else ""
                return f"{fmt(e['median'])} / {fmt(e['max'])}{many}{bad}"
            prim = next(iter(by.values()))["next_state_error"]["max"]
            out.append(f"| {model} | {tol:g} | {it} | {cell('ift')} | {cell('unrolled')} | {cell('fd')} | "
                       f"{cell('unrolled', 'error_vs_fd_same_settings')} | {fmt(prim)} |")
        out.append("")
    unavailable = of_kind(lines, "unavailable")
    for u in unavailable:
        out.append(f"- mode {u['mode']} was unavailable: {u['reason']}")
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", help="DIR/contact_gradients.json from contact_grad_bench --out DIR")
    parser.add_argument("--out", help="where to write the PNGs and the tables (default: the JSON's directory)")
    args = parser.parse_args()
    if not os.path.isfile(args.json):
        sys.exit(f"plot_contact_grads.py: {args.json}: no such file; run "
                 "contact_grad_bench --out DIR first")
    out = args.out or os.path.dirname(os.path.abspath(args.json))
    os.makedirs(out, exist_ok=True)
    lines, dists = load(args.json)
    written = []
    for name, fn in [("contact_events.png", lambda p: plot_events(lines, p)),
                     ("contact_events_phase.png", lambda p: plot_phase(lines, p)),
                     ("contact_states_hist.png", lambda p: plot_states(dists, p)),
                     ("contact_solver.png", lambda p: plot_solver(lines, p))]:
        if fn(os.path.join(out, name)):
            written.append(name)
    md = tables(lines, dists)
    with open(os.path.join(out, "contact_gradients_tables.md"), "w") as f:
        f.write(md)
    written.append("contact_gradients_tables.md")
    print(f"wrote {out}/: {', '.join(written)}")


if __name__ == "__main__":
    main()
