"""The host's own network as the operator configures it: which interface is the underlay and how
it gets its address (a systemd-networkd file), and the interfaces there are to choose from."""
