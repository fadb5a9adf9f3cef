"""Job specs: what a job was planned to do, typed and frozen (ARCHITECTURE §1.2).

A spec is the contract between planning (at submit time, when every check runs) and
running (now, or after a restart). It is written once with the job and read back by the
handler of the job's kind; nothing mutates it. A scene hands its rendered prompt to the
image renderer as a new ``ImageSpec`` (``dataclasses.replace``), and approving an
ask-first scene makes a new ``SceneSpec`` (``approve``).

Specs never hold image bytes: images are asset names (``assets/{sha256}``). Their JSON
form, with its version, is in ``limner.domain.spec_codec``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol, runtime_checkable

from limner.domain.models import SceneMode


@dataclass(frozen=True, kw_only=True)
class ImageSpec:
    """One provider image request, resolved against the model's profile: fields the model
    does not honour were turned into warnings at planning time and are left empty here,
    so adapters only see what the model supports. The seed is always chosen up front, so
    a resumed job renders the same image."""

    prompt: str
    model_id: str
    width: int
    height: int
    seed: int
    # Whether the model honours seeds: results report a seed only then.
    seed_supported: bool
    image_count: int = 1
    aspect_ratio: str = ""
    negative_prompt: str = ""
    steps: int | None = None
    guidance_scale: float | None = None
    sampler: str = ""
    source_asset: str = ""
    mask_asset: str = ""
    strength: float | None = None
    reference_assets: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class TemplateUse:
    """Which prompt template a job was planned with (recorded for provenance)."""

    kind: str
    version: str
    overridden: bool = False


@dataclass(frozen=True, kw_only=True)
class AvatarSpec:
    """An avatar job: an image job whose results become the subject's avatar candidates."""

    image: ImageSpec
    subject_id: str
    template: TemplateUse


@dataclass(frozen=True)
class PromptPart:
    """A piece of a writer message: text, or the name of an image slot the template placed
    (filled with the slot's images when the job runs)."""

    text: str = ""
    slot: str = ""


@dataclass(frozen=True)
class PromptMessage:
    role: str
    parts: tuple[PromptPart, ...]


@dataclass(frozen=True, kw_only=True)
class WriterSpec:
    """A writer call planned from a rendered template: the messages with their image slots,
    and the asset names that fill each slot."""

    model_id: str
    messages: tuple[PromptMessage, ...]
    slots: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class DesignNotesSpec:
    subject_id: str
    writer: WriterSpec
    template: TemplateUse
    save_on_completion: bool = False


@dataclass(frozen=True)
class Approval:
    """What approving a job that waits for it changes: the prompt to go on with."""

    prompt: str


@runtime_checkable
class Approvable(Protocol):
    """A spec whose job can pause for approval (``AwaitApproval``) and go on with it."""

    def approve(self, approval: Approval) -> Approvable: ...


@dataclass(frozen=True, kw_only=True)
class SceneSpec:
    """A scene job: draft a prompt with the writer (unless one was given or approved), then
    render it with the image model and the subjects' references."""

    # The image request; its prompt is replaced by the rendered scene prompt at run time.
    image: ImageSpec
    scene_id: str
    chat_id: str
    message_id: str
    attachment_id: str
    mode: SceneMode
    given_prompt: str = ""
    directive: str = ""
    # None when the prompt was given: nothing is drafted.
    writer: WriterSpec | None = None
    reference_map: str = ""
    template_version: str = ""
    approved_prompt: str = ""

    def approve(self, approval: Approval) -> SceneSpec:
        return replace(self, approved_prompt=approval.prompt)


JobSpec = ImageSpec | AvatarSpec | SceneSpec | DesignNotesSpec
