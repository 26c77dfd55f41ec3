"""Clause segmentation: where one message holds several requests ("地址写错了 顺便问下运费险怎么赔").

Works on the normalised text (so offsets are offsets into ``normalized_text``) and in linear time:
a few patterns from :mod:`textpatterns`, then one pass over the pieces between separators.

1. **Pieces.** The text is cut at separators: punctuation (，。！？；、… and their ASCII forms, a
   dot only where it does not sit inside a number, a URL or an e-mail address), emoji, and spaces
   that touch a Chinese character (a space between English words is not a separator). A sentence
   end (。！？；, a line break) is a *strong* separator, the rest *weak*. A piece that starts with a
   connective (顺便, 另外, 还有 …, 对了, 再问下, btw, also …) is cut there too, strongly.
2. **Kinds.** A piece is *filler* (亲, 在吗, 你好, 麻烦了, 谢谢, 急急急, emoji, punctuation), *card*
   (an order-info field such as ``订单号:2026…`` or ``下单时间:…``, a bare number or date, a link) or
   *content*. Fillers and cards never start a request; they belong to the clause next to them.
3. **Clauses.** Content pieces are grouped into clauses. A content piece starts a new clause after
   a strong separator or a connective, or after a weak one when it is long enough to be an ask of
   its own (at least :data:`MIN_CLAUSE_CHARS` Chinese characters or two English words) and does not
   continue the previous one (都…, 已经…, 但是…, because …). Pieces that do not start a clause join
   the one before (leading fillers and cards join the first). At most :data:`MAX_CLAUSES` clauses.

Each clause is then classified on its own (:mod:`nlu.understanding` decides which of them are
separate requests). Knows nothing of Rasa or intents.
"""

from __future__ import annotations

from dataclasses import dataclass

import textpatterns

MAX_CLAUSES = 4
"""A message is cut into at most this many clauses (each costs one classification)."""
MIN_CLAUSE_CHARS = 4
"""Chinese characters a piece after a comma or space needs to be a clause of its own."""

