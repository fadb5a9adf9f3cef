"""The ``limner`` command: ``serve``, ``generate`` and ``demo``."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Annotated

import grpc
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from limner import logs
from limner.client import LimnerClient, connect, download_asset
from limner.settings import Settings
from limner.v1 import image_service_pb2, job_pb2

app = typer.Typer(add_completion=False, help="Limner: the image service for chat backends.")
console = Console()

STAGES = {
    job_pb2.JOB_STAGE_QUEUED: "queued",
    job_pb2.JOB_STAGE_PREPARING: "preparing",
    job_pb2.JOB_STAGE_WRITING: "writing",
    job_pb2.JOB_STAGE_AWAITING_APPROVAL: "awaiting approval",
    job_pb2.JOB_STAGE_GENERATING: "generating",
    job_pb2.JOB_STAGE_DOWNLOADING: "downloading",
    job_pb2.JOB_STAGE_STORING: "storing",
}

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="TOML file with providers and models.")
]
DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="Where the database and images live.")
]


def _settings(config: Path | None, **overrides: object) -> Settings:
    given = {key: value for key, value in overrides.items() if value is not None}
    return Settings.load(config, **given)


@app.command()
def serve(
    address: Annotated[
        str | None, typer.Option(help="HOST:PORT to listen on; port 0 picks a free one.")
    ] = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Run the gRPC server until SIGTERM or Ctrl-C."""
    from limner.app import serve as run_server

    settings = _settings(config, address=address, data_dir=data_dir)
    logs.configure(settings.log_level, settings.log_format)
    asyncio.run(run_server(settings))


def _size(value: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in value.lower().split("x"))
    except ValueError:
        raise typer.BadParameter("use WIDTHxHEIGHT, e.g. 512x512") from None
    return width, height


async def _follow(
    events: object, progress: Progress, task: TaskID, label: str
) -> job_pb2.JobResult:
    """Drives a progress bar from a job event stream; returns the result or raises."""
    async for response in events:  # type: ignore[attr-defined]
        event = response.event
        kind = event.WhichOneof("event")
        if kind == "snapshot":
            progress.update(task, description=f"{label} {event.snapshot.name}")
        elif kind == "progress":
            p = event.progress
            stage = STAGES.get(p.stage, "working")
            description = f"{label} [cyan]{stage}[/]"
            if p.queue_position:
                description += f" (queue position {p.queue_position})"
            if p.total_steps:
                progress.update(task, total=p.total_steps, completed=p.step)
            progress.update(task, description=description)
        elif kind == "warning":
            progress.console.print(f"[yellow]warning[/] {event.warning.message}")
        elif kind == "completed":
            progress.update(task, completed=progress.tasks[task].total or 1)
            result: job_pb2.JobResult = event.completed
            return result
        elif kind == "failed":
            raise typer.Exit(_report_failure(event.failed.message, event.failed.code))
        elif kind == "cancelled":
            console.print(f"[red]cancelled[/] {event.cancelled.reason}")
            raise typer.Exit(1)
    raise typer.Exit(_report_failure("the stream ended without a result", 2))


def _report_failure(message: str, code: int) -> int:
    console.print(f"[red]failed[/] (status {code}) {message}")
    return 1


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


async def _generate(
    client: LimnerClient,
    prompt: str,
    *,
    model: str,
    size: tuple[int, int] | None,
    seed: int | None,
    out: Path | None,
    source: str = "",
) -> tuple[Path, str]:
    """Runs one generate or edit job with a progress bar; returns the file and asset."""
    options = image_service_pb2.ImageOptions()
    if size is not None:
        options.width, options.height = size
    if seed is not None:
        options.seed = seed
    request_id = str(uuid.uuid4())
    with _progress() as progress:
        task = progress.add_task("starting", total=None)
        if source:
            stream: object = client.images.EditImage(
                image_service_pb2.EditImageRequest(
                    source_asset=source,
                    prompt=prompt,
                    model=model,
                    options=options,
                    request_id=request_id,
                ),
                metadata=client.metadata,
            )
            label = "edit"
        else:
            stream = client.images.GenerateImage(
                image_service_pb2.GenerateImageRequest(
                    prompt=prompt, model=model, options=options, request_id=request_id
                ),
                metadata=client.metadata,
            )
            label = "generate"
        result = await _follow(stream, progress, task, label)
    image = result.images[0]
    target = out or Path(f"{image.asset.removeprefix('assets/')[:12]}.png")
    size_bytes = await download_asset(client, image.asset, target)
    seed_text = f", seed {image.seed}" if image.HasField("seed") else ""
    console.print(
        f"[green]saved[/] {target} ({image.width}x{image.height} {image.mime_type}, "
        f"{size_bytes} bytes{seed_text}) as {image.asset}"
    )
    return target, image.asset


@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(help="What to draw.")],
    model: Annotated[str, typer.Option(help="models/{id}; empty uses the default.")] = "",
    size: Annotated[str | None, typer.Option(help="WIDTHxHEIGHT, e.g. 512x512.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for reproducible output.")] = None,
    out: Annotated[Path | None, typer.Option(help="Where to save the image.")] = None,
    address: Annotated[str, typer.Option(help="Server address.")] = "127.0.0.1:50051",
    api_key: Annotated[str, typer.Option(envvar="LIMNER_API_KEY", help="API key.")] = "",
) -> None:
    """Generate an image on a running server, with a live progress bar."""

    async def run() -> None:
        async with connect(address, api_key=api_key) as client:
            try:
                await _generate(
                    client,
                    prompt,
                    model=model,
                    size=_size(size) if size else None,
                    seed=seed,
                    out=out,
                )
            except grpc.aio.AioRpcError as error:
                console.print(f"[red]{error.code().name}[/] {error.details()}")
                raise typer.Exit(1) from None

    asyncio.run(run())


@app.command()
def demo(
    data_dir: DataDirOption = None,
    out_dir: Annotated[Path, typer.Option(help="Where to save the images.")] = Path("demo-output"),
    config: ConfigOption = None,
) -> None:
    """Start a server on a free port, generate and edit an image through the gRPC API with
    visible progress, print where the files are, and stop the server."""
    from limner.app import App

    settings = _settings(config, address="127.0.0.1:0", data_dir=data_dir, shutdown={"drain_s": 0})
    logs.configure("WARNING", settings.log_format)

    out_dir = out_dir.absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    data_location = Path(settings.data_dir).absolute()

    async def run() -> None:
        server = App(settings)
        port = await server.start()
        console.print(f"[bold]limner[/] serving on 127.0.0.1:{port} (offline provider)")
        try:
            async with connect(f"127.0.0.1:{port}") as client:
                _, first_asset = await _generate(
                    client,
                    "a lighthouse on a cliff at dusk, watercolour",
                    model="",
                    size=(768, 512),
                    seed=7,
                    out=out_dir / "generated.png",
                )
                await _generate(
                    client,
                    "the same lighthouse in a snow storm at night",
                    model="",
                    size=None,
                    seed=8,
                    out=out_dir / "edited.png",
                    source=first_asset,
                )
        finally:
            await server.stop(grace_s=1)
        console.print(
            f"[bold]done[/]: images in {out_dir}, service data in "
            f"{data_location} (database limner.db, assets/)"
        )

    asyncio.run(run())
