"""Photo OCR over HTTP, for the backoffice and for channel attachments.

``POST /api/ocr``
    a ``multipart/form-data`` upload (file part ``image``; optional ``engine``), a raw
    ``image/*`` body, or JSON referring to a stored photo: ``{"media_id": "<sha256>"}`` or a
    message's attachment ``{"message_id": "...", "attachment": 0}``. Reads it (in a worker
    process), checks it against the shop's orders, stores it and answers 201 with the result.
``GET /api/ocr/{id}``
    a stored result (text with personal data masked), to whoever may see the photo (see below).
``GET /api/ocr/{id}/image``
    the photo with doubtful fields outlined in red and personal data blurred (PNG).
``POST /api/ocr/{id}/corrections``
    ``{"field", "value", "why"}``: a human's correction, recorded with why and with the signed-in
    staff member as who (a ``who`` in the body is ignored); a corrected return slip sent for a
    request is matched against it again.
``GET /api/ocr/review?limit=50``
    readings waiting for a person (the console's review queue) that the caller may see, newest first.

Errors are the project's JSON ``{"error": {"code", "message", "details"}}``. Every route needs a
signed-in staff member who works on tickets or conversations (``gateway.staff_auth``), and a
reading is shown only to whoever may see its photo (``backoffice.permissions.can_read_photo``:
its uploader, agents for photos customers sent (in a conversation or for a request), viewers of
a ticket it belongs to, and staff who see everything); to anyone else it does not exist (404).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import BodyPartReader, web

from backoffice.permissions import Actor, Permission, can_read_photo
from channels.base import json_response
from channels.operations import BINARY, JSON, TEXT, Body, Operation, Param, Reply, json_body, route
from errors import NotFound, TooLarge, UnsupportedMediaType, UserError
from gateway.openapi import STAFF, read_json_object
from gateway.runtime import Gateway
from gateway.staff_auth import Handler as StaffHandler
from gateway.staff_auth import StaffAuth
from gateway.starting import wired
from media_ocr.engines import ENGINE_NAMES
from media_ocr.model import OcrResult
from media_ocr.pipeline import MAX_IMAGE_BYTES, OcrService
from media_ocr.review import review_image
from media_ocr.store import ConcurrentChange

MAX_JSON_BYTES = 64 * 1024
OCR_PERMISSIONS = (Permission.HANDLE_CONVERSATIONS, Permission.REVIEW, Permission.SUBMIT, Permission.VIEW_ALL)
"""Who may read and correct photos: agents, reviewers, dispatchers, admins (not quality-only staff)."""


Handler = Callable[[web.Request], Awaitable[web.Response]]
ENGINE = {"enum": list(ENGINE_NAMES)}
READ = Body(
    {
        JSON: {
            "type": "object",
            "properties": {
                "media_id": {"type": "string", "maxLength": 128},
                "message_id": {"type": "string", "maxLength": 64},
                "attachment": {"type": "integer", "minimum": 0},
                "engine": ENGINE,
            },
        },
        "multipart/form-data": {
            "type": "object",
            "required": ["image"],
            "properties": {"image": BINARY, "engine": {"type": "string"}},
        },
        "image/png": BINARY,
        "image/jpeg": BINARY,
    },
    f"images at most {MAX_IMAGE_BYTES} bytes, JSON at most {MAX_JSON_BYTES}",
)
CORRECTION = {
    "type": "object",
    "required": ["field", "value", "why"],
    "properties": {
        "field": {"type": "string", "minLength": 1, "maxLength": 64},
        "value": {"type": ["string", "integer", "null"]},
        "who": {"type": "string", "maxLength": 128, "description": "ignored: kept for old clients"},
        "why": {"type": "string", "minLength": 1, "maxLength": 1000},
    },
}


def ocr_routes(gateway: Gateway, auth: StaffAuth) -> list[web.RouteDef]:
    def service() -> OcrService:
        return wired(gateway.ocr)

    async def readable(request: web.Request, result: OcrResult | None) -> OcrResult:
        actor = auth.guarded_caller(request).member.actor()
        if result is None or not await _may_read(gateway, actor, result):
            raise NotFound("no such OCR result")
        return result

    async def read(request: web.Request) -> web.Response:
        ocr = service()
        uploader = auth.guarded_caller(request).member.id
        content_type = request.content_type
        # OcrFailed (the image cannot be read) is a 400 ``unreadable_image`` of its own.
        if content_type == "multipart/form-data":
            data, filename, image_type, engine = await _multipart(request)
            source = {"upload": filename, "uploaded_by": uploader}
            result = await ocr.read_bytes(data, image=filename, content_type=image_type, engine=engine, source=source)
        elif content_type.startswith("image/"):
            data = await _limited_body(request, MAX_IMAGE_BYTES)
            name = request.query.get("name", "upload")
            engine = _engine(request.query.get("engine"))
            source = {"upload": name, "uploaded_by": uploader}
            result = await ocr.read_bytes(data, image=name, content_type=content_type, engine=engine, source=source)
        elif content_type == "application/json":
            result = await _by_reference(gateway, ocr, await _json(request), uploader)
        else:
            raise UnsupportedMediaType("send multipart/form-data, an image/* body or JSON with media_id")
        return json_response(_view(result), status=201)

    async def get(request: web.Request) -> web.Response:
        result = await readable(request, await service().get(request.match_info["result_id"]))
        return json_response(_view(result))

    async def image(request: web.Request) -> web.Response:
        ocr = service()
        result = await readable(request, await ocr.get(request.match_info["result_id"]))
        if result.media_id is None:
            raise NotFound("no such OCR result or photo")
        photo = await ocr.media.get(result.media_id)
        if photo is None:
            raise NotFound("the photo is no longer stored")
        return web.Response(body=review_image(photo, result), content_type="image/png")

    async def correct(request: web.Request) -> web.Response:
        caller = auth.guarded_caller(request).member
        await readable(request, await service().get(request.match_info["result_id"]))
        payload = await _json(request)
        missing = [k for k in ("field", "why") if not isinstance(payload.get(k), str) or not payload[k].strip()]
        if missing or "value" not in payload:
            fields = [*missing, *([] if "value" in payload else ["value"])]
            raise UserError(f"required: {', '.join(fields)} (why non-empty)", code="missing_field")
        value = payload["value"]
        if (value is not None and not isinstance(value, str | int)) or isinstance(value, bool):
            raise UserError("'value' must be a string, an integer or null", code="invalid_field")
        try:
            result = await service().correct(
                request.match_info["result_id"],
                payload["field"],
                value,
                who=caller.actor().name,
                why=payload["why"].strip()[:1000],
            )
        except LookupError as exc:
            raise NotFound(str(exc)) from exc
        except ConcurrentChange:  # a Conflict (409) of its own, though also a ValueError
            raise
        except ValueError as exc:
            raise UserError(str(exc), code="invalid_value") from exc
        if gateway.intake is not None:  # a corrected return slip is matched against its request again
            await gateway.intake.reconsider(result)
        return json_response(_view(result))

    async def review_queue(request: web.Request) -> web.Response:
        raw = request.query.get("limit") or "50"
        if not raw.isdigit() or not 1 <= int(raw) <= 200:
            raise UserError("limit must be 1–200", code="invalid_field")
        actor = auth.guarded_caller(request).member.actor()
        # Newest first among those the caller may see: look further back than the limit.
        waiting = await service().results.waiting_for_review(min(int(raw) * 5, 1000))
        shown = [r for r in waiting if await _may_read(gateway, actor, r)][: int(raw)]
        return json_response({"results": [_view(r) | {"image_url": f"/api/ocr/{r.id}/image"} for r in shown]})

    def staff(operation: Operation, handler: Handler) -> web.RouteDef:
        guarded: StaffHandler = auth.guard(handler, "photo OCR", *OCR_PERMISSIONS)
        return route(operation, guarded)

    def op(
        method: str,
        path: str,
        summary: str,
        *,
        body: Body | None = None,
        params: tuple[Param, ...] = (),
        replies: tuple[Reply, ...] = (Reply(),),
        published: bool = True,
    ) -> Operation:
        return Operation(
            method, path, summary, "ocr", body=body, params=params, replies=replies,
            errors=(400, 401, 403, 404, 409, 413, 415, 503), security=(STAFF,), published=published,
        )  # fmt: skip

    return [
        # Not in /api/openapi.json yet: it was never published (the console's own queue).
        staff(op("GET", "/api/ocr/review", "Readings waiting for a person", published=False,
                 params=(Param("limit", {"type": "integer", "minimum": 1, "maximum": 200}),)), review_queue),
        staff(op("POST", "/api/ocr", "Read a photo: an upload (multipart 'image'), a raw image/* body, or a stored "
                 "one by reference", body=READ, replies=(Reply(201),),
                 params=(Param("name", {"type": "string", "maxLength": 200}), Param("engine", ENGINE))), read),
        staff(op("GET", "/api/ocr/{result_id}", "A stored OCR result (personal data masked)"), get),
        staff(op("GET", "/api/ocr/{result_id}/image", "The photo with doubtful fields outlined and personal data "
                 "blurred", replies=(Reply(media_type="image/png", schema=TEXT),)), image),
        staff(op("POST", "/api/ocr/{result_id}/corrections", "A human's correction of one field, with why (who is "
                 "the signed-in staff member)", body=json_body(CORRECTION, MAX_JSON_BYTES)), correct),
    ]  # fmt: skip


def _view(result: OcrResult) -> dict[str, Any]:
    # Timings are for the benchmark; private regions only drive blurring.
    return result.model_dump(mode="json", exclude={"timings", "private_regions"})


def _engine(name: str | None) -> str | None:
    if name is None or name == "":
        return None
    if name not in ENGINE_NAMES:
        raise UserError(f"engine must be one of {', '.join(ENGINE_NAMES)}", code="invalid_field")
    return name


async def _limited_body(request: web.Request, limit: int) -> bytes:
    # The app's 1 MiB body limit suits chat messages, not photos: read the stream ourselves.
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"the image is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the image is larger than {limit} bytes")
        chunks.append(chunk)
    if not size:
        raise UserError("the request has no image", code="empty_image")
    return b"".join(chunks)


async def _multipart(request: web.Request) -> tuple[bytes, str, str | None, str | None]:
    reader = await request.multipart()
    data: bytes | None = None
    filename, image_type, engine = "upload", None, None
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == "image":
            filename = part.filename or filename
            image_type = part.headers.get("Content-Type")
            chunks: list[bytes] = []
            size = 0
            while chunk := await part.read_chunk(64 * 1024):
                size += len(chunk)
                if size > MAX_IMAGE_BYTES:
                    raise TooLarge(f"the image is larger than {MAX_IMAGE_BYTES} bytes")
                chunks.append(chunk)
            data = b"".join(chunks)
        elif part.name == "engine":
            engine = _engine((await part.text()).strip())
    if not data:
        raise UserError("the form has no non-empty file part 'image'", code="missing_field")
    return data, filename, image_type, engine


async def _json(request: web.Request) -> dict[str, Any]:
    # Already read within the body deadline by the app's middleware.
    return await read_json_object(request, MAX_JSON_BYTES)


async def _may_read(gateway: Gateway, actor: Actor, result: OcrResult) -> bool:
    source = result.source
    uploaded_by = source.get("uploaded_by") if isinstance(source.get("uploaded_by"), str) else None
    customers_photo = bool(source.get("conversation_id") or source.get("request_id"))
    if can_read_photo(actor, uploaded_by=uploaded_by, customers_photo=customers_photo, tickets=()):
        return True  # no need to look for its tickets
    request_id = source.get("request_id") if isinstance(source.get("request_id"), str) else None
    tickets = await gateway.tickets.holding_reading(str(result.id), request_id) if gateway.tickets else []
    return can_read_photo(
        actor, uploaded_by=uploaded_by, customers_photo=customers_photo, tickets=[t.scope() for t in tickets]
    )


async def _by_reference(gateway: Gateway, ocr: OcrService, payload: dict[str, Any], uploader: str) -> OcrResult:
    """Read a photo already stored: by media id, or as a stored message's attachment."""
    engine = _engine(payload.get("engine"))
    if isinstance(payload.get("media_id"), str):
        media_id = payload["media_id"]
        source: dict[str, Any] = {"media_id": media_id, "uploaded_by": uploader}
        image = media_id
    elif isinstance(payload.get("message_id"), str):
        media_id, source, image = await _attachment(gateway, payload["message_id"], payload.get("attachment", 0))
    else:
        raise UserError("give 'media_id', or 'message_id' (and 'attachment')", code="missing_field")
    try:
        return await ocr.read_media(media_id, image=image, source=source, engine=engine)
    except LookupError as exc:
        raise NotFound(str(exc)) from exc


async def _attachment(gateway: Gateway, message_id: str, index: object) -> tuple[str, dict[str, Any], str]:
    store = wired(gateway.store)
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise UserError("'attachment' must be a non-negative integer", code="invalid_field")
    message = await store.get_message(message_id)
    if message is None:
        raise NotFound(f"no message {message_id}")
    if index >= len(message.attachments):
        raise NotFound(f"message {message_id} has no attachment {index}")
    attachment = message.attachments[index]
    if attachment.media_id is None:
        raise NotFound("that attachment's bytes are not in the media store")
    source = {
        "channel": message.channel,
        "message_id": message.id,
        "conversation_id": message.conversation_id,
        "attachment": index,
    }
    return attachment.media_id, source, attachment.filename or attachment.media_id
