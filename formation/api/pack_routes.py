"""Endpoints of workload builds (formation/node/pack). A build runs on the node asked, one at a
time; its result goes into the image store and the network's images (image.add with its
Formfile and builder). Progress is on the event stream, topic `pack`."""

from __future__ import annotations

from formation.api import pack_models as pm
from formation.api.caller import Audience as A
from formation.api.endpoint import Endpoint
from formation.api.models import Empty

REF = (("build", pm.BUILD_ID),)

pack_build_start = Endpoint(
    "pack_build_start", "POST", "/v1/pack/builds", pm.PackBuildStart, pm.PackBuild,
    "Build a Formfile into a workload image (queued behind a running build); a bad Formfile "
    "is refused at once with every problem",
    errors=((403, "A path on the node, asked over TCP"), (404, "The upload named is not an "
            "open upload of this caller"), (409, "The image name is another node's"),
            (413, "The uploaded context is too large"),
            (503, "Too many builds queued")),
    audience=A.MEMBER,
)
pack_build_list = Endpoint(
    "pack_build_list", "GET", "/v1/pack/builds", Empty, pm.PackBuildList,
    "The builds this node ran or runs, newest first (the last ones kept)",
    audience=A.MEMBER,
)
pack_build_show = Endpoint(
    "pack_build_show", "GET", "/v1/pack/builds/{build}", Empty, pm.PackBuild,
    "One build: its state, queue position, steps and result",
    path_patterns=REF, errors=((404, "No such build"),), audience=A.MEMBER,
)
pack_build_cancel = Endpoint(
    "pack_build_cancel", "DELETE", "/v1/pack/builds/{build}", Empty, pm.PackBuild,
    "Cancel a queued or running build (nothing of it stays in the image store)",
    path_patterns=REF, errors=((404, "No such build"),), audience=A.MEMBER,
)

UPLOAD = (("upload", pm.UPLOAD_ID),)

pack_upload_start = Endpoint(
    "pack_upload_start", "POST", "/v1/pack/uploads", pm.PackUploadStart, pm.PackUpload,
    "Open a chunked upload of a build context's tar (for contexts over context_tar's limit); "
    "a build names it when complete",
    errors=((413, "Larger than an upload may be"), (429, "This key has too many uploads "
            "open"), (503, "The node's space for uploads is taken")),
    audience=A.MEMBER,
)
pack_upload_chunk = Endpoint(
    "pack_upload_chunk", "PUT", "/v1/pack/uploads/{upload}", pm.PackUploadChunk,
    pm.PackUpload, "Append the next chunk to an upload (offset = bytes received so far)",
    path_patterns=UPLOAD, errors=((404, "No such upload of this caller"),
                                  (409, "Not the next offset"),
                                  (413, "Past the declared size")),
    audience=A.MEMBER,
)
pack_upload_cancel = Endpoint(
    "pack_upload_cancel", "DELETE", "/v1/pack/uploads/{upload}", Empty, pm.PackUpload,
    "Drop an open upload (its space is free at once)",
    path_patterns=UPLOAD, errors=((404, "No such upload of this caller"),),
    audience=A.MEMBER,
)

PACK_ENDPOINTS = (pack_build_start, pack_build_list, pack_build_show, pack_build_cancel,
                  pack_upload_start, pack_upload_chunk, pack_upload_cancel)
