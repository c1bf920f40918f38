"""How hosts find each other: mDNS on the local link, bootstrap lists beyond it, and the peers
that other nodes' heartbeats mention. Discovery finds; it never decides liveness or trust."""
