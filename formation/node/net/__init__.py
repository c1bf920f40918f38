"""The host network: the WireGuard mesh (two backends, one interface), its reconciler, the VM
bridge and subnets. See docs/operations.md, section "Mesh"."""
