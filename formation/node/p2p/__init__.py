"""Node-to-node: signed gossip envelopes on topics, and membership from heartbeats."""
