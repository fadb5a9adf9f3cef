"""``limner/v1/scene.proto``: chats, their messages and attachments, and scenes."""

from __future__ import annotations

from limner.api.convert.common import timestamp_to_pb
from limner.domain.chats import Attachment, Chat, Message, MessageRole, Scene, SceneState
from limner.features.chats import ChatDraft
from limner.v1 import scene_pb2

MESSAGE_ROLES = {
    MessageRole.USER: scene_pb2.MESSAGE_ROLE_USER,
    MessageRole.ASSISTANT: scene_pb2.MESSAGE_ROLE_ASSISTANT,
    MessageRole.SYSTEM: scene_pb2.MESSAGE_ROLE_SYSTEM,
    MessageRole.SCENE: scene_pb2.MESSAGE_ROLE_SCENE,
}
MESSAGE_ROLES_FROM_PB = {value: key for key, value in MESSAGE_ROLES.items()}
SCENE_STATES = {
    SceneState.DRAFTING: scene_pb2.SCENE_STATE_DRAFTING,
    SceneState.AWAITING_APPROVAL: scene_pb2.SCENE_STATE_AWAITING_APPROVAL,
    SceneState.RENDERING: scene_pb2.SCENE_STATE_RENDERING,
    SceneState.SUCCEEDED: scene_pb2.SCENE_STATE_SUCCEEDED,
    SceneState.FAILED: scene_pb2.SCENE_STATE_FAILED,
    SceneState.REJECTED: scene_pb2.SCENE_STATE_REJECTED,
    SceneState.CANCELLED: scene_pb2.SCENE_STATE_CANCELLED,
}


def chat_to_pb(chat: Chat) -> scene_pb2.Chat:
    return scene_pb2.Chat(
        name=chat.name,
        character=f"subjects/{chat.character_id}",
        persona=f"subjects/{chat.persona_id}" if chat.persona_id else "",
        background_asset=chat.background_asset,
        display_name=chat.display_name,
        create_time=timestamp_to_pb(chat.create_time),
    )


def chat_from_pb(chat: scene_pb2.Chat) -> ChatDraft:
    return ChatDraft(
        character=chat.character,
        persona=chat.persona,
        background_asset=chat.background_asset,
        display_name=chat.display_name,
    )


def attachment_to_pb(attachment: Attachment) -> scene_pb2.Attachment:
    return scene_pb2.Attachment(
        asset=attachment.asset,
        job=f"jobs/{attachment.job_id}" if attachment.job_id else "",
        placeholder=attachment.placeholder,
        scene=f"scenes/{attachment.scene_id}" if attachment.scene_id else "",
    )


def message_to_pb(message: Message) -> scene_pb2.Message:
    return scene_pb2.Message(
        name=message.name,
        role=MESSAGE_ROLES[message.role],
        text=message.text,
        attachments=[attachment_to_pb(a) for a in message.attachments],
        create_time=timestamp_to_pb(message.create_time),
    )


def scene_to_pb(scene: Scene) -> scene_pb2.Scene:
    return scene_pb2.Scene(
        name=scene.name,
        message=scene.message_name,
        state=SCENE_STATES[scene.state],
        job=f"jobs/{scene.job_id}" if scene.job_id else "",
        context_messages=list(scene.context_messages),
        writer_model=f"models/{scene.writer_model}" if scene.writer_model else "",
        drafted_prompt=scene.drafted_prompt,
        edited_prompt=scene.edited_prompt,
        image_model=f"models/{scene.image_model}" if scene.image_model else "",
        seed=scene.seed,
        reference_assets=list(scene.reference_assets),
        template_version=scene.template_version,
        result_asset=scene.result_asset,
        create_time=timestamp_to_pb(scene.create_time),
    )
