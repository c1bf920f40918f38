"""Workload images: content-addressed blobs (kernel, initrd, disk) in this node's image store,
imported from local files or fetched by digest from other nodes and verified before use."""
