"""Workloads from Formfiles: the parser (no node needed, so a laptop can validate), the image
builder, and shipping. "Image" here always means a workload image (the VM image store's kind);
the appliance image lives under image/ and scripts/build-image.sh."""
