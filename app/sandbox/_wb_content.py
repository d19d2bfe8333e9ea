"""WB Content: `POST /content/v2/get/cards/list` (cursor `updatedAt` + `nmID`, limit ≤ 100)."""

from __future__ import annotations

import hashlib
from bisect import bisect_left, bisect_right

import msgspec
from litestar import Request, Response, post

from app.sandbox._catalog import Catalog
from app.sandbox._gate import WbEndpoint, wb_gate
from app.sandbox._names import BRANDS, COLORS, DESCRIPTORS, SUBJECTS
from app.sandbox._ratelimit import Limit
from app.sandbox._replies import Reply, content_error, json_reply
from app.sandbox._seller import Sandbox, Seller
from app.sandbox._timeutil import parse_utc_micro, utc_micro_z

MAX_LIMIT = 100


class CursorIn(msgspec.Struct):
    limit: int = 10
    updatedAt: str | None = None
    nmID: int | None = None


class FilterIn(msgspec.Struct):
    withPhoto: int = -1
    textSearch: str = ""
    tagIDs: list[int] = msgspec.field(default_factory=list)
    allowedCategoriesOnly: bool = False
    objectIDs: list[int] = msgspec.field(default_factory=list)
    brands: list[str] = msgspec.field(default_factory=list)
    imtID: int | None = None


class SortIn(msgspec.Struct):
    ascending: bool = False


class SettingsIn(msgspec.Struct):
    sort: SortIn = msgspec.field(default_factory=SortIn)
    filter: FilterIn = msgspec.field(default_factory=FilterIn)
    cursor: CursorIn = msgspec.field(default_factory=CursorIn)


class CardsListRequest(msgspec.Struct):
    settings: SettingsIn = msgspec.field(default_factory=SettingsIn)


class Size(msgspec.Struct):
    chrtID: int
    techSize: str
    wbSize: str
    skus: list[str]


class Photo(msgspec.Struct):
    big: str
    c246x328: str
    c516x688: str
    square: str
    tm: str


class Dimensions(msgspec.Struct):
    length: int
    width: int
    height: int
    weightBrutto: float
    isValid: bool


class Characteristic(msgspec.Struct):
    id: int
    name: str
    value: list[str]


class Wholesale(msgspec.Struct):
    enabled: bool
    quantum: int


class Card(msgspec.Struct):
    nmID: int
    imtID: int
    nmUUID: str
    subjectID: int
    subjectName: str
    vendorCode: str
    brand: str
    title: str
    description: str
    needKiz: bool
    kizMarked: bool
    photos: list[Photo]
    wholesale: Wholesale
    dimensions: Dimensions
    characteristics: list[Characteristic]
    sizes: list[Size]
    tags: list[dict[str, object]]
    createdAt: str
    updatedAt: str


class CursorOut(msgspec.Struct, omit_defaults=True):
    total: int
    updatedAt: str | None = None
    nmID: int | None = None


class CardsListResponse(msgspec.Struct):
    cards: list[Card]
    cursor: CursorOut


def barcode(chrt_id: int) -> str:
    """EAN-13 starting with "20" (the in-store range WB hands out), derived from the size id."""
    digits = f"20{chrt_id % 10**10:010d}"
    odd = sum(int(d) for d in digits[0::2])
    even = sum(int(d) for d in digits[1::2])
    return digits + str((10 - (odd + 3 * even) % 10) % 10)


def _photo(nm: int) -> Photo:
    base = f"https://basket-{nm % 20 + 1:02d}.wbbasket.ru/vol{nm // 100000}/part{nm // 1000}/{nm}/images"
    return Photo(
        big=f"{base}/big/1.webp",
        c246x328=f"{base}/c246x328/1.webp",
        c516x688=f"{base}/c516x688/1.webp",
        square=f"{base}/square/1.webp",
        tm=f"{base}/tm/1.webp",
    )


def title_of(cat: Catalog, p: int) -> str:
    return f"{SUBJECTS[cat.subject[p]].noun} {DESCRIPTORS[cat.descriptor[p]]}"


