"""Formfile steps -> what runs in the image for each, and what its cache key covers.

Every step's work happens inside the chroot (the image's own sh, cp, useradd...), never with
host tools on paths inside the image: a symlink in the image (/srv -> /etc) then resolves
inside the image, not on the builder. RUN sees the ENV of scope system and the WORKDIR of the
steps before it, as in a Dockerfile. ENV is also written into the image where it takes effect
at run time: scope system in /etc/environment (logins, and the ENTRYPOINT's service), user:NAME
in that user's ~/.profile, service:NAME in a drop-in of NAME.service."""

from __future__ import annotations

import json
import posixpath
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from formation.pack.build.digest import copy_digest, copy_source
from formation.pack.spec import Copy, Env, FormfileSpec, Install, Run, Step, User, Workdir

SOURCE_DATE_EPOCH = "1700000000"
BASE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root", "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive",
    "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH,
}
APT_OPTS = ["-o", "Dpkg::Use-Pty=0", "-o", "DPkg::Options::=--force-unsafe-io",
            "-o", "DPkg::Options::=--force-confdef", "-o", "DPkg::Options::=--force-confold",
            "-o", "Dir::Cache::pkgcache=", "-o", "Dir::Cache::srcpkgcache="]


@dataclass
class State:
    """What the steps so far put in effect for the next ones and for the ENTRYPOINT."""
    env: dict[str, str] = field(default_factory=dict)  # scope system, in order
    workdir: str = "/"
    service_env: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Action:
    label: str
    line: int | None
    record: dict[str, Any]  # what the cache key covers (never the line number)
    body: str  # sh, run after the view is mounted (sandbox.PRELUDE)
    binds: tuple[tuple[Path, str], ...] = ()
    weight: float = 1.0  # share of the build's progress bar when not cached


def chroot(state: State, argv: list[str]) -> str:
    env = {**BASE_ENV, **state.env}
    words = ["exec", "chroot", '"$FM_MERGED"', "/usr/bin/env", "-i",
             *(shlex.quote(f"{k}={v}") for k, v in env.items()),
             *(shlex.quote(a) for a in argv)]
    return " ".join(words) + "\n"


def label(step: Step) -> str:
    if isinstance(step, Run):
        text = f"RUN {step.command}"
    elif isinstance(step, Copy):
        text = f"COPY {step.src} {step.dst}"
    elif isinstance(step, Install):
        text = "INSTALL " + " ".join(step.packages)
    elif isinstance(step, Env):
        scope = "" if step.scope == "system" else f"--scope={step.scope} "
        text = f"ENV {scope}{step.key}={step.value}"
    elif isinstance(step, Workdir):
        text = f"WORKDIR {step.path}"
    else:
        text = f"USER {step.username}"
    return text if len(text) <= 60 else text[:59] + "…"


def _record(step: Step) -> dict[str, Any]:
    doc = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(step).items()}
    doc.pop("line")
    return doc


def _abs(workdir: str, path: str) -> str:
    return posixpath.normpath(posixpath.join(workdir, path))


RUN_SH = 'cd "$1" && exec /bin/sh -c "$2"'  # as `docker build`: sh -c, in the WORKDIR

INSTALL_SH = r"""
apt-get install -y --no-install-recommends "$@" || {
  echo "formation: package lists may be stale, updating them from the mirror"
  apt-get update && apt-get install -y --no-install-recommends "$@"
}"""

COPY_SH = r"""
set -eu
src=/run/formation/copy-src dst="$1" epoch="$2"
stage=/run/formation/copy-stage
mkdir -p "$stage"
if [ -d "$src" ]; then
  cp -R --preserve=mode,links "$src/." "$stage/"
else
  case "$dst" in */) dst="$dst$3" ;; esac
  mkdir -p "$stage"
  cp --preserve=mode "$src" "$stage/$3"
fi
find "$stage" -exec touch -h -d "@$epoch" {} +
if [ -d "$src" ]; then
  mkdir -p "$dst"
  cp -a "$stage/." "$dst/"
else
  mkdir -p "$(dirname "$dst")"
  cp -a "$stage/$3" "$dst"
fi
"""

ENV_SH = r"""
set -eu
scope="$1" key="$2" value="$3" line="$4" unit="$5"
case "$scope" in
system)
  touch /etc/environment
  grep -v "^$key=" /etc/environment > /etc/environment.new || true
  printf '%s\n' "$line" >> /etc/environment.new
  mv /etc/environment.new /etc/environment ;;
user:*)
  name="${scope#user:}"
  home=$(getent passwd "$name" | cut -d: -f6) || {
    echo "no user $name in the image (a USER step before this one creates it)"; exit 3; }
  printf 'export %s\n' "$line" >> "$home/.profile"
  chown "$name:" "$home/.profile" ;;
service:*)
  mkdir -p "/etc/systemd/system/$unit.d"
  [ -f "/etc/systemd/system/$unit.d/formation-env.conf" ] ||
    printf '[Service]\n' > "/etc/systemd/system/$unit.d/formation-env.conf"
  printf 'Environment=%s\n' "$line" >> "/etc/systemd/system/$unit.d/formation-env.conf" ;;
esac
"""

