"""Models of the state store's endpoints: views, the op log, status, and the sync exchange."""


from typing import Annotated, Any

from pydantic import Field, StringConstraints

from formation.api.models import Model

HEX_ID = r"^[0-9a-f]{64}$"
COLLECTION = r"^(network|nodes|addresses|instances|images|dns|invites|accounts|routes|ca)$"


class StateOp(Model):
    id: str
    author: str = Field(description="Ed25519 public key of the signer, hex")
    seq: int = Field(description="the author's sequence number, from 1")
    prev: str | None = Field(description="the author's previous op")
    parents: list[str]
    hlc: list[int] = Field(description="[wall milliseconds, counter]")
    kind: str
    payload: dict[str, Any]
    raw: str | None = Field(None, description="the signed envelope, base64")


class StateOpPage(Model):
    ops: list[StateOp]
    next_after: int | None = Field(description="pass as `after` for the next page; null at end")


SQLITE_MAX = 2**63 - 1  # positions and sequence numbers are SQLite integers: beyond is a 400


class LogQuery(Model):
    after: int = Field(0, ge=0, le=SQLITE_MAX,
                       description="position in this replica's log to start after")
    limit: int = Field(100, ge=1, le=1000)


class StateHeads(Model):
    network: str | None
    heads: list[str]
    ops: int


class StateView(Model):
    collection: str
    items: list[dict[str, Any]]


class Equivocation(Model):
    author: str
    seq: int
    ops: list[str] = Field(description="conflicting ops with this author and seq (the first "
                           "few by id): the evidence")
    forks: int = Field(2, description="how many different ops share this author and seq")


class Equivocator(Model):
    author: str
    forks: int = Field(description="ops accepted whose author and seq were taken already")
    seqs_listed: int = Field(description="its seqs listed in `equivocations` (capped)")


class PeerSyncState(Model):
    address: str
    ok: bool | None = None
    last_sync: str | None = None
    error: str = ""
    ops_received: int = 0
    bytes_received: int = 0
    last_in_sync: str | None = Field(None, description="when this replica last held every "
                                     "head the peer had (the time its heads were asked for)")
    in_sync_age_s: float | None = Field(None, description="seconds since last_in_sync: the "
                                        "replication lag behind this peer, at most")
    heads_missing: int = Field(0, description="the peer's heads this replica lacked at the "
                               "last check")
    ops_last_pull: int = Field(0, description="ops the last anti-entropy round brought")


class StateStatus(Model):
    network: str | None
    genesis: str | None
    ops: int
    heads: list[str]
    authors: int
    buffered: int
    buffer_bytes: int
    buffer_dropped: int
    held_future: int = Field(0, description="ops stamped too far ahead of this node's clock, "
                             "held back until their time comes")
    held_future_dropped: int = Field(0, description="future ops that did not fit the held "
                                     "buffer since start (fetched again later)")
    refused: dict[str, int] = Field(description="refused ops by reason since start")
    equivocations: list[Equivocation] = Field(description="by author and seq, capped per "
                                              "author and in all")
    equivocators: list[Equivocator] = Field(default_factory=list)
    peers: list[PeerSyncState] = Field(default_factory=list)


class CreateNetworkRequest(Model):
    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
    cidr: str = Field("10.42.0.0/16", description="the mesh's address range")


class AppendRequest(Model):
    kind: str = Field(max_length=32)
    payload: dict[str, Any] = Field(default_factory=dict)


class VerifyResult(Model):
    ops: int
    faults: list[str]


class RebuildResult(Model):
    ops: int
    equal: bool = Field(description="rebuilt views equal the incremental ones")
    differing: list[str]


class OpBatch(Model):
    """Ops in transit: base64 of zlib-compressed canonical CBOR array of op envelopes."""

    ops: str = Field(max_length=1_000_000)
    count: int = Field(ge=0)


class OpRefusal(Model):
    """Why one op of a pushed batch was refused (the others are judged on their own)."""

    index: int = Field(description="the op's position in the pushed batch, from 0")
    id: str | None = Field(description="the op's id, null when it could not be read")
    reason: str = Field(description="a short code: malformed, oversized, bad_signature, ...")
    message: str


class PushResult(Model):
    accepted: int
    duplicate: int
    buffered: int
    refused: int
    refusals: list[OpRefusal] = Field(default_factory=list, description="the first "
                                      "refused ops of the batch (at most 100), each with why")


AuthorHex = Annotated[str, StringConstraints(pattern=HEX_ID)]
OpIdHex = Annotated[str, StringConstraints(pattern=HEX_ID)]
Seq = Annotated[int, Field(ge=0, le=SQLITE_MAX)]


class RangeRequest(Model):
    vv: dict[AuthorHex, Seq] = Field(description="author key hex -> highest seq the asker has")
    limit: int = Field(2000, ge=1, le=5000)


class RangeResult(Model):
    batch: OpBatch
    more: bool
    next_vv: dict[str, int] = Field(description="the asker's vector once it has this batch: "
                                    "send it for the next batch without waiting")


class WalkRequest(Model):
    want: list[OpIdHex] = Field(max_length=512)
    vv: dict[AuthorHex, Seq]
    limit: int = Field(2000, ge=1, le=5000)
