"""The build steps besides RUN and USER: COPY, INSTALL, ENV and WORKDIR. Each may repeat; the
builder runs them in file order, caching each on the ones before it."""

from __future__ import annotations

import posixpath

from formation.pack.formfile import values
from formation.pack.formfile.paths import absolute, source_problem
from formation.pack.formfile.state import Directive, State
from formation.pack.formfile.tokens import Word
from formation.pack.formfile.values import shown
from formation.pack.spec import Copy, Env, Install, Workdir

COPY_EXPECTED = "a source in the build context and a destination (COPY SRC DST)"
INSTALL_EXPECTED = "Debian package names (INSTALL curl git)"
ENV_EXPECTED = "KEY=VALUE (ENV [--scope=system|user:NAME|service:NAME] KEY=VALUE ...)"
SCOPE_EXPECTED = "--scope=system, --scope=user:NAME or --scope=service:NAME"


def copy(state: State, d: Directive) -> None:
    """COPY SRC DST, or COPY SRC... DIR/ (several sources into a directory, as Dockerfiles
    allow): one Copy step per source, all with this line."""
    words = state.words(d)
    if words is None:
        return
    if len(words) < 2:
        got = "nothing" if not words else f"only {shown(words[0].value)}"
        state.fail(d, d.end, f"expected {COPY_EXPECTED}, got {got}")
        return
    option = next((w for w in words if w.value.startswith("--")), None)
    if option is not None:
        state.fail(d, option.offset, f"expected {COPY_EXPECTED}, got the option "
                   f"{shown(option.value)} (COPY takes none; use RUN chown/chmod after it)")
        return
    *sources, dst = words
    if len(sources) > 1 and not dst.value.endswith("/"):
        state.fail(d, dst.offset, "expected a directory ending in '/' as the destination of "
                   f"several sources, got {shown(dst.value)}")
        return
    if not dst.value:
        state.fail(d, dst.offset, "expected a destination path, got ''")
        return
    target = absolute(dst.value, state.workdir)
    for src in sources:
        problem = source_problem(src.value, state.context)
        if problem is not None:
            state.fail(d, src.offset, problem)
            continue
        state.steps.append(Copy(line=d.line, src=posixpath.normpath(src.value), dst=target))


def install(state: State, d: Directive) -> None:
    words = state.words(d)
    if words is None:
        return
    if not words:
        state.fail(d, d.end, f"expected {INSTALL_EXPECTED}, got nothing")
        return
    packages: list[str] = []
    bad = False
    for word in words:
        if not values.PACKAGE.fullmatch(word.value):
            hint = " (separate packages with spaces)" if "," in word.value else ""
            state.fail(d, word.offset, "expected a Debian package name (lowercase letters, "
                       "digits, '+', '-', '.'; NAME=VERSION to pin), got "
                       f"{shown(word.value)}{hint}")
            bad = True
        elif word.value not in packages:
            packages.append(word.value)
    if not bad:
        state.steps.append(Install(line=d.line, packages=tuple(packages)))


def _scope(state: State, d: Directive, words: list[Word]) -> tuple[str, list[Word]] | None:
    """The --scope option (--scope=X or --scope X) and the words after it."""
    if not words or not words[0].value.startswith("--"):
        return "system", words
    first = words[0]
    option, equals, scope = first.value.partition("=")
    rest = words[1:]
    if option != "--scope":
        state.fail(d, first.offset, f"expected {SCOPE_EXPECTED}, got the option {shown(option)}")
        return None
    if not equals:
        if not rest:
            state.fail(d, d.end, f"expected {SCOPE_EXPECTED}, got no scope")
            return None
        scope, rest = rest[0].value, rest[1:]
    kind, colon, owner = scope.partition(":")
    valid = (scope == "system"
             or (kind == "user" and colon and values.USERNAME.fullmatch(owner))
             or (kind == "service" and colon and values.SERVICE.fullmatch(owner)))
    if not valid:
        state.fail(d, first.offset, f"expected {SCOPE_EXPECTED}, got the scope {shown(scope)}")
        return None
    return scope, rest


def env(state: State, d: Directive) -> None:
    """ENV K=V [K=V...] with an optional scope: system (every process: /etc/environment),
    user:NAME (that user's login sessions) or service:NAME (that systemd service). The legacy
    Dockerfile form `ENV K the value` (no '=') sets K to the rest of the line. Values are
    literal: $VARS are not expanded."""
    words = state.words(d)
    if words is None:
        return
    scoped = _scope(state, d, words)
    if scoped is None:
        return
    scope, pairs = scoped
    if not pairs:
        state.fail(d, d.end, f"expected {ENV_EXPECTED}, got nothing")
        return
    first = pairs[0]
    if "=" not in first.value and len(pairs) > 1:  # ENV KEY value with spaces
        if not values.ENV_KEY.fullmatch(first.value):
            state.fail(d, first.offset, f"expected a variable name (letters, digits and '_', "
                       f"not starting with a digit), got {shown(first.value)}")
            return
        value = " ".join(word.value for word in pairs[1:])
        state.steps.append(Env(line=d.line, key=first.value, value=value, scope=scope))
        return
    for word in pairs:
        key, equals, value = word.value.partition("=")
        if not equals:
            state.fail(d, word.offset, f"expected {ENV_EXPECTED}, got {shown(word.value)}")
        elif not values.ENV_KEY.fullmatch(key):
            state.fail(d, word.offset, f"expected a variable name (letters, digits and '_', "
                       f"not starting with a digit), got {shown(key)}")
        else:
            state.steps.append(Env(line=d.line, key=key, value=value, scope=scope))


def workdir(state: State, d: Directive) -> None:
    """The directory later RUN steps, COPY destinations and the ENTRYPOINT start from; a
    relative path is taken from the WORKDIR before it (as in Dockerfiles)."""
    word = state.one_word(d, "a directory path")
    if word is None:
        return
    if not word.value:
        state.fail(d, word.offset, "expected a directory path, got ''")
        return
    state.workdir = absolute(word.value, state.workdir).rstrip("/") or "/"
    state.steps.append(Workdir(line=d.line, path=state.workdir))
