"""The ``limner`` command: ``serve``, ``generate``, ``demo`` and ``config check``."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypedDict

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

from limner import logs, startup
from limner.settings import Settings
from limner.v1 import image_service_pb2, job_pb2

if TYPE_CHECKING:
    from limner.client import LimnerClient, TlsConfig

# grpc (and limner.client, which imports it) is imported inside the commands, never here:
# gRPC's C core reads GRPC_VERBOSITY once, when grpc is imported, and `serve` must set it
# from the log format first (logs.configure), or JSON logs get raw gRPC lines.

app = typer.Typer(
    add_completion=False,
    help="Limner: the image service for chat backends.",
    epilog=startup.exit_codes_help(),
)
config_app = typer.Typer(help="Check the configuration without starting the server.")
app.add_typer(config_app, name="config")
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
TlsOption = Annotated[
    bool,
    typer.Option(
        "--tls", help="Connect over TLS, trusting the system's CAs (implied by --ca-cert)."
    ),
]
CaCertOption = Annotated[
    Path | None,
    typer.Option(
        "--ca-cert",
        envvar="LIMNER_CA_CERT",
        help="PEM CA certificate that signed the server's certificate: connect over TLS.",
    ),
]
ClientCertOption = Annotated[
    Path | None,
    typer.Option(
        "--client-cert",
        envvar="LIMNER_CLIENT_CERT",
        help="PEM client certificate, for a server that requires one (mTLS).",
    ),
]
ClientKeyOption = Annotated[
    Path | None,
    typer.Option(
        "--client-key", envvar="LIMNER_CLIENT_KEY", help="The client certificate's PEM key."
    ),
]


def _client_tls(
    tls: bool, ca_cert: Path | None, client_cert: Path | None, client_key: Path | None
) -> TlsConfig | None:
    """TLS options for the client, or None for plaintext; checks the files exist."""
    from limner.client import TlsConfig, TlsConfigError

    if not (tls or ca_cert or client_cert or client_key):
        return None
    config = TlsConfig(ca_cert=ca_cert, client_cert=client_cert, client_key=client_key)
    try:
        config.credentials()
    except TlsConfigError as error:
        console.print(f"[red]error[/] {error}")
        raise typer.Exit(2) from None
    return config


DebugOption = Annotated[
    bool,
    typer.Option("--debug", help="Show the traceback when the start fails (it never does else)."),
]


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"limner {version('limner')}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    pass


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
    debug: DebugOption = False,
) -> None:
    """Run the gRPC server until SIGTERM or Ctrl-C.

    A mistake that stops the start is told in a line or two on stderr, with an exit code
    per kind of mistake (see limner --help)."""
    with startup.reported(debug):
        settings = _settings(config, address=address, data_dir=data_dir)
        logs.configure(settings.log_level, settings.log_format)
        # Only now: importing the app imports grpc, which reads GRPC_VERBOSITY once.
        from limner.app import serve as run_server

        asyncio.run(run_server(settings))


@config_app.command("check")
def config_check(config: ConfigOption = None, debug: DebugOption = False) -> None:
    """Validate the configuration and print the effective settings, secrets masked.

    Reads the TOML file, LIMNER_* variables and defaults as serve does, and exits with
    serve's codes (0: valid). Does not bind the address or open the database."""
    from limner.config import config_path, effective_toml

    with startup.reported(debug):
        settings = _settings(config)
    path, named_by = config_path(config)
    source = f"{path}" + (f" (from {named_by})" if named_by else "") if path else "no file"
    typer.echo(f"# The configuration is valid. Configuration file: {source}.")
    typer.echo("# Effective settings (flags > LIMNER_* variables > file > defaults); secrets")
    typer.echo("# are masked.")
    typer.echo(effective_toml(settings), nl=False)


def _size(value: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in value.lower().split("x"))
    except ValueError:
        raise typer.BadParameter("use WIDTHxHEIGHT, e.g. 512x512") from None
    return width, height


