"""The "pack" part of the node: builds workload images from Formfiles, one at a time (others
wait, queued, in order), publishes their progress on the event stream (topic `pack`), and puts
each result into the image store and the network's images with an image.add that records the
Formfile and this node as its builder. A build's scratch directory (uploaded context, output)
is removed however the build ends; the builder leaves nothing half-written in its output, and
nothing reaches the image store before the build succeeded.

Events, topic `pack` (each with `build`, its id, and `name`, the image's name):
queued (`position`), started, progress (step, total, line, label, fraction, cached, message),
done (`image` digest, `reused`), failed (`reason`, one line; `line`, the Formfile line or null;
`state`: failed or cancelled)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from formation.api import pack_models as pm
from formation.api.models import HealthCheck
from formation.errors import OpError
from formation.node.pack.builder import Built, Progress, Toolchain, error_line, real_toolchain
from formation.node.pack.job import Job, now, step_model
from formation.node.pack.uploads import Uploads
from formation.node.state.image_formfile import record
from formation.node.state.op import decode
from formation.pack.spec import FormfileSpec

if TYPE_CHECKING:
    from formation.node.service import NodeService
    from formation.node.state.component import StateComponent
    from formation.node.vmm.images.component import ImagesComponent

log = logging.getLogger(__name__)

JOBS_DIR = "pack-jobs"
UPLOADS_DIR = "pack-uploads"
CACHE_DIR = "pack-cache"
KEEP_FINISHED = 50  # finished builds this node still lists
PROGRESS_EVERY_S = 0.2  # progress events of one step at most this often (the bus keeps 1000)
TOPIC = "pack"
# The build cache (a base system per release, a layer per step, the disks of some layer stacks)
# grows with every edited Formfile: what no build used for PRUNE_UNUSED_S goes, checked every
# PRUNE_EVERY_S (first after one period: an appliance booting does not pay for it).
PRUNE_EVERY_S = 6 * 3600.0
PRUNE_UNUSED_S = 14 * 86400.0


class BuildFailure(Exception):
    """A build that cannot be completed for a reason of the node's, one line."""


