"""Ratios, targets (issue 7) and the printed / Markdown tables of one benchmark invocation."""

from __future__ import annotations

from typing import Any

TARGET_LIMIT_RATIO = 1.3
TARGET_BASELINE_A_RATIO = 0.7
TARGET_RED_SECONDS = {"process": 5.0, "docker": 8.0}
TARGET_HARNESS_MIB = 150.0
TARGET_CONCURRENT_RUNS = 4


def _median(figure: Any) -> float | None:
    if isinstance(figure, dict) and "median" in figure:
        return float(figure["median"])
    return None


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _ratio(top: float | None, bottom: float | None) -> float | None:
    return round(top / bottom, 2) if top is not None and bottom else None


def _target(name: str, value: float | None, limit: float, unit: str = "") -> dict[str, Any]:
    return {
        "target": name,
        "value": value,
        "limit": limit,
        "unit": unit,
        "met": None if value is None else value <= limit,
    }


def derive(results: dict[str, Any]) -> dict[str, Any]:
    """Ratios staging / limit and staging / baselines, and each target met or missed."""
    base = results.get("baselines", {})
    a_green = _median(_get(base, "a", "green"))
    b_green = _median(_get(base, "b", "green"))
    derived: dict[str, Any] = {}
    for backend, figures in results.get("backends", {}).items():
        if "skipped" in figures:
            continue
        green = _median(_get(figures, "green", "wall"))
        limit = _median(_get(figures, "limit", "limit"))
        ratios: dict[str, Any] = {
            "green_vs_limit": _ratio(green, limit),
            "green_vs_baseline_a": _ratio(green, a_green),
            "green_vs_baseline_b": _ratio(green, b_green),
        }
        targets = [
            _target(
                "time to green / physical limit", ratios["green_vs_limit"], TARGET_LIMIT_RATIO, "x"
            ),
            _target(
                "time to green / baseline (a)",
                ratios["green_vs_baseline_a"],
                TARGET_BASELINE_A_RATIO,
                "x",
            ),
        ]
        for case, red in (figures.get("red") or {}).items():
            seconds = _median(_get(red, "wall"))
            targets.append(
                _target(f"time to red, {case}", seconds, TARGET_RED_SECONDS[backend], "s")
            )
            for which in ("a", "b"):
                other = _get(base, which, "red", case)
                if _median(_get(other, "wall")) is not None:
                    capped = _get(other, "outcome") == "capped"
                    key = f"red_{case}_vs_baseline_{which}"
                    ratios[key] = _ratio(seconds, _median(_get(other, "wall")))
                    if capped:  # the baseline's time is only a lower bound
                        ratios[key + "_at_most"] = True
        rss = [
            _get(figures, "green", "harness_peak_mib", "max"),
            *(_get(r, "harness_peak_mib", "max") for r in (figures.get("red") or {}).values()),
            _get(
                figures, "scale", "concurrent_runs", str(TARGET_CONCURRENT_RUNS), "harness_peak_mib"
            ),
        ]
        seen = [float(v) for v in rss if isinstance(v, int | float)]
        targets.append(
            _target("harness peak RSS", max(seen) if seen else None, TARGET_HARNESS_MIB, "MiB")
        )
        failed = _get(
            figures, "scale", "concurrent_runs", str(TARGET_CONCURRENT_RUNS), "runs_failed"
        )
        targets.append(
            _target(f"{TARGET_CONCURRENT_RUNS} concurrent runs: failures", failed, 0, "runs")
        )
        derived[backend] = {
            "ratios": ratios,
            "targets": targets,
            "overhead": overhead(figures),
        }
    return derived


# The run's phases that do the limit's work, and the limit component each one matches.
_MATCHED = {
    "services": "slower_alone",
    "worker": "worker_to_polling",
    "pipelines": "pipeline_alone",
}


