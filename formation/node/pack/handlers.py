"""The build endpoints (api/pack_routes.py). Starting a build reads and parses the Formfile at
once, so a bad one is refused with every problem before anything is queued; the build itself
runs in the pack part, and its result is an image.add signed by this node."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import secrets
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from formation.api import pack_models as pm
from formation.api.caller import Caller
from formation.api.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    HandlerError,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    Unavailable,
)
from formation.api.models import Empty, FieldError
from formation.errors import FormationError
from formation.node.pack.builder import problems
from formation.node.pack.context import (
    ContextError,
    local_context,
    unpack_context,
    unpack_tar_file,
)
from formation.node.pack.job import Job
from formation.node.state.image_formfile import MAX_SOURCE_BYTES
from formation.pack.spec import FormfileSpec

if TYPE_CHECKING:
    from formation.node.pack.component import PackComponent

MAX_PER_REMOTE = 2  # unfinished builds one remote key may hold


class PackHandlers:
    def __init__(self, part: PackComponent) -> None:
        self.part = part

    async def pack_build_start(self, body: pm.PackBuildStart, caller: Caller) -> pm.PackBuild:
        part = self.part
        if body.context is not None and not caller.local:
            raise Forbidden("context: a path on the node is for local callers; upload the "
                            "context instead (context_tar)",
                            [FieldError(field="context", message="local callers only")])
        unfinished = part.unfinished()
        if len(unfinished) > part.max_queued:
            raise Unavailable(f"{len(unfinished) - 1} builds are queued (pack.max_queued); "
                              f"try again when one has finished")
        if not caller.local and sum(j.started_by == caller.key for j in unfinished) \
                >= MAX_PER_REMOTE:
            raise TooManyRequests(f"this key has {MAX_PER_REMOTE} unfinished builds here")
        build_id = secrets.token_hex(8)
        scratch = part.jobs_dir / build_id
        try:
            spec, context = await self._read(body, scratch, _owner(caller))
            name = body.name or spec.name
            if not re.match(pm.NAME, name):
                raise BadRequest(f"name: the Formfile's NAME {name!r} is not an image name "
                                 f"(lowercase letters, digits and '-'); give one",
                                 [FieldError(field="name", message="an image name")])
            other = part.name_owner(await part.images.catalog(), name)
            if other is not None and not (body.reuse and await part.reusable(spec, context)):
                raise Conflict(f"name: an image named {name} was added by another node "
                               f"({other['digest'][:12]}); give another name",
                               [FieldError(field="name", message="another node's image")])
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, scratch, True)
            raise
        job = Job(id=build_id, name=name, spec=spec, context=context, scratch=scratch,
                  reuse=body.reuse, started_by="local" if caller.local else str(caller.key))
        return part.model(part.submit(job))

    async def _read(self, body: pm.PackBuildStart, scratch: Path,
                    owner: str) -> tuple[FormfileSpec, Path]:
        toolchain = self.part.toolchain
        assert toolchain is not None
        try:
            if body.upload is not None:
                tar = await self.part.uploads.take(owner, body.upload, scratch / "upload.tar")
                where = await asyncio.to_thread(unpack_tar_file, tar, scratch / "context")
                await asyncio.to_thread(tar.unlink)
            elif body.context_tar is not None:
                where = await asyncio.to_thread(unpack_context, body.context_tar,
                                                scratch / "context")
            else:
                assert body.context is not None
                where = await asyncio.to_thread(local_context, body.context)
            spec, context = await asyncio.to_thread(toolchain.load, where)
        except ContextError as exc:
            raise _http(exc) from None
        except (FormationError, OSError) as exc:
            found = problems(exc)
            fields = [FieldError(field=f"Formfile:{line}:{column}", message=message)
                      for line, column, message in found]
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            more = f" (and {len(found) - 1} more problems)" if len(found) > 1 else ""
            raise BadRequest(f"{first}{more}", fields) from None
        if not spec.source:  # the parser keeps the text it read; else read it here
            formfile = where / "Formfile" if where.is_dir() else where
            text = await asyncio.to_thread(formfile.read_text, encoding="utf-8")
            spec = dataclasses.replace(spec, source=text)
        size = len(spec.source.encode())
        if size > MAX_SOURCE_BYTES:
            raise BadRequest(f"Formfile: {size} bytes; an image records at most "
                             f"{MAX_SOURCE_BYTES} of its Formfile")
        return spec, context

    async def pack_build_list(self, body: Empty, caller: Caller) -> pm.PackBuildList:
        jobs = sorted(self.part.jobs.values(), key=lambda j: j.queued_at, reverse=True)
        return pm.PackBuildList(builds=[self.part.model(j) for j in jobs])

    def _job(self, build: str) -> Job:
        job = self.part.jobs.get(build)
        if job is None:
            raise NotFound(f"build: no build {build} on this node")
        return job

    async def pack_build_show(self, body: Empty, caller: Caller, build: str) -> pm.PackBuild:
        return self.part.model(self._job(build))

    async def pack_build_cancel(self, body: Empty, caller: Caller, build: str) -> pm.PackBuild:
        job = self._job(build)
        if not (caller.local or caller.admin or job.started_by == caller.key):
            raise Forbidden("build: only who started it, a local caller or an admin may "
                            "cancel it")
        if job.task is not None and not job.task.done():
            job.task.cancel()
            await asyncio.wait({job.task}, timeout=30)
        return self.part.model(job)

    # chunked uploads of large contexts (uploads.py) -------------------------------------------
    async def pack_upload_start(self, body: pm.PackUploadStart, caller: Caller) -> pm.PackUpload:
        try:
            upload = await self.part.uploads.start(_owner(caller), body.size, body.sha256)
        except ContextError as exc:
            raise _http(exc) from None
        return pm.PackUpload(id=upload.id, size=upload.size, received=upload.received)

    async def pack_upload_chunk(self, body: pm.PackUploadChunk, caller: Caller,
                                upload: str) -> pm.PackUpload:
        try:
            found = await self.part.uploads.chunk(_owner(caller), upload, body.offset, body.data)
        except ContextError as exc:
            raise _http(exc) from None
        return pm.PackUpload(id=found.id, size=found.size, received=found.received)

    async def pack_upload_cancel(self, body: Empty, caller: Caller,
                                 upload: str) -> pm.PackUpload:
        try:
            found = await self.part.uploads.get(_owner(caller), upload)
        except ContextError as exc:
            raise _http(exc) from None
        await self.part.uploads.drop(found)
        return pm.PackUpload(id=found.id, size=found.size, received=found.received)


def _owner(caller: Caller) -> str:
    return "local" if caller.local else str(caller.key)


def _http(exc: ContextError) -> HandlerError:
    kinds: dict[int, type[HandlerError]] = {
        404: NotFound, 409: Conflict, 413: PayloadTooLarge, 429: TooManyRequests,
        503: Unavailable}
    error = kinds.get(exc.status, BadRequest)
    return error(str(exc), [FieldError(field=exc.field, message=str(exc))])
