"""The workload-image builder: a Formfile spec and its build context become a bootable VM
image (kernel, initrd, ext4 disk) for the VM part's image store. See engine.py for the order
of work, layers.py for the cache, sandbox.py for where steps run, base.py for the base system.
"""

from formation.pack.build.digest import context_digest
from formation.pack.build.engine import build_image, prune_cache
from formation.pack.build.model import BuildError, BuildProgress, BuildSettings, BuiltImage

__all__ = ["BuildError", "BuildProgress", "BuildSettings", "BuiltImage", "build_image",
           "context_digest", "prune_cache"]