@dataclass
class _Followed:
    """The job a command follows, for what it prints when it stops early."""

    address: str
    job: str = ""
    request_id: str = ""
    last_sequence: int = 0
    # The server has answered for the job: only then is a lost connection waited out (a
    # wrong address or a TLS mismatch fails at once).
    answered: bool = False
    reconnecting: bool = False
    limner_flags: str = ""  # connection flags to repeat in the printed commands
    grpcurl_flags: str = "-plaintext"

    def connected_with(self, api_key: str, tls: TlsConfig | None) -> _Followed:
        limner, grpcurl = [f"--address {self.address}"], []
        if tls is None:
            grpcurl.append("-plaintext")
        else:
            limner.append(f"--ca-cert {tls.ca_cert}" if tls.ca_cert else "--tls")
            grpcurl += [f"-cacert {tls.ca_cert}"] if tls.ca_cert else []
            if tls.client_cert:
                limner.append(f"--client-cert {tls.client_cert} --client-key {tls.client_key}")
                grpcurl.append(f"-cert {tls.client_cert} -key {tls.client_key}")
        if api_key:  # never printed: the commands read it from the environment
            grpcurl.append('-H "authorization: Bearer $LIMNER_API_KEY"')
        self.limner_flags, self.grpcurl_flags = " ".join(limner), " ".join(grpcurl)
        return self

    def hint(self, why: str) -> str:
        if not self.job:
            return (
                f"{why} before the server named the job. Run the same command with "
                f"--request-id {self.request_id} to pick up the job it may have created."
            )
        body = json.dumps({"name": self.job}, separators=(",", ":"))
        grpcurl = f"grpcurl {self.grpcurl_flags}".rstrip()
        return (
            f"{why}: {self.job} keeps running on the server.\n"
            f"  follow it:  limner watch {self.job} {self.limner_flags}\n"
            f"  cancel it:  limner cancel {self.job} {self.limner_flags}\n"
            f"  or with grpcurl:  {grpcurl} -d '{body}' {self.address} "
            "limner.v1.JobService/WatchJob  (or .../CancelJob)"
        )


class _Reconnect(TypedDict):
    max_retries: int
    backoff_s: float
    max_backoff_s: float


# How long a command keeps reconnecting to a server that went away (a restart, a dropped
# connection): 0.2 s, doubling to 2 s, 30 times in a row, about a minute in all.
RECONNECT: _Reconnect = {"max_retries": 30, "backoff_s": 0.2, "max_backoff_s": 2.0}


async def _follow(
    events: AsyncIterator[job_pb2.JobEvent],
    progress: Progress,
    task: TaskID,
    label: str,
    followed: _Followed,
) -> job_pb2.JobResult:
    """Drives a progress bar from a job's events (a resuming follower from limner.client);
    returns the result or raises typer.Exit."""
    result: job_pb2.JobResult | None = None
    async for event in events:
        followed.job = followed.job or event.job
        followed.answered = True
        if followed.reconnecting:
            followed.reconnecting = False
            progress.console.print(
                f"[green]reconnected[/]: following {followed.job} from event "
                f"{followed.last_sequence + 1}"
            )
        if not event.transient:
            followed.last_sequence = event.sequence
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
            result = event.completed
        elif kind == "failed":
            raise typer.Exit(_report_failure(event.failed.message, event.failed.code))
        elif kind == "cancelled":
            console.print(f"[red]cancelled[/] {event.cancelled.reason}")
            raise typer.Exit(1)
    if result is None:
        raise typer.Exit(_report_failure("the stream ended without a result", 2))
    return result


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


def _reconnecting(
    progress: Progress, task: TaskID, followed: _Followed
) -> Callable[[Exception, float], None]:
    """Tells of a lost connection once, then counts the retries on the progress bar."""
    retries = 0

    def report(error: Exception, delay_s: float) -> None:
        nonlocal retries
        if not followed.answered:
            raise error  # never reached the server: say so now, not after a minute
        if not followed.reconnecting:
            details = getattr(error, "details", lambda: str(error))()
            progress.console.print(f"[yellow]connection lost[/] ({details}); reconnecting")
            followed.reconnecting, retries = True, 0
        retries += 1
        progress.update(
            task, description=f"reconnecting (retry {retries}, next in {delay_s:.1f} s)"
        )

    return report


async def _save(
    client: LimnerClient, result: job_pb2.JobResult, out: Path | None
) -> tuple[Path, str]:
    """Saves the result's first image (to ``out``, else <sha256 prefix>.png); returns the
    file and the asset (none for a text result, which is printed)."""
    from limner.client import download_asset

    if not result.images:
        console.print(result.text)
        return Path(), ""
    image = result.images[0]
    target = out or Path(f"{image.asset.removeprefix('assets/')[:12]}.png")
    size_bytes = await download_asset(client, image.asset, target)
    seed_text = f", seed {image.seed}" if image.HasField("seed") else ""
    console.print(
        f"[green]saved[/] {target} ({image.width}x{image.height} {image.mime_type}, "
        f"{size_bytes} bytes{seed_text}) as {image.asset}"
    )
    return target, image.asset


