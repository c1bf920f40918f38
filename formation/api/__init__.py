"""The node API, defined once. Server, client and OpenAPI document all derive from `routes`."""