def overhead(figures: dict[str, Any]) -> dict[str, float]:
    """Where time to green exceeds the limit, in seconds (medians).

    Matched phases are compared with their limit component (`worker` vs the worker alone);
    every other part of the run (start-up, workspace, preflight, setup, checks, teardown) is
    work the limit does not contain at all.
    """
    breakdown = _get(figures, "green", "breakdown") or {}
    limit = figures.get("limit") or {}
    out: dict[str, float] = {}
    for phase, fig in breakdown.items():
        seconds = _median(fig)
        if seconds is None:
            continue
        if phase in _MATCHED:
            alone = _median(limit.get(_MATCHED[phase]))
            if alone is not None:
                out[f"{phase} - {_MATCHED[phase]}"] = round(seconds - alone, 3)
        else:
            out[phase] = round(seconds, 3)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def _fmt(figure: Any, unit: str = "s", digits: int = 2) -> str:
    if not isinstance(figure, dict):
        return "-"
    if "error" in figure:
        return "error"
    if "median" not in figure:
        return "-"
    if figure.get("n", 1) == 1:
        return f"{figure['median']:.{digits}f} {unit}"
    low, high = f"{figure['min']:.{digits}f}", f"{figure['max']:.{digits}f}"
    return f"{figure['median']:.{digits}f} {unit} ({low}-{high})"


