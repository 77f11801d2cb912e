#!/usr/bin/env python3
"""Conformance check: drives a running paper exchange with unmodified ccxt and pybit.

Usage: check.py BASE_URL   (e.g. http://127.0.0.1:8001)

Only the clients' URLs are changed (docs/bybit.md#pointing-ccxt-and-pybit-at-another-url). The check creates its own account through
the control API, so it can run against a paper exchange that is already in use. Exits non-zero on the
first failed expectation.
"""

import asyncio
import json
import sys
import threading
import time
import urllib.request
import uuid
from decimal import Decimal

import ccxt
import ccxt.pro as ccxtpro
import pybit.unified_trading as unified_trading
from pybit.unified_trading import HTTP as PybitHTTP

SYMBOL = "AVAXUSDT"
MARKET = "AVAX/USDT:USDT"
WAIT_SECONDS = 10.0


def step(text):
    print(f"[check] {text}", flush=True)


def expect(condition, text):
    if not condition:
        raise AssertionError(text)


def control(base, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def wait_for(condition, text, timeout=WAIT_SECONDS):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {text}")


def make_ccxt(base, api_key, api_secret):
    exchange = ccxt.bybit({
        "apiKey": api_key,
        "secret": api_secret,
        "urls": {"api": {k: base for k in ("public", "private", "spot", "futures", "v2")}},
        "options": {"defaultType": "swap"},
    })
    return exchange


def start_pybit_stream(base, api_key, api_secret, received, acks):
    ws_url = base.replace("http://", "ws://").replace("https://", "wss://") + "/v5/private"
    # pybit reads the URL template at construction time; a URL without placeholders passes unchanged.
    unified_trading.PRIVATE_WSS = ws_url
    ws = unified_trading.WebSocket(channel_type="private", testnet=False, api_key=api_key,
                                   api_secret=api_secret, private_auth_expire=10)
    original = ws._process_subscription_message

    def record_ack(message):
        acks.append(message)
        original(message)

    # pybit has no public hook for subscribe acks; waiting for them avoids a race with the first order.
    ws._process_subscription_message = record_ack
    lock = threading.Lock()

    def collect(message):
        with lock:
            received.append(message)

    ws.order_stream(callback=collect)
    ws.execution_stream(callback=collect)
    ws.position_stream(callback=collect)
    ws.wallet_stream(callback=collect)
    return ws


async def ccxt_pro_watch_orders(base, api_key, api_secret):
    """ccxt.pro's watch_orders must see an order placed over REST."""
    ex = ccxtpro.bybit({"apiKey": api_key, "secret": api_secret, "options": {"defaultType": "swap"}})
    for k in ("public", "private", "spot", "futures", "v2"):
        ex.urls["api"][k] = base
    ws_url = base.replace("http://", "ws://") + "/v5/private"
    ex.urls["api"]["ws"]["private"]["contract"] = ws_url
    ex.urls["api"]["ws"]["private"]["spot"]["unified"] = ws_url
    try:
        await ex.load_markets()
        watch = asyncio.ensure_future(ex.watch_orders(MARKET))
        # The subscription starts with its (delayed) ack, which ccxt.pro does not expose: place orders
        # until one is seen, each with its own id.
        for attempt in range(20):
            link = f"conf-pro-{attempt}-" + uuid.uuid4().hex[:6]
            await ex.create_order(MARKET, "market", "buy", 1, None, {"clientOrderId": link})
            done, _ = await asyncio.wait({watch}, timeout=0.5)
            if done:
                orders = watch.result()
                expect(any(o["clientOrderId"].startswith("conf-pro-") and o["status"] == "closed" for o in orders),
                       f"watch_orders returned {orders}")
                return orders[-1]
        raise AssertionError("ccxt.pro watch_orders saw no order")
    finally:
        await ex.close()


def pushed(received, topic, match):
    return any(m.get("topic") == topic and any(match(d) for d in m.get("data", [])) for m in list(received))


def ccxt_settings_tpsl_and_conditional(ex):
    """Leverage, margin and position mode, attached TP/SL, a conditional order and cancel-all."""
    try:
        ex.set_leverage(5, MARKET)
        raise AssertionError("set_leverage to the current value was accepted")
    except ccxt.BadRequest as error:
        expect("110043" in str(error), f"leverage not modified: {error}")
    step("ccxt set_leverage to the same value: Bybit's 110043 (BadRequest in ccxt)")

    ex.set_margin_mode("isolated", MARKET)
    mode = ex.privateGetV5AccountInfo()["result"]["marginMode"]
    expect(mode == "ISOLATED_MARGIN", f"margin mode {mode}")
    ex.set_margin_mode("cross", MARKET)
    expect(ex.privateGetV5AccountInfo()["result"]["marginMode"] == "REGULAR_MARGIN", "margin mode back to cross")
    step("ccxt set_margin_mode isolated then cross (POST /v5/account/set-margin-mode)")

    ex.set_position_mode(True, MARKET)
    ex.set_position_mode(False, MARKET)
    try:
        ex.set_position_mode(False, MARKET)
        raise AssertionError("switching to the current position mode was accepted")
    except ccxt.NoChange as error:
        expect("110025" in str(error), f"position mode not modified: {error}")
    step("ccxt set_position_mode hedged and back; the same mode again is 110025 (NoChange)")

    limit = ex.create_order(MARKET, "limit", "buy", 1, 24.0,
                            {"clientOrderId": "conf-tpsl-" + uuid.uuid4().hex[:8],
                             "takeProfit": 30.0, "stopLoss": 22.0})
    fetched = ex.fetch_order(limit["id"], MARKET, {"acknowledged": True})
    expect(fetched["status"] == "open", f"limit with TP/SL status {fetched['status']}")
    expect(fetched["takeProfitPrice"] == 30.0 and fetched["stopLossPrice"] == 22.0,
           f"attached TP/SL {fetched['takeProfitPrice']} {fetched['stopLossPrice']}")
    conditional = ex.create_order(MARKET, "market", "buy", 1, None,
                                  {"triggerPrice": 28.0, "triggerDirection": "ascending"})
    fetched = ex.fetch_order(conditional["id"], MARKET, {"acknowledged": True})
    expect(fetched["status"] == "open" and fetched["triggerPrice"] == 28.0,
           f"conditional {fetched['status']} {fetched['triggerPrice']} {fetched['info'].get('orderStatus')}")
    expect(fetched["info"]["orderStatus"] == "Untriggered", f"conditional {fetched['info']['orderStatus']}")
    step("ccxt limit with attached takeProfit/stopLoss rests; a conditional market order is Untriggered")

    ex.cancel_all_orders(MARKET)
    expect(ex.fetch_open_orders(MARKET) == [], "orders still open after cancel_all_orders")
    step("ccxt cancel_all_orders cancelled both")


def pybit_leverage_tpsl_limit_and_cancel(base, session, received):
    """pybit: leverage, an order with TP/SL, trading-stop, limits, cancel-all, and the TP firing."""
    from pybit.exceptions import InvalidRequestError
    expect(session.set_leverage(category="linear", symbol=SYMBOL, buyLeverage="3", sellLeverage="3")["retCode"] == 0,
           "pybit set_leverage")
    try:
        session.set_leverage(category="linear", symbol=SYMBOL, buyLeverage="3", sellLeverage="3")
        raise AssertionError("pybit set_leverage to the same value was accepted")
    except InvalidRequestError as error:
        expect(error.status_code == 110043, f"pybit set_leverage again: {error}")
    step("pybit set_leverage, and 110043 for the same value")

    placed = session.place_order(category="linear", symbol=SYMBOL, side="Buy", orderType="Market", qty="2",
                                 takeProfit="27.5", stopLoss="23", tpslMode="Full")
    expect(placed["retCode"] == 0, f"pybit order with TP/SL {placed}")
    stop = session.set_trading_stop(category="linear", symbol=SYMBOL, stopLoss="24", tpslMode="Full",
                                    positionIdx=0)
    expect(stop["retCode"] == 0, f"pybit set_trading_stop {stop}")
    position = session.get_positions(category="linear", symbol=SYMBOL)["result"]["list"][0]
    expect(position["takeProfit"] == "27.500" and position["stopLoss"] == "24.000", f"pybit position {position}")
    step(f"pybit order with takeProfit/stopLoss, then set_trading_stop: TP {position['takeProfit']} "
         f"SL {position['stopLoss']}")

    resting = session.place_order(category="linear", symbol=SYMBOL, side="Buy", orderType="Limit", qty="1",
                                  price="20", timeInForce="GTC")
    crossing = session.place_order(category="linear", symbol=SYMBOL, side="Buy", orderType="Limit", qty="1",
                                   price="30", timeInForce="PostOnly")
    post_only = session.get_open_orders(category="linear", symbol=SYMBOL,
                                        orderId=crossing["result"]["orderId"])["result"]["list"][0]
    expect(post_only["orderStatus"] == "Cancelled", f"crossing PostOnly {post_only['orderStatus']}")
    cancelled = session.cancel_all_orders(category="linear", symbol=SYMBOL)["result"]["list"]
    expect([c["orderId"] for c in cancelled] == [resting["result"]["orderId"]], f"pybit cancel_all {cancelled}")
    step("pybit GTC limit rests, crossing PostOnly is cancelled, cancel_all_orders cancels the rest")

    control(base, "PUT", f"/paper/prices/{SYMBOL}", {"price": "26.500"})
    wait_for(lambda: pushed(received, "position", lambda d: d.get("markPrice") == "26.500" and d.get("size") == "2.0"),
             "pybit position push at the new mark")
    control(base, "PUT", f"/paper/prices/{SYMBOL}", {"price": "27.600"})
    wait_for(lambda: pushed(received, "order", lambda d: d.get("createType") == "CreateByTakeProfit"
                            and d.get("orderLinkId") == "" and d.get("orderStatus") == "Filled"),
             "pybit order push of the take profit")
    history = session.get_order_history(category="linear", symbol=SYMBOL)["result"]["list"]
    take_profit = [o for o in history if o["createType"] == "CreateByTakeProfit"]
    expect(len(take_profit) == 1 and take_profit[0]["reduceOnly"] is True, f"take-profit order {take_profit}")
    position = session.get_positions(category="linear", symbol=SYMBOL)["result"]["list"][0]
    expect(position["size"] == "0.0", f"position after take profit {position}")
    step(f"pybit: position pushes follow the price; the take profit fired as {take_profit[0]['createType']} "
         f"(closedPnl {take_profit[0]['closedPnl']}) and flattened the position")


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    base = sys.argv[1].rstrip("/")
    api_key = "conf" + uuid.uuid4().hex[:16]
    api_secret = uuid.uuid4().hex + uuid.uuid4().hex
    control(base, "POST", "/paper/accounts", {"api_key": api_key, "api_secret": api_secret, "balance_usdt": "10000"})
    control(base, "PUT", f"/paper/prices/{SYMBOL}", {"price": "25.000"})
    step(f"account {api_key} created")

    received, acks = [], []
    ws = start_pybit_stream(base, api_key, api_secret, received, acks)
    wait_for(lambda: len([a for a in acks if a.get("success") is True]) >= 4, "pybit subscribe acks")
    step("pybit private WebSocket authenticated and subscribed to order, execution, position, wallet")

    ex = make_ccxt(base, api_key, api_secret)
    markets = ex.load_markets()
    expect(MARKET in markets, f"{MARKET} missing from load_markets")
    market = markets[MARKET]
    expect(market["precision"]["amount"] == 0.1, f"amount precision {market['precision']['amount']}")
    expect(market["limits"]["amount"]["min"] == 0.1, f"min amount {market['limits']['amount']['min']}")
    step(f"ccxt load_markets: {len(markets)} markets, {MARKET} precision {market['precision']}")

    buy_link = "conf-buy-" + uuid.uuid4().hex[:8]
    buy = ex.create_order(MARKET, "market", "buy", 2, None, {"clientOrderId": buy_link})
    expect(buy["id"], "market buy returned no id")
    step(f"ccxt market buy placed: {buy['id']}")

    fetched = ex.fetch_order(buy["id"], MARKET, {"acknowledged": True})
    expect(fetched["status"] == "closed", f"buy status {fetched['status']}")
    expect(fetched["filled"] == 2.0, f"buy filled {fetched['filled']}")
    expect(fetched["clientOrderId"] == buy_link, f"buy clientOrderId {fetched['clientOrderId']}")
    expect(abs(fetched["average"] - 25.0) < 1e-9, f"buy average {fetched['average']}")
    step(f"ccxt fetch_order: status={fetched['status']} filled={fetched['filled']} average={fetched['average']}")

    wait_for(lambda: any(m.get("topic") == "order" and any(d.get("orderLinkId") == buy_link
                                                           and d.get("orderStatus") == "Filled"
                                                           for d in m.get("data", []))
                         for m in list(received)), "pybit order push of the buy")
    wait_for(lambda: any(m.get("topic") == "execution" and any(d.get("orderLinkId") == buy_link
                                                               and d.get("execQty") == "2.0"
                                                               for d in m.get("data", []))
                         for m in list(received)), "pybit execution push of the buy")
    step("pybit received the order (Filled) and execution pushes of the buy")

    positions = ex.fetch_positions([MARKET])
    open_positions = [p for p in positions if p["contracts"]]
    expect(len(open_positions) == 1, f"positions {positions}")
    expect(open_positions[0]["side"] == "long", f"position side {open_positions[0]['side']}")
    expect(open_positions[0]["contracts"] == 2.0, f"position size {open_positions[0]['contracts']}")
    step(f"ccxt fetch_positions: {open_positions[0]['side']} {open_positions[0]['contracts']} "
         f"@ {open_positions[0]['entryPrice']}")

    balance = ex.fetch_balance()
    usdt = balance["USDT"]
    fee = Decimal("2") * Decimal("25") * Decimal("0.00055")
    expect(Decimal(str(usdt["total"])) == Decimal("10000") - fee, f"USDT total {usdt}")
    step(f"ccxt fetch_balance: USDT total={usdt['total']} free={usdt['free']} used={usdt['used']}")

    control(base, "PUT", f"/paper/prices/{SYMBOL}", {"price": "26.000"})
    sell = ex.create_order(MARKET, "market", "sell", 0.5, None, {"clientOrderId": "conf-sell-" + uuid.uuid4().hex[:8]})
    sold = ex.fetch_order(sell["id"], MARKET, {"acknowledged": True})
    expect(sold["status"] == "closed" and sold["filled"] == 0.5, f"sell {sold['status']} {sold['filled']}")
    step(f"ccxt market sell placed and filled: {sold['filled']} @ {sold['average']}")

    close = ex.create_order(MARKET, "market", "sell", 5, None, {"reduceOnly": True})
    closed = ex.fetch_order(close["id"], MARKET, {"acknowledged": True})
    expect(closed["reduceOnly"] is True, f"close reduceOnly {closed['reduceOnly']}")
    expect(closed["filled"] == 1.5, f"reduce-only close filled {closed['filled']} (position was 1.5)")
    positions = [p for p in ex.fetch_positions([MARKET]) if p["contracts"]]
    expect(not positions, f"position still open after reduceOnly close: {positions}")
    step("ccxt reduceOnly close truncated to the 1.5 left and flattened the position")

    try:
        ex.create_order(MARKET, "market", "sell", 1, None, {"reduceOnly": True})
        raise AssertionError("reduceOnly with no position was accepted")
    except ccxt.InvalidOrder as error:
        step(f"ccxt reduceOnly with no position refused as InvalidOrder: {str(error)[:80]}")

    try:
        ex.create_order(MARKET, "market", "buy", 1, None, {"clientOrderId": buy_link})
        raise AssertionError("duplicate orderLinkId was accepted")
    except ccxt.InvalidOrder as error:
        step(f"ccxt duplicate clientOrderId refused as InvalidOrder: {str(error)[:80]}")

    ticker = ex.fetch_ticker(MARKET)
    expect(ticker["last"] == 26.0, f"ticker last {ticker['last']}")
    lev = ex.set_leverage(5, MARKET)
    step(f"ccxt fetch_ticker last={ticker['last']}, set_leverage -> {lev.get('info', lev) if isinstance(lev, dict) else lev}")

    resting = ex.create_order(MARKET, "limit", "buy", 1, 20.0, {"clientOrderId": "conf-lim-" + uuid.uuid4().hex[:8]})
    open_orders = ex.fetch_open_orders(MARKET)
    expect([o["id"] for o in open_orders] == [resting["id"]], f"open orders {open_orders}")
    ex.cancel_order(resting["id"], MARKET)
    expect(ex.fetch_open_orders(MARKET) == [], "limit order still open after cancel_order")
    step("ccxt limit create_order, fetch_open_orders, cancel_order")

    trades = ex.fetch_my_trades(MARKET)
    expect(len(trades) == 3, f"my trades {len(trades)}")
    step(f"ccxt fetch_my_trades: {len(trades)} fills")

    ccxt_settings_tpsl_and_conditional(ex)

    session = PybitHTTP(api_key=api_key, api_secret=api_secret, testnet=False)
    session.endpoint = base
    placed = session.place_order(category="linear", symbol=SYMBOL, side="Sell", orderType="Market", qty="1",
                                 orderLinkId="conf-pybit-" + uuid.uuid4().hex[:8])
    expect(placed["retCode"] == 0, f"pybit place_order {placed}")
    pybit_order = session.get_open_orders(category="linear", symbol=SYMBOL, orderId=placed["result"]["orderId"])
    expect(pybit_order["result"]["list"][0]["orderStatus"] == "Filled", f"pybit order {pybit_order}")
    pybit_position = session.get_positions(category="linear", symbol=SYMBOL)["result"]["list"][0]
    expect(pybit_position["side"] == "Sell" and pybit_position["size"] == "1.0", f"pybit position {pybit_position}")
    pybit_wallet = session.get_wallet_balance(accountType="UNIFIED")["result"]["list"][0]
    step(f"pybit HTTP place_order/get_open_orders/get_positions/get_wallet_balance: short {pybit_position['size']}, "
         f"equity {pybit_wallet['totalEquity']}")
    wait_for(lambda: any(m.get("topic") == "order" and any(d.get("orderId") == placed["result"]["orderId"]
                                                           for d in m.get("data", []))
                         for m in list(received)), "pybit order push of pybit's own order")
    step("pybit private WebSocket received the order push of the order pybit placed")
    closed = session.place_order(category="linear", symbol=SYMBOL, side="Buy", orderType="Market", qty="0",
                                 reduceOnly=True, closeOnTrigger=True)
    expect(closed["retCode"] == 0, f"pybit qty=0 close {closed}")
    pybit_leverage_tpsl_limit_and_cancel(base, session, received)
    ws.exit()

    watched = asyncio.run(ccxt_pro_watch_orders(base, api_key, api_secret))
    step(f"ccxt.pro watch_orders received {watched['clientOrderId']}: status={watched['status']} "
         f"filled={watched['filled']} average={watched['average']}")
    print("CONFORMANCE OK", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
