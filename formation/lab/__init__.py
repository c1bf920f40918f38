"""N simulated hosts on one machine: each a network namespace plus a private mount namespace
(its own /run/formation, /run/wireguard and data dir), joined by a bridge, each running a real
`formation node`. Used by `formation lab`, integration tests and benchmarks."""

from formation.lab.lab import Lab, LabError

__all__ = ["Lab", "LabError"]
