"""Virtual machines: one driver interface (driver.py) with two backends, Cloud Hypervisor
(production) and QEMU; placement over the replicated state; the reconciler that makes the
instances placed on this node real and writes back what it observes."""
