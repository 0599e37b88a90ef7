"""The founding design's Quick Start client ("Usage Examples"), verbatim, plus the login its
own API section requires: a token from ``POST /api/v1/auth/login``, sent as the
``Authorization`` header of the HTTP request and of the WebSocket handshake.

    EQX_USER=alice EQX_PASSWORD=... python scripts/quickstart_client.py
    EQX_URL=http://127.0.0.1:8001 ... python scripts/quickstart_client.py  # another server

Needs ``requests`` and ``websocket-client`` (the dev extra).
"""

import json
import os

import requests
import websocket

BASE = os.environ.get("EQX_URL", "http://localhost:8000")
WS_BASE = BASE.replace("http", "ws", 1)

# 0. Log in (the founding design's "Authentication").
login = requests.post(f"{BASE}/api/v1/auth/login", json={
    "username": os.environ.get("EQX_USER", "admin"),
    "password": os.environ.get("EQX_PASSWORD", ""),
})
login.raise_for_status()
auth = {"Authorization": f"Bearer {login.json()['access_token']}"}

# 1. Start a simulation
response = requests.post(
    f"{BASE}/api/v1/simulation/start",
    json={
        "supplier_valuation": 5000,
        "retailer_valuation": 8000,
        "max_rounds": 10,
        "supplier_style": "aggressive",
        "retailer_style": "cooperative"
    },
    headers=auth,
)

session_id = response.json()["session_id"]

# 2. Connect to WebSocket
ws = websocket.WebSocket()
ws.connect(f"{WS_BASE}/api/v1/simulation/{session_id}/stream",
           header=[f"Authorization: {auth['Authorization']}"])

# 3. Send configuration
ws.send(json.dumps({
    "supplier_valuation": 5000,
    "retailer_valuation": 8000,
    "max_rounds": 10
}))

# 4. Receive negotiation messages
while True:
    message = json.loads(ws.recv())

    if message.get("type") == "SIMULATION_COMPLETE":
        print(f"Deal reached: ${message['final_price']}")
        print(f"Rounds: {message['total_rounds']}")
        print(f"Nash distance: {message['nash_distance']}")
        break
    else:
        print(f"[{message['agent']}] Round {message['round']}: {message['message']}")
