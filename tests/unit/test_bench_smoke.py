"""The benchmark's own logic: options, statistics, ratios and tables (no services, no timing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import report
from benchmarks.measure import RssSampler, Stat, ratio, repeat
from benchmarks.options import SECTIONS, parse_options
from benchmarks.staging_runs import RunSample, parse, summarize_runs


def test_stat_summarises_samples() -> None:
    stat = Stat.of([3.0, 1.0, 2.0, 10.0, 4.0])
    assert (stat.median, stat.min, stat.max, stat.n) == (3.0, 1.0, 10.0, 5)
    assert stat.to_dict()["values"] == [3.0, 1.0, 2.0, 10.0, 4.0]
    assert stat.brief() == "3.00 s (1.00-10.00, n=5)"
    assert Stat.of([2.0, 4.0]).median == 3.0


def test_stat_refuses_no_samples() -> None:
    with pytest.raises(ValueError, match="at least one sample"):
        Stat.of([])


def test_ratio_of_medians_and_missing_sides() -> None:
    assert ratio(Stat.of([6.0]), Stat.of([4.0, 4.0, 2.0])) == 1.5
    assert ratio(None, 2.0) is None
    assert ratio(1.0, 0.0) is None


def test_repeat_discards_warmup_calls() -> None:
    calls: list[int] = []

    def measure(i: int) -> int:
        calls.append(i)
        return i

    kept = repeat(3, 2, measure)
    assert calls == [-1, -2, 0, 1, 2]
    assert kept == [0, 1, 2]
    with pytest.raises(ValueError, match="runs must be"):
        repeat(0, 0, lambda i: i)


def test_default_options() -> None:
    opts = parse_options([])
    assert (opts.runs, opts.warmup) == (5, 1)
    assert opts.backends == ["process", "docker"]
    assert opts.sections == SECTIONS
    assert opts.trigger_levels == [1, 4, 16] and opts.run_levels == [1, 2, 4]


def test_quick_options_and_explicit_overrides() -> None:
    quick = parse_options(["--quick", "--backend", "process"])
    assert (quick.runs, quick.warmup, quick.backends) == (1, 0, ["process"])
    assert quick.trigger_levels == [1, 4] and quick.run_levels == [1, 2]
    assert quick.red_cap < 150
    explicit = parse_options(["--quick", "--runs", "7", "--warmup", "2", "--only", "green,limit"])
    assert (explicit.runs, explicit.warmup, explicit.sections) == (7, 2, ("green", "limit"))
    assert explicit.render is None
    assert parse_options(["--render", "old.json"]).render == Path("old.json")


@pytest.mark.parametrize(
    "argv", [["--runs", "0"], ["--only", "green,bogus"], ["--backend", "k8s"], ["--warmup", "-1"]]
)
def test_bad_options_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_options(argv)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def _verdict(status: str, failure: str | None) -> str:
    return json.dumps(
        {
            "status": status,
            "started_at": "2026-01-01T10:00:01+00:00",
            "finished_at": "2026-01-01T10:00:05+00:00",
            "phases": [
                {"name": "services", "duration": 0.5},
                {"name": "pipelines", "duration": 2.0},
            ],
            "diagnosis": {"class": failure, "cause": "why"} if failure else None,
        }
    )


def test_parse_verdict_breakdown() -> None:
    spawned = 1767261600.0  # 2026-01-01T10:00:00Z
    sample = parse(_verdict("passed", None), 0, 6.5, spawned, spawned + 6.5)
    assert sample.failure_class == ""
    assert sample.startup == pytest.approx(1.0)
    assert sample.after == pytest.approx(1.5)
    assert list(sample.breakdown()) == ["startup", "services", "pipelines", "verdict+teardown+exit"]
    red = parse(_verdict("failed", "worker.sandbox"), 1, 3.0, spawned, spawned + 3)
    assert (red.failure_class, red.cause) == ("worker.sandbox", "why")


def test_parse_refuses_output_without_verdict() -> None:
    from benchmarks.measure import BenchError

    with pytest.raises(BenchError, match="without a JSON verdict"):
        parse("Traceback: boom", 2, 1.0, 0.0, 1.0)


def test_summarize_runs_keeps_phases_seen_in_any_run() -> None:
    runs = [
        RunSample(5.0, 0, "passed", "", {"services": 1.0, "worker": 2.0}),
        RunSample(7.0, 0, "passed", "", {"services": 3.0}),
    ]
    summary = summarize_runs(runs)
    assert summary["wall"]["median"] == 6.0
    assert summary["breakdown"]["services"]["values"] == [1.0, 3.0]
    assert summary["breakdown"]["worker"]["n"] == 1


def _fig(*values: float) -> dict[str, object]:
    return Stat.of(values).to_dict()


def _results() -> dict[str, object]:
    return {
        "command": "python benchmarks/run.py --runs 2",
        "options": {"runs": 2, "warmup": 1},
        "machine": {"cpus": 2, "commit": "abc1234"},
        "load": {"process green": {"loadavg_1m": 1.5}},
        "backends": {
            "process": {
                "green": {
                    "wall": _fig(6.0, 7.0),
                    "harness_peak_mib": _fig(90.0, 95.0),
                    "breakdown": {"startup": _fig(1.0), "worker": _fig(2.0, 2.5)},
                },
                "red": {"env-file-removed": {"wall": _fig(4.0, 4.5)}},
                "limit": {"limit": _fig(4.0, 6.0), "worker_to_polling": _fig(1.5)},
                "scale": {"concurrent_runs": {"4": {"harness_peak_mib": 160.0, "runs_failed": 0}}},
            },
            "docker": {"skipped": "no Docker engine"},
        },
        "baselines": {
            "a": {"skipped": "no Docker engine"},
            "b": {
                "name": "start_local",
                "green": _fig(12.0, 14.0),
                "red": {
                    "env-file-removed": {
                        "outcome": "capped",
                        "wall": _fig(150.0),
                        "censored_at": 150.0,
                        "bound_from_code": 1800.0,
                    }
                },
            },
        },
    }


def test_derive_ratios_and_targets() -> None:
    derived = report.derive(_results())
    assert "docker" not in derived
    process = derived["process"]
    assert process["ratios"]["green_vs_limit"] == 1.3
    assert process["ratios"]["green_vs_baseline_b"] == 0.5
    assert process["ratios"]["green_vs_baseline_a"] is None
    assert process["ratios"]["red_env-file-removed_vs_baseline_b_at_most"] is True
    targets = {t["target"]: t for t in process["targets"]}
    assert targets["time to green / physical limit"]["met"] is True
    assert targets["time to green / baseline (a)"]["met"] is None
    assert targets["time to red, env-file-removed"]["met"] is True
    assert targets["harness peak RSS"]["value"] == 160.0
    assert targets["harness peak RSS"]["met"] is False
    assert targets["4 concurrent runs: failures"]["met"] is True
    assert process["overhead"] == {"startup": 1.0, "worker - worker_to_polling": 0.75}


def test_tables_and_markdown_render_every_section() -> None:
    results = _results()
    results["derived"] = report.derive(results)
    text = report.tables(results)
    assert "[docker] skipped: no Docker engine" in text
    assert "6.50 s (6.00-7.00)" in text
    assert "> 150 s (capped" in text
    md = report.markdown(results)
    assert md.splitlines()[0] == "|  | process |"
    assert "| staging / limit | 1.3 |" in md
    assert "never before 30 min" in md
    assert "`python benchmarks/run.py --runs 2`" in md


def test_rss_sampler_sees_a_child_process() -> None:
    # A child holding ~40 MiB must show up in the children's peak, the parent in the harness.
    code = (
        "import sys; b = bytearray(40 * 1024 * 1024); "
        "sys.stdout.write('x'); sys.stdout.flush(); sys.stdin.read()"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert child.stdout is not None and child.stdout.read(1) == b"x"
        sampler = RssSampler()
        sampler.add(os.getpid())
        sampler.sample()
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)
    assert sampler.peak.children >= 40
    assert sampler.peak.harness > 0
    assert sampler.peak.samples == 1


def test_rss_sampler_thread_stops_and_takes_a_last_sample() -> None:
    with RssSampler(interval=0.01) as sampler:
        sampler.add(os.getpid())
    assert sampler._thread is not None and not sampler._thread.is_alive()
    assert sampler.peak.samples >= 1  # the last one, taken at exit, even for a short window
    assert sampler.peak.harness > 0


def test_bench_entry_point_help() -> None:
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "run.py"), "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "--quick" in out.stdout and "--runs" in out.stdout