def render_card(cat: Catalog, p: int) -> Card:
    subject = SUBJECTS[cat.subject[p]]
    nm = cat.product_ids[p]
    brand = BRANDS[cat.brand[p]]
    title = title_of(cat, p)
    sizes = []
    for v in cat.variants_of(p):
        tech, wb = subject.sizes[cat.variant_size[v]]
        chrt = cat.variant_ids[v]
        sizes.append(Size(chrtID=chrt, techSize=tech, wbSize=wb, skus=[barcode(chrt)]))
    uid = hashlib.blake2b(nm.to_bytes(8, "little"), digest_size=16).hexdigest()
    side = 10 + nm % 30
    return Card(
        nmID=nm,
        imtID=cat.group_ids[p],
        nmUUID=f"{uid[:8]}-{uid[8:12]}-{uid[12:16]}-{uid[16:20]}-{uid[20:]}",
        subjectID=subject.id,
        subjectName=subject.name,
        vendorCode=cat.offer_id(p),
        brand=brand,
        title=title,
        description=f"{title}. Бренд {brand}.",
        needKiz=False,
        kizMarked=False,
        photos=[_photo(nm)],
        wholesale=Wholesale(enabled=False, quantum=0),
        dimensions=Dimensions(
            length=side, width=side // 2 + 5, height=3 + nm % 10, weightBrutto=subject.weight_kg, isValid=True
        ),
        characteristics=[Characteristic(id=14177449, name="Цвет", value=[COLORS[nm % len(COLORS)]])],
        sizes=sizes,
        tags=[],
        createdAt=utc_micro_z(cat.created_us[p]),
        updatedAt=utc_micro_z(cat.updated_us[p]),
    )


def _text_matches(cat: Catalog, text: str) -> set[int]:
    """Products whose vendor code, nmID or barcode equals the search text."""
    text = text.strip()
    found: set[int] = set()
    for candidate in (text, text.upper()):
        index = cat.offer_index(candidate)
        if index is not None:
            found.add(index)
    if text.isdigit():
        index = cat.product_index(int(text))
        if index is not None:
            found.add(index)
        if len(text) == 13 and text.startswith("20"):
            v = cat.variant_index(int(text[2:12]))
            if v is not None and barcode(cat.variant_ids[v]) == text:
                found.add(cat.variant_product[v])
    return found


def _filtered(cat: Catalog, flt: FilterIn) -> list[int]:
    order = cat.update_order()
    if flt.withPhoto == 2 or flt.tagIDs:  # every simulated card has a photo and none has tags
        return []
    keep: list[int] = order
    if flt.textSearch.strip():
        matches = _text_matches(cat, flt.textSearch)
        keep = [p for p in keep if p in matches]
    if flt.objectIDs:
        wanted = set(flt.objectIDs)
        keep = [p for p in keep if SUBJECTS[cat.subject[p]].id in wanted]
    if flt.brands:
        brands = {b.strip().lower() for b in flt.brands}
        keep = [p for p in keep if BRANDS[cat.brand[p]].lower() in brands]
    if flt.imtID is not None:
        keep = [p for p in keep if cat.group_ids[p] == flt.imtID]
    return keep


def cards_list(seller: Seller, body: bytes, request: Request) -> Reply:
    try:
        req = msgspec.json.decode(body, type=CardsListRequest)
    except msgspec.DecodeError:
        return content_error(400, "Request body can not be decoded")
    cursor = req.settings.cursor
    if not 1 <= cursor.limit <= MAX_LIMIT:
        return content_error(400, f"Invalid 'limit' value: must be from 1 to {MAX_LIMIT}")
    if req.settings.filter.withPhoto not in (-1, 0, 1, 2):
        return content_error(400, "Invalid 'withPhoto' value")
    after_us: int | None = None
    if cursor.updatedAt:
        after_us = parse_utc_micro(cursor.updatedAt)
        if after_us is None:
            return content_error(400, "Invalid 'updatedAt' value")
    cat = seller.catalog
    order = _filtered(cat, req.settings.filter)
    key = cat.update_key
    if req.settings.sort.ascending:
        start = 0 if after_us is None else bisect_right(order, (after_us, cursor.nmID or 0), key=key)
        page = order[start : start + cursor.limit]
    else:
        end = len(order) if after_us is None else bisect_left(order, (after_us, cursor.nmID or 0), key=key)
        page = order[max(0, end - cursor.limit) : end][::-1]
    cards = [render_card(cat, p) for p in page]
    if cards:
        out = CursorOut(total=len(cards), updatedAt=cards[-1].updatedAt, nmID=cards[-1].nmID)
    else:  # echo the request's cursor so a client that copies it back does not start over
        out = CursorOut(total=0, updatedAt=cursor.updatedAt, nmID=cursor.nmID)
    return json_reply(CardsListResponse(cards=cards, cursor=out))


CARDS_LIST = WbEndpoint(
    key="POST /wb/content/v2/get/cards/list",
    family="content",
    category=1,
    bucket="content.cards",
    limit=Limit(60, 100, 5),
    base_limit=Limit(60, 100, 5),
)


@post("/wb/content/v2/get/cards/list", status_code=200)
async def cards_list_route(request: Request, sandbox: Sandbox) -> Response[bytes]:
    return await wb_gate(sandbox, request, CARDS_LIST, cards_list)


ROUTES = [cards_list_route]
