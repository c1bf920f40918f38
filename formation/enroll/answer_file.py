"""The headless answer file (`enroll.yaml`): what a node needs to enroll with nobody at the
console. Validated completely before anything is done, and every problem names its line, because
the only place an operator sees it is the journal or a serial console."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from formation.config.settings import (
    Hostname,
    HostPort,
    ResourceOffer,
    Strict,
    Underlay,
    field_named_in,
)
from formation.config.yaml_file import MAX_BYTES, YamlRefused, parse_yaml
from formation.discovery import token as tokens
from formation.enroll.ssh_keys import check_ssh_public_key
from formation.errors import FormationError

_NETWORK_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def _network_name(value: str) -> str:
    if not _NETWORK_NAME.match(value):
        raise ValueError("expected a network name: lowercase letters, digits and '-', at most 63")
    return value


def _invite_token(value: str) -> str:
    """Decoded here, so a typo is told with its line before the node starts joining."""
    try:
        tokens.decode(value)
    except tokens.TokenError as exc:
        raise ValueError(str(exc).removeprefix("token: ")) from None
    return value


NetworkName = Annotated[str, AfterValidator(_network_name)]
InviteToken = Annotated[str, AfterValidator(_invite_token)]
SshPublicKey = Annotated[str, AfterValidator(check_ssh_public_key)]


class FoundNetwork(Strict):
    """Start a new network with this node as its first member."""

    name: NetworkName


class JoinNetwork(Strict):
    """Join an existing network: an invite token, peers to reach it through, or both."""

    invite: InviteToken | None = None
    bootstrap: list[HostPort] = Field(default_factory=list)

    @model_validator(mode="after")
    def _needs_a_way_in(self) -> JoinNetwork:
        if self.invite is None and not self.bootstrap:
            raise ValueError("joining needs 'invite' (a token) or 'bootstrap' (HOST:PORT peers)")
        return self


class NetworkChoice(Strict):
    found: FoundNetwork | None = None
    join: JoinNetwork | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> NetworkChoice:
        if (self.found is None) == (self.join is None):
            raise ValueError("expected exactly one of 'found' (a new network) or 'join'")
        return self


class AnswerFile(Strict):
    version: Literal[1] = Field(description="format version of the answer file")
    hostname: Hostname | None = Field(None, description="this node's name (default: hostname)")
    network: NetworkChoice
    admin_keys: list[SshPublicKey] = Field(
        default_factory=list,
        description="SSH public keys of the network's administrators (console over SSH)",
    )
    resources: ResourceOffer = Field(
        default_factory=ResourceOffer,
        description="what this node offers (cpus, memory_mb, disk_gb); unset: all it has")
    underlay: Underlay = Field(
        default_factory=Underlay,
        description="the underlay interface, DHCP or static (a systemd-networkd file)")

    @model_validator(mode="after")
    def _founder_has_admins(self) -> AnswerFile:
        if self.network.found is not None and not self.admin_keys:
            raise ValueError(
                "founding a network headless needs at least one entry in 'admin_keys', "
                "or nobody could ever manage it"
            )
        return self

    def summary(self) -> str:
        who = self.hostname or "this host"
        if self.network.found is not None:
            what = f"found network '{self.network.found.name}'"
        else:
            join = self.network.join
            assert join is not None
            via = ("an invite" if join.invite else "") + (
                (" and " if join.invite and join.bootstrap else "")
                + (f"{len(join.bootstrap)} bootstrap peer(s)" if join.bootstrap else "")
            )
            what = f"join a network through {via}"
        extra = ""
        if self.underlay.interface:
            u = self.underlay
            extra += f"; underlay {u.interface} ({'DHCP' if u.mode == 'dhcp' else u.address})"
        offer = {k: v for k, v in self.resources.model_dump().items() if v is not None}
        if offer:
            extra += "; offering " + ", ".join(f"{k} {v}" for k, v in offer.items())
        return f"{who} will {what} with {len(self.admin_keys)} admin key(s){extra}"


class AnswerFileError(FormationError):
    """The answer file is unreadable or invalid; `problems` has one line per fault."""

    exit_code = 2

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(problems[0] + more)


def _describe(error: ErrorDetails, path: Path, lines: dict[tuple, int]) -> str:
    loc, expected = field_named_in(tuple(error["loc"]), error["type"],
                                   error["msg"].removeprefix("Value error, "))
    key = ".".join(str(part) for part in loc) or "(top level)"
    if error["type"] == "extra_forbidden":
        expected = "unknown key (see the answer file reference in docs/operations.md)"
    elif error["type"] == "missing":
        expected = "required key is missing"
    elif error["type"] == "literal_error" and loc == ("version",):
        expected = "expected version: 1"
    line = next((lines[loc[:d]] for d in range(len(loc), -1, -1) if loc[:d] in lines), 1)
    return f"{path}: line {line}: {key}: {expected}"


def parse_answer_file(text: str | bytes, path: Path) -> AnswerFile:
    """Validates the text of an answer file; `path` only names it in messages."""
    try:
        document = parse_yaml(text, path)
    except YamlRefused as exc:
        raise AnswerFileError([str(exc)]) from None
    data: Any = document.data
    if not isinstance(data, dict):
        kind = "nothing" if data is None else f"a {type(data).__name__}"
        raise AnswerFileError([f"{path}: line 1: expected a mapping (version:, network:, ...), "
                               f"got {kind}"])
    try:
        return AnswerFile.model_validate(data)
    except ValidationError as exc:
        raise AnswerFileError([_describe(err, path, document.lines)
                               for err in exc.errors()]) from None


def load_answer_file(path: Path) -> AnswerFile:
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_BYTES + 1)  # parse_yaml refuses a larger file
    except OSError as exc:
        raise AnswerFileError([f"{path}: cannot read: {exc.strerror}"]) from None
    return parse_answer_file(raw, path)