async def _generate(
    client: LimnerClient,
    prompt: str,
    *,
    model: str,
    size: tuple[int, int] | None,
    seed: int | None,
    out: Path | None,
    source: str = "",
    followed: _Followed | None = None,
) -> tuple[Path, str]:
    """Runs one generate or edit job with a progress bar, following it across dropped
    connections and server restarts; returns the file and asset."""
    from limner.client import edit_image, generate_image

    followed = followed or _Followed(address="")
    followed.request_id = followed.request_id or str(uuid.uuid4())
    options = image_service_pb2.ImageOptions()
    if size is not None:
        options.width, options.height = size
    if seed is not None:
        options.seed = seed
    with _progress() as progress:
        task = progress.add_task("starting", total=None)
        if source:
            events = edit_image(
                client,
                image_service_pb2.EditImageRequest(
                    source_asset=source,
                    prompt=prompt,
                    model=model,
                    options=options,
                    request_id=followed.request_id,
                ),
                on_retry=_reconnecting(progress, task, followed),
                **RECONNECT,
            )
            label = "edit"
        else:
            events = generate_image(
                client,
                image_service_pb2.GenerateImageRequest(
                    prompt=prompt, model=model, options=options, request_id=followed.request_id
                ),
                on_retry=_reconnecting(progress, task, followed),
                **RECONNECT,
            )
            label = "generate"
        result = await _follow(events, progress, task, label, followed)
    return await _save(client, result, out)


