"""bench/support/pack_probe.py, what bench/pack.py builds and reports: its Formfile is valid for
the real parser with the issue's directives (the rebuild changes only line 8, the last step),
and the JSON says null with a reason for what was not measured."""

from __future__ import annotations

from pathlib import Path

from bench.support.pack_probe import LAST_LINE, formfile_text, results, write_context
from formation.pack.formfile import parse_formfile
from formation.pack.spec import Copy, Env, Install, Run


def test_the_formfile_parses_and_the_rebuild_changes_only_its_last_step(tmp_path: Path) -> None:
    context = write_context(tmp_path / "ctx")
    first = parse_formfile(formfile_text("r1"), context)
    second = parse_formfile(formfile_text("r1", "RUN echo changed > /srv/changed"), context)
    assert first.name == "bench-pack" and first.entrypoint is not None
    assert first.entrypoint.argv == ("/usr/local/bin/hello",)
    assert {type(s) for s in first.steps} >= {Install, Copy, Env, Run}
    assert first.steps[:-1] == second.steps[:-1]
    assert first.steps[-1] != second.steps[-1]
    assert second.steps[-1] == Run(LAST_LINE, "echo changed > /srv/changed")
    assert parse_formfile(formfile_text("r2"), context).steps[0] != first.steps[0]


def test_results_ratio_and_unmeasured() -> None:
    out = results(1234.4, 10.0, 2.5, 700.04, None, {"boot_to_entrypoint_s": "skipped"})
    assert out["parse_per_s"] == 1234 and out["rebuild_ratio"] == 0.25
    assert out["image_mb"] == 700.0 and out["boot_to_entrypoint_s"] is None
    assert out["unmeasured"] == {"boot_to_entrypoint_s": "skipped"}
    assert out["boot_emulation"] == "tcg"
    none = results(10.0, None, None, None, None, {"build_s": "needs root"})
    assert none["build_s"] is None and none["rebuild_ratio"] is None