def _grid(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def tables(results: dict[str, Any]) -> str:
    parts: list[str] = []
    opts = results.get("options", {})
    parts.append(
        f"staging benchmark · median (min-max) of {opts.get('runs')} runs after "
        f"{opts.get('warmup')} warm-up · {results.get('machine', {}).get('cpus')} CPUs · "
        f"load at start of each section: "
        + ", ".join(f"{k} {v['loadavg_1m']}" for k, v in list(results.get("load", {}).items())[:3])
        + " …"
    )
    for backend, figures in results.get("backends", {}).items():
        if "skipped" in figures:
            parts.append(f"\n[{backend}] skipped: {figures['skipped']}")
            continue
        rows: list[list[str]] = []
        green = figures.get("green", {})
        rows.append(["time to green (staging run)", _fmt(_get(green, "wall"))])
        for name, fig in (_get(green, "breakdown") or {}).items():
            rows.append([f"  {name}", _fmt(fig)])
        for case, red in (figures.get("red") or {}).items():
            rows.append([f"time to red: {case}", _fmt(_get(red, "wall"))])
        limit = figures.get("limit", {})
        for key in ("slower_alone", "worker_to_polling", "pipeline_alone", "limit"):
            rows.append([f"limit: {key.replace('_', ' ')}", _fmt(_get(limit, key))])
        for key in ("postgres_alone", "temporal_alone", "both_ready", "services_teardown"):
            rows.append([f"services: {key.replace('_', ' ')}", _fmt(_get(limit, key))])
        if isinstance((limit or {}).get("first_ready_fresh_state"), float | int):
            rows.append(
                ["services: first run, fresh state", f"{limit['first_ready_fresh_state']:.2f} s"]
            )
        rows.append(["harness peak RSS", _fmt(_get(green, "harness_peak_mib"), "MiB", 0)])
        rows.append(
            ["app + services peak RSS", _fmt(_get(green, "children_total_peak_mib"), "MiB", 0)]
        )
        sc = figures.get("scale") or {}
        for n, fig in (_get(sc, "triggers_one_environment") or {}).items():
            rows.append(
                [
                    f"{n} concurrent trigger(s), one worker",
                    f"{_fmt(fig.get('wall'))} · children {fig.get('children_total_peak_mib')} MiB",
                ]
            )
        for n, fig in (_get(sc, "concurrent_runs") or {}).items():
            rows.append(
                [
                    f"{n} concurrent staging run(s)",
                    f"{_fmt(fig.get('wall'))} · harness {fig.get('harness_peak_mib')} MiB each, "
                    f"children {fig.get('children_total_peak_mib')} MiB · "
                    f"failed {fig.get('runs_failed')}",
                ]
            )
        for key in ("error",):
            for sec, fig in figures.items():
                if isinstance(fig, dict) and key in fig:
                    rows.append([f"{sec}: ERROR", str(fig[key])[:100]])
        parts.append(f"\n[{backend}]\n" + _grid(["figure", "value"], rows))
        d = results.get("derived", {}).get(backend, {})
        trows = [
            [
                t["target"],
                f"{t['value']}" if t["value"] is not None else "-",
                f"≤ {t['limit']} {t['unit']}",
                {True: "met", False: "MISSED", None: "n/a"}[t["met"]],
            ]
            for t in d.get("targets", [])
        ]
        trows += [[k, str(v), "", ""] for k, v in d.get("ratios", {}).items()]
        trows += [
            [f"over the limit: {k}", f"{v:+.2f} s", "", ""]
            for k, v in d.get("overhead", {}).items()
        ]
        parts.append(_grid(["target / ratio", "value", "target", ""], trows))
    for which, base in results.get("baselines", {}).items():
        if "skipped" in base or "error" in base:
            parts.append(f"\n[baseline ({which})] {base.get('skipped') or base.get('error')}")
            continue
        rows = [["time to green", _fmt(base.get("green"))]]
        rows += [[f"  {k}", _fmt(v)] for k, v in (base.get("steps") or {}).items()]
        for case, red in (base.get("red") or {}).items():
            value = _fmt(_get(red, "wall"))
            if isinstance(red, dict) and red.get("outcome") == "capped":
                value = (
                    f"> {red['censored_at']:.0f} s (capped; "
                    f"{red['bound_from_code']:.0f} s by execution_timeout)"
                )
            rows.append([f"time to red: {case}", value])
        parts.append(
            f"\n[baseline ({which})] {base.get('name')}\n" + _grid(["figure", "value"], rows)
        )
    return "\n".join(parts)


def markdown(results: dict[str, Any]) -> str:
    """The README "Performance" table: one column per backend, medians with min-max."""
    backends = [b for b, f in results.get("backends", {}).items() if "skipped" not in f]
    base = results.get("baselines", {})
    derived = results.get("derived", {})

    def row(label: str, values: list[str]) -> str:
        return f"| {label} | " + " | ".join(values) + " |"

    lines = [row("", backends), "|---|" + "---|" * len(backends)]

    def each(path: tuple[str, ...], unit: str = "s", digits: int = 1) -> list[str]:
        return [_fmt(_get(results["backends"][b], *path), unit, digits) for b in backends]

    lines.append(row("time to green (`staging run`, example app)", each(("green", "wall"))))
    lines.append(
        row(
            "physical limit (slower service + worker to polling + pipeline)",
            each(("limit", "limit")),
        )
    )
    lines.append(
        row(
            "staging / limit", [str(_get(derived, b, "ratios", "green_vs_limit")) for b in backends]
        )
    )
    for case in ("env-file-removed", "sandbox-structlog"):
        lines.append(row(f"time to red, `{case}`", each(("red", case, "wall"))))
    for which in ("a", "b"):
        fig = base.get(which, {})
        if "green" in fig:
            lines.append(
                row(
                    f"baseline ({which}) time to green",
                    [_fmt(fig["green"], "s", 1)] * len(backends),
                )
            )
            lines.append(
                row(
                    f"staging / baseline ({which})",
                    [
                        str(_get(derived, b, "ratios", f"green_vs_baseline_{which}"))
                        for b in backends
                    ],
                )
            )
            for case, red in (fig.get("red") or {}).items():
                if isinstance(red, dict) and red.get("outcome") == "capped":
                    bound = red["bound_from_code"] / 60
                    text = f"> {red['censored_at']:.0f} s (never before {bound:.0f} min)"
                else:
                    text = _fmt(_get(red, "wall"), "s", 1)
                lines.append(
                    row(f"baseline ({which}) time to red, `{case}`", [text] * len(backends))
                )
    lines.append(row("harness peak RSS", each(("green", "harness_peak_mib"), "MiB", 0)))
    for n in ("1", "2", "4"):
        vals = []
        for b in backends:
            fig = _get(results["backends"][b], "scale", "concurrent_runs", n)
            vals.append(
                "-"
                if not fig
                else f"{_fmt(fig.get('wall'), 's', 1)}, {fig.get('runs_failed')} failed"
            )
        lines.append(row(f"{n} concurrent `staging run`s (wall)", vals))
    for n in ("1", "4", "16"):
        vals = [
            _fmt(
                _get(results["backends"][b], "scale", "triggers_one_environment", n, "wall"), "s", 1
            )
            for b in backends
        ]
        lines.append(row(f"{n} concurrent pipeline triggers, one worker", vals))
    opts = results.get("options", {})
    load = [v["loadavg_1m"] for v in results.get("load", {}).values()]
    footer = (
        f"\nMedian (min-max) of {opts.get('runs')} runs after {opts.get('warmup')} warm-up, "
        f"{results.get('machine', {}).get('cpus')} CPUs, 1-min load average during the sections "
        f"{min(load, default=0):.1f}-{max(load, default=0):.1f}; produced by "
        f"`{results.get('command')}` ({results.get('started')}, "
        f"commit {results.get('machine', {}).get('commit')}).\n"
    )
    return "\n".join(lines) + "\n" + footer
