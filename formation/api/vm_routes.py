"""Endpoints of instances and workload images (formation/node/vmm). Writes are changes of
desired state: the node signs an op; the reconciler of the node the instance is placed on acts.
Reads are for members; serial output is served by the node running the instance (another node
relays it)."""

from __future__ import annotations

from formation.api import vm_models as vm
from formation.api.caller import Audience as A
from formation.api.endpoint import Endpoint
from formation.api.models import Empty

REF = (("instance", vm.INSTANCE_REF),)
NOT_FOUND = ((404, "No such instance"),)
WRITE_ERRORS = ((403, "Not the instance's owner or an admin"), (404, "No such instance"),
                (409, "Conflicts with the instance's state or name"))

vm_list = Endpoint(
    "vm_list", "GET", "/v1/vms", Empty, vm.InstanceList,
    "Every instance of the network with its placement and observed state",
    audience=A.MEMBER,
)
vm_show = Endpoint(
    "vm_show", "GET", "/v1/vms/{instance}", Empty, vm.InstanceDetail,
    "One instance (by name, id or id prefix) and its status history",
    path_patterns=REF, errors=NOT_FOUND, audience=A.MEMBER,
)
vm_create = Endpoint(
    "vm_create", "POST", "/v1/vms", vm.VmCreate, vm.Instance,
    "Create an instance from an image: written as desired state, placed by rule",
    errors=((404, "No such image"), (409, "The name is taken"),
            (422, "No node can hold this size")),
    audience=A.MEMBER,
)
vm_start = Endpoint(
    "vm_start", "POST", "/v1/vms/{instance}/start", Empty, vm.Instance,
    "Desire the instance running", path_patterns=REF, errors=WRITE_ERRORS, audience=A.MEMBER,
)
vm_stop = Endpoint(
    "vm_stop", "POST", "/v1/vms/{instance}/stop", vm.VmStop, vm.Instance,
    "Desire the instance stopped (force: end it without asking the guest)",
    path_patterns=REF, errors=WRITE_ERRORS, audience=A.MEMBER,
)
vm_restart = Endpoint(
    "vm_restart", "POST", "/v1/vms/{instance}/restart", Empty, vm.Instance,
    "Restart the instance (a new boot, by desired state)",
    path_patterns=REF, errors=WRITE_ERRORS, audience=A.MEMBER,
)
vm_resize = Endpoint(
    "vm_resize", "POST", "/v1/vms/{instance}/resize", vm.VmResize, vm.Instance,
    "Change vCPUs and/or memory: live where the VMM can, else by a restart",
    path_patterns=REF, errors=(*WRITE_ERRORS, (422, "No node can hold this size")),
    audience=A.MEMBER,
)
vm_delete = Endpoint(
    "vm_delete", "DELETE", "/v1/vms/{instance}", Empty, Empty,
    "Delete the instance: its node ends it and removes its disk",
    path_patterns=REF, errors=WRITE_ERRORS, audience=A.MEMBER,
)
vm_serial = Endpoint(
    "vm_serial", "GET", "/v1/vms/{instance}/serial", Empty, vm.SerialChunk,
    "The instance's serial output (server-sent events; follow: keep streaming)",
    query=vm.SerialQuery, stream=True, path_patterns=REF,
    errors=(*NOT_FOUND, (502, "The node running it did not answer")), audience=A.MEMBER,
)
# The interactive console is a WebSocket at GET /v1/vms/{instance}/console (binary frames both
# ways: keystrokes in, serial output out); server.py serves it beside these JSON routes.

image_list = Endpoint(
    "image_list", "GET", "/v1/images", Empty, vm.ImageList,
    "Workload images of the network, and whether this node holds each",
    audience=A.MEMBER,
)
image_import = Endpoint(
    "image_import", "POST", "/v1/images", vm.ImageImport, vm.Image,
    "Import a kernel, optional initrd and disk from this node's disk as a content-addressed "
    "image (local callers only)",
    errors=((400, "A file is missing or unreadable"),), audience=A.LOCAL,
)
image_delete = Endpoint(
    "image_delete", "DELETE", "/v1/images/{image}", Empty, Empty,
    "Remove an image from the network (image.remove) and this node's store",
    path_patterns=(("image", r"^[a-z0-9][a-z0-9-]{0,63}$"),),
    errors=((403, "Not who added it or an admin"), (404, "No such image")), audience=A.MEMBER,
)
image_blob = Endpoint(
    "image_blob", "GET", "/v1/images/blobs/{digest}", Empty, vm.ImageBlob,
    "One blob (kernel, initrd or disk) of this node's image store by its SHA-256: the raw "
    "bytes (application/octet-stream), for another node to fetch and verify",
    path_patterns=(("digest", vm.HEX_ID),), errors=((404, "Not in this node's store"),),
    audience=A.MEMBER,
)

IMAGE_ENDPOINTS = (image_list, image_import, image_delete, image_blob)

vm_migrate = Endpoint(
    "vm_migrate", "POST", "/v1/vms/{instance}/migrate", vm.VmMigrate, vm.Move,
    "Move the instance to another node without stopping it (restart: stop and start there); "
    "refused with the reason when it cannot move",
    path_patterns=REF, errors=(*WRITE_ERRORS, (422, "It cannot move there")),
    audience=A.MEMBER,
)
node_drain = Endpoint(
    "node_drain", "POST", "/v1/nodes/{node}/drain", vm.NodeDrain, vm.DrainResult,
    "Move every instance off a node (live; restart: stop/start those that cannot move "
    "live); refused as a whole, with the reason, before anything is written",
    path_patterns=(("node", r"^[A-Za-z0-9._-]{1,64}$"),),
    errors=((403, "Not an admin"), (404, "No such node"), (422, "Something cannot move")),
    audience=A.MEMBER,
)
