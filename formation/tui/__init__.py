"""The Textual console. A client of the node API only: never imports formation.node."""
