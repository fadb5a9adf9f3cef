"""A fake AUTOMATIC1111 webui API (``/sdapi/v1``): renders that take time and advance step
by step, a global ``/progress`` with live previews, ``/interrupt``, the checkpoint list, and
optional HTTP Basic auth, with A1111's own error body."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import random
from typing import Any

from aiohttp import web

from limner.testing.fakes.base import FakeProvider, Fault, RecordedRequest

API = "/sdapi/v1"


class Automatic1111Fake(FakeProvider):
    """``render_s`` is how long a render takes (spread over its ``steps``); ``auth`` is the
    ``(user, password)`` of ``--api-auth``; ``live_previews`` fills ``current_image`` every
    ``preview_every`` steps. Renders run one at a time, as in A1111 (its queue lock)."""

    name = "automatic1111"

    def __init__(
        self,
        *,
        render_s: float = 0.0,
        default_steps: int = 20,
        auth: tuple[str, str] | None = None,
        live_previews: bool = True,
        preview_every: int = 1,
        latency_s: float = 0.0,
    ) -> None:
        super().__init__(latency_s=latency_s)
        self.render_s = render_s
        self.default_steps = default_steps
        self.auth = auth
        self.live_previews = live_previews
        self.preview_every = preview_every
        self.checkpoints = [
            {
                "title": "v1-5-pruned-emaonly.safetensors [6ce0161689]",
                "model_name": "v1-5-pruned-emaonly",
                "hash": "6ce0161689",
                "sha256": "6ce0161689" + "0" * 54,
                "filename": "/models/Stable-diffusion/v1-5-pruned-emaonly.safetensors",
                "config": None,
            },
            {
                "title": "sd_xl_base_1.0.safetensors [31e35c80fc]",
                "model_name": "sd_xl_base_1.0",
                "hash": "31e35c80fc",
                "sha256": "31e35c80fc" + "0" * 54,
                "filename": "/models/Stable-diffusion/sd_xl_base_1.0.safetensors",
                "config": None,
            },
        ]
        self.interrupts = 0
        # Seeds the next render reports in ``info.all_seeds`` instead of seed, seed+1, ...
        # (as when a script or extension changes them).
        self.report_seeds: list[int] | None = None
        self._lock = asyncio.Lock()
        self._interrupted = False
        self._state: dict[str, Any] = _idle()
        self._eta = 0.0
        self._current_image: str | None = None

    def routes(self, app: web.Application) -> None:
        app.router.add_post(f"{API}/txt2img", self._txt2img)
        app.router.add_post(f"{API}/img2img", self._img2img)
        app.router.add_get(f"{API}/progress", self._progress)
        app.router.add_post(f"{API}/interrupt", self._interrupt)
        app.router.add_get(f"{API}/sd-models", self._sd_models)

    def error(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        """A1111 renders every exception the same way (modules/api/api.py)."""
        return web.json_response(
            {"error": "HTTPException", "detail": message, "body": "", "errors": message},
            status=status,
            headers=headers,
        )

    @property
    def rendering(self) -> bool:
        """Whether a render is running (what ``/progress`` shows as ``job_count``)."""
        return bool(self._state["job_count"])

    def renders(self) -> list[RecordedRequest]:
        """The txt2img/img2img requests received, in order."""
        return [r for r in self.requests if r.path.endswith(("/txt2img", "/img2img"))]

    # -- routes ------------------------------------------------------------------------

    def _unauthorised(self, request: web.Request) -> web.Response | None:
        if self.auth is None:
            return None
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        try:
            given = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            given = ""
        if scheme.lower() == "basic" and given == f"{self.auth[0]}:{self.auth[1]}":
            return None
        return self.error(
            401, "Incorrect username or password", headers={"WWW-Authenticate": "Basic"}
        )

    async def _txt2img(self, request: web.Request) -> web.StreamResponse:
        return await self._render(request, img2img=False)

    async def _img2img(self, request: web.Request) -> web.StreamResponse:
        return await self._render(request, img2img=True)

    async def _render(self, request: web.Request, *, img2img: bool) -> web.StreamResponse:
        recorded = await self.record(request)
        denied = self._unauthorised(request)
        if denied is not None:
            return denied
        armed = self.next_fault()
        await self.delay(armed)
        if armed is not None and armed.fault is Fault.CONNECTION_RESET:
            return await self.reset_connection(request)
        generic = self.generic_fault_response(armed)
        if generic is not None:
            return generic
        body = recorded.json
        if not isinstance(body, dict):
            return web.json_response(
                {"detail": [{"loc": ["body"], "msg": "field required", "type": "missing"}]},
                status=422,
            )
        if img2img and not body.get("init_images"):
            return self.error(404, "Init image not found")
        for name in ("init_images", "mask"):
            value = body.get(name)
            for item in value if isinstance(value, list) else [value] if value else []:
                try:
                    base64.b64decode(str(item).partition(",")[2] or str(item), validate=True)
                except binascii.Error:
                    return self.error(500, "Invalid encoded image")
        sampler = body.get("sampler_name")
        if sampler is not None and sampler not in SAMPLERS:
            return self.error(400, "Sampler not found")
        async with self._lock:
            return await self._run(body, armed.fault if armed else None)

    async def _run(self, body: dict[str, Any], fault: Fault | None) -> web.Response:
        steps = int(body.get("steps") or self.default_steps)
        batch = int(body.get("batch_size") or 1)
        width, height = int(body.get("width") or 512), int(body.get("height") or 512)
        self._interrupted = False
        self._state = {**_idle(), "job": "scripts_txt2img", "job_count": 1}
        self._state["sampling_steps"] = steps
        try:
            for step in range(1, steps + 1):
                if self._interrupted:
                    break
                if self.render_s:
                    await asyncio.sleep(self.render_s / steps)
                self._state["sampling_step"] = step
                self._eta = self.render_s * (steps - step) / steps
                if self.live_previews and step % self.preview_every == 0 and step < steps:
                    self._current_image = self.b64(self.next_image(64, 64))
        finally:
            self._state = _idle()
            self._current_image = None
            self._eta = 0.0
        seed = int(body.get("seed", -1))
        seed = random.randrange(2**32) if seed == -1 else seed
        seeds = [seed + index for index in range(batch)]
        if self.report_seeds is not None:
            seeds, self.report_seeds = self.report_seeds, None
        if fault is Fault.TEXT_INSTEAD_OF_IMAGE:
            images: list[str] = []  # what ``send_images: false`` looks like
        elif fault is Fault.OVERSIZED_IMAGE:
            images = [self.b64(self.oversized_image())]
        else:
            images = [self.b64(self.next_image(width, height)) for _ in seeds]
        parameters = {k: v for k, v in body.items() if k not in ("init_images", "mask")}
        info = {
            "prompt": body.get("prompt", ""),
            "all_prompts": [body.get("prompt", "")] * batch,
            "negative_prompt": body.get("negative_prompt", ""),
            "seed": seed,
            "all_seeds": seeds,
            "width": width,
            "height": height,
            "steps": steps,
            "batch_size": batch,
            "index_of_first_image": 0,
            "sd_model_name": "v1-5-pruned-emaonly",
            "infotexts": [f"{body.get('prompt', '')}\nSteps: {steps}, Seed: {s}" for s in seeds],
        }
        return web.json_response(
            {"images": images, "parameters": parameters, "info": json.dumps(info)}
        )

    async def _progress(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        denied = self._unauthorised(request)
        if denied is not None:
            return denied
        state = dict(self._state)
        job_count = state["job_count"]
        fraction = 0.0
        if job_count and state["sampling_steps"]:
            fraction = min(1.0, 0.01 + state["sampling_step"] / state["sampling_steps"])
        skip = request.query.get("skip_current_image", "false").lower() == "true"
        return web.json_response(
            {
                "progress": fraction,
                "eta_relative": self._eta,
                "state": state,
                "current_image": None if skip else self._current_image,
                "textinfo": None,
            }
        )

    async def _interrupt(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        denied = self._unauthorised(request)
        if denied is not None:
            return denied
        self.interrupts += 1
        self._interrupted = True
        self._state["interrupted"] = True
        return web.json_response({})

    async def _sd_models(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        denied = self._unauthorised(request)
        if denied is not None:
            return denied
        armed = self.next_fault()
        generic = self.generic_fault_response(armed)
        if generic is not None:
            return generic
        return web.json_response(self.checkpoints)


SAMPLERS = {"Euler", "Euler a", "DPM++ 2M", "DPM++ 2M Karras", "DPM++ SDE", "DDIM", "UniPC"}


def _idle() -> dict[str, Any]:
    return {
        "skipped": False,
        "interrupted": False,
        "stopping_generation": False,
        "job": "",
        "job_count": 0,
        "job_timestamp": "0",
        "job_no": 0,
        "sampling_step": 0,
        "sampling_steps": 0,
    }