class PackComponent:
    name = "pack"
    prune_every_s = PRUNE_EVERY_S

    def __init__(self, state: StateComponent, images: ImagesComponent,
                 toolchain: Toolchain | None = None) -> None:
        self.state = state
        self.images = images
        self._given = toolchain
        self.toolchain: Toolchain | None = None
        self.jobs: dict[str, Job] = {}
        self.slot = asyncio.Lock()  # one build at a time; asyncio.Lock wakes waiters in order
        self.jobs_dir = Path()
        self.max_queued = 8
        self.service: NodeService | None = None
        self.me = ""
        self._formfile_digests: dict[str, str | None] = {}  # image.add op id -> context digest
        self._pruner: asyncio.Task[None] | None = None
        self.uploads = Uploads(Path(UPLOADS_DIR))
        self.pruned = 0  # cache entries the scheduled prunes removed (health, tests)

    async def start(self, service: NodeService) -> None:
        assert service.identity is not None
        settings = service.settings
        cache = settings.pack.cache_dir or settings.data_dir / CACHE_DIR
        self.jobs_dir = settings.data_dir / JOBS_DIR
        self.max_queued = settings.pack.max_queued
        self.toolchain = self._given or real_toolchain(cache, settings.pack.mirror)
        self.me = service.identity.public_key_hex
        self.service = service
        await asyncio.to_thread(_empty_dir, self.jobs_dir)  # what a crash left mid-build
        self.uploads = Uploads(settings.data_dir / UPLOADS_DIR)
        await asyncio.to_thread(self.uploads.reset)
        if self.toolchain.prune is not None:
            self._pruner = asyncio.get_running_loop().create_task(self._prune_cache(),
                                                                  name="pack-prune")

    async def stop(self) -> None:
        if self._pruner is not None:
            self._pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruner
        tasks = [j.task for j in self.jobs.values() if j.task is not None and not j.task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=30)

    def api_handlers(self) -> object:
        from formation.node.pack.handlers import PackHandlers

        return PackHandlers(self)

    def health(self) -> list[HealthCheck]:
        if self.toolchain is None:
            return [HealthCheck(name="pack", ok=False, detail="not started")]
        running = [j for j in self.jobs.values() if j.state == "running"]
        queued = sum(j.state == "queued" for j in self.jobs.values())
        detail = (f"building {running[0].name}, {queued} queued" if running
                  else "idle")
        return [HealthCheck(name="pack", ok=True, detail=detail)]

    async def _prune_cache(self) -> None:
        """Every prune_every_s, between builds (the slot), removes what no build used for
        PRUNE_UNUSED_S. A failure is logged and tried again next period."""
        assert self.toolchain is not None and self.toolchain.prune is not None
        while True:
            await asyncio.sleep(self.prune_every_s)
            try:
                async with self.slot:
                    removed = await self.toolchain.prune(PRUNE_UNUSED_S)
                self.pruned += removed
                if removed:
                    log.info("build cache pruned", extra={"fields": {"removed": removed}})
            except Exception as exc:  # the next period tries again
                log.warning("build cache prune failed: %s", _one_line(exc))

    # the queue ------------------------------------------------------------------------------
    def unfinished(self) -> list[Job]:
        return sorted((j for j in self.jobs.values() if not j.finished),
                      key=lambda j: j.queued_at)

    def position(self, job: Job) -> int | None:
        """Builds ahead of a queued one (the running one included)."""
        if job.state != "queued":
            return None
        ahead = self.unfinished()
        return ahead.index(job) if job in ahead else None

    def model(self, job: Job) -> pm.PackBuild:
        return job.model(self.position(job))

    def submit(self, job: Job) -> Job:
        self.jobs[job.id] = job
        job.task = asyncio.get_running_loop().create_task(self._run(job),
                                                          name=f"pack-{job.id}")
        self.publish(job, "queued", {"position": self.position(job)})
        return job

    def publish(self, job: Job, kind: str, data: dict[str, Any] | None = None) -> None:
        if self.service is not None:
            self.service.publish(TOPIC, kind, {"build": job.id, "name": job.name,
                                               **(data or {})})

    # one build ------------------------------------------------------------------------------
    async def _run(self, job: Job) -> None:
        assert self.toolchain is not None
        try:
            job.context_digest = await asyncio.to_thread(self.toolchain.digest, job.spec,
                                                         job.context)
            existing = await self.built_with(job.context_digest) if job.reuse else None
            if existing is not None:
                job.image, job.reused = existing["digest"], True
            else:
                async with self.slot:
                    await self._build(job)
            await self._clean(job)  # before "done": whoever sees done sees no scratch
            job.state = "done"
            job.finished_at = now()
            self.publish(job, "done", {"image": job.image, "reused": job.reused})
            log.info("build done", extra={"fields": {"build": job.id, "image": job.image,
                                                     "reused": job.reused}})
        except asyncio.CancelledError:
            await self._clean(job)
            self._ended(job, "cancelled", "cancelled", None)
        except Exception as exc:  # every failure is the build's, said in one line
            await self._clean(job)
            reason = _one_line(exc)
            self._ended(job, "failed", reason, error_line(exc))
            if not isinstance(exc, BuildFailure) and error_line(exc) is None \
                    and type(exc).__name__ != "BuildError":
                log.error("build failed", exc_info=exc, extra={"fields": {"build": job.id}})
        finally:
            await self._clean(job)  # again, if cleaning itself was interrupted
            self._prune()

    @staticmethod
    async def _clean(job: Job) -> None:
        await asyncio.to_thread(shutil.rmtree, job.scratch, True)

    async def _build(self, job: Job) -> None:
        assert self.toolchain is not None
        job.state, job.started_at = "running", now()
        self.publish(job, "started")
        out = job.scratch / "out"
        await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
        last = [0.0, -1]

        def progress(report: Progress) -> None:
            step = step_model(report)
            job.report(step)
            moment = time.monotonic()
            if step.step != last[1] or moment - last[0] >= PROGRESS_EVERY_S:
                last[0], last[1] = moment, step.step
                self.publish(job, "progress", step.model_dump())

        built = await self.toolchain.build(job.spec, job.context, out, progress)
        job.image = await self._import(job, built)

    def _ended(self, job: Job, state: pm.BuildState, reason: str, line: int | None) -> None:
        job.state, job.error, job.error_line, job.finished_at = state, reason, line, now()
        self.publish(job, "failed", {"reason": reason, "line": line, "state": state})
        log.info("build ended", extra={"fields": {"build": job.id, "state": state,
                                                  "reason": reason}})

    def _prune(self) -> None:
        done = sorted((j for j in self.jobs.values() if j.finished),
                      key=lambda j: j.finished_at or j.queued_at)
        for job in done[:max(0, len(done) - KEEP_FINISHED)]:
            self.jobs.pop(job.id, None)

    # the image store and the network's images -----------------------------------------------
    def name_owner(self, catalog: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
        """The image of this name another node added: a build may not take its name (a
        rebuild here moves the name to the new image)."""
        return next((i for i in catalog if i["name"] == name and i["added_by"] != self.me),
                    None)

    async def _import(self, job: Job, built: Built) -> str:
        images, store = self.images, self.state.require_store()
        assert job.context_digest is not None and images.manifests is not None
        formfile = record(job.spec.name, job.context_digest, job.spec.source)
        async with images.import_lock:
            catalog = await images.catalog()
            other = self.name_owner(catalog, job.name)
            if other is not None:
                raise BuildFailure(f"name: an image named {job.name} was added by another node "
                                   f"({other['digest'][:12]}); build with another name")
            payload = await images.require_store().import_files(
                job.name, built.kernel, built.initrd, built.disk, built.cmdline)
            payload |= {"formfile": formfile, "builder": self.me}
            await asyncio.to_thread(images.manifests.save, payload)
            same = next((i for i in catalog if i["digest"] == payload["digest"]), None)
            if same is None:
                try:
                    await store.append("image.add", payload)
                except OpError as exc:
                    raise BuildFailure(f"image.add refused: {exc}") from None
            older = [i for i in catalog if i["name"] == job.name
                     and i["digest"] != payload["digest"]]
            for image in older:  # the name moves to this build; instances keep their blobs
                for element in await store.view("images"):
                    if element.get("key") == image["digest"]:
                        await store.append("image.remove", {"image": element["id"]})
        if older:
            await images.collect()
        images.publish("imported", {"image": payload["digest"], "name": payload["name"],
                                    "bytes": payload["size"], "build": job.id})
        return str(payload["digest"])

    async def reusable(self, spec: FormfileSpec, context: Path) -> bool:
        """An image of the network was built from this Formfile and context: a build of them
        reuses it, whoever added it and under whatever name."""
        assert self.toolchain is not None
        digest = await asyncio.to_thread(self.toolchain.digest, spec, context)
        return await self.built_with(digest) is not None

    async def built_with(self, digest: str) -> dict[str, Any] | None:
        """An image of the network built from a context of this digest (its image.add's
        `formfile.digest`), or None."""
        store = self.state.require_store()
        view = await store.view("images")
        for element in view:
            op_id = element.get("id")
            if not isinstance(op_id, str):
                continue
            if op_id not in self._formfile_digests:
                self._formfile_digests[op_id] = await self._recorded_digest(op_id)
            if self._formfile_digests[op_id] == digest:
                return await self.images.find(str(element.get("key")))
        return None

    async def _recorded_digest(self, op_id: str) -> str | None:
        with contextlib.suppress(ValueError, OpError):
            raw = await self.state.require_store().get(bytes.fromhex(op_id))
            op = decode(raw) if raw is not None else None
            if op is not None and op.kind == "image.add":
                formfile = op.payload.get("formfile")
                if isinstance(formfile, dict) and isinstance(formfile.get("digest"), str):
                    return str(formfile["digest"])
        return None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:500]


def _empty_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
