"""Every name the lab makes carries its prefix, so one lab never touches another's things and
`lab down` can find all of its own, even with the state file gone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

LAB_ID = re.compile(r"^[a-z0-9]{1,6}$")
STATE_ROOT = Path("/run/formation-lab")
NETNS_DIR = Path("/run/netns")
SUBNET_PREFIX = "10.77.0."  # inside the lab's own namespaces only; never routed from the host
PREFIXLEN = 24
API_PORT = 7170
MAX_HOSTS = 20


@dataclass(frozen=True)
class LabNames:
    lab_id: str
    state_root: Path = STATE_ROOT

    def __post_init__(self) -> None:
        if not LAB_ID.match(self.lab_id):
            raise ValueError(f"lab name {self.lab_id!r}: expected 1 to 6 of a-z, 0-9")

    @property
    def netns_prefix(self) -> str:
        return f"fl-{self.lab_id}-"

    @property
    def hub(self) -> str:
        """The namespace holding the bridges: the host's own namespace gets no link at all."""
        return f"{self.netns_prefix}hub"

    def host_netns(self, index: int) -> str:
        return f"{self.netns_prefix}h{index}"

    @property
    def bridge(self) -> str:
        return f"fl{self.lab_id}b0"

    @property
    def cut_bridge(self) -> str:
        """Partitioned hosts' ports move here: they reach each other, not the rest."""
        return f"fl{self.lab_id}b1"

    def veth(self, index: int) -> str:
        return f"fl{self.lab_id}v{index}"

    def veth_peer(self, index: int) -> str:
        return f"fl{self.lab_id}p{index}"

    @staticmethod
    def host_name(index: int) -> str:
        return f"h{index}"

    @staticmethod
    def address(index: int) -> str:
        return f"{SUBNET_PREFIX}{10 + index}"

    @property
    def state_dir(self) -> Path:
        return self.state_root / self.lab_id

    def host_dir(self, index: int) -> Path:
        return self.state_dir / self.host_name(index)