_CJK_CHAR = textpatterns.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_SEPARATOR = textpatterns.compile(
    r"[，,。！!？?；;、\n\r\t~～…·]+"
    r"|(?<![0-9A-Za-z])\.+|\.+(?![0-9A-Za-z])"
    r"| +"
    r"|[\U0001F000-\U0001FAFF\u2600-\u27BF\uFE0F\u200D\u2B50\u2B55\u3030\u303D]+"
)
_STRONG = textpatterns.compile(r"[。！!？?；;\n\r…]|\.")
_CONNECTIVE = textpatterns.compile(
    r"顺便|顺带|另外|此外|对了|再问(?:一?下|个)|另一个问题|另一件事|还想问|还要问|还想问下|再就是|再一个|其次|以及|外加"
    r"|还有(?!多|几|没|货|点|些|什么|啥|人|吗|呢)"
    r"|(?<![A-Za-z])(?:btw|by the way|also|plus|another thing|one more thing|and also)(?![A-Za-z])",
    textpatterns.IGNORECASE,
)
_FILLER = textpatterns.compile(
    r"(?:亲爱的|亲亲|亲|宝宝|宝|在吗|在不在|在么|在嘛|在不|在伐|在|你好|您好|你们好|哈喽|哈罗|嗨|喂|客服|老板|掌柜的?"
    r"|店家|小二|麻烦(?:你|您)?了?|请问|打扰(?:一下|了)?|谢谢(?:你|您|亲|啦|了)?|多谢|谢了|谢啦|辛苦了?|急+|嗯+|恩+"
    r"|哦+|噢+|啊+|哈+|呃+|额+|唉+|哎+|那个|就是|好的|好|行|okay|ok|hello|hi|hey|thanks|thank you|thx|please|pls"
    r"|dear|sorry|不好意思|打扰|hello亲)++",  # possessive: a run of fillers is never split two ways (no backtracking)
    textpatterns.IGNORECASE,
)
_CARD = textpatterns.compile(
    r"(?:\[[^\]]{1,12}\].*"
    r"|(?:订单号码?|订单编号|订单|单号|订单金额|实付款?|金额|总价|下单时间|付款时间|成交时间|支付时间|创建时间|商品名称|商品"
    r"|数量|规格|颜色|尺码|型号|收货人|收件人|联系电话|手机号码?|收货地址|地址|店铺|物流单号|运单号|快递单号|物流公司|快递"
    r"|order(?: no\.?| number| id)?|amount|total|date|item)\s*[:：].*"
    r"|https?://\S*|www\.\S*|(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
    r"|[0-9０-９:：\-/.¥￥$xX×*#+]+)",
    textpatterns.IGNORECASE,
)
_HAS_WORD = textpatterns.compile(r"[\u3400-\u9fff\uf900-\ufaffA-Za-z0-9]")
_CONTINUATION = textpatterns.compile(
    r"(?:都|已经|而且|但是|可是|不过|所以|因为|结果|还是|才|我都|这都|一直|怎么|为什么|为啥|咋|行吗|可以吗|好吗|能吗|吗"
    r"|改成|换成|改到|寄到|送到|是|就是|也就是|比如"
    r"|(?:but|and|so|because|since|it|which|that)(?![A-Za-z]))",
    textpatterns.IGNORECASE,
)
_LATIN_WORD = textpatterns.compile(r"[A-Za-z]+")
_MOBILE = textpatterns.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
_LONG_NUMBER = textpatterns.compile(r"(?<!\d)\d{10,}(?!\d)")
MOBILE_STAND_IN = "13800000000"
NUMBER_STAND_IN = "202600000000"
"""What the classifier reads for any mobile number or long number (order, tracking): the same
tokens whatever the digits, so an order number cannot move the intent's confidence."""
_CONNECTIVE_ONLY = textpatterns.compile(
    r"(?:顺便|顺带|另外|此外|对了|还有|还有就是|再就是|再一个|其次|btw|by the way|also|plus|and also|another thing"
    r"|one more thing)(?:问(?:一?下|个事)?|说(?:一?下)?|啊|呀|哈|就是)?",
    textpatterns.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Piece:
    start: int
    end: int
    kind: str
    """``content``, ``filler`` or ``card``."""
    strong: bool
    """It follows a sentence end or starts with a connective (a new ask is likely)."""
    connective: bool
    marker: bool = False
    """A connective alone (对了, 另外, also): it belongs to the clause it introduces."""


@dataclass(frozen=True, slots=True)
class Clause:
    start: int
    end: int
    text: str
    strong: bool
    """It began after a sentence end or with a connective (the first clause: False)."""


def _is_cjk(char: str) -> bool:
    return bool(char) and _CJK_CHAR.match(char) is not None


def _separators(text: str) -> list[tuple[int, int, bool]]:
    """(start, end, strong) of every separator; a space counts only next to a Chinese character."""
    found = []
    for match in _SEPARATOR.finditer(text):
        start, end = match.span()
        if text[start] == " " and match.group(0).strip() == "":
            before = text[start - 1] if start > 0 else ""
            after = text[end] if end < len(text) else ""
            if not (_is_cjk(before) or _is_cjk(after)):
                continue
        found.append((start, end, _STRONG.search(match.group(0)) is not None))
    return found


def pieces(text: str) -> list[Piece]:
    """The text cut at separators and before connectives, each piece with its kind."""
    spans: list[tuple[int, int, bool]] = []
    position, strong = 0, False
    for start, end, is_strong in _separators(text):
        if start > position:
            spans.append((position, start, strong))
        position, strong = end, is_strong
    if position < len(text):
        spans.append((position, len(text), strong))
    result: list[Piece] = []
    for start, end, after_strong in spans:
        cut = start
        for match in _CONNECTIVE.finditer(text, start, end):
            if match.start() > cut:
                result.append(_piece(text, cut, match.start(), after_strong and cut == start, False))
            cut = match.start()
        result.append(_piece(text, cut, end, after_strong and cut == start, cut != start or _starts_with(text, start)))
    # A connective alone (对了，…; 另外 …) marks the next piece as the start of a new ask.
    marked: list[Piece] = []
    pending = False
    for piece in result:
        if piece.connective and _CONNECTIVE_ONLY.fullmatch(text[piece.start : piece.end].strip()):
            marked.append(Piece(piece.start, piece.end, "filler", piece.strong, False, marker=True))
            pending = True
        elif pending and piece.kind == "content":
            marked.append(Piece(piece.start, piece.end, piece.kind, True, True))
            pending = False
        else:
            marked.append(piece)
    return marked


def _starts_with(text: str, start: int) -> bool:
    match = _CONNECTIVE.match(text, start)
    return match is not None


def _piece(text: str, start: int, end: int, strong: bool, connective: bool) -> Piece:
    body = text[start:end].strip()
    if not _HAS_WORD.search(body):
        kind = "filler"
    elif connective:
        kind = "content"
    elif _FILLER.fullmatch(body):
        kind = "filler"
    elif _CARD.fullmatch(body):
        kind = "card"
    else:
        kind = "content"
    return Piece(start, end, kind, strong or connective, connective)


def _substantial(text: str, piece: Piece) -> bool:
    body = text[piece.start : piece.end]
    if _CONTINUATION.match(body.strip()):
        return False
    cjk = len(_CJK_CHAR.findall(body))
    return cjk >= MIN_CLAUSE_CHARS or (cjk == 0 and len(_LATIN_WORD.findall(body)) >= 2)


def clauses(text: str) -> list[Clause]:
    """The clauses of a message, in order; a message with one ask gives one clause (all of it)."""
    if not text.strip():
        return []
    groups: list[list[Piece]] = [[]]
    markers: list[Piece] = []
    for piece in pieces(text):
        if piece.marker:
            markers.append(piece)
            continue
        starts_new = (
            piece.kind == "content"
            and len(groups) < MAX_CLAUSES
            and _has_enough_content(text, groups[-1])
            and (piece.connective or (piece.strong and _has_enough(text, piece)) or _substantial(text, piece))
        )
        if starts_new:
            groups.append([*markers, piece])
        else:
            groups[-1].extend([*markers, piece])
        markers = []
    groups[-1].extend(markers)
    result = []
    for number, group in enumerate(g for g in groups if g):
        start, end = group[0].start, group[-1].end
        body = text[start:end]
        stripped = body.strip()
        offset = start + (len(body) - len(body.lstrip()))
        result.append(Clause(offset, offset + len(stripped), stripped, number > 0 and any(p.strong for p in group)))
    if not result:  # only separators: emoji, punctuation
        stripped = text.strip()
        offset = len(text) - len(text.lstrip())
        result.append(Clause(offset, offset + len(stripped), stripped, False))
    return result


def _has_enough_content(text: str, group: list[Piece]) -> bool:
    """A clause so far holds an ask of its own (not just "I" or 我 before "also …"/"还有 …")."""
    body = "".join(text[p.start : p.end] for p in group if p.kind == "content")
    return len(_CJK_CHAR.findall(body)) >= 2 or len(_LATIN_WORD.findall(body)) >= 2


def _has_enough(text: str, piece: Piece) -> bool:
    """After a sentence end a shorter piece may still be an ask (发票呢？), but not a bare particle."""
    body = text[piece.start : piece.end].strip()
    return len(_CJK_CHAR.findall(body)) >= 2 or len(_LATIN_WORD.findall(body)) >= 1


def content_text(text: str) -> str:
    """What the classifier reads: the text without greetings, fillers and order-info cards
    (亲 在吗 / 订单号:… 下单时间:… / links), which say nothing about the request and, in a pasted
    card, push it out of the embedding's window. The text itself if nothing else is left."""
    found = pieces(text)
    if not any(p.kind == "content" for p in found):
        return numbers_masked(text.strip())
    kept: list[str] = []
    for number, piece in enumerate(found):
        if piece.kind != "content" and not piece.marker:
            continue
        end = found[number + 1].start if number + 1 < len(found) else len(text)
        kept.append(text[piece.start : end])
    return numbers_masked("".join(kept).strip())


_POINTERS = frozenset({"那个", "这个", "就是", "那个就是"})
"""Fillers that lead straight into the request, with no space after them."""


def clause_text(text: str) -> str:
    """What the classifier reads of one clause: :func:`content_text` without the connective that
    joined it to the message and the fillers after it ("还有那个火锅底料走到哪点了嘛" → "火锅底料走到
    哪点了嘛": with them the clause read as out of scope, 0.67; without, as a status question, 0.93)."""
    stripped = text.strip()
    joined = _CONNECTIVE.match(stripped)
    if joined is not None:
        rest = stripped[joined.end() :].lstrip(" ，,:：")
        filler = _FILLER.match(rest)
        if filler is not None and filler.end() < len(rest) and (
            rest[filler.end()] in " ，," or filler.group(0) in _POINTERS
        ):  # "还有 亲 …", "还有那个…"; not the 行 of 行李箱 or the 宝宝 of 宝宝的衣服
            rest = rest[filler.end() :].lstrip(" ，,")
        if _HAS_WORD.search(rest):
            stripped = rest
    return content_text(stripped)


def numbers_masked(text: str) -> str:
    """Every mobile number and long number replaced by one stand-in: "202612040001的地址改成…"
    and "202698760003的地址改成…" read alike (their confidences differed by 0.25)."""
    return _LONG_NUMBER.sub(NUMBER_STAND_IN, _MOBILE.sub(MOBILE_STAND_IN, text))
