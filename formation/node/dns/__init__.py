"""form-dns: the node answers `<instance>.<network>.fog` and `<node>.<network>.fog`."""