USER_SH = r"""
set -eu
name="$1" shell="$2" groups="$3" passwd="$4" lock="$5" sudo="$6" keys="$7" cfg="$8"
old_ifs=$IFS; IFS=,
for g in $groups; do getent group "$g" >/dev/null || groupadd "$g"; done
IFS=$old_ifs
if ! id "$name" >/dev/null 2>&1; then
  useradd -m -U -s "${shell:-/bin/bash}" "$name"
elif [ -n "$shell" ]; then
  usermod -s "$shell" "$name"
fi
[ -z "$groups" ] || usermod -aG "$groups" "$name"
[ -z "$passwd" ] || usermod -p "$passwd" "$name"
[ "$lock" != 1 ] || usermod -L "$name"
home=$(getent passwd "$name" | cut -d: -f6)
if [ -n "$keys" ]; then
  mkdir -p "$home/.ssh"
  printf '%s\n' "$keys" > "$home/.ssh/authorized_keys"
  chmod 700 "$home/.ssh"; chmod 600 "$home/.ssh/authorized_keys"
  chown -R "$name:" "$home/.ssh"
fi
if [ -n "$sudo" ]; then
  mkdir -p /etc/sudoers.d
  printf '%s %s\n' "$name" "$sudo" > "/etc/sudoers.d/90-formation-$name"
  chmod 440 "/etc/sudoers.d/90-formation-$name"
fi
[ -z "$cfg" ] || printf '%s\n' "$cfg" > "/etc/cloud/cloud.cfg.d/91-formation-user-$name.cfg"
"""


def systemd_quote(text: str) -> str:
    """One word of a unit file's Environment= or ExecStart=: double-quoted, with systemd's
    specifiers (%) and variable expansion ($) escaped."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return '"' + escaped.replace("$", "$$") + '"'


def env_line(scope: str, key: str, value: str) -> str:
    if scope == "system":  # pam_env's /etc/environment: KEY="VALUE"
        return f'{key}="' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if scope.startswith("user:"):
        return f"{key}={shlex.quote(value)}"
    # a unit's Environment=: no $ expansion there, only % specifiers
    return '"' + f"{key}={value}".replace("\\", "\\\\").replace('"', '\\"') \
        .replace("%", "%%") + '"'


def unit_name(service: str) -> str:
    return service if "." in service else f"{service}.service"


def _user_cfg(step: User) -> str:
    cfg: dict[str, Any] = {}
    if step.ssh_pwauth is not None:
        cfg["ssh_pwauth"] = step.ssh_pwauth
    if step.disable_root is not None:
        cfg["disable_root"] = step.disable_root
    if step.chpasswd_expire is not None:
        cfg["chpasswd"] = {"expire": step.chpasswd_expire}
    return json.dumps(cfg) if cfg else ""  # JSON is YAML: cloud-init reads it


def _sudo(value: str | None) -> str:
    if value is None or value.lower() in ("false", "no", "none", ""):
        return ""
    return "ALL=(ALL) NOPASSWD:ALL" if value.lower() in ("true", "yes") else value


def action(step: Step, state: State, context: Path) -> Action:
    """The action for one step; updates `state` for the steps after it."""
    record = _record(step)
    text = label(step)
    if isinstance(step, Run):
        body = chroot(state, ["/bin/sh", "-c", RUN_SH, "sh", state.workdir, step.command])
        return Action(text, step.line, {**record, "env": state.env, "cwd": state.workdir},
                      body, weight=3)
    if isinstance(step, Install):
        apt = ["apt-get", *APT_OPTS]
        script = INSTALL_SH.replace("apt-get ", " ".join(shlex.quote(a) for a in apt) + " ")
        body = ('mount --bind "$FM_CACHE/apt" "$FM_MERGED/var/cache/apt/archives"\n'
                + chroot(state, ["/bin/sh", "-c", script, "sh", *step.packages]))
        return Action(text, step.line, {**record, "env": state.env}, body, weight=4)
    if isinstance(step, Copy):
        src = copy_source(context, step)
        record["content"] = copy_digest(context, step)
        dst = _abs(state.workdir, step.dst) + ("/" if step.dst.endswith("/") else "")
        body = chroot(state, ["/bin/sh", "-c", COPY_SH, "sh", dst, SOURCE_DATE_EPOCH,
                              Path(step.src).name or src.name])
        return Action(text, step.line, {**record, "cwd": state.workdir}, body,
                      binds=((src, "copy-src"),))
    if isinstance(step, Env):
        line = env_line(step.scope, step.key, step.value)
        unit = ""
        if step.scope == "system":
            state.env[step.key] = step.value
        elif step.scope.startswith("service:"):
            service = step.scope.split(":", 1)[1]
            unit = unit_name(service)
            state.service_env.setdefault(service, {})[step.key] = step.value
        body = chroot(state, ["/bin/sh", "-c", ENV_SH, "sh", step.scope, step.key,
                              step.value, line, unit])
        return Action(text, step.line, record, body)
    if isinstance(step, Workdir):
        state.workdir = _abs(state.workdir, step.path)
        body = chroot(state, ["mkdir", "-p", state.workdir])
        return Action(text, step.line, {**record, "abs": state.workdir}, body)
    lock = "1" if step.lock_passwd else "0"
    body = chroot(state, ["/bin/sh", "-c", USER_SH, "sh", step.username, step.shell or "",
                          ",".join(step.groups), step.passwd or "", lock, _sudo(step.sudo),
                          "\n".join(step.ssh_authorized_keys), _user_cfg(step)])
    return Action(text, step.line, record, body)


def plan(spec: FormfileSpec, context: Path) -> tuple[list[Action], State]:
    """Every step's action in Formfile order, and the state they leave (for the ENTRYPOINT).
    Reads the COPY sources (their digests are part of the keys): call it off the loop."""
    state = State()
    return [action(step, state, context) for step in spec.steps], state
