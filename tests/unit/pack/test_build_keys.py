"""What decides whether the builder reuses a layer or an image: the context digest counts the
Formfile and the bytes and modes of what COPY reads, not timestamps; a step's cache key counts
its text and the steps before it, not its line number."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from formation.pack.build import BuildError, BuildSettings, context_digest, prune_cache
from formation.pack.build.base import release_of
from formation.pack.build.layers import LayerCache, key_of
from formation.pack.build.steps import State, action, plan, systemd_quote
from formation.pack.spec import Copy, Env, FormfileSpec, Run, Step, Workdir


def _spec(*steps: Step, source: str = "NAME app\n") -> FormfileSpec:
    return FormfileSpec(name="app", steps=steps, source=source)


def _ctx(tmp_path: Path) -> Path:
    (tmp_path / "app").mkdir(parents=True)
    (tmp_path / "app" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (tmp_path / "app" / "run.sh").chmod(0o755)
    return tmp_path


def test_context_digest_counts_bytes_and_modes_not_times(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    spec = _spec(Copy(2, "app", "/opt/app"))
    first = context_digest(spec, ctx)
    os.utime(ctx / "app" / "run.sh", (1, 1))
    assert context_digest(spec, ctx) == first
    (ctx / "app" / "run.sh").chmod(0o644)
    moded = context_digest(spec, ctx)
    assert moded != first
    (ctx / "app" / "run.sh").write_text("#!/bin/sh\necho bye\n")
    assert context_digest(spec, ctx) not in (first, moded)
    assert context_digest(_spec(Copy(2, "app", "/opt/app"), source="NAME other\n"),
                          ctx) != context_digest(spec, ctx)


def test_copy_from_outside_the_context_is_refused(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path / "ctx")
    with pytest.raises(BuildError, match=r"^Formfile line 3 \(COPY \.\./x\): the source is "
                                         r"outside the build context"):
        context_digest(_spec(Copy(3, "../x", "/x")), ctx)
    with pytest.raises(BuildError, match="no such file"):
        context_digest(_spec(Copy(3, "missing", "/x")), ctx)


def _keys(spec: FormfileSpec, ctx: Path) -> list[str]:
    actions, _ = plan(spec, ctx)
    keys, parent = [], "base"
    for act in actions:
        parent = key_of(parent, act.record)
        keys.append(parent)
    return keys


def test_keys_follow_the_steps_not_their_lines(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    a = _keys(_spec(Run(2, "make"), Copy(3, "app", "/opt"), Run(4, "true")), ctx)
    moved = _keys(_spec(Run(5, "make"), Copy(7, "app", "/opt"), Run(9, "true")), ctx)
    last = _keys(_spec(Run(2, "make"), Copy(3, "app", "/opt"), Run(4, "false")), ctx)
    first = _keys(_spec(Run(2, "make -j2"), Copy(3, "app", "/opt"), Run(4, "true")), ctx)
    assert a == moved
    assert last[:2] == a[:2] and last[2] != a[2]
    assert not set(first) & set(a)  # a change to the first line changes every key after it
    (ctx / "app" / "run.sh").write_text("changed\n")
    copied = _keys(_spec(Run(2, "make"), Copy(3, "app", "/opt"), Run(4, "true")), ctx)
    assert copied[0] == a[0] and copied[1] != a[1] and copied[2] != a[2]


def test_env_and_workdir_reach_the_runs_after_them(tmp_path: Path) -> None:
    state = State()
    action(Env(2, "MODE", "prod"), state, tmp_path)
    action(Workdir(3, "/srv"), state, tmp_path)
    action(Workdir(4, "app"), state, tmp_path)
    run = action(Run(5, "pwd"), state, tmp_path)
    assert state.workdir == "/srv/app" and state.env == {"MODE": "prod"}
    assert "MODE=prod" in run.body and "/srv/app" in run.body
    assert run.record["env"] == {"MODE": "prod"} and run.record["cwd"] == "/srv/app"
    action(Env(6, "PORT", "8080", scope="service:web"), state, tmp_path)
    assert state.service_env == {"web": {"PORT": "8080"}} and "PORT" not in state.env


def test_systemd_words_are_quoted() -> None:
    assert systemd_quote('echo "$HOME" 100%') == '"echo \\"$$HOME\\" 100%%"'


def test_from_names_a_debian_release() -> None:
    assert [release_of(b) for b in ("debian:bookworm", "debian:12", "debian", "trixie")] == [
        "bookworm", "bookworm", "bookworm", "trixie"]
    with pytest.raises(BuildError, match=r"^FROM ubuntu:24\.04: expected debian:RELEASE"):
        release_of("ubuntu:24.04")


def test_prune_removes_only_layers_unused_for_long(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path)
    cache.prepare()
    for key, age in (("a" * 64, 0), ("b" * 64, 3 * 86400)):
        (tmp_path / "tree").mkdir()
        cache.commit(key, tmp_path / "tree", {"label": key[0]})
        past = time.time() - age
        os.utime(tmp_path / "l" / f"{key[:24]}.json", (past, past))
    assert asyncio.run(prune_cache(BuildSettings(tmp_path), 86400)) == 1
    assert cache.has("a" * 64) and not cache.has("b" * 64)
    assert not (tmp_path / "l" / ("b" * 24)).exists()
