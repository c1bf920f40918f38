"""USER: an account cloud-init creates in the image, as key:value words. Values with spaces
are quoted (ssh_authorized_keys:"ssh-ed25519 AAAA... me@laptop"); `key: value` with a space
after the colon is read the same way, because that is how YAML taught people to write it."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from formation.pack.formfile import values
from formation.pack.formfile.state import Directive, State
from formation.pack.formfile.tokens import Word
from formation.pack.formfile.values import shown
from formation.pack.spec import User

STRINGS = ("username", "passwd", "sudo", "shell")
BOOLEANS = ("lock_passwd", "ssh_pwauth", "disable_root", "chpasswd_expire")
KEYS = (*STRINGS, "ssh_authorized_keys", *BOOLEANS, "groups")
KEYS_EXPECTED = ", ".join(f"{key}:" for key in KEYS)
SSH_KEY = re.compile(r"(ssh-|ecdsa-|sk-)[a-z0-9@.-]+ +[A-Za-z0-9+/=]+")
ALL_SUDO = "ALL=(ALL) NOPASSWD:ALL"  # what sudo:true means (cloud-init's usual rule)


Pair = tuple[str, str, int, int]  # key, value, offset of the key, offset of the value


def _pairs(state: State, d: Directive, words: list[Word]) -> list[Pair] | None:
    """The key:value words; a bare `key:` takes the next word as its value."""
    pairs: list[Pair] = []
    index = 0
    while index < len(words):
        word = words[index]
        key, colon, value = word.value.partition(":")
        if not colon:
            hint = ""
            if pairs and pairs[-1][0] == "ssh_authorized_keys":
                hint = ' (quote a value with spaces: ssh_authorized_keys:"ssh-ed25519 AAAA..."'
                hint += ")"
            state.fail(d, word.offset, f"expected key:value ({KEYS_EXPECTED}), got "
                       f"{shown(word.value)}{hint}")
            return None
        if key not in KEYS:
            state.fail(d, word.offset,
                       f"expected one of the keys {KEYS_EXPECTED}, got {shown(key)}:")
            return None
        offset = word.offset + len(key) + 1
        if not value and index + 1 < len(words) and \
                words[index + 1].value.partition(":")[0] not in KEYS:
            index += 1
            value, offset = words[index].value, words[index].offset
        pairs.append((key, value, word.offset, offset))
        index += 1
    return pairs


def _value(state: State, d: Directive, key: str, value: str, where: int) -> Any:
    """The field's value, or None after recording the problem."""
    if key == "username":
        if not values.USERNAME.fullmatch(value):
            state.fail(d, where, f"expected {values.USERNAME_EXPECTED}, got {shown(value)}")
            return None
        return value
    if key in BOOLEANS:
        flag = values.boolean(value)
        if flag is None:
            state.fail(d, where, f"{key}: expected true or false, got {shown(value)}")
        return flag
    if key == "groups":
        groups = tuple(group for group in value.split(",") if group)
        bad = next((g for g in groups if not values.GROUP.fullmatch(g)), None)
        if not groups or bad is not None:
            state.fail(d, where, f"groups: expected group names separated by ',' "
                       f"(groups:docker,adm), got {shown(value)}")
            return None
        return groups
    if key == "shell" and not value.startswith("/"):
        state.fail(d, where, f"shell: expected an absolute path (/bin/bash), got {shown(value)}")
        return None
    if key == "ssh_authorized_keys" and not SSH_KEY.match(value):
        state.fail(d, where, "ssh_authorized_keys: expected a public key in quotes "
                   f'("ssh-ed25519 AAAA... me@laptop"), got {shown(value)}')
        return None
    if key == "sudo":
        flag = values.boolean(value)
        if flag is not None:
            return ALL_SUDO if flag else ""
    if not value:
        state.fail(d, where, f"{key}: expected a value, got nothing")
        return None
    return value


def user(state: State, d: Directive) -> None:
    words = state.words(d)
    if words is None:
        return
    if not words:
        state.fail(d, d.end, f"expected username:NAME and other keys ({KEYS_EXPECTED}), "
                   "got nothing")
        return
    pairs = _pairs(state, d, words)
    if pairs is None:
        return
    fields: dict[str, Any] = {}
    keys: list[str] = []
    ok = True
    for key, value, at, where in pairs:
        if key in fields and key != "ssh_authorized_keys":
            state.fail(d, at, f"{key}: given twice: expected each key once "
                       "(ssh_authorized_keys: may repeat)")
            ok = False
            continue
        parsed = _value(state, d, key, value, where)
        if parsed is None:
            ok = False
        elif key == "ssh_authorized_keys":
            keys.append(parsed)
            fields[key] = tuple(keys)
        else:
            fields[key] = parsed
    if "username" not in fields:
        if ok:
            state.fail(d, d.args, "expected username:NAME among the keys, got none")
        return
    if not ok:
        return
    if fields.get("sudo") == "":
        fields["sudo"] = None
    name = fields["username"]
    if name in state.users:
        state.fail(d, d.args, f"user {shown(name)} already defined on line {state.users[name]}: "
                   "expected one USER line per user")
        return
    state.users[name] = d.line
    state.steps.append(replace(User(line=d.line, username=name), **fields))
