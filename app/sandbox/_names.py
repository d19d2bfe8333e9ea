"""Fixed vocabularies the simulated catalogues draw from (invented brands; realistic Russian wording)."""

from __future__ import annotations

from typing import NamedTuple


class Subject(NamedTuple):
    id: int
    name: str
    category: str
    noun: str
    sizes: tuple[tuple[str, str], ...]  # (techSize, wbSize)
    weight_kg: float


CLOTHES = (("XS", "42"), ("S", "44"), ("M", "46"), ("L", "48"), ("XL", "50"), ("XXL", "52"))
SHOES = tuple((str(n), str(n)) for n in range(36, 46))
SOCKS = (("35-38", "35-38"), ("39-42", "39-42"), ("43-46", "43-46"))
ONE_SIZE = (("0", ""),)

SUBJECTS: tuple[Subject, ...] = (
    Subject(105, "Футболки", "Одежда", "Футболка", CLOTHES, 0.25),
    Subject(192, "Платья", "Одежда", "Платье", CLOTHES, 0.45),
    Subject(11, "Худи", "Одежда", "Худи", CLOTHES, 0.6),
    Subject(104, "Кроссовки", "Обувь", "Кроссовки", SHOES, 1.1),
    Subject(259, "Носки", "Белье", "Носки", SOCKS, 0.1),
    Subject(2181, "Чехлы для телефонов", "Аксессуары", "Чехол для телефона", ONE_SIZE, 0.08),
    Subject(3, "Кружки", "Дом", "Кружка", ONE_SIZE, 0.4),
    Subject(140, "Рюкзаки", "Аксессуары", "Рюкзак", ONE_SIZE, 0.9),
    Subject(6240, "Свечи ароматические", "Дом", "Свеча ароматическая", ONE_SIZE, 0.3),
    Subject(1430, "Термосы", "Дом", "Термос", ONE_SIZE, 0.7),
)

DESCRIPTORS = (
    "из хлопка",
    "с принтом",
    "базовая модель",
    "oversize",
    "для спорта",
    "на каждый день",
    "в подарок",
    "premium",
    "классика",
    "лимитированная серия",
    "эко",
    "новая коллекция",
)

BRANDS = (
    "Nordic Line",
    "Urban Fox",
    "Severa",
    "Moreva",
    "Tundra Works",
    "Lumi",
    "Kedr & Co",
    "Vesna",
    "Polar Pine",
    "Aurora Home",
    "Sibirka",
    "Oblako",
)

COLORS = ("белый", "чёрный", "серый", "синий", "красный", "зелёный", "бежевый", "розовый")

WB_SELLER_WAREHOUSES = (
    ("Склад Подольск", "Центральный", 15),
    ("Склад Химки", "Центральный", 117986),
    ("Склад Казань", "Приволжский", 2737),
    ("Склад Екатеринбург", "Уральский", 1733),
    ("Склад Новосибирск", "Сибирский", 686),
    ("Склад Краснодар", "Южный", 130744),
    ("Склад Санкт-Петербург", "Северо-Западный", 507),
    ("Склад Ростов-на-Дону", "Южный", 118535),
)

# Names WB prints in supplier/orders for FBW order lines (shipment warehouses).
WB_SHIP_WAREHOUSES = ("Коледино", "Подольск", "Электросталь", "Казань", "Краснодар", "Екатеринбург")

# (warehouse_id, name, cluster_id, cluster_name)
OZON_FBO_WAREHOUSES = (
    (1020000000000, "ХОРУГВИНО_РФЦ", 154, "Москва, МО и Дальние регионы"),
    (1020000089903000, "ПУШКИНО_1_РФЦ", 154, "Москва, МО и Дальние регионы"),
    (1020000115166000, "СПБ_ШУШАРЫ_РФЦ", 2, "Санкт-Петербург и СЗО"),
    (1020000044547000, "КАЗАНЬ_РФЦ_НОВЫЙ", 146, "Казань"),
    (1020000021532000, "ЕКАТЕРИНБУРГ_РФЦ_НОВЫЙ", 147, "Урал"),
    (1020000076382000, "НОВОСИБИРСК_РФЦ_НОВЫЙ", 148, "Сибирь"),
)

OZON_FBS_WAREHOUSES = (
    "Мой склад Химки",
    "Мой склад Подольск",
    "Склад Казань FBS",
    "Склад Екатеринбург FBS",
    "Склад Новосибирск FBS",
    "Склад Краснодар FBS",
)

# (regionName, oblastOkrugName) for order lines
REGIONS = (
    ("Московская", "Центральный федеральный округ"),
    ("Москва", "Центральный федеральный округ"),
    ("Санкт-Петербург", "Северо-Западный федеральный округ"),
    ("Татарстан", "Приволжский федеральный округ"),
    ("Свердловская", "Уральский федеральный округ"),
    ("Краснодарский", "Южный федеральный округ"),
    ("Новосибирская", "Сибирский федеральный округ"),
)


def numbered(names: tuple[str, ...], index: int) -> str:
    """The index-th name, with a number suffix once the list is exhausted (names stay unique)."""
    base = names[index % len(names)]
    round_ = index // len(names)
    return base if round_ == 0 else f"{base} {round_ + 1}"