def _run_followed(followed: _Followed, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Runs a command that follows a job. Ctrl-C leaves the job running: it prints the
    job's name and how to follow or cancel it, and exits 130 (128 + SIGINT). A server that
    stays unreachable past the reconnect window is told the same way (exit 1)."""
    import grpc

    try:
        asyncio.run(work())
    except KeyboardInterrupt:
        console.print(f"\n{followed.hint('interrupted')}")
        raise typer.Exit(130) from None
    except grpc.aio.AioRpcError as error:
        console.print(f"[red]{error.code().name}[/] {error.details()}")
        if error.code() == grpc.StatusCode.UNAVAILABLE and followed.job:
            console.print(followed.hint("gave up reconnecting"))
        raise typer.Exit(1) from None


@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(help="What to draw.")],
    model: Annotated[str, typer.Option(help="models/{id}; empty uses the default.")] = "",
    size: Annotated[str | None, typer.Option(help="WIDTHxHEIGHT, e.g. 512x512.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for reproducible output.")] = None,
    out: Annotated[Path | None, typer.Option(help="Where to save the image.")] = None,
    address: Annotated[str, typer.Option(help="Server address.")] = "127.0.0.1:50051",
    api_key: Annotated[str, typer.Option(envvar="LIMNER_API_KEY", help="API key.")] = "",
    tls: TlsOption = False,
    ca_cert: CaCertOption = None,
    client_cert: ClientCertOption = None,
    client_key: ClientKeyOption = None,
    request_id: Annotated[
        str,
        typer.Option(
            help="Idempotency key: the same id returns the job an earlier run created. "
            "Default: a new one."
        ),
    ] = "",
) -> None:
    """Generate an image on a running server, with a live progress bar.

    The job runs on the server, not in this command: a dropped connection or a server
    restart is followed through (the watch resumes from the last event), and Ctrl-C leaves
    the job running and prints how to follow or cancel it (exit 130)."""
    from limner.client import connect

    tls_config = _client_tls(tls, ca_cert, client_cert, client_key)
    followed = _Followed(address, request_id=request_id or str(uuid.uuid4()))
    followed.connected_with(api_key, tls_config)

    async def run() -> None:
        async with connect(address, api_key=api_key, tls=tls_config) as client:
            await _generate(
                client,
                prompt,
                model=model,
                size=_size(size) if size else None,
                seed=seed,
                out=out,
                followed=followed,
            )

    _run_followed(followed, run)


JobArgument = Annotated[str, typer.Argument(help="The job, jobs/{id} (or just the id).")]


@app.command()
def watch(
    job: JobArgument,
    out: Annotated[Path | None, typer.Option(help="Where to save the image.")] = None,
    address: Annotated[str, typer.Option(help="Server address.")] = "127.0.0.1:50051",
    api_key: Annotated[str, typer.Option(envvar="LIMNER_API_KEY", help="API key.")] = "",
    tls: TlsOption = False,
    ca_cert: CaCertOption = None,
    client_cert: ClientCertOption = None,
    client_key: ClientKeyOption = None,
) -> None:
    """Follow a job to its end with a progress bar, then save its image.

    Like generate, it reconnects after a dropped connection or a server restart, and
    Ctrl-C leaves the job running (exit 130)."""
    from limner.client import connect, watch_job

    tls_config = _client_tls(tls, ca_cert, client_cert, client_key)
    name = job if job.startswith("jobs/") else f"jobs/{job}"
    followed = _Followed(address, job=name).connected_with(api_key, tls_config)

    async def run() -> None:
        async with connect(address, api_key=api_key, tls=tls_config) as client:
            with _progress() as progress:
                task = progress.add_task(f"watch {name}", total=None)
                events = watch_job(
                    client, name, on_retry=_reconnecting(progress, task, followed), **RECONNECT
                )
                result = await _follow(events, progress, task, "watch", followed)
            await _save(client, result, out)

    _run_followed(followed, run)


@app.command()
def cancel(
    job: JobArgument,
    address: Annotated[str, typer.Option(help="Server address.")] = "127.0.0.1:50051",
    api_key: Annotated[str, typer.Option(envvar="LIMNER_API_KEY", help="API key.")] = "",
    tls: TlsOption = False,
    ca_cert: CaCertOption = None,
    client_cert: ClientCertOption = None,
    client_key: ClientKeyOption = None,
) -> None:
    """Cancel a queued, running or waiting job (its provider call is interrupted)."""
    import grpc

    from limner.client import connect
    from limner.v1 import job_service_pb2

    tls_config = _client_tls(tls, ca_cert, client_cert, client_key)
    name = job if job.startswith("jobs/") else f"jobs/{job}"

    async def run() -> None:
        async with connect(address, api_key=api_key, tls=tls_config) as client:
            response = await client.jobs.CancelJob(
                job_service_pb2.CancelJobRequest(name=name), timeout=60
            )
        console.print(f"[green]cancelled[/] {response.job.name}")

    try:
        asyncio.run(run())
    except grpc.aio.AioRpcError as error:
        console.print(f"[red]{error.code().name}[/] {error.details()}")
        raise typer.Exit(1) from None


@app.command()
def demo(
    data_dir: DataDirOption = None,
    out_dir: Annotated[Path, typer.Option(help="Where to save the images.")] = Path("demo-output"),
    config: ConfigOption = None,
    api_key: Annotated[
        str,
        typer.Option(
            envvar="LIMNER_API_KEY", help="API key; default: the first configured key, if any."
        ),
    ] = "",
    ca_cert: CaCertOption = None,
    client_cert: ClientCertOption = None,
    client_key: ClientKeyOption = None,
) -> None:
    """Start a server on a free port, generate and edit an image through the gRPC API with
    visible progress, print where the files are, and stop the server."""
    import grpc

    from limner.app import App
    from limner.client import connect

    settings = _settings(config, address="127.0.0.1:0", data_dir=data_dir, shutdown={"drain_s": 0})
    logs.configure("WARNING", settings.log_format)
    # The demo's client connects the way its own server is configured: over TLS when the
    # settings give the server a certificate (trusting --ca-cert, else the system's CAs).
    tls_config = _client_tls(settings.tls.cert_file is not None, ca_cert, client_cert, client_key)
    if not api_key and settings.auth.api_keys:
        api_key = settings.auth.api_keys[0].key.get_secret_value()

    out_dir = out_dir.absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    data_location = Path(settings.data_dir).absolute()

    async def run() -> None:
        server = App(settings)
        port = await server.start()
        console.print(f"[bold]limner[/] serving on 127.0.0.1:{port} (offline provider)")
        try:
            async with connect(f"127.0.0.1:{port}", api_key=api_key, tls=tls_config) as client:
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
        except grpc.aio.AioRpcError as error:
            console.print(f"[red]{error.code().name}[/] {error.details()}")
            if settings.tls.cert_file is not None and ca_cert is None:
                console.print(
                    "the server uses TLS: pass --ca-cert with the CA that signed "
                    f"{settings.tls.cert_file} (and --client-cert/--client-key under mTLS)"
                )
            raise typer.Exit(1) from None
        finally:
            await server.stop(grace_s=1)
        console.print(
            f"[bold]done[/]: images in {out_dir}, service data in "
            f"{data_location} (database limner.db, assets/)"
        )

    asyncio.run(run())
