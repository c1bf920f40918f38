"""Public access: the edge. Routes (routes.py) become the config of a real proxy engine, Caddy
(caddy_config.py), run and changed by the node (engine.py), which reads back per-route metrics
(metrics.py). See docs/operations.md, "Public access: the edge"."""
