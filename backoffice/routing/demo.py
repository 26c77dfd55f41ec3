"""Demo pick-ups for a day, generated deterministically (same date, same pick-ups).

Addresses are spread over central Shanghai around the two demo return centres in
``fleet.json``; about a quarter are exchanges with a replacement item to hand over.
"""

from __future__ import annotations

import random

from backoffice.routing.fleet import GeoPoint
from backoffice.routing.pickups import ExchangeDelivery, Parcels, PickupRequest

DISTRICTS = ("徐汇区", "长宁区", "静安区", "普陀区", "黄浦区", "浦东新区", "闵行区", "杨浦区", "虹口区")
ROADS = ("漕溪北路", "虹桥路", "南京西路", "中山北路", "淮海中路", "世纪大道", "莘庄路", "四平路", "曲阳路", "张杨路")
NAMES = ("张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵敏", "黄勇", "周婷", "吴强", "徐丽", "孙杰")
WINDOWS = (("09:00", "12:00"), ("13:00", "17:00"), ("09:00", "17:00"), ("14:00", "18:00"), ("10:00", "15:00"))


def demo_pickups(date: str, count: int = 36) -> list[PickupRequest]:
    rng = random.Random(f"pickups-{date}")  # string seeds are stable across runs and platforms
    digits = date.replace("-", "")
    requests = []
    for number in range(1, count + 1):
        start, end = rng.choice(WINDOWS)
        exchange = rng.random() < 0.25
        parcels = rng.choice((1, 1, 1, 2, 2, 3))
        weight = round(rng.uniform(0.5, 6.0) * parcels, 1)
        volume = round(rng.uniform(4.0, 40.0) * parcels, 1)
        requests.append(
            PickupRequest(
                pickup_id=f"demo-{date}-{number:03d}",
                order_id=f"{digits}{number:04d}",
                kind="exchange" if exchange else "return",
                customer_name=rng.choice(NAMES),
                phone=f"138{rng.randrange(10**8):08d}",
                address=f"上海市{rng.choice(DISTRICTS)}{rng.choice(ROADS)}{rng.randrange(1, 999)}号",
                location=GeoPoint(lat=round(rng.uniform(31.08, 31.33), 5), lon=round(rng.uniform(121.33, 121.62), 5)),
                date=date,
                window_start=start,
                window_end=end,
                parcels=Parcels(count=parcels, weight_kg=weight, volume_l=volume),
                exchange=ExchangeDelivery(
                    sku=f"SKU-{rng.randrange(1000, 9999)}",
                    count=1,
                    weight_kg=weight / parcels,
                    volume_l=volume / parcels,
                )
                if exchange
                else None,
            )
        )
    return requests
